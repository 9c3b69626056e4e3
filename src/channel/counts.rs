//! A channel's counters by exchange published to and by queue consumed from (RabbitMQ's
//! `channel_exchange_metrics` and `channel_queue_metrics`, which Prometheus reports per
//! object). The channel finds them without a lock: it remembers the last exchange it
//! published to, and each consumer carries its queue's counters. A lock is taken only when a
//! channel meets an exchange or queue for the first time, to publish the new counters in its
//! [`ChannelInfo`]. Only the channel's task writes them (`Counter::add_local`).
//!
//! Counters of deleted queues and exchanges are dropped (as RabbitMQ drops their rows), so
//! that a long-lived channel that uses a new reply queue for every request does not grow.

use crate::connection::info::{ChannelInfo, ObjectCounters};
use crate::exchange::Exchange;
use crate::queue::Queue;
use crate::stats::MsgStats;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};

#[derive(Debug, Default)]
pub(super) struct ObjectCounts {
    /// The exchange last published to, and its counters.
    last_exchange: Option<(Arc<Exchange>, Arc<MsgStats>)>,
    exchanges: Tracked<Exchange>,
    /// The queue last acked to, and its counters.
    last_queue: Option<(Arc<Queue>, Arc<MsgStats>)>,
    queues: Tracked<Queue>,
    /// In confirm mode: runs of consecutive publishes to the same exchange, by the sequence
    /// number of their last publish, so that confirms (sent in sequence order) are counted
    /// on the exchange of the publish they confirm.
    confirm_runs: VecDeque<(u64, Arc<MsgStats>)>,
}

/// Counters by object name, for objects that may go away.
#[derive(Debug)]
struct Tracked<T> {
    by_name: HashMap<String, (Weak<T>, Arc<MsgStats>)>,
    /// Entries of objects gone are dropped when there are this many.
    prune_at: usize,
}

impl<T> Default for Tracked<T> {
    fn default() -> Self {
        Tracked {
            by_name: HashMap::new(),
            prune_at: PRUNE_MIN,
        }
    }
}

const PRUNE_MIN: usize = 64;

impl<T> Tracked<T> {
    /// The counters of `obj`, named `name`; new ones are listed in `shown`. `alive` says
    /// whether an object still exists (beyond being referenced).
    fn of(
        &mut self,
        shown: &ObjectCounters,
        name: &str,
        obj: &Arc<T>,
        alive: fn(&T) -> bool,
    ) -> Arc<MsgStats> {
        if let Some((known, stats)) = self.by_name.get(name) {
            if std::ptr::eq(known.as_ptr(), Arc::as_ptr(obj)) {
                return stats.clone();
            }
        }
        // A new object, or a new one under the name of a deleted one.
        let replaced = self.by_name.contains_key(name);
        let pruned = self.by_name.len() >= self.prune_at;
        if pruned {
            self.by_name
                .retain(|_, (w, _)| w.upgrade().is_some_and(|o| alive(&o)));
            self.prune_at = (2 * self.by_name.len()).max(PRUNE_MIN);
        }
        let stats = Arc::new(MsgStats::default());
        self.by_name
            .insert(name.to_string(), (Arc::downgrade(obj), stats.clone()));
        let mut list = lock(shown);
        if replaced || pruned {
            *list = self
                .by_name
                .iter()
                .map(|(n, (_, s))| (n.clone(), s.clone()))
                .collect();
        } else {
            list.push((name.to_string(), stats.clone()));
        }
        stats
    }
}

impl ObjectCounts {
    /// Count a publish to `x`: `unroutable` says whether it was returned (`Some(true)`) or
    /// dropped (`Some(false)`); `seq` is its number in confirm mode.
    pub(super) fn published_to(
        &mut self,
        info: &ChannelInfo,
        x: &Arc<Exchange>,
        unroutable: Option<bool>,
        seq: Option<u64>,
    ) {
        if !self
            .last_exchange
            .as_ref()
            .is_some_and(|(last, _)| Arc::ptr_eq(last, x))
        {
            let stats = self.exchanges.of(&info.exchanges, &x.name, x, |_| true);
            self.last_exchange = Some((x.clone(), stats));
        }
        let Some((_, stats)) = &self.last_exchange else {
            return;
        };
        stats.publish.add_local(1);
        match unroutable {
            Some(true) => stats.return_unroutable.add_local(1),
            Some(false) => stats.drop_unroutable.add_local(1),
            None => {}
        }
        if let Some(seq) = seq {
            match self.confirm_runs.back_mut() {
                Some((last, s)) if Arc::ptr_eq(s, stats) => *last = seq,
                _ => self.confirm_runs.push_back((seq, stats.clone())),
            }
        }
    }

    /// The counters of deliveries from, and acks to, `q`.
    pub(super) fn queue(&mut self, info: &ChannelInfo, q: &Arc<Queue>) -> Arc<MsgStats> {
        self.queues
            .of(&info.queues, &q.name, q, |q| !q.is_deleted())
    }

    /// `n` deliveries from `q` were acked.
    pub(super) fn acked(&mut self, info: &ChannelInfo, q: &Arc<Queue>, n: u64) {
        if !self
            .last_queue
            .as_ref()
            .is_some_and(|(last, _)| Arc::ptr_eq(last, q))
        {
            self.last_queue = Some((q.clone(), self.queue(info, q)));
        }
        if let Some((_, stats)) = &self.last_queue {
            stats.ack.add_local(n);
        }
    }

    /// Publishes after `before` up to `after` were confirmed.
    pub(super) fn confirmed(&mut self, mut before: u64, after: u64) {
        while let Some((last, stats)) = self.confirm_runs.front() {
            let upto = (*last).min(after);
            if upto > before {
                stats.confirm.add_local(upto - before);
                before = upto;
            }
            if *last > after {
                break;
            }
            self.confirm_runs.pop_front();
        }
    }

    /// A delivery from the queue counted by `stats` (a consumer's).
    pub(super) fn delivered(stats: &MsgStats, no_ack: bool, redelivered: bool) {
        if no_ack {
            stats.deliver_no_ack.add_local(1);
        } else {
            stats.deliver.add_local(1);
        }
        if redelivered {
            stats.redeliver.add_local(1);
        }
    }

    /// Confirm mode ended (the channel closed).
    pub(super) fn clear_confirms(&mut self) {
        self.confirm_runs.clear();
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirms_are_counted_on_the_exchange_of_the_publish() {
        let (vh, dir) = test_vhost("confirms");
        let mut c = ObjectCounts::default();
        let info = ChannelInfo::new(1);
        let (xa, xb) = (
            vh.exchange("amq.direct").unwrap(),
            vh.exchange("amq.topic").unwrap(),
        );
        for seq in 1..=3 {
            c.published_to(&info, &xa, None, Some(seq));
        }
        c.published_to(&info, &xb, Some(true), Some(4));
        c.published_to(&info, &xa, Some(false), Some(5));
        let stats = |i: usize| lock(&info.exchanges)[i].1.clone();
        let (a, b) = (stats(0), stats(1));
        assert_eq!((a.publish.get(), a.drop_unroutable.get()), (4, 1));
        assert_eq!((b.publish.get(), b.return_unroutable.get()), (1, 1));
        c.confirmed(0, 2);
        assert_eq!((a.confirm.get(), b.confirm.get()), (2, 0));
        c.confirmed(2, 4);
        assert_eq!((a.confirm.get(), b.confirm.get()), (3, 1));
        c.confirmed(4, 5);
        assert_eq!((a.confirm.get(), b.confirm.get()), (4, 1));
        assert!(c.confirm_runs.is_empty());
        close(vh, dir);
    }

    #[test]
    fn counters_of_deleted_queues_go_and_a_new_queue_under_the_same_name_starts_at_zero() {
        let (vh, dir) = test_vhost("prune");
        let mut c = ObjectCounts::default();
        let info = ChannelInfo::new(1);
        let declare = |name: &str| {
            vh.declare_queue(name, false, false, false, Default::default(), 0)
                .unwrap()
        };
        let kept = declare("kept");
        c.acked(&info, &kept, 2);
        // A reply queue per request, deleted after use: the list stays small.
        for i in 0..1000 {
            let q = declare(&format!("reply-{i}"));
            c.queue(&info, &q).deliver.add_local(1);
            vh.delete_queue(&q);
        }
        assert!(
            lock(&info.queues).len() <= 2 * PRUNE_MIN,
            "{}",
            lock(&info.queues).len()
        );
        assert!(lock(&info.queues)
            .iter()
            .any(|(n, s)| n == "kept" && s.ack.get() == 2));
        vh.delete_queue(&kept);
        let again = declare("kept");
        assert_eq!(c.queue(&info, &again).ack.get(), 0);
        let listed: Vec<_> = lock(&info.queues)
            .iter()
            .filter(|(n, _)| n == "kept")
            .map(|(_, s)| s.ack.get())
            .collect();
        assert_eq!(listed, [0]);
        close(vh, dir);
    }

    fn test_vhost(name: &str) -> (Arc<crate::vhost::VHost>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("warren-counts-{name}-{}", std::process::id()));
        let cfg = crate::config::Config::for_test(&dir);
        let store = crate::store::Store::open(&cfg.storage).unwrap();
        (crate::vhost::VHost::new("/", store), dir)
    }

    fn close(vh: Arc<crate::vhost::VHost>, dir: std::path::PathBuf) {
        let _ = vh.store().close();
        drop(vh);
        let _ = std::fs::remove_dir_all(dir);
    }
}
