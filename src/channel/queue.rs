//! The queue class: declare, bind, unbind, purge, delete.

use super::{generated_name, Channel, Ctx};
use crate::access::{Perm, Resource};
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::Dest;
use crate::vhost::{is_reply_name, REPLY_QUEUE};
use amq_protocol::protocol::{queue as q, AMQPClass};
use std::sync::Arc;

impl Channel {
    pub(super) fn on_queue(&mut self, ctx: &mut Ctx, m: q::AMQPMethod) -> AmqpResult<()> {
        match m {
            q::AMQPMethod::Declare(d) => self.queue_declare(ctx, d),
            q::AMQPMethod::Bind(bd) => {
                let name = self.queue_name(bd.queue.as_str())?;
                let key = self.implied_key(bd.queue.as_str(), bd.routing_key.as_str(), &name);
                let source = bd.exchange.as_str();
                self.check_binding(ctx, source, &name)?;
                ctx.vhost
                    .bind(source, Dest::Queue(name), &key, bd.arguments)?;
                if !bd.nowait {
                    ctx.out.method(
                        self.id,
                        AMQPClass::Queue(q::AMQPMethod::BindOk(q::BindOk {})),
                    );
                }
                Ok(())
            }
            q::AMQPMethod::Unbind(u) => {
                let name = self.queue_name(u.queue.as_str())?;
                let key = self.implied_key(u.queue.as_str(), u.routing_key.as_str(), &name);
                let source = u.exchange.as_str();
                self.check_binding(ctx, source, &name)?;
                ctx.vhost
                    .unbind(source, Dest::Queue(name), &key, u.arguments)?;
                ctx.out.method(
                    self.id,
                    AMQPClass::Queue(q::AMQPMethod::UnbindOk(q::UnbindOk {})),
                );
                Ok(())
            }
            q::AMQPMethod::Purge(p) => {
                let name = self.queue_name(p.queue.as_str())?;
                ctx.permit(Perm::Read, Resource::Queue, &name)?;
                let queue = ctx.vhost.queue_for(&name, ctx.conn_id)?;
                let message_count = queue.purge();
                if !p.nowait {
                    ctx.out.method(
                        self.id,
                        AMQPClass::Queue(q::AMQPMethod::PurgeOk(q::PurgeOk { message_count })),
                    );
                }
                Ok(())
            }
            q::AMQPMethod::Delete(d) => self.queue_delete(ctx, d),
            other => Err(AmqpError::command_invalid(format!(
                "unexpected queue method {other:?}"
            ))),
        }
    }

    /// queue.bind with queue "" and key "" binds the last declared queue under its own name.
    fn implied_key(&self, queue_arg: &str, key: &str, name: &str) -> String {
        if queue_arg.is_empty() && key.is_empty() {
            name.to_string()
        } else {
            key.to_string()
        }
    }

    /// The checks RabbitMQ makes before a queue binding changes, in its order.
    fn check_binding(&self, ctx: &mut Ctx, source: &str, queue: &str) -> AmqpResult<()> {
        if is_reply_name(queue) {
            return Err(AmqpError::access_refused(
                "cannot bind or unbind to a volatile (direct reply-to) queue",
            ));
        }
        if source.is_empty() {
            return Err(AmqpError::access_refused(
                "operation not permitted on the default exchange",
            ));
        }
        ctx.permit(Perm::Write, Resource::Queue, queue)?;
        ctx.permit(Perm::Read, Resource::Exchange, source)?;
        ctx.vhost.queue_for(queue, ctx.conn_id)?;
        ctx.vhost.exchange_or_404(source)?;
        Ok(())
    }

    fn queue_declare(&mut self, ctx: &mut Ctx, d: q::Declare) -> AmqpResult<()> {
        if d.queue.as_str().starts_with(REPLY_QUEUE) {
            return self.declare_reply_queue(ctx, d);
        }
        let queue = if d.passive {
            let name = self.queue_name(d.queue.as_str())?;
            ctx.vhost.queue_for(&name, ctx.conn_id)?
        } else {
            let name = d.queue.as_str();
            if name.starts_with("amq.") {
                return Err(AmqpError::access_refused(format!(
                    "queue name '{name}' contains reserved prefix 'amq.*'"
                )));
            }
            let name = if name.is_empty() {
                let kind = d.arguments.inner().get("x-queue-type");
                let module = match kind.and_then(crate::field::as_text).as_deref() {
                    Some("quorum") => Some("rabbit_quorum_queue"),
                    Some("stream") => Some("rabbit_stream_queue"),
                    _ => None,
                };
                if let Some(module) = module {
                    return Err(AmqpError::precondition(format!(
                        "Cannot declare a server-named queue for type {module}"
                    )));
                }
                generated_name("amq.gen-")
            } else {
                name.to_string()
            };
            ctx.permit(Perm::Configure, Resource::Queue, &name)?;
            if ctx.vhost.queue(&name).is_none() {
                let limits = ctx.broker.vhost_limits.get(&ctx.vhost.name);
                let max = limits.and_then(|l| crate::access::limit(l.max_queues));
                if let Some(max) = max {
                    if ctx.vhost.queue_count() >= max {
                        return Err(AmqpError::precondition(format!(
                            "cannot declare queue '{name}': queue limit in vhost '{}' ({max}) is reached",
                            ctx.vhost.name
                        )));
                    }
                }
                // A new queue dead-letters through its DLX: read on the queue, write on it.
                let dlx = d.arguments.inner().get("x-dead-letter-exchange");
                if let Some(dlx) = dlx.and_then(crate::field::as_text) {
                    ctx.permit(Perm::Read, Resource::Queue, &name)?;
                    ctx.permit(Perm::Write, Resource::Exchange, &dlx)?;
                }
            }
            let q = ctx.vhost.declare_queue(
                &name,
                d.durable,
                d.exclusive,
                d.auto_delete,
                d.arguments,
                ctx.conn_id,
            )?;
            if q.exclusive_owner == Some(ctx.conn_id)
                && !ctx.exclusive_queues.iter().any(|x| Arc::ptr_eq(x, &q))
            {
                ctx.exclusive_queues.push(q.clone());
            }
            q
        };
        self.last_queue = Some(queue.name.clone());
        if !d.nowait {
            // A declare counts as a use for `x-expires` (not on a quorum queue, as RabbitMQ).
            if queue.kind() == crate::queue::QueueKind::Classic {
                queue.touch();
            }
            let (message_count, consumer_count) = queue.counts();
            ctx.out.method(
                self.id,
                AMQPClass::Queue(q::AMQPMethod::DeclareOk(q::DeclareOk {
                    queue: queue.name.as_str().into(),
                    message_count,
                    consumer_count,
                })),
            );
        }
        Ok(())
    }

    /// Declaring `amq.rabbitmq.reply-to`, or a generated reply name, passive or not: it
    /// exists (no messages, one consumer) while its requester consumes, as in RabbitMQ. An
    /// RPC server can check this way that the requester is still there.
    fn declare_reply_queue(&mut self, ctx: &mut Ctx, d: q::Declare) -> AmqpResult<()> {
        let name = d.queue.as_str();
        if name != REPLY_QUEUE && !ctx.vhost.reply_exists(name) {
            return Err(ctx.vhost.no_queue(name));
        }
        self.last_queue = Some(name.to_string());
        if !d.nowait {
            ctx.out.method(
                self.id,
                AMQPClass::Queue(q::AMQPMethod::DeclareOk(q::DeclareOk {
                    queue: d.queue,
                    message_count: 0,
                    consumer_count: 1,
                })),
            );
        }
        Ok(())
    }

    fn queue_delete(&mut self, ctx: &mut Ctx, d: q::Delete) -> AmqpResult<()> {
        let name = self.queue_name(d.queue.as_str())?;
        ctx.permit(Perm::Configure, Resource::Queue, &name)?;
        let message_count = match ctx.vhost.queue(&name) {
            // Deleting a queue that does not exist succeeds, as in RabbitMQ.
            None => 0,
            Some(queue) => {
                ctx.vhost.queue_for(&name, ctx.conn_id)?;
                let (messages, consumers) = queue.counts();
                if d.if_unused && consumers > 0 {
                    return Err(AmqpError::precondition(format!(
                        "queue '{name}' in vhost '{}' in use",
                        ctx.vhost.name
                    )));
                }
                if d.if_empty && messages > 0 {
                    return Err(AmqpError::precondition(format!(
                        "queue '{name}' in vhost '{}' not empty",
                        ctx.vhost.name
                    )));
                }
                let (n, consumers) = ctx.vhost.delete_queue(&queue);
                ctx.exclusive_queues.retain(|x| !Arc::ptr_eq(x, &queue));
                super::notify_cancelled(consumers);
                n
            }
        };
        if !d.nowait {
            ctx.out.method(
                self.id,
                AMQPClass::Queue(q::AMQPMethod::DeleteOk(q::DeleteOk { message_count })),
            );
        }
        Ok(())
    }
}
