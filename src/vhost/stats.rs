//! What a vhost adds up for the management API: the counters of its closed channels and
//! connections (live ones are summed on demand), queue churn, and lists of its queues and
//! exchanges.

use super::VHost;
use crate::exchange::Exchange;
use crate::queue::Queue;
use crate::stats::{Counter, DeathStats, Gauge, IoStats, MsgStats, SizeHistogram};
use std::sync::Arc;

/// A vhost's statistics.
#[derive(Debug, Default)]
pub struct VhostMetrics {
    /// Counters of channels closed in this vhost.
    pub retired: MsgStats,
    /// Octets of connections closed in this vhost.
    pub retired_recv_oct: Counter,
    pub retired_send_oct: Counter,
    /// Frames of connections closed in this vhost.
    pub retired_recv_cnt: Counter,
    pub retired_send_cnt: Counter,
    /// Counters of deleted queues, by [`QueueKind`](crate::queue::QueueKind) (classic,
    /// quorum), so that the totals Prometheus reports never go down.
    pub retired_queues: [MsgStats; 2],
    pub retired_deaths: [DeathStats; 2],
    /// Sizes of the messages published on closed channels.
    pub retired_sizes: SizeHistogram,
    pub queue_declared: Counter,
    pub queue_created: Counter,
    pub queue_deleted: Counter,
    /// The vhost's totals at the last sample, for their rates.
    pub totals: MsgStats,
    pub recv_oct: Counter,
    pub send_oct: Counter,
    /// Depth rates: messages, ready, unacked.
    pub depth: [Gauge; 3],
}

impl VhostMetrics {
    /// Add the counts another (deleted) vhost kept to these, so that totals over the
    /// broker's lifetime do not go down when a vhost is deleted.
    pub fn absorb(&self, other: &VhostMetrics) {
        self.retired.absorb(&other.retired);
        for (mine, theirs) in [
            (&self.retired_recv_oct, &other.retired_recv_oct),
            (&self.retired_send_oct, &other.retired_send_oct),
            (&self.retired_recv_cnt, &other.retired_recv_cnt),
            (&self.retired_send_cnt, &other.retired_send_cnt),
            (&self.queue_declared, &other.queue_declared),
            (&self.queue_created, &other.queue_created),
            (&self.queue_deleted, &other.queue_deleted),
        ] {
            mine.add(theirs.get());
        }
        for k in 0..2 {
            self.retired_queues[k].absorb(&other.retired_queues[k]);
            self.retired_deaths[k].absorb(&other.retired_deaths[k]);
        }
        self.retired_sizes.absorb(&other.retired_sizes);
    }
}

impl VHost {
    /// A channel of this vhost closed: keep its counts in the vhost's totals.
    pub fn retire_channel(&self, info: &crate::connection::info::ChannelInfo) {
        self.metrics.retired.absorb(&info.stats);
        self.metrics.retired_sizes.absorb(&info.sizes);
    }

    /// A connection of this vhost closed: keep its octet counts.
    pub fn retire_io(&self, io: &IoStats) {
        self.metrics.retired_recv_oct.add(io.recv_oct.get());
        self.metrics.retired_send_oct.add(io.send_oct.get());
        self.metrics.retired_recv_cnt.add(io.recv_cnt.get());
        self.metrics.retired_send_cnt.add(io.send_cnt.get());
    }

    /// A queue of this vhost was deleted: keep its counts.
    pub fn retire_queue(&self, q: &Queue) {
        let kind = q.kind() as usize;
        self.metrics.retired_queues[kind].absorb(&q.stats);
        self.metrics.retired_deaths[kind].absorb(&q.deaths);
    }

    /// The queues, sorted by name.
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        let mut v: Vec<_> = self.queues.iter().map(|e| e.value().clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The exchanges, sorted by name.
    pub fn exchanges(&self) -> Vec<Arc<Exchange>> {
        let mut v: Vec<_> = self.exchanges.iter().map(|e| e.value().clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// (messages ready, unacked) over all queues.
    pub fn depth(&self) -> (u64, u64) {
        self.queues.iter().fold((0, 0), |(r, u), q| {
            let (ready, unacked) = q.value().depth();
            (r + ready as u64, u + unacked as u64)
        })
    }
}
