//! Publisher confirms (confirm.select) and transactions (tx.select, commit, rollback).

use super::basic::Settle;
use super::{Channel, Ctx, Unacked};
use crate::codec::OutBuf;
use crate::error::{AmqpError, AmqpResult};
use crate::exchange::Exchange;
use crate::message::Message;
use amq_protocol::protocol::{basic as b, confirm, tx, AMQPClass};
use std::collections::VecDeque;
use std::sync::Arc;

/// Confirm-mode bookkeeping: publishes are numbered from 1; acks are coalesced into one
/// `basic.ack multiple=true` covering every publish up to the first one still waiting for
/// the disk.
#[derive(Debug, Default)]
pub struct Confirms {
    /// Sequence number of the last publish.
    last: u64,
    /// Highest sequence number already acked.
    acked: u64,
    /// Publishes waiting for the group commit, in order.
    waiting: VecDeque<u64>,
    /// Publishes a queue refused (`x-overflow` reject-publish), in order: nacked, not acked.
    refused: VecDeque<u64>,
}

impl Confirms {
    /// Number the next publish.
    pub(super) fn published(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// Publishes confirmed (acked or nacked) so far.
    pub(super) fn confirmed(&self) -> u64 {
        self.acked
    }

    /// Publishes not confirmed yet.
    pub(super) fn pending(&self) -> usize {
        (self.last - self.acked) as usize
    }

    /// Publish `seq` must not be confirmed before the store says it is durable.
    pub(super) fn wait_for_disk(&mut self, seq: u64) {
        self.waiting.push_back(seq);
    }

    /// Publish `seq` was refused by a queue: it gets a basic.nack.
    pub(super) fn refuse(&mut self, seq: u64) {
        self.refused.push_back(seq);
    }

    /// Every publish up to `seq` that waited for the disk is durable now.
    pub(super) fn synced(&mut self, seq: u64) {
        while self.waiting.front().is_some_and(|s| *s <= seq) {
            self.waiting.pop_front();
        }
    }

    pub(super) fn flush(&mut self, channel: u16, out: &mut OutBuf) {
        let ackable = self.waiting.front().map_or(self.last, |w| w - 1);
        while let Some(&n) = self.refused.front() {
            if n > ackable {
                break;
            }
            self.refused.pop_front();
            if n - 1 > self.acked {
                self.ack_up_to(channel, out, n - 1);
            }
            out.method(
                channel,
                AMQPClass::Basic(b::AMQPMethod::Nack(b::Nack {
                    delivery_tag: n,
                    multiple: false,
                    requeue: false,
                })),
            );
            self.acked = n;
        }
        if ackable > self.acked {
            self.ack_up_to(channel, out, ackable);
        }
    }

    fn ack_up_to(&mut self, channel: u16, out: &mut OutBuf, ackable: u64) {
        let multiple = ackable - self.acked > 1;
        out.method(
            channel,
            AMQPClass::Basic(b::AMQPMethod::Ack(b::Ack {
                delivery_tag: ackable,
                multiple,
            })),
        );
        self.acked = ackable;
    }
}

/// Work held back until tx.commit.
#[derive(Debug, Default)]
pub struct TxBuffer {
    pub(super) publishes: Vec<(Arc<Exchange>, Arc<Message>, bool)>,
    pub(super) settles: Vec<(Vec<Unacked>, Settle)>,
}

/// The sequence number a sync notification carries when it completes a tx.commit rather
/// than a confirm (confirm sequence numbers start at 1, and a channel is never in both modes).
pub const COMMIT_SEQ: u64 = 0;

impl Channel {
    pub(super) fn commit_ok(&self, out: &mut OutBuf) {
        out.method(
            self.id,
            AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})),
        );
    }

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
                let mut ticket = None;
                for (x, msg, mandatory) in buf.publishes {
                    self.info.stats.publish.inc();
                    let routed = ctx.vhost.publish(&x, msg.clone())?;
                    self.info.stats.routed.add_local(routed.queues as u64);
                    let unroutable = routed.unroutable().then_some(mandatory);
                    match unroutable {
                        Some(true) => {
                            self.info.stats.return_unroutable.inc();
                            self.basic_return(ctx, &msg);
                        }
                        Some(false) => self.info.stats.drop_unroutable.inc(),
                        None => {}
                    }
                    self.counts.published_to(&self.info, &x, unroutable, None);
                    ticket = routed.ticket.or(ticket);
                }
                for (items, how) in buf.settles {
                    self.apply_settle(ctx.conn_id, items, how);
                }
                match ticket {
                    // Persistent messages were written: commit-ok once they are durable.
                    Some(t) => {
                        let syncer = ctx.vhost.store().syncer();
                        syncer.wait(t, ctx.events.clone(), self.id, COMMIT_SEQ);
                    }
                    None => self.commit_ok(ctx.out),
                }
                Ok(())
            }
            tx::AMQPMethod::Rollback(_) => {
                let Some(buf) = self.tx.replace(TxBuffer::default()) else {
                    return Err(AmqpError::precondition("channel is not transactional"));
                };
                // Rolled-back acks leave their deliveries unacked, as they were.
                for (items, _) in buf.settles {
                    for u in items {
                        self.track(u);
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
