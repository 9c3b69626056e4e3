//! The basic class: publish, consume, cancel, get, qos, ack, nack, reject, recover.

use super::assembler::Complete;
use super::timeout::Limit;
use super::{generated_name, Channel, ChannelConsumer, Ctx, Unacked};
use crate::access::{Perm, Resource};
use crate::error::{AmqpError, AmqpResult};
use crate::message::Message;
use crate::queue::{AfterCancel, Consumer, QueueKind, Returned};
use crate::vhost::{is_reply_name, REPLY_QUEUE};
use amq_protocol::protocol::{basic as b, AMQPClass};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Channel {
    pub(super) fn on_basic(&mut self, ctx: &mut Ctx, m: b::AMQPMethod) -> AmqpResult<()> {
        match m {
            b::AMQPMethod::Publish(p) => {
                if p.immediate {
                    return Err(AmqpError::not_implemented("immediate=true"));
                }
                self.assembler.start(p);
                Ok(())
            }
            b::AMQPMethod::Qos(q) => self.qos(ctx, q),
            b::AMQPMethod::Consume(c) => self.consume(ctx, c),
            b::AMQPMethod::Cancel(c) => self.cancel(ctx, c),
            b::AMQPMethod::Get(g) => self.get(ctx, g),
            b::AMQPMethod::Ack(a) => self.settle(ctx, a.delivery_tag, a.multiple, Settle::Ack),
            b::AMQPMethod::Nack(n) => {
                // A nack is a plain return; a reject, a failed delivery (RabbitMQ 4.3).
                let how = if n.requeue {
                    Settle::Release
                } else {
                    Settle::Drop
                };
                self.settle(ctx, n.delivery_tag, n.multiple, how)
            }
            b::AMQPMethod::Reject(r) => {
                let how = if r.requeue {
                    Settle::Requeue
                } else {
                    Settle::Drop
                };
                self.settle(ctx, r.delivery_tag, false, how)
            }
            b::AMQPMethod::Recover(r) => {
                self.recover(ctx, r.requeue)?;
                ctx.out.method(
                    self.id,
                    AMQPClass::Basic(b::AMQPMethod::RecoverOk(b::RecoverOk {})),
                );
                Ok(())
            }
            b::AMQPMethod::RecoverAsync(r) => self.recover(ctx, r.requeue),
            other => Err(AmqpError::command_invalid(format!(
                "unexpected basic method {other:?}"
            ))),
        }
    }

    /// A publish with its content: checks, then route now or buffer for tx.commit.
    pub(super) fn publish(&mut self, ctx: &mut Ctx, c: Complete) -> AmqpResult<()> {
        let (class_id, method_id) = (60, 40);
        // Write permission on the exchange; the last one allowed is remembered by the channel
        // (RabbitMQ caches permission checks per channel too).
        if self.write_allowed.as_deref() != Some(c.publish.exchange.as_str()) {
            ctx.permit(Perm::Write, Resource::Exchange, c.publish.exchange.as_str())
                .map_err(|e| e.on(class_id, method_id))?;
            self.write_allowed = Some(c.publish.exchange.to_string());
        }
        let x = ctx
            .vhost
            .exchange_or_404(c.publish.exchange.as_str())
            .map_err(|e| e.on(class_id, method_id))?;
        if x.internal {
            return Err(AmqpError::access_refused(format!(
                "cannot publish to internal exchange '{}' in vhost '{}'",
                x.name, ctx.vhost.name
            ))
            .on(class_id, method_id));
        }
        let rewritten = self
            .rewrite_reply_to(&c.header.properties)
            .map_err(|e| e.on(class_id, method_id))?;
        if let Some(uid) = c.header.properties.user_id() {
            if uid.as_str() != ctx.user {
                return Err(AmqpError::precondition(format!(
                    "user_id property set to '{}' but authenticated user was '{}'",
                    uid, ctx.user
                ))
                .on(class_id, method_id));
            }
        }
        if let Some(exp) = c.header.properties.expiration() {
            if let Err(why) = check_expiration(exp.as_str()) {
                return Err(
                    AmqpError::precondition(format!("invalid expiration '{exp}': {why}"))
                        .on(class_id, method_id),
                );
            }
        }
        let mandatory = c.publish.mandatory;
        self.info.sizes.observe(c.body.len());
        let msg = match rewritten {
            Some(properties) => Message::with_properties(
                c.publish.exchange.into(),
                c.publish.routing_key.into(),
                properties,
                c.body,
            ),
            None => Message::new(
                c.publish.exchange.into(),
                c.publish.routing_key.into(),
                c.header.properties,
                c.header.raw_properties,
                c.body,
            ),
        };
        if let Some(tx) = &mut self.tx {
            tx.publishes.push((x, msg, mandatory));
            self.info
                .uncommitted
                .store(tx.publishes.len() as u32, Ordering::Relaxed);
            return Ok(());
        }
        self.info.stats.publish.inc();
        if self.confirm.is_some() {
            self.info.stats.received_confirm.add_local(1);
        }
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
        let seq = self.confirm.as_mut().map(|c| c.published());
        self.counts.published_to(&self.info, &x, unroutable, seq);
        if let (Some(c), Some(seq)) = (&mut self.confirm, seq) {
            if routed.rejected {
                c.refuse(seq);
            }
            if let Some(ticket) = routed.ticket {
                c.wait_for_disk(seq);
                ctx.vhost
                    .store()
                    .syncer()
                    .wait(ticket, ctx.events.clone(), self.id, seq);
            }
        }
        Ok(())
    }

    pub(super) fn basic_return(&mut self, ctx: &mut Ctx, msg: &Message) {
        ctx.out.method(
            self.id,
            AMQPClass::Basic(b::AMQPMethod::Return(b::Return {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: msg.exchange.as_str().into(),
                routing_key: msg.routing_key.as_str().into(),
            })),
        );
        ctx.out
            .content(self.id, &msg.raw_properties, &msg.body, ctx.frame_max);
    }

    fn qos(&mut self, ctx: &mut Ctx, q: b::Qos) -> AmqpResult<()> {
        // prefetch_size != 0 is refused by the codec (amq-protocol drops the field).
        if q.global {
            self.limit
                .prefetch
                .store(q.prefetch_count as u32, Ordering::Release);
            for c in self.consumers.values() {
                c.queue.kick();
            }
        } else {
            self.consumer_prefetch = q.prefetch_count as u32;
        }
        ctx.out
            .method(self.id, AMQPClass::Basic(b::AMQPMethod::QosOk(b::QosOk {})));
        Ok(())
    }

    fn consume(&mut self, ctx: &mut Ctx, c: b::Consume) -> AmqpResult<()> {
        if c.queue.as_str() == REPLY_QUEUE {
            return self.consume_replies(ctx, &c);
        }
        let name = self.queue_name(c.queue.as_str())?;
        if is_reply_name(&name) {
            return Err(self.reply_name_refused(ctx, &name, false));
        }
        ctx.permit(Perm::Read, Resource::Queue, &name)?;
        let q = ctx.vhost.queue_for(&name, ctx.conn_id)?;
        if q.kind() == QueueKind::Quorum && self.limit.prefetch.load(Ordering::Acquire) > 0 {
            return Err(AmqpError::not_implemented(format!(
                "queue '{name}' in vhost '{}' does not support global qos",
                ctx.vhost.name
            )));
        }
        let tag: Arc<str> = if c.consumer_tag.as_str().is_empty() {
            generated_name("amq.ctag-").into()
        } else {
            c.consumer_tag.as_str().into()
        };
        if self.consumers.contains_key(&tag) || self.reply.as_ref().is_some_and(|r| r.tag == tag) {
            return Err(AmqpError::not_allowed(format!(
                "attempt to reuse consumer tag '{tag}'"
            )));
        }
        let priority = match c.arguments.inner().get("x-priority") {
            None => 0,
            Some(v) => crate::field::as_i64(v)
                .ok_or_else(|| {
                    AmqpError::precondition(format!(
                        "invalid arg 'x-priority' for queue '{name}' in vhost '{}'",
                        ctx.vhost.name
                    ))
                })?
                // Priorities beyond the 32-bit range order as its ends (a cast would wrap 2^32
                // to 0).
                .clamp(i32::MIN.into(), i32::MAX.into()) as i32,
        };
        let own_timeout =
            crate::vhost::validate_consume_args(&c.arguments, &name, &ctx.vhost.name)?;
        let timeout = Limit::for_consumer(&ctx.broker.config.amqp, &q, own_timeout);
        let consumer = Consumer {
            key: self.key(ctx.conn_id, &tag),
            tx: ctx.events.clone(),
            no_ack: c.no_ack,
            exclusive: c.exclusive,
            priority,
            prefetch: self.consumer_prefetch,
            unacked: 0,
            channel_limit: self.limit.clone(),
            in_flight: self.in_flight.clone(),
            arguments: c.arguments,
        };
        q.add_consumer(consumer)?;
        let counts = self.counts.queue(&self.info, &q);
        self.consumers.insert(
            tag.clone(),
            ChannelConsumer {
                queue: q,
                timeout,
                counts,
            },
        );
        // consume-ok still goes out before any delivery: deliveries reach this connection
        // through its event queue, which is read only after this frame is buffered.
        if !c.nowait {
            ctx.out.method(
                self.id,
                AMQPClass::Basic(b::AMQPMethod::ConsumeOk(b::ConsumeOk {
                    consumer_tag: tag.as_ref().into(),
                })),
            );
        }
        Ok(())
    }

    fn cancel(&mut self, ctx: &mut Ctx, c: b::Cancel) -> AmqpResult<()> {
        let tag: Arc<str> = c.consumer_tag.as_str().into();
        if self.cancel_replies(ctx.vhost, &tag) {
            // The direct reply-to consumer: its name no longer receives.
        } else if let Some(cc) = self.consumers.remove(&tag) {
            let key = self.key(ctx.conn_id, &tag);
            if cc.queue.remove_consumer(&key, true) == AfterCancel::AutoDelete {
                let (_, others) = ctx.vhost.delete_queue(&cc.queue);
                super::notify_cancelled(others);
            }
        }
        if !c.nowait {
            ctx.out.method(
                self.id,
                AMQPClass::Basic(b::AMQPMethod::CancelOk(b::CancelOk {
                    consumer_tag: c.consumer_tag,
                })),
            );
        }
        Ok(())
    }

    fn get(&mut self, ctx: &mut Ctx, g: b::Get) -> AmqpResult<()> {
        let name = self.queue_name(g.queue.as_str())?;
        if is_reply_name(&name) {
            return Err(self.reply_name_refused(ctx, &name, true));
        }
        ctx.permit(Perm::Read, Resource::Queue, &name)?;
        let q = ctx.vhost.queue_for(&name, ctx.conn_id)?;
        if q.features.single_active && q.kind() == QueueKind::Quorum {
            return Err(AmqpError::resource_locked(format!(
                "cannot obtain access to locked queue '{name}' in vhost '{}'. basic.get operations are not supported by <<\"quorum\">> queues with single active consumer",
                ctx.vhost.name
            )));
        }
        let per_queue = self.counts.queue(&self.info, &q);
        let Some((entry, remaining)) = q.get(g.no_ack) else {
            self.info.stats.get_empty.inc();
            q.stats.get_empty.inc();
            per_queue.get_empty.inc();
            ctx.out.method(
                self.id,
                AMQPClass::Basic(b::AMQPMethod::GetEmpty(b::GetEmpty {})),
            );
            return Ok(());
        };
        let tag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        for stats in [&self.info.stats, &q.stats, &per_queue] {
            if g.no_ack {
                stats.get_no_ack.inc();
            } else {
                stats.get.inc();
            }
            if entry.redelivered {
                stats.redeliver.inc();
            }
        }
        let m = entry.wire().clone();
        ctx.out.method(
            self.id,
            AMQPClass::Basic(b::AMQPMethod::GetOk(b::GetOk {
                delivery_tag: tag,
                redelivered: entry.redelivered,
                exchange: m.exchange.as_str().into(),
                routing_key: m.routing_key.as_str().into(),
                message_count: remaining,
            })),
        );
        ctx.out
            .content(self.id, &m.raw_properties, &m.body, ctx.frame_max);
        if !g.no_ack {
            let deadline = Limit::for_get(&ctx.broker.config.amqp, &q)
                .and_then(|l| l.deadline(std::time::Instant::now()));
            self.track(Unacked {
                tag,
                queue: q,
                entry,
                consumer: None,
                deadline,
            });
        }
        Ok(())
    }

    /// Take the deliveries an ack/nack/reject names, or 406 if the tag is unknown.
    fn take_unacked(&mut self, tag: u64, multiple: bool) -> AmqpResult<Vec<Unacked>> {
        let unknown = || AmqpError::precondition(format!("unknown delivery tag {tag}"));
        let stale = self.take_stale(tag, multiple);
        if multiple {
            let upto = if tag == 0 { u64::MAX } else { tag };
            let keys: Vec<u64> = self.unacked.range(..=upto).map(|(k, _)| *k).collect();
            if keys.is_empty() && tag != 0 && !stale {
                return Err(unknown());
            }
            Ok(keys
                .into_iter()
                .filter_map(|k| self.unacked.remove(&k))
                .collect())
        } else if stale {
            Ok(Vec::new())
        } else {
            self.unacked
                .remove(&tag)
                .map(|u| vec![u])
                .ok_or_else(unknown)
        }
    }

    fn settle(&mut self, ctx: &mut Ctx, tag: u64, multiple: bool, how: Settle) -> AmqpResult<()> {
        if self.tx.is_some() {
            // Validate now, apply at commit.
            let items = self.take_unacked(tag, multiple)?;
            if let Some(tx) = &mut self.tx {
                tx.settles.push((items, how));
            }
            return Ok(());
        }
        let items = self.take_unacked(tag, multiple)?;
        self.apply_settle(ctx.conn_id, items, how);
        Ok(())
    }

    pub(super) fn apply_settle(&mut self, conn: u64, items: Vec<Unacked>, how: Settle) {
        let returned = match how {
            Settle::Requeue => Some(Returned::Failed),
            Settle::Release => Some(Returned::Released),
            Settle::Ack | Settle::Drop => None,
        };
        if let Some(returned) = returned {
            self.requeue_all(conn, items.into_iter(), returned);
            return;
        }
        let (groups, from_consumers) = super::group(items.into_iter());
        self.limit.release(from_consumers);
        for (q, tag, n) in &groups {
            if how == Settle::Ack {
                self.info.stats.ack.add(n.len() as u64);
                q.stats.ack.add(n.len() as u64);
                self.counts.acked(&self.info, q, n.len() as u64);
            }
            let key = tag.as_ref().map(|t| self.key(conn, t));
            q.settle(key.as_ref(), n, how == Settle::Drop);
        }
        if from_consumers > 0 && self.limit.prefetch.load(Ordering::Acquire) > 0 {
            // A shared channel limit may have blocked other queues' consumers.
            for c in self.consumers.values() {
                if !groups.iter().any(|(q, _, _)| Arc::ptr_eq(q, &c.queue)) {
                    c.queue.kick();
                }
            }
        }
    }

    fn recover(&mut self, ctx: &mut Ctx, requeue: bool) -> AmqpResult<()> {
        if !requeue {
            return Err(AmqpError::not_implemented("requeue=false"));
        }
        let unacked = std::mem::take(&mut self.unacked);
        self.requeue_all(ctx.conn_id, unacked.into_values(), Returned::Released);
        Ok(())
    }

    /// "" names the last queue declared on this channel.
    pub(super) fn queue_name(&self, name: &str) -> AmqpResult<String> {
        if !name.is_empty() {
            return Ok(name.to_string());
        }
        self.last_queue
            .clone()
            .ok_or_else(|| AmqpError::not_found("no previously declared queue"))
    }
}

/// What an ack, nack or reject does with the deliveries it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settle {
    Ack,
    /// basic.reject with requeue.
    Requeue,
    /// basic.nack with requeue.
    Release,
    Drop,
}

/// The `expiration` property as RabbitMQ reads it (an integer prefix, then range checks), or
/// the reason it gives for refusing it.
fn check_expiration(text: &str) -> Result<u64, String> {
    let digits_from = usize::from(text.starts_with(['+', '-']));
    let digits = text[digits_from..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if digits == 0 {
        return Err("no_integer".into());
    }
    let (number, rest) = text.split_at(digits_from + digits);
    if !rest.is_empty() {
        return Err(format!("{{leftover_string,\"{rest}\"}}"));
    }
    let negative = number.starts_with('-');
    let magnitude = number[digits_from..].trim_start_matches('0');
    // Beyond 2^32 - 1 ms (RabbitMQ's largest timer).
    let too_large = magnitude.len() > 10 || (magnitude.len() == 10 && magnitude > "4294967295");
    match (negative, too_large) {
        (true, _) if !magnitude.is_empty() => Err(format!("{{value_negative,{number}}}")),
        (false, true) => Err(format!(
            "{{value_too_large,{}}}",
            number.trim_start_matches('+')
        )),
        _ => Ok(magnitude.parse().unwrap_or(0)),
    }
}

#[cfg(test)]
mod expiration_tests {
    use super::check_expiration;

    #[test]
    fn expirations_are_refused_with_rabbitmqs_reasons() {
        assert_eq!(check_expiration("0"), Ok(0));
        assert_eq!(check_expiration("60000"), Ok(60000));
        assert_eq!(check_expiration("4294967295"), Ok(4294967295));
        assert_eq!(check_expiration("-1"), Err("{value_negative,-1}".into()));
        assert_eq!(
            check_expiration("10abc"),
            Err("{leftover_string,\"abc\"}".into())
        );
        assert_eq!(
            check_expiration("1.5"),
            Err("{leftover_string,\".5\"}".into())
        );
        assert_eq!(check_expiration(""), Err("no_integer".into()));
        assert_eq!(check_expiration("abc"), Err("no_integer".into()));
        assert_eq!(
            check_expiration("99999999999999999999"),
            Err("{value_too_large,99999999999999999999}".into())
        );
    }
}
