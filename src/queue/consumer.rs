//! A consumer as its queue sees it: where to send deliveries and how much credit it has.

use crate::connection::ConnEvent;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Deliveries a channel may have in its connection's event queue before its consumers wait.
pub const IN_FLIGHT_MAX: u32 = 2048;

/// Identifies a consumer across the broker: tags are unique per channel only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerKey {
    pub conn: u64,
    pub channel: u16,
    pub tag: Arc<str>,
}

/// The channel-wide prefetch (`basic.qos` with `global = true`, RabbitMQ 3.x semantics),
/// shared by every consumer of the channel across all queues.
#[derive(Debug, Default)]
pub struct ChannelLimit {
    /// 0 = no channel-wide limit.
    pub prefetch: AtomicU32,
    /// Unacked deliveries on the channel counted against `prefetch`.
    pub unacked: AtomicU32,
}

impl ChannelLimit {
    /// The channel settled `n` consumer deliveries.
    pub fn release(&self, n: u32) {
        let _ = self
            .unacked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_sub(n))
            });
    }

    fn has_room(&self) -> bool {
        let p = self.prefetch.load(Ordering::Acquire);
        p == 0 || self.unacked.load(Ordering::Acquire) < p
    }
}

/// A consumer attached to a queue.
#[derive(Debug)]
pub struct Consumer {
    pub key: ConsumerKey,
    /// The consumer's connection task.
    pub tx: UnboundedSender<ConnEvent>,
    pub no_ack: bool,
    pub exclusive: bool,
    /// `x-priority`: higher-priority consumers with credit are served first.
    pub priority: i32,
    /// Per-consumer prefetch count (0 = unlimited), fixed at basic.consume.
    pub prefetch: u32,
    /// Deliveries not yet settled, counted against `prefetch`.
    pub unacked: u32,
    pub channel_limit: Arc<ChannelLimit>,
    /// Deliveries sent to the connection task and not yet written by it. Capped so that a
    /// connection that cannot keep up (a slow no-ack consumer) stops receiving instead of
    /// piling messages into its event queue; the connection kicks the queue when it drains.
    pub in_flight: Arc<AtomicU32>,
    pub arguments: amq_protocol::types::FieldTable,
}

impl Consumer {
    pub(super) fn has_credit(&self) -> bool {
        if self.in_flight.load(Ordering::Acquire) >= IN_FLIGHT_MAX {
            return false;
        }
        if self.no_ack {
            return true;
        }
        (self.prefetch == 0 || self.unacked < self.prefetch) && self.channel_limit.has_room()
    }

    pub(super) fn sent(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn take_credit(&mut self) {
        self.unacked += 1;
        self.channel_limit.unacked.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn return_credit(&mut self, n: u32) {
        // The channel-wide count is given back by the channel itself, which settles
        // deliveries even after their consumer is gone.
        self.unacked = self.unacked.saturating_sub(n);
    }
}
