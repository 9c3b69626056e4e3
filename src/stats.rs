//! Message statistics as the management API and Prometheus report them: monotonic counters
//! kept by channels, queues, exchanges and connections, and their rates per second, sampled
//! every few seconds (RabbitMQ's `collect_statistics_interval`, 5 s by default).
//!
//! Counting costs one relaxed atomic add on a cache line the counting thread mostly owns (a
//! channel's counters are only written by its connection task; a queue's by whoever holds the
//! queue). Rates are computed by the sampler, never on the message path.

use crate::queue::dead_letter::Reason;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A monotonic counter and its last sampled rate.
#[derive(Debug, Default)]
pub struct Counter {
    value: AtomicU64,
    /// The value at the previous sample.
    prev: AtomicU64,
    /// f64 bits: per second over the last sample interval.
    rate: AtomicU64,
}

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// `add` for a counter only one task ever writes (a channel's, written by its
    /// connection's task): a load and a store, no locked read-modify-write. Readers on other
    /// threads still see whole values.
    #[inline]
    pub fn add_local(&self, n: u64) {
        let v = self.value.load(Ordering::Relaxed);
        self.value.store(v + n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    /// Set the value outright (an aggregate recomputed at each sample).
    pub fn set(&self, v: u64) {
        self.value.store(v, Ordering::Relaxed);
    }

    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// Take a sample `secs` after the previous one.
    pub fn sample(&self, secs: f64) {
        let v = self.get();
        let prev = self.prev.swap(v, Ordering::Relaxed);
        let rate = if secs > 0.0 {
            v.saturating_sub(prev) as f64 / secs
        } else {
            0.0
        };
        self.rate.store(round(rate).to_bits(), Ordering::Relaxed);
    }
}

/// A level (queue depth) and the rate it changed at over the last sample interval, which may
/// be negative.
#[derive(Debug, Default)]
pub struct Gauge {
    prev: AtomicU64,
    rate: AtomicU64,
}

impl Gauge {
    pub fn sample(&self, now: u64, secs: f64) {
        let prev = self.prev.swap(now, Ordering::Relaxed);
        let rate = if secs > 0.0 {
            (now as f64 - prev as f64) / secs
        } else {
            0.0
        };
        self.rate.store(round(rate).to_bits(), Ordering::Relaxed);
    }

    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }
}

/// One decimal, as RabbitMQ shows rates.
fn round(r: f64) -> f64 {
    (r * 10.0).round() / 10.0
}

macro_rules! message_stats {
    ($($field:ident),* $(,)?) => {
        /// The message counters RabbitMQ keeps; each kind of object reports its own subset.
        #[derive(Debug, Default)]
        pub struct MsgStats {
            $(pub $field: Counter,)*
        }

        impl MsgStats {
            pub fn sample(&self, secs: f64) {
                $(self.$field.sample(secs);)*
            }

            /// Add another's counts to these (a closed channel's, into its vhost's).
            pub fn absorb(&self, other: &MsgStats) {
                $(self.$field.add(other.$field.get());)*
            }

            /// Set these to the sum of `parts` (and of `base`).
            pub fn set_sum<'a>(&self, base: &MsgStats, parts: impl Iterator<Item = &'a MsgStats>) {
                $(let mut $field = base.$field.get();)*
                for p in parts {
                    $($field += p.$field.get();)*
                }
                $(self.$field.set($field);)*
            }

            fn counter(&self, name: &str) -> Option<&Counter> {
                match name {
                    $(stringify!($field) => Some(&self.$field),)*
                    _ => None,
                }
            }
        }
    };
}

message_stats!(
    publish,
    confirm,
    deliver,
    deliver_no_ack,
    get,
    get_no_ack,
    get_empty,
    redeliver,
    ack,
    return_unroutable,
    drop_unroutable,
    publish_in,
    publish_out,
    // Publishes on a channel in confirm mode, and queues publishes reached (a message routed
    // to three queues counts three): Prometheus' global received_confirm and routed counters.
    received_confirm,
    routed,
);

/// The counters a channel, vhost and the overview report.
pub const CHANNEL_KEYS: &[&str] = &[
    "ack",
    "confirm",
    "deliver",
    "deliver_get",
    "deliver_no_ack",
    "drop_unroutable",
    "get",
    "get_empty",
    "get_no_ack",
    "publish",
    "redeliver",
    "return_unroutable",
];
/// A queue's counters.
pub const QUEUE_KEYS: &[&str] = &[
    "ack",
    "deliver",
    "deliver_get",
    "deliver_no_ack",
    "get",
    "get_empty",
    "get_no_ack",
    "publish",
    "redeliver",
];
/// An exchange's counters.
pub const EXCHANGE_KEYS: &[&str] = &["publish_in", "publish_out"];

impl MsgStats {
    /// Count and rate of `name`; `deliver_get` is the sum of the four ways out.
    pub fn value(&self, name: &str) -> (u64, f64) {
        if name == "deliver_get" {
            let parts = [
                &self.deliver,
                &self.deliver_no_ack,
                &self.get,
                &self.get_no_ack,
            ];
            return parts
                .iter()
                .fold((0, 0.0), |(n, r), c| (n + c.get(), r + c.rate()));
        }
        self.counter(name).map_or((0, 0.0), |c| (c.get(), c.rate()))
    }

    /// `message_stats` as RabbitMQ writes it: each counter with `<name>_details.rate`. Like
    /// RabbitMQ, counters never touched are left out (an object with no traffic has `{}`),
    /// except that `keys` listed in `always` are written even at zero.
    pub fn json(&self, keys: &[&str], always: bool) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for k in keys {
            let (n, rate) = self.value(k);
            if n == 0 && !always {
                continue;
            }
            m.insert((*k).to_string(), n.into());
            m.insert(format!("{k}_details"), serde_json::json!({ "rate": rate }));
        }
        serde_json::Value::Object(m)
    }
}

/// A value and its rate, as RabbitMQ writes `<name>` and `<name>_details`.
pub fn with_rate(
    m: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    n: u64,
    rate: f64,
) {
    m.insert(name.to_string(), n.into());
    m.insert(
        format!("{name}_details"),
        serde_json::json!({ "rate": rate }),
    );
}

/// Octets and frames a connection has read and written.
#[derive(Debug, Default)]
pub struct IoStats {
    pub recv_oct: Counter,
    pub recv_cnt: Counter,
    pub send_oct: Counter,
    pub send_cnt: Counter,
}

impl IoStats {
    pub fn sample(&self, secs: f64) {
        self.recv_oct.sample(secs);
        self.recv_cnt.sample(secs);
        self.send_oct.sample(secs);
        self.send_cnt.sample(secs);
    }
}

/// Messages that died in queues, by reason and by whether they went to a dead-letter
/// exchange (RabbitMQ's `at_most_once` strategy) or nowhere (`disabled`).
#[derive(Debug, Default)]
pub struct DeathStats {
    /// `[reason as usize][0]`: dead-lettered, `[..][1]`: dropped.
    counts: [[Counter; 2]; 4],
}

impl DeathStats {
    #[inline]
    pub fn inc(&self, reason: Reason, dead_lettered: bool) {
        self.counts[reason as usize][usize::from(!dead_lettered)].inc();
    }

    pub fn get(&self, reason: Reason, dead_lettered: bool) -> u64 {
        self.counts[reason as usize][usize::from(!dead_lettered)].get()
    }

    /// Add another's counts to these (a deleted queue's, into its vhost's).
    pub fn absorb(&self, other: &DeathStats) {
        for (mine, theirs) in self.counts.iter().zip(&other.counts) {
            for (a, b) in mine.iter().zip(theirs) {
                a.add(b.get());
            }
        }
    }
}

/// Upper bounds of the message size histogram (RabbitMQ 4.1's `rabbitmq_message_size_bytes`);
/// a last bucket takes the rest.
pub const SIZE_BUCKETS: [u64; 8] = [
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
];

/// Sizes of the message bodies published on a channel: how many fell in each bucket (not
/// cumulative), and their sum. Written by the channel's task only.
#[derive(Debug, Default)]
pub struct SizeHistogram {
    pub buckets: [Counter; 9],
    pub sum: Counter,
}

impl SizeHistogram {
    #[inline]
    pub fn observe(&self, size: usize) {
        let size = size as u64;
        let i = SIZE_BUCKETS.iter().take_while(|b| size > **b).count();
        self.buckets[i].add_local(1);
        self.sum.add_local(size);
    }

    /// Add another's counts to these (a closed channel's, into its vhost's).
    pub fn absorb(&self, other: &SizeHistogram) {
        for (a, b) in self.buckets.iter().zip(&other.buckets) {
            a.add(b.get());
        }
        self.sum.add(other.sum.get());
    }
}

/// Login attempts of one protocol.
#[derive(Debug, Default)]
pub struct AuthStats {
    pub attempts: Counter,
    pub succeeded: Counter,
    pub failed: Counter,
}

impl AuthStats {
    pub fn record(&self, ok: bool) {
        self.attempts.inc();
        if ok {
            self.succeeded.inc();
        } else {
            self.failed.inc();
        }
    }
}

/// Objects created and deleted since the broker started (the overview's `churn_rates`).
#[derive(Debug, Default)]
pub struct Churn {
    pub connection_created: Counter,
    pub connection_closed: Counter,
    pub channel_created: Counter,
    pub channel_closed: Counter,
    pub queue_declared: Counter,
    pub queue_created: Counter,
    pub queue_deleted: Counter,
}

impl Churn {
    pub fn sample(&self, secs: f64) {
        for c in self.all() {
            c.1.sample(secs);
        }
    }

    pub fn all(&self) -> [(&'static str, &Counter); 7] {
        [
            ("channel_closed", &self.channel_closed),
            ("channel_created", &self.channel_created),
            ("connection_closed", &self.connection_closed),
            ("connection_created", &self.connection_created),
            ("queue_created", &self.queue_created),
            ("queue_declared", &self.queue_declared),
            ("queue_deleted", &self.queue_deleted),
        ]
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// A small atomic level (consumers on a channel, prefetch).
pub type Level = AtomicU32;

/// Sample every rate every `management.collect_statistics_interval` until `stop`.
pub async fn run_sampler(
    broker: std::sync::Weak<crate::broker::Broker>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let ms = match broker.upgrade() {
        Some(b) => b.config.management.collect_statistics_interval.max(100),
        None => return,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(b) = broker.upgrade() else { return };
        let secs = last.elapsed().as_secs_f64();
        last = std::time::Instant::now();
        sample(&b, secs);
    }
}

/// Take one sample of every counter and level.
pub fn sample(b: &crate::broker::Broker, secs: f64) {
    b.churn.sample(secs);
    let conns: Vec<_> = b.connections.iter().map(|c| c.info.clone()).collect();
    for c in &conns {
        c.io.sample(secs);
        for ch in c.channels() {
            ch.stats.sample(secs);
        }
    }
    for vh in b.vhosts.iter() {
        let m = &vh.metrics;
        let live: Vec<_> = conns
            .iter()
            .filter(|c| c.vhost() == vh.name)
            .cloned()
            .collect();
        let channels: Vec<_> = live.iter().flat_map(|c| c.channels()).collect();
        m.totals
            .set_sum(&m.retired, channels.iter().map(|c| &c.stats));
        m.totals.sample(secs);
        let io = |f: fn(&IoStats) -> &Counter| live.iter().map(|c| f(&c.io).get()).sum::<u64>();
        m.recv_oct
            .set(m.retired_recv_oct.get() + io(|i| &i.recv_oct));
        m.send_oct
            .set(m.retired_send_oct.get() + io(|i| &i.send_oct));
        m.recv_oct.sample(secs);
        m.send_oct.sample(secs);
        let (mut ready, mut unacked) = (0u64, 0u64);
        for q in vh.queues() {
            q.stats.sample(secs);
            let (r, u) = q.depth();
            q.depth[0].sample((r + u) as u64, secs);
            q.depth[1].sample(r as u64, secs);
            q.depth[2].sample(u as u64, secs);
            ready += r as u64;
            unacked += u as u64;
        }
        m.depth[0].sample(ready + unacked, secs);
        m.depth[1].sample(ready, secs);
        m.depth[2].sample(unacked, secs);
        for x in vh.exchanges() {
            x.stats.sample(secs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_over_the_interval_with_one_decimal() {
        let c = Counter::default();
        c.add(12);
        c.sample(5.0);
        assert_eq!(c.rate(), 2.4);
        c.add(1);
        c.sample(3.0);
        assert_eq!(c.rate(), 0.3);
        c.sample(5.0);
        assert_eq!(c.rate(), 0.0);
        let g = Gauge::default();
        g.sample(10, 5.0);
        g.sample(9, 5.0);
        assert_eq!(g.rate(), -0.2);
    }

    #[test]
    fn sizes_fall_in_the_first_bucket_that_holds_them() {
        let h = SizeHistogram::default();
        for size in [0, 100, 101, 1_000_000, 100_000_001] {
            h.observe(size);
        }
        let counts: Vec<u64> = h.buckets.iter().map(Counter::get).collect();
        assert_eq!(counts, [2, 1, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(h.sum.get(), 101_000_202);
    }

    #[test]
    fn message_stats_leave_out_untouched_counters_and_sum_deliver_get() {
        let s = MsgStats::default();
        assert_eq!(s.json(QUEUE_KEYS, false), serde_json::json!({}));
        s.deliver.add(2);
        s.get_no_ack.add(1);
        let j = s.json(QUEUE_KEYS, false);
        assert_eq!(j["deliver"], 2);
        assert_eq!(j["deliver_get"], 3);
        assert_eq!(j["get_no_ack_details"]["rate"], 0.0);
        assert!(j.get("ack").is_none());
        assert_eq!(s.json(&["ack"], true)["ack"], 0);
    }
}
