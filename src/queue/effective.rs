//! The limits a queue enforces: its own arguments combined with the policy that applies to it,
//! as RabbitMQ combines them. For `message-ttl`, `expires`, `max-length`, `max-length-bytes`
//! and `delivery-limit` the smaller of the two wins; for `overflow`, `dead-letter-exchange` and
//! `dead-letter-routing-key` the queue's argument wins. A policy's `delivery-limit` applies to
//! quorum queues only (RabbitMQ's classic queues have none).
//!
//! The effective limits live in the queue's locked state: a policy can change them at any
//! time, and every path that reads them holds the lock already.

use super::dead_letter::Target;
use super::features::QUORUM_DELIVERY_LIMIT;
use super::{Queue, QueueKind};
use crate::policy::Policy;
use amq_protocol::types::FieldTable;
use std::sync::Arc;
use std::time::Duration;

/// `x-overflow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Overflow {
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

impl Overflow {
    fn parse(s: &str) -> Option<Overflow> {
        match s {
            "drop-head" => Some(Overflow::DropHead),
            "reject-publish" => Some(Overflow::RejectPublish),
            "reject-publish-dlx" => Some(Overflow::RejectPublishDlx),
            _ => None,
        }
    }
}

/// What the queue's own arguments say (validated at declaration).
#[derive(Debug, Clone, Default)]
pub(super) struct Own {
    message_ttl: Option<u64>,
    /// `x-expires` in ms (> 0).
    expires: Option<u64>,
    max_length: Option<u64>,
    max_bytes: Option<u64>,
    overflow: Option<Overflow>,
    dead_letter_exchange: Option<String>,
    dead_letter_routing_key: Option<String>,
    /// As given: a negative limit means none (RabbitMQ 4.x).
    delivery_limit: Option<i64>,
}

impl Own {
    pub(super) fn from_args(args: &FieldTable) -> Own {
        let arg = |k: &str| args.inner().get(k);
        let int = |k: &str| arg(k).and_then(crate::field::as_i64);
        let uint = |k: &str| int(k).and_then(|v| u64::try_from(v).ok());
        let text = |k: &str| arg(k).and_then(crate::field::as_text);
        Own {
            message_ttl: uint("x-message-ttl"),
            expires: uint("x-expires").filter(|ms| *ms > 0),
            max_length: uint("x-max-length"),
            max_bytes: uint("x-max-length-bytes"),
            overflow: text("x-overflow").as_deref().and_then(Overflow::parse),
            dead_letter_exchange: text("x-dead-letter-exchange"),
            dead_letter_routing_key: text("x-dead-letter-routing-key"),
            delivery_limit: int("x-delivery-limit"),
        }
    }
}

/// The limits in force.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Limits {
    /// Message TTL in ms.
    pub message_ttl: Option<u64>,
    pub max_length: Option<u64>,
    pub max_bytes: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter: Option<Target>,
    /// Failed deliveries a message may have before it dies (None: no limit).
    pub delivery_limit: Option<u32>,
    /// Deleted after being unused this long.
    pub expires: Option<Duration>,
}

/// The smaller of two optional limits.
fn smaller(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Limits {
    pub(super) fn resolve(own: &Own, kind: QueueKind, policy: Option<&Policy>) -> Limits {
        let uint = |k: &str| policy.and_then(|p| p.uint(k));
        let text = |k: &str| policy.and_then(|p| p.text(k)).map(str::to_string);
        let overflow = own
            .overflow
            .or_else(|| text("overflow").as_deref().and_then(Overflow::parse));
        let overflow = match (overflow, kind) {
            // Quorum queues do not have it and fall back to the default (RabbitMQ logs a
            // warning).
            (Some(Overflow::RejectPublishDlx), QueueKind::Quorum) | (None, _) => Overflow::DropHead,
            (Some(o), _) => o,
        };
        let exchange = own
            .dead_letter_exchange
            .clone()
            .or_else(|| text("dead-letter-exchange"));
        let dead_letter = exchange.map(|exchange| Target {
            exchange,
            routing_key: own
                .dead_letter_routing_key
                .clone()
                .or_else(|| text("dead-letter-routing-key")),
        });
        let from_policy = match kind {
            QueueKind::Quorum => uint("delivery-limit"),
            QueueKind::Classic => None,
        };
        // A negative argument (no limit) gives way to the policy's limit.
        let delivery_limit = match (own.delivery_limit, from_policy) {
            (Some(a), Some(p)) if a >= 0 => Some((a as u64).min(p)),
            (_, Some(p)) => Some(p),
            (Some(a), None) => u64::try_from(a).ok(),
            (None, None) if kind == QueueKind::Quorum => Some(u64::from(QUORUM_DELIVERY_LIMIT)),
            (None, None) => None,
        };
        Limits {
            message_ttl: smaller(own.message_ttl, uint("message-ttl")),
            max_length: smaller(own.max_length, uint("max-length")),
            max_bytes: smaller(own.max_bytes, uint("max-length-bytes")),
            overflow,
            dead_letter,
            delivery_limit: delivery_limit.and_then(|n| u32::try_from(n).ok()),
            expires: smaller(own.expires, uint("expires").filter(|ms| *ms > 0))
                .map(Duration::from_millis),
        }
    }
}

impl Queue {
    /// Apply `policy` (or none): the limits change at once. A lower length limit drops the
    /// excess head messages now (with `drop-head`); a new TTL applies to messages published
    /// from now on (those already in the queue keep their expiry, as in RabbitMQ); a new or
    /// changed queue TTL (`expires`) starts counting now.
    pub fn apply_policy(&self, policy: Option<Arc<Policy>>) {
        let limits = Limits::resolve(&self.own, self.features.kind, policy.as_deref());
        let mut st = self.lock();
        st.policy = policy;
        if st.limits == limits {
            return;
        }
        let old = std::mem::replace(&mut st.limits, limits);
        if old.expires != st.limits.expires {
            st.unused_until = None;
            // A wake already pending may be later than the new expiry: ask for another.
            st.unused_wake = None;
            self.touch_locked(&mut st);
        }
        // A reject-publish queue over a lowered limit keeps its messages, as RabbitMQ's does.
        if st.limits.overflow == Overflow::DropHead {
            self.enforce_limits(&mut st);
        }
    }

    /// The policy applied to this queue, if any.
    pub fn policy(&self) -> Option<Arc<Policy>> {
        self.lock().policy.clone()
    }

    /// What the management API shows as `effective_policy_definition`: the applied policy's
    /// definition (`{}` without one).
    pub fn effective_policy_definition(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.policy()
                .map(|p| p.definition.clone())
                .unwrap_or_default(),
        )
    }
}
