//! Consumer (delivery acknowledgement) timeouts.
//!
//! Every delivery that needs an ack gets a deadline when it is written: the consumer's
//! `x-consumer-timeout` argument, else the queue's `x-consumer-timeout`, else the
//! `amqp.consumer_timeout` setting (0: none). The connection checks its channels every
//! second. A delivery still unacked after its deadline either closes the channel with
//! RabbitMQ's 406 (`close-channel`, the default; every delivery on the channel is requeued)
//! or cancels only its consumer (`cancel-consumer`, the queue's `x-consumer-timeout-action`
//! or `amqp.consumer_timeout_action`): basic.cancel is sent and that consumer's unacked
//! deliveries are requeued, while the channel and its other consumers carry on. Acks for
//! those deliveries arriving later are ignored. As RabbitMQ 4.3 does for quorum queues, a
//! client that did not announce `consumer_cancel_notify`, or a late basic.get delivery (no
//! consumer to cancel), gets the channel closed instead.

use super::{Channel, Ctx, Unacked};
use crate::config::{AmqpConfig, TimeoutAction};
use crate::error::{AmqpError, AmqpResult};
use crate::queue::{AfterCancel, Queue, Returned};
use amq_protocol::protocol::{basic as b, AMQPClass};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The timeout that applies to a consumer's (or basic.get's) deliveries.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limit {
    pub ms: u64,
    pub action: TimeoutAction,
}

impl Limit {
    /// For a consumer: its own argument, else the queue's, else the setting.
    pub fn for_consumer(cfg: &AmqpConfig, q: &Queue, consumer_ms: Option<u64>) -> Option<Limit> {
        let ms = consumer_ms
            .or_else(|| queue_ms(q))
            .or(match cfg.consumer_timeout {
                0 => None,
                n => Some(n),
            })?;
        let action = q
            .arguments
            .inner()
            .get("x-consumer-timeout-action")
            .and_then(crate::field::as_text)
            .and_then(|a| TimeoutAction::parse(&a))
            .unwrap_or_else(|| cfg.timeout_action());
        Some(Limit { ms, action })
    }

    /// For basic.get: the queue's, else the setting. There is no consumer to cancel.
    pub fn for_get(cfg: &AmqpConfig, q: &Queue) -> Option<Limit> {
        let mut l = Limit::for_consumer(cfg, q, None)?;
        l.action = TimeoutAction::CloseChannel;
        Some(l)
    }

    /// The deadline of a delivery written at `now` (none if it would overflow the clock).
    pub fn deadline(self, now: Instant) -> Option<Deadline> {
        now.checked_add(Duration::from_millis(self.ms))
            .map(|at| Deadline { at, ms: self.ms })
    }
}

fn queue_ms(q: &Queue) -> Option<u64> {
    q.arguments
        .inner()
        .get("x-consumer-timeout")
        .and_then(crate::field::as_i64)
        .and_then(|v| u64::try_from(v).ok())
}

/// When an unacked delivery times out, and the timeout it was given (for the reply text).
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline {
    pub at: Instant,
    pub ms: u64,
}

impl Channel {
    /// Keep an unacked delivery, tracking the earliest deadline.
    pub(super) fn track(&mut self, u: Unacked) {
        if let Some(d) = &u.deadline {
            if self.next_deadline.is_none_or(|n| d.at < n) {
                self.next_deadline = Some(d.at);
            }
        }
        self.unacked.insert(u.tag, u);
    }

    /// Whether a delivery may have timed out by `now` (cheap; the connection asks every tick).
    pub fn timeout_due(&self, now: Instant) -> bool {
        self.is_open() && self.next_deadline.is_some_and(|d| d < now)
    }

    /// Act on deliveries unacked past their deadline: cancel their consumers, or return the
    /// 406 that closes the channel.
    pub fn check_timeouts(&mut self, ctx: &mut Ctx, now: Instant) -> AmqpResult<()> {
        if !self.timeout_due(now) {
            return Ok(());
        }
        let mut next: Option<Instant> = None;
        let mut late: Vec<(u64, Option<Arc<str>>, u64)> = Vec::new();
        for u in self.unacked.values() {
            let Some(d) = &u.deadline else { continue };
            if d.at < now {
                late.push((u.tag, u.consumer.clone(), d.ms));
            } else if next.is_none_or(|n| d.at < n) {
                next = Some(d.at);
            }
        }
        self.next_deadline = next;
        for (dtag, consumer, ms) in &late {
            let cancellable = ctx.caps.consumer_cancel_notify
                && consumer.as_ref().is_some_and(|c| {
                    self.consumers.get(c).is_some_and(|cc| {
                        cc.timeout
                            .is_some_and(|l| l.action == TimeoutAction::CancelConsumer)
                    })
                });
            if !cancellable {
                self.log_timeout(ctx, *dtag, consumer.as_deref(), *ms);
                return Err(AmqpError::precondition(format!(
                    "delivery acknowledgement on channel {} timed out. Timeout value used: {ms} ms. This timeout value can be configured, see consumers doc guide to learn more",
                    self.id
                )));
            }
        }
        let mut cancelled: Vec<Arc<str>> = Vec::new();
        for (dtag, consumer, ms) in late {
            let Some(tag) = consumer else { continue };
            if !cancelled.contains(&tag) {
                self.log_timeout(ctx, dtag, Some(&tag), ms);
                self.cancel_late_consumer(ctx, &tag);
                cancelled.push(tag);
            }
        }
        Ok(())
    }

    /// The warning RabbitMQ logs when a delivery times out.
    fn log_timeout(&self, ctx: &Ctx, dtag: u64, consumer: Option<&str>, ms: u64) {
        let queue = self
            .unacked
            .get(&dtag)
            .map_or("", |u| u.queue.name.as_str());
        tracing::warn!(
            "Consumer '{}' on channel {} and queue '{queue}' in vhost '{}' has timed out waiting for a consumer acknowledgement of a delivery with delivery tag = {dtag}. Timeout used: {ms} ms. This timeout value can be configured, see consumers doc guide to learn more",
            consumer.unwrap_or(""),
            self.id,
            ctx.vhost.name
        );
    }

    /// `cancel-consumer`: detach the consumer, tell the client, requeue its deliveries.
    fn cancel_late_consumer(&mut self, ctx: &mut Ctx, tag: &Arc<str>) {
        let mut detached = None;
        if let Some(cc) = self.consumers.remove(tag) {
            let key = self.key(ctx.conn_id, tag);
            // Requeue first, then let the queue dispatch (to a consumer taking over).
            if cc.queue.remove_consumer(&key, false) == AfterCancel::AutoDelete {
                let (_, others) = ctx.vhost.delete_queue(&cc.queue);
                super::notify_cancelled(others);
            } else {
                detached = Some(cc.queue.clone());
            }
            ctx.out.method(
                self.id,
                AMQPClass::Basic(b::AMQPMethod::Cancel(b::Cancel {
                    consumer_tag: tag.as_ref().into(),
                    nowait: true,
                })),
            );
        }
        let tags: Vec<u64> = self
            .unacked
            .values()
            .filter(|u| u.consumer.as_ref() == Some(tag))
            .map(|u| u.tag)
            .collect();
        let items: Vec<Unacked> = tags.iter().filter_map(|t| self.unacked.remove(t)).collect();
        self.stale.extend(tags);
        // As when a channel closes: the deliveries failed (they count towards a delivery limit).
        self.requeue_all(ctx.conn_id, items.into_iter(), Returned::Failed);
        if let Some(q) = detached {
            q.kick();
        }
    }

    /// Remove the timed-out delivery tags an ack, nack or reject names; true if any.
    pub(super) fn take_stale(&mut self, tag: u64, multiple: bool) -> bool {
        if self.stale.is_empty() {
            return false;
        }
        if !multiple {
            return self.stale.remove(&tag);
        }
        let upto = if tag == 0 { u64::MAX } else { tag };
        let kept = match upto.checked_add(1) {
            Some(above) => self.stale.split_off(&above),
            None => Default::default(),
        };
        let hit = !self.stale.is_empty();
        self.stale = kept;
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::{AMQPValue, FieldTable};

    fn queue(args: &[(&str, AMQPValue)]) -> Arc<Queue> {
        let mut t = FieldTable::default();
        for (k, v) in args {
            t.insert((*k).into(), v.clone());
        }
        let vhost = std::sync::Weak::new();
        Queue::new("q".into(), "/".into(), false, None, false, t, None, vhost)
    }

    fn of(l: Option<Limit>) -> Option<(u64, TimeoutAction)> {
        l.map(|l| (l.ms, l.action))
    }

    #[test]
    fn consumer_then_queue_then_setting_and_zero_disables() {
        use TimeoutAction::*;
        let mut cfg = crate::config::Config::defaults().amqp;
        cfg.consumer_timeout = 0;
        let plain = queue(&[]);
        assert_eq!(of(Limit::for_consumer(&cfg, &plain, None)), None);
        assert_eq!(of(Limit::for_get(&cfg, &plain)), None);
        assert_eq!(
            of(Limit::for_consumer(&cfg, &plain, Some(0))),
            Some((0, CloseChannel))
        );
        cfg.consumer_timeout = 1000;
        assert_eq!(
            of(Limit::for_consumer(&cfg, &plain, None)),
            Some((1000, CloseChannel))
        );
        let gentle = queue(&[
            ("x-consumer-timeout", AMQPValue::LongInt(50)),
            (
                "x-consumer-timeout-action",
                AMQPValue::LongString("cancel-consumer".into()),
            ),
        ]);
        assert_eq!(
            of(Limit::for_consumer(&cfg, &gentle, None)),
            Some((50, CancelConsumer))
        );
        assert_eq!(
            of(Limit::for_consumer(&cfg, &gentle, Some(7))),
            Some((7, CancelConsumer))
        );
        assert_eq!(of(Limit::for_get(&cfg, &gentle)), Some((50, CloseChannel)));
        cfg.consumer_timeout_action = "cancel-consumer".into();
        assert_eq!(
            of(Limit::for_consumer(&cfg, &plain, None)),
            Some((1000, CancelConsumer))
        );
        // A huge timeout is a far deadline (or none beyond the clock's range), not a panic.
        let huge = Limit {
            ms: u64::MAX,
            action: CloseChannel,
        };
        let now = Instant::now();
        assert!(huge.deadline(now).is_none_or(|d| d.at > now));
    }
}
