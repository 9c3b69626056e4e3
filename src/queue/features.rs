//! What a queue's arguments turn on: its type (`x-queue-type`), message priorities
//! (`x-max-priority`), single active consumer, delivery limits and queue TTL (`x-expires`).

use amq_protocol::types::{AMQPValue, FieldTable};
use std::time::Duration;

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
    /// Failed deliveries a message may have before it dies (None: no limit).
    pub delivery_limit: Option<u32>,
    /// Returns are counted and shown in `x-delivery-count` / `x-acquired-count`.
    pub counting: bool,
    pub single_active: bool,
    /// `x-expires`: deleted after being unused this long.
    pub expires: Option<Duration>,
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
        // A negative limit means none, as RabbitMQ 4.x has it.
        let limit = int(args, "x-delivery-limit");
        let delivery_limit = match (kind, limit) {
            (_, Some(n)) => u32::try_from(n).ok(),
            (QueueKind::Quorum, None) => Some(QUORUM_DELIVERY_LIMIT),
            (QueueKind::Classic, None) => None,
        };
        let counting = kind == QueueKind::Quorum || limit.is_some();
        let (max_priority, default_lane, lanes) = match kind {
            QueueKind::Quorum => {
                let returns = usize::from(delivery_limit.is_some());
                (
                    QUORUM_MAX_PRIORITY,
                    QUORUM_DEFAULT_PRIORITY,
                    QUORUM_MAX_PRIORITY as usize + 1 + returns,
                )
            }
            QueueKind::Classic => {
                let max = int(args, "x-max-priority").map_or(0, |p| p.clamp(0, 255) as u8);
                (max, 0, max as usize + 1)
            }
        };
        let single_active = matches!(
            args.inner().get("x-single-active-consumer"),
            Some(AMQPValue::Boolean(true))
        );
        let expires = int(args, "x-expires")
            .and_then(|ms| u64::try_from(ms).ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        Features {
            kind,
            max_priority,
            default_lane,
            lanes,
            delivery_limit,
            counting,
            single_active,
            expires,
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
