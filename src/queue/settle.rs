//! What happens to deliveries after they leave the queue: acks, rejections, requeues (with the
//! delivery counts and limit of quorum queues, and of any queue with `x-delivery-limit`), and
//! basic.get.
//!
//! As RabbitMQ 4.3: every return counts in `x-acquired-count`; a failed delivery (basic.reject
//! with requeue, or the channel or connection closing with the delivery unsettled) also counts
//! in `x-delivery-count`, and a message whose failed deliveries exceed the limit dies with
//! reason `delivery_limit`. basic.nack with requeue and basic.recover are plain returns. Each
//! header is present only once its count is above 0.

use super::dead_letter::Reason;
use super::features::{QUORUM_DEFAULT_PRIORITY, RETURNS_LANE};
use super::{ConsumerKey, Entry, Queue, QueueKind};
use amq_protocol::types::{AMQPValue, FieldTable};
use std::sync::Arc;

/// How unsettled deliveries came back to their queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// basic.reject with requeue, or the channel or connection closed: a failed delivery.
    Failed,
    /// basic.nack with requeue, basic.recover.
    Released,
    /// Never written to the client (its consumer went away in the meantime).
    Undelivered,
}

impl Queue {
    /// `count` deliveries to `consumer` (None for basic.get) were acked or rejected without
    /// requeue: give back credit and dispatch.
    /// With `rejected`, they were rejected or nacked without requeue: they die (and go to the
    /// dead-letter exchange, if the queue has one).
    pub fn settle(
        self: &Arc<Self>,
        consumer: Option<&ConsumerKey>,
        entries: &[Entry],
        rejected: bool,
    ) {
        self.forget(entries.iter().map(Entry::gone));
        let count = entries.len();
        let mut st = self.lock();
        if rejected {
            for e in entries {
                self.died(&mut st, e.msg.clone(), Reason::Rejected);
            }
        }
        st.unacked = st.unacked.saturating_sub(count);
        let bytes: u64 = entries.iter().map(|e| e.msg.size() as u64).sum();
        st.unacked_bytes = st.unacked_bytes.saturating_sub(bytes);
        if let Some(key) = consumer {
            if let Some(c) = st.consumers.iter_mut().find(|c| &c.key == key) {
                c.return_credit(count as u32);
            }
        }
        self.dispatch(&mut st);
    }

    /// Put unsettled deliveries back, marked redelivered: in their original places (a quorum
    /// queue puts them ahead of everything, or at the back without a delivery limit).
    pub fn requeue(
        self: &Arc<Self>,
        consumer: Option<&ConsumerKey>,
        mut entries: Vec<Entry>,
        how: Returned,
    ) {
        if self.is_deleted() {
            return;
        }
        let mut st = self.lock();
        let count = entries.len();
        st.unacked = st.unacked.saturating_sub(count);
        let bytes: u64 = entries.iter().map(|e| e.msg.size() as u64).sum();
        st.unacked_bytes = st.unacked_bytes.saturating_sub(bytes);
        if let Some(key) = consumer {
            if let Some(c) = st.consumers.iter_mut().find(|c| &c.key == key) {
                c.return_credit(count as u32);
            }
        }
        entries.sort_by_key(|e| e.id);
        let limit = st.limits.delivery_limit;
        for mut e in entries {
            if how != Returned::Undelivered {
                e.acquired = e.acquired.saturating_add(1);
            }
            if how == Returned::Failed {
                e.failed = e.failed.saturating_add(1);
            }
            if self.features.counting && limit.is_some_and(|l| u32::from(e.failed) > l) {
                self.forget([e.gone()]);
                self.died(&mut st, e.msg, Reason::DeliveryLimit);
                continue;
            }
            e.redelivered = true;
            e.shown = None;
            match self.features.kind {
                QueueKind::Classic => st.ready.insert_sorted(e),
                QueueKind::Quorum => {
                    e.lane = if limit.is_some() {
                        RETURNS_LANE
                    } else {
                        QUORUM_DEFAULT_PRIORITY
                    };
                    st.ready.push_back_held(e);
                }
            }
        }
        self.dispatch(&mut st);
    }

    /// Credit on a shared (global) channel limit came back, or a consumer took over: try
    /// again.
    pub fn kick(self: &Arc<Self>) {
        let mut st = self.lock();
        self.dispatch(&mut st);
    }

    /// basic.get: the head message and how many remain.
    pub fn get(&self, no_ack: bool) -> Option<(Entry, u32)> {
        let mut st = self.lock();
        self.touch_locked(&mut st);
        self.drop_expired(&mut st);
        let mut e = self.pop_live(&mut st, &mut None)?;
        self.mark_delivered(&e);
        self.decorate(&mut e);
        if no_ack {
            self.forget([e.gone()]);
        } else {
            st.unacked += 1;
            st.unacked_bytes += e.msg.size() as u64;
        }
        Some((e, st.ready.len() as u32))
    }

    /// Add the redelivery headers a delivery carries on a queue that counts them.
    pub(super) fn decorate(&self, e: &mut Entry) {
        if !self.features.counting || e.acquired == 0 {
            return;
        }
        let mut extra = vec![("x-acquired-count", i64::from(e.acquired))];
        if e.failed > 0 {
            extra.push(("x-delivery-count", i64::from(e.failed)));
        }
        e.shown = Some(with_headers(&e.msg, &extra));
    }
}

/// The message with these long-integer headers set (replacing any of the same name).
fn with_headers(
    msg: &crate::message::Message,
    extra: &[(&str, i64)],
) -> Arc<crate::message::Message> {
    let mut headers = FieldTable::default();
    if let Some(h) = msg.properties.headers() {
        for (k, v) in h.inner() {
            if !extra.iter().any(|(name, _)| k.as_str() == *name) {
                headers.insert(k.clone(), v.clone());
            }
        }
    }
    for (name, value) in extra {
        headers.insert((*name).into(), AMQPValue::LongLongInt(*value));
    }
    crate::message::Message::with_properties(
        msg.exchange.clone(),
        msg.routing_key.clone(),
        msg.properties.clone().with_headers(headers),
        msg.body.clone(),
    )
}
