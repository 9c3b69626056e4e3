//! What a queue's arguments turn on for good: its type (`x-queue-type`), message priorities
//! (`x-max-priority`), single active consumer, and whether deliveries are counted. (The
//! limits a policy can change, delivery limit and queue TTL among them, are in `effective`.)

use amq_protocol::types::{AMQPValue, FieldTable};

/// `x-queue-type`. The discriminants index per-type counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Classic = 0,
    /// Quorum queue semantics as clients see them (one node: no replication).
    Quorum,
}

impl QueueKind {
    /// RabbitMQ's module name for the type, as it appears in some reply texts.
    pub fn module(self) -> &'static str {
        match self {
            QueueKind::Classic => "rabbit_classic_queue",
            QueueKind::Quorum => "rabbit_quorum_queue",
        }
    }
}

/// Quorum queues: strict priorities 0..=31, 4 when a message has none (RabbitMQ 4.3).
pub const QUORUM_MAX_PRIORITY: u8 = 31;
pub const QUORUM_DEFAULT_PRIORITY: u8 = 4;
/// Quorum queues with a delivery limit: returned messages wait in a lane of their own, ahead
/// of every priority.
pub const RETURNS_LANE: u8 = 32;
/// RabbitMQ 4.x's delivery limit for quorum queues without `x-delivery-limit`.
pub const QUORUM_DELIVERY_LIMIT: u32 = 20;

#[derive(Debug, Clone)]
pub struct Features {
    pub kind: QueueKind,
    /// Highest lane a message can take (0: no priorities).
    pub max_priority: u8,
    /// The lane of a message without a priority.
    pub default_lane: u8,
    /// Lanes in the ready list.
    pub lanes: usize,
    /// Returns are counted and shown in `x-delivery-count` / `x-acquired-count`.
    pub counting: bool,
    pub single_active: bool,
}

fn int(args: &FieldTable, key: &str) -> Option<i64> {
    args.inner().get(key).and_then(crate::field::as_i64)
}

impl Features {
    pub fn from_args(args: &FieldTable) -> Features {
        let kind = match args
            .inner()
            .get("x-queue-type")
            .and_then(crate::field::as_text)
        {
            Some(t) if t == "quorum" => QueueKind::Quorum,
            _ => QueueKind::Classic,
        };
        let counting = kind == QueueKind::Quorum || int(args, "x-delivery-limit").is_some();
        let (max_priority, default_lane, lanes) = match kind {
            // The returns lane is there even without a delivery limit: a policy may set one.
            QueueKind::Quorum => (
                QUORUM_MAX_PRIORITY,
                QUORUM_DEFAULT_PRIORITY,
                QUORUM_MAX_PRIORITY as usize + 2,
            ),
            QueueKind::Classic => {
                let max = int(args, "x-max-priority").map_or(0, |p| p.clamp(0, 255) as u8);
                (max, 0, max as usize + 1)
            }
        };
        let single_active = matches!(
            args.inner().get("x-single-active-consumer"),
            Some(AMQPValue::Boolean(true))
        );
        Features {
            kind,
            max_priority,
            default_lane,
            lanes,
            counting,
            single_active,
        }
    }

    /// The lane a message with this `priority` property waits in.
    pub fn lane(&self, priority: Option<u8>) -> u8 {
        match priority {
            Some(p) => p.min(self.max_priority),
            None => self.default_lane,
        }
    }
}
