//! A channel's counters by exchange published to and by queue consumed from (RabbitMQ's
//! `channel_exchange_metrics` and `channel_queue_metrics`, which Prometheus reports per
//! object). The channel finds them without a lock: it remembers the last exchange it
//! published to, and each consumer carries its queue's counters. A lock is taken only when a
//! channel meets an exchange or queue for the first time, to publish the new counters in its
//! [`ChannelInfo`]. Only the channel's task writes them (`Counter::add_local`).

use crate::connection::info::ChannelInfo;
use crate::exchange::Exchange;
use crate::queue::Queue;
use crate::stats::MsgStats;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

#[derive(Debug, Default)]
pub(super) struct ObjectCounts {
    /// The exchange last published to, and its counters.
    last_exchange: Option<(Arc<Exchange>, Arc<MsgStats>)>,
    exchanges: HashMap<String, Arc<MsgStats>>,
    /// The queue last acked to, and its counters.
    last_queue: Option<(Arc<Queue>, Arc<MsgStats>)>,
    queues: HashMap<String, Arc<MsgStats>>,
    /// In confirm mode: runs of consecutive publishes to the same exchange, by the sequence
    /// number of their last publish, so that confirms (sent in sequence order) are counted
    /// on the exchange of the publish they confirm.
    confirm_runs: VecDeque<(u64, Arc<MsgStats>)>,
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
            let stats = self
                .exchanges
                .entry(x.name.clone())
                .or_insert_with(|| {
                    let s = Arc::new(MsgStats::default());
                    lock(&info.exchanges).push((x.name.clone(), s.clone()));
                    s
                })
                .clone();
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
    pub(super) fn queue(&mut self, info: &ChannelInfo, q: &Queue) -> Arc<MsgStats> {
        self.queues
            .entry(q.name.clone())
            .or_insert_with(|| {
                let s = Arc::new(MsgStats::default());
                lock(&info.queues).push((q.name.clone(), s.clone()));
                s
            })
            .clone()
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
        let mut c = ObjectCounts::default();
        let info = ChannelInfo::new(1);
        let vh = crate::vhost::VHost::new("/", test_store());
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
    }

    fn test_store() -> crate::store::Store {
        let dir = std::env::temp_dir().join(format!("warren-counts-{}", std::process::id()));
        crate::store::Store::open(&crate::config::Config::for_test(&dir).storage).unwrap()
    }
}
