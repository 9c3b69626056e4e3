//! Dead-lettering as RabbitMQ does it: a message rejected without requeue, expired, or pushed
//! out by a length limit is republished to the queue's dead-letter exchange with an `x-death`
//! history.
//!
//! The history: `x-death` is an array of tables, most recent first, one per (queue, reason)
//! with keys `count` (long), `exchange`, `queue`, `reason`, `routing-keys` (array),
//! `time` (timestamp) and, when the message had one, `original-expiration` (its `expiration`
//! property, which is removed). A death from a queue and reason already in the history
//! increments that entry's count and moves it to the front. `x-first-death-{queue,reason,
//! exchange}` are set once; `x-last-death-*` (RabbitMQ 3.13 and later) every time. The
//! republished message keeps its routing keys (its routing key and `CC`), unless the queue
//! has `x-dead-letter-routing-key`, which replaces them (and drops `CC`).

use crate::message::Message;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};
use std::sync::Arc;

/// Why a message died. The discriminants index per-reason counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Rejected = 0,
    Expired,
    Maxlen,
    DeliveryLimit,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
            Reason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// Where a queue sends its dead messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub exchange: String,
    pub routing_key: Option<String>,
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

fn value_text(v: Option<&AMQPValue>) -> Option<String> {
    v.and_then(crate::field::as_text)
}

/// The routing keys a message was published with: its key and those of its `CC` header.
fn routing_keys(msg: &Message) -> Vec<String> {
    let mut keys = vec![msg.routing_key.clone()];
    keys.extend(crate::field::string_array(
        msg.properties.headers().as_ref(),
        "CC",
    ));
    keys
}

/// The message as it is republished to `target` after dying in `queue`, and the routing keys
/// to route it with.
pub fn dead_message(
    msg: &Message,
    queue: &str,
    reason: Reason,
    target: &Target,
    now_secs: u64,
) -> (Arc<Message>, Vec<String>) {
    let keys = routing_keys(msg);
    let old = msg.properties.headers().clone().unwrap_or_default();
    let mut entry = FieldTable::default();
    entry.insert("count".into(), AMQPValue::LongLongInt(1));
    entry.insert("exchange".into(), text(&msg.exchange));
    entry.insert("queue".into(), text(queue));
    entry.insert("reason".into(), text(reason.as_str()));
    entry.insert(
        "routing-keys".into(),
        AMQPValue::FieldArray(FieldArray::from(
            keys.iter().map(|k| text(k)).collect::<Vec<_>>(),
        )),
    );
    entry.insert("time".into(), AMQPValue::Timestamp(now_secs));
    if let Some(exp) = msg.properties.expiration() {
        entry.insert("original-expiration".into(), text(exp.as_str()));
    }
    // The history: a matching (queue, reason) entry counts up and moves to the front.
    let mut deaths: Vec<AMQPValue> = Vec::new();
    if let Some(AMQPValue::FieldArray(a)) = old.inner().get("x-death") {
        for d in a.as_slice() {
            if let AMQPValue::FieldTable(t) = d {
                let same = value_text(t.inner().get("queue")).as_deref() == Some(queue)
                    && value_text(t.inner().get("reason")).as_deref() == Some(reason.as_str());
                if same {
                    let count = t.inner().get("count").and_then(crate::field::as_i64);
                    let mut t = t.clone();
                    t.insert(
                        "count".into(),
                        AMQPValue::LongLongInt(count.unwrap_or(0) + 1),
                    );
                    entry = t;
                    continue;
                }
            }
            deaths.push(d.clone());
        }
    }
    deaths.insert(0, AMQPValue::FieldTable(entry));

    let mut headers = FieldTable::default();
    for (k, v) in old.inner() {
        let drop_cc = target.routing_key.is_some() && k.as_str() == "CC";
        if k.as_str() != "x-death" && !drop_cc {
            headers.insert(k.clone(), v.clone());
        }
    }
    headers.insert(
        "x-death".into(),
        AMQPValue::FieldArray(FieldArray::from(deaths)),
    );
    for (what, value) in [
        ("queue", queue),
        ("reason", reason.as_str()),
        ("exchange", msg.exchange.as_str()),
    ] {
        let first = format!("x-first-death-{what}");
        if !headers.contains_key(&first) {
            headers.insert(first.into(), text(value));
        }
        headers.insert(format!("x-last-death-{what}").into(), text(value));
    }
    let mut properties = msg.properties.clone().with_headers(headers);
    if properties.expiration().is_some() {
        // amq-protocol has no way to unset a property but rebuilding the set.
        properties = without_expiration(&properties);
    }
    let route = match &target.routing_key {
        Some(k) => vec![k.clone()],
        None => keys,
    };
    let routing_key = route.first().cloned().unwrap_or_default();
    let dead = Message::with_properties(
        target.exchange.clone(),
        routing_key,
        properties,
        msg.body.clone(),
    );
    (dead, route)
}

fn without_expiration(
    p: &amq_protocol::protocol::basic::AMQPProperties,
) -> amq_protocol::protocol::basic::AMQPProperties {
    let mut out = amq_protocol::protocol::basic::AMQPProperties::default();
    macro_rules! copy {
        ($get:ident, $with:ident) => {
            if let Some(v) = p.$get() {
                out = out.$with(v.clone());
            }
        };
    }
    copy!(content_type, with_content_type);
    copy!(content_encoding, with_content_encoding);
    copy!(headers, with_headers);
    copy!(delivery_mode, with_delivery_mode);
    copy!(priority, with_priority);
    copy!(correlation_id, with_correlation_id);
    copy!(reply_to, with_reply_to);
    copy!(message_id, with_message_id);
    copy!(timestamp, with_timestamp);
    copy!(kind, with_type);
    copy!(user_id, with_user_id);
    copy!(app_id, with_app_id);
    copy!(cluster_id, with_cluster_id);
    out
}

/// Whether republishing `msg` (already carrying its newest death) to `queue` closes a cycle
/// with no rejection in it, which RabbitMQ drops rather than loop forever.
pub fn is_cycle(msg: &Message, queue: &str) -> bool {
    let Some(AMQPValue::FieldArray(deaths)) = msg
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-death"))
    else {
        return false;
    };
    let mut cycle = Vec::new();
    for d in deaths.as_slice() {
        let AMQPValue::FieldTable(t) = d else {
            continue;
        };
        let reason = value_text(t.inner().get("reason"));
        cycle.push(reason);
        if value_text(t.inner().get("queue")).as_deref() == Some(queue) {
            return cycle.iter().all(|r| r.as_deref() != Some("rejected"));
        }
    }
    false
}
