//! The exchange class: declare, delete, bind, unbind (exchange-to-exchange).

use super::{Channel, Ctx};
use crate::access::{Perm, Resource};
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::Dest;
use amq_protocol::protocol::{exchange as e, AMQPClass};

impl Channel {
    pub(super) fn on_exchange(&mut self, ctx: &mut Ctx, m: e::AMQPMethod) -> AmqpResult<()> {
        match m {
            e::AMQPMethod::Declare(d) => {
                let name = d.exchange.as_str();
                if !d.passive && !name.is_empty() {
                    ctx.permit(Perm::Configure, Resource::Exchange, name)?;
                    if ctx.vhost.exchange(name).is_none() {
                        let ae = d.arguments.inner().get("alternate-exchange");
                        if let Some(ae) = ae.and_then(crate::field::as_text) {
                            ctx.permit(Perm::Read, Resource::Exchange, name)?;
                            ctx.permit(Perm::Write, Resource::Exchange, &ae)?;
                        }
                    }
                }
                ctx.vhost.declare_exchange(
                    d.exchange.as_str(),
                    d.kind.as_str(),
                    d.passive,
                    d.durable,
                    d.auto_delete,
                    d.internal,
                    d.arguments,
                )?;
                if !d.nowait {
                    ctx.out.method(
                        self.id,
                        AMQPClass::Exchange(e::AMQPMethod::DeclareOk(e::DeclareOk {})),
                    );
                }
                Ok(())
            }
            e::AMQPMethod::Delete(d) => {
                if !d.exchange.as_str().is_empty() {
                    ctx.permit(Perm::Configure, Resource::Exchange, d.exchange.as_str())?;
                }
                match ctx.vhost.delete_exchange(d.exchange.as_str(), d.if_unused) {
                    Ok(()) => {}
                    // Deleting an exchange that does not exist succeeds, as in RabbitMQ.
                    Err(err) if err.code == crate::error::ReplyCode::NotFound => {}
                    Err(err) => return Err(err),
                }
                if !d.nowait {
                    ctx.out.method(
                        self.id,
                        AMQPClass::Exchange(e::AMQPMethod::DeleteOk(e::DeleteOk {})),
                    );
                }
                Ok(())
            }
            e::AMQPMethod::Bind(bd) => {
                self.check_e2e(ctx, bd.source.as_str(), bd.destination.as_str())?;
                let dest = Dest::Exchange(bd.destination.to_string());
                ctx.vhost.bind(
                    bd.source.as_str(),
                    dest,
                    bd.routing_key.as_str(),
                    bd.arguments,
                )?;
                if !bd.nowait {
                    ctx.out.method(
                        self.id,
                        AMQPClass::Exchange(e::AMQPMethod::BindOk(e::BindOk {})),
                    );
                }
                Ok(())
            }
            e::AMQPMethod::Unbind(u) => {
                self.check_e2e(ctx, u.source.as_str(), u.destination.as_str())?;
                let dest = Dest::Exchange(u.destination.to_string());
                ctx.vhost
                    .unbind(u.source.as_str(), dest, u.routing_key.as_str(), u.arguments)?;
                if !u.nowait {
                    ctx.out.method(
                        self.id,
                        AMQPClass::Exchange(e::AMQPMethod::UnbindOk(e::UnbindOk {})),
                    );
                }
                Ok(())
            }
            other => Err(AmqpError::command_invalid(format!(
                "unexpected exchange method {other:?}"
            ))),
        }
    }

    fn check_e2e(&self, ctx: &mut Ctx, source: &str, destination: &str) -> AmqpResult<()> {
        if source.is_empty() || destination.is_empty() {
            return Err(AmqpError::access_refused(
                "operation not permitted on the default exchange",
            ));
        }
        ctx.permit(Perm::Write, Resource::Exchange, destination)?;
        ctx.permit(Perm::Read, Resource::Exchange, source)?;
        ctx.vhost.exchange_or_404(destination)?;
        ctx.vhost.exchange_or_404(source)?;
        Ok(())
    }
}
