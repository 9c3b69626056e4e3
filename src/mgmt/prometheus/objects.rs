//! The families of queues and channels: one sample per object (per-object and detailed
//! endpoints) or one per metric (`/metrics`). Aggregated gauges are sums over the live
//! objects, as RabbitMQ's; aggregated counters of channels (and of connections, see
//! [`super::connections`]) also keep the counts of closed ones, so that they never go down,
//! where RabbitMQ's drop when a channel closes.

use super::text::{def, Def, Kind, Value, Writer};
use super::Scrape;
use crate::connection::info::{ChannelInfo, ConnInfo, ObjectCounters};
use crate::mgmt::views::channel_name;
use crate::queue::{Levels, Queue};
use crate::stats::{Counter, MsgStats};
use std::sync::Arc;

/// One sample per object, or their sum.
pub(super) fn emit(
    s: &Scrape,
    w: &mut Writer,
    d: &Def,
    rows: impl Iterator<Item = (Vec<(&'static str, String)>, Value)>,
) {
    let mut f = w.family(d);
    if s.per_object {
        for (labels, v) in rows {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            f.sample(&labels, v);
        }
    } else {
        f.sample(&[], sum(rows.map(|(_, v)| v)));
    }
}

fn sum(values: impl Iterator<Item = Value>) -> Value {
    let (mut n, mut x, mut float) = (0u64, 0f64, false);
    for v in values {
        match v {
            Value::Int(i) => n += i,
            Value::Float(f) => {
                x += f;
                float = true;
            }
        }
    }
    if float {
        Value::Float(x + n as f64)
    } else {
        Value::Int(n)
    }
}

impl Scrape<'_> {
    /// Every queue shown (all, or those of the `vhost` filter) with its levels, read once.
    fn queue_rows(&self) -> &[(Arc<Queue>, Levels)] {
        self.queue_rows.get_or_init(|| {
            self.vhosts
                .iter()
                .filter(|v| self.shows_queues_of(&v.name))
                .flat_map(|v| v.queues())
                .map(|q| {
                    let l = q.levels();
                    (q, l)
                })
                .collect()
        })
    }

    fn channel_rows(&self) -> Vec<(Arc<ConnInfo>, Arc<ChannelInfo>)> {
        self.conns
            .iter()
            .flat_map(|c| c.channels().into_iter().map(move |ch| (c.clone(), ch)))
            .collect()
    }
}

fn queue_labels(q: &Queue) -> Vec<(&'static str, String)> {
    vec![("vhost", q.vhost.clone()), ("queue", q.name.clone())]
}

type QueueValue = fn(&Queue, &Levels) -> Value;

fn queue_families(s: &Scrape, w: &mut Writer, defs: &[(Def, QueueValue)]) {
    let rows = s.queue_rows();
    for (d, value) in defs {
        emit(
            s,
            w,
            d,
            rows.iter().map(|(q, l)| (queue_labels(q), value(q, l))),
        );
    }
}

const QUEUE_COARSE: [(Def, QueueValue); 3] = [
    (
        def(
            "queue_messages_ready",
            Kind::Gauge,
            "Messages ready to be delivered to consumers",
        ),
        |_, l| l.ready.into(),
    ),
    (
        def(
            "queue_messages_unacked",
            Kind::Gauge,
            "Messages delivered to consumers but not yet acknowledged",
        ),
        |_, l| l.unacked.into(),
    ),
    (
        def(
            "queue_messages",
            Kind::Gauge,
            "Sum of ready and unacknowledged messages - total queue depth",
        ),
        |_, l| (l.ready + l.unacked).into(),
    ),
];

/// `queue_coarse_metrics`.
pub(super) fn queue_coarse(s: &Scrape, w: &mut Writer) {
    queue_families(s, w, &QUEUE_COARSE);
}

const QUEUE_CONSUMERS: (Def, QueueValue) = (
    def("queue_consumers", Kind::Gauge, "Consumers on a queue"),
    |_, l| l.consumers.into(),
);

/// `queue_consumer_count`.
pub(super) fn queue_consumers(s: &Scrape, w: &mut Writer) {
    queue_families(s, w, &[QUEUE_CONSUMERS]);
}

/// warren delivers to any consumer with credit at once: a queue with consumers is at full
/// capacity (as the management API reports it).
fn capacity(_: &Queue, l: &Levels) -> Value {
    Value::Float(if l.consumers > 0 { 1.0 } else { 0.0 })
}

const QUEUE_METRICS: [(Def, QueueValue); 7] = [
    QUEUE_CONSUMERS,
    (
        def("queue_consumer_capacity", Kind::Gauge, "Consumer capacity"),
        capacity,
    ),
    (
        def(
            "queue_consumer_utilisation",
            Kind::Gauge,
            "Same as consumer capacity",
        ),
        capacity,
    ),
    (
        def(
            "queue_process_memory_bytes",
            Kind::Gauge,
            "Memory in bytes used by the Erlang queue process",
        ),
        // The management API's estimate: bodies plus a slot per message.
        |_, l| (l.ready_bytes + l.unacked_bytes + 64 * (l.ready + l.unacked) as u64).into(),
    ),
    (
        def(
            "queue_messages_bytes",
            Kind::Gauge,
            "Size in bytes of ready and unacknowledged messages",
        ),
        |_, l| (l.ready_bytes + l.unacked_bytes).into(),
    ),
    (
        def(
            "queue_messages_ready_bytes",
            Kind::Gauge,
            "Size in bytes of ready messages",
        ),
        |_, l| l.ready_bytes.into(),
    ),
    (
        def(
            "queue_messages_unacked_bytes",
            Kind::Gauge,
            "Size in bytes of all unacknowledged messages",
        ),
        |_, l| l.unacked_bytes.into(),
    ),
];

/// `queue_metrics` (those warren can give without walking every message).
pub(super) fn queue_metrics(s: &Scrape, w: &mut Writer) {
    queue_families(s, w, &QUEUE_METRICS);
}

type ChannelValue = fn(&ChannelInfo) -> u32;

const CHANNEL_LEVELS: [(Def, ChannelValue); 7] = [
    (
        def("channel_consumers", Kind::Gauge, "Consumers on a channel"),
        |c| ChannelInfo::level(&c.consumers),
    ),
    (
        def(
            "channel_messages_unacked",
            Kind::Gauge,
            "Delivered but not yet acknowledged messages",
        ),
        |c| ChannelInfo::level(&c.unacked),
    ),
    (
        def(
            "channel_messages_unconfirmed",
            Kind::Gauge,
            "Published but not yet confirmed messages",
        ),
        |c| ChannelInfo::level(&c.unconfirmed),
    ),
    (
        def(
            "channel_messages_uncommitted",
            Kind::Gauge,
            "Messages received in a transaction but not yet committed",
        ),
        |c| ChannelInfo::level(&c.uncommitted),
    ),
    (
        def(
            "channel_acks_uncommitted",
            Kind::Gauge,
            "Message acknowledgements in a transaction not yet committed",
        ),
        |c| ChannelInfo::level(&c.acks_uncommitted),
    ),
    (
        def(
            "consumer_prefetch",
            Kind::Gauge,
            "Limit of unacknowledged messages for each consumer",
        ),
        |c| ChannelInfo::level(&c.prefetch),
    ),
    (
        def(
            "channel_prefetch",
            Kind::Gauge,
            "Total limit of unacknowledged messages for all consumers on a channel",
        ),
        |c| ChannelInfo::level(&c.global_prefetch),
    ),
];

/// `channel_metrics`.
pub(super) fn channel_levels(s: &Scrape, w: &mut Writer) {
    let rows = s.channel_rows();
    for (d, value) in &CHANNEL_LEVELS {
        emit(
            s,
            w,
            d,
            rows.iter().map(|(c, ch)| {
                (
                    vec![("channel", channel_name(c, ch.number))],
                    value(ch).into(),
                )
            }),
        );
    }
}

type StatsValue = fn(&MsgStats) -> &Counter;

/// Counters of channels, summed per object or over the broker's lifetime (`retired` holds
/// those of closed channels).
fn channel_counters(
    s: &Scrape,
    w: &mut Writer,
    defs: &[(Def, StatsValue)],
    key: &'static str,
    of: fn(&ChannelInfo) -> &ObjectCounters,
) {
    if !s.per_object {
        let totals = channel_totals(s);
        for (d, value) in defs {
            w.single(d, value(&totals).get());
        }
        return;
    }
    let rows: Vec<_> = s
        .channel_rows()
        .into_iter()
        .flat_map(|(c, ch)| {
            let name = channel_name(&c, ch.number);
            lock_clone(of(&ch))
                .into_iter()
                .map(move |(object, stats)| (name.clone(), c.vhost().to_string(), object, stats))
        })
        .collect();
    for (d, value) in defs {
        let mut f = w.family(d);
        for (channel, vhost, object, stats) in &rows {
            f.sample(
                &[("channel", channel), ("vhost", vhost), (key, object)],
                value(stats).get(),
            );
        }
    }
}

/// Every channel's counters since the broker started: closed channels' (kept by their
/// vhosts, deleted ones included) and live ones'.
pub(super) fn channel_totals(s: &Scrape) -> MsgStats {
    let totals = MsgStats::default();
    let live: Vec<_> = s.channel_rows().into_iter().map(|(_, ch)| ch).collect();
    totals.set_sum(
        &MsgStats::default(),
        s.kept()
            .map(|m| &m.retired)
            .chain(live.iter().map(|c| &c.stats)),
    );
    totals
}

const CHANNEL_EXCHANGE: [(Def, StatsValue); 4] = [
    (
        def(
            "channel_messages_published_total",
            Kind::Counter,
            "Total number of messages published into an exchange on a channel",
        ),
        |m| &m.publish,
    ),
    (
        def(
            "channel_messages_confirmed_total",
            Kind::Counter,
            "Total number of messages published into an exchange and confirmed on the channel",
        ),
        |m| &m.confirm,
    ),
    (
        def(
            "channel_messages_unroutable_returned_total",
            Kind::Counter,
            "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
        ),
        |m| &m.return_unroutable,
    ),
    (
        def(
            "channel_messages_unroutable_dropped_total",
            Kind::Counter,
            "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
        ),
        |m| &m.drop_unroutable,
    ),
];

fn lock_clone<T: Clone>(m: &std::sync::Mutex<Vec<T>>) -> Vec<T> {
    m.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `channel_exchange_metrics`.
pub(super) fn channel_exchange(s: &Scrape, w: &mut Writer) {
    channel_counters(s, w, &CHANNEL_EXCHANGE, "exchange", |ch| &ch.exchanges);
}

const CHANNEL_QUEUE: [(Def, StatsValue); 7] = [
    (
        def(
            "channel_get_ack_total",
            Kind::Counter,
            "Total number of messages fetched with basic.get in manual acknowledgement mode",
        ),
        |m| &m.get,
    ),
    (
        def(
            "channel_get_total",
            Kind::Counter,
            "Total number of messages fetched with basic.get in automatic acknowledgement mode",
        ),
        |m| &m.get_no_ack,
    ),
    (
        def(
            "channel_messages_delivered_ack_total",
            Kind::Counter,
            "Total number of messages delivered to consumers in manual acknowledgement mode",
        ),
        |m| &m.deliver,
    ),
    (
        def(
            "channel_messages_delivered_total",
            Kind::Counter,
            "Total number of messages delivered to consumers in automatic acknowledgement mode",
        ),
        |m| &m.deliver_no_ack,
    ),
    (
        def(
            "channel_messages_redelivered_total",
            Kind::Counter,
            "Total number of messages redelivered to consumers",
        ),
        |m| &m.redeliver,
    ),
    (
        def(
            "channel_messages_acked_total",
            Kind::Counter,
            "Total number of messages acknowledged by consumers",
        ),
        |m| &m.ack,
    ),
    (
        def(
            "channel_get_empty_total",
            Kind::Counter,
            "Total number of times basic.get operations fetched no message",
        ),
        |m| &m.get_empty,
    ),
];

/// `channel_queue_metrics`.
pub(super) fn channel_queue(s: &Scrape, w: &mut Writer) {
    channel_counters(s, w, &CHANNEL_QUEUE, "queue", |ch| &ch.queues);
}

const QUEUE_PUBLISHED: Def = def(
    "queue_messages_published_total",
    Kind::Counter,
    "Total number of messages published to queues",
);

/// `channel_queue_exchange_metrics`. Aggregated: what channels published into queues (a
/// message routed to two queues counts two). Per object, warren counts what reached each
/// queue (dead-lettered messages included), not per (channel, queue, exchange): samples
/// carry `queue_vhost` and `queue` only.
pub(super) fn queue_published(s: &Scrape, w: &mut Writer) {
    if !s.per_object {
        w.single(&QUEUE_PUBLISHED, channel_totals(s).routed.get());
        return;
    }
    let mut f = w.family(&QUEUE_PUBLISHED);
    for q in s.vhosts.iter().flat_map(|v| v.queues()) {
        f.sample(
            &[("queue_vhost", &q.vhost), ("queue", &q.name)],
            q.stats.publish.get(),
        );
    }
}
