//! Publisher confirms (confirm.select) and transactions (tx.select, commit, rollback).

use super::basic::Settle;
use super::{Channel, Ctx, Unacked};
use crate::codec::OutBuf;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::Exchange;
use crate::message::Message;
use amq_protocol::protocol::{basic as b, confirm, tx, AMQPClass};
use std::sync::Arc;

/// Confirm-mode bookkeeping: publishes are numbered from 1; acks are coalesced into one
/// `basic.ack multiple=true` per batch of input.
#[derive(Debug, Default)]
pub struct Confirms {
    /// Sequence number of the last publish.
    last: u64,
    /// Highest sequence number already acked.
    acked: u64,
}

impl Confirms {
    pub(super) fn published(&mut self) {
        self.last += 1;
    }

    pub(super) fn flush(&mut self, channel: u16, out: &mut OutBuf) {
        if self.acked == self.last {
            return;
        }
        let multiple = self.last - self.acked > 1;
        out.method(
            channel,
            AMQPClass::Basic(b::AMQPMethod::Ack(b::Ack {
                delivery_tag: self.last,
                multiple,
            })),
        );
        self.acked = self.last;
    }
}

/// Work held back until tx.commit.
#[derive(Debug, Default)]
pub struct TxBuffer {
    pub(super) publishes: Vec<(Arc<Exchange>, Arc<Message>, bool)>,
    pub(super) settles: Vec<(Vec<Unacked>, Settle)>,
}

impl Channel {
    pub(super) fn on_confirm(&mut self, ctx: &mut Ctx, m: confirm::AMQPMethod) -> AmqpResult<()> {
        let confirm::AMQPMethod::Select(s) = m else {
            return Err(AmqpError::command_invalid("unexpected confirm method"));
        };
        if self.tx.is_some() {
            return Err(AmqpError::precondition(
                "cannot switch from tx to confirm mode",
            ));
        }
        if self.confirm.is_none() {
            self.confirm = Some(Confirms::default());
        }
        if !s.nowait {
            ctx.out.method(
                self.id,
                AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
            );
        }
        Ok(())
    }

    pub(super) fn on_tx(&mut self, ctx: &mut Ctx, m: tx::AMQPMethod) -> AmqpResult<()> {
        match m {
            tx::AMQPMethod::Select(_) => {
                if self.confirm.is_some() {
                    return Err(AmqpError::precondition(
                        "cannot switch from confirm to tx mode",
                    ));
                }
                if self.tx.is_none() {
                    self.tx = Some(TxBuffer::default());
                }
                ctx.out.method(
                    self.id,
                    AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})),
                );
                Ok(())
            }
            tx::AMQPMethod::Commit(_) => {
                let Some(buf) = self.tx.replace(TxBuffer::default()) else {
                    return Err(AmqpError::precondition("channel is not transactional"));
                };
                for (x, msg, mandatory) in buf.publishes {
                    let routed = ctx.vhost.publish(&x, msg.clone());
                    if routed.queues == 0 && mandatory {
                        self.basic_return(ctx, &msg);
                    }
                }
                for (items, how) in buf.settles {
                    self.apply_settle(ctx.conn_id, items, how);
                }
                ctx.out.method(
                    self.id,
                    AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})),
                );
                Ok(())
            }
            tx::AMQPMethod::Rollback(_) => {
                let Some(buf) = self.tx.replace(TxBuffer::default()) else {
                    return Err(AmqpError::precondition("channel is not transactional"));
                };
                // Rolled-back acks leave their deliveries unacked, as they were.
                for (items, _) in buf.settles {
                    for u in items {
                        self.unacked.insert(u.tag, u);
                    }
                }
                ctx.out.method(
                    self.id,
                    AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})),
                );
                Ok(())
            }
            other => Err(AmqpError::command_invalid(format!(
                "unexpected tx method {other:?}"
            ))),
        }
    }
}
