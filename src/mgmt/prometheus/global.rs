//! RabbitMQ 3.10's global counters (`rabbitmq_global_*`), which the Overview dashboard
//! draws its message rates from: counts since the broker started, by protocol (always
//! `amqp091` here) and by queue type. Publishing counts come from the channels (live and
//! closed), delivery counts from the queues (live and deleted), so that none ever goes down.

use super::objects::channel_totals;
use super::text::{def, Def, Kind, Writer};
use super::Scrape;
use crate::connection::info::ChannelInfo;
use crate::queue::dead_letter::Reason;
use crate::queue::QueueKind;
use crate::stats::{Counter, DeathStats, MsgStats, SizeHistogram};

const PROTOCOL: (&str, &str) = ("protocol", "amqp091");

/// RabbitMQ's queue type modules, by [`QueueKind`]; streams (refused by warren) count 0.
const QUEUE_TYPES: [&str; 3] = [
    "rabbit_classic_queue",
    "rabbit_quorum_queue",
    "rabbit_stream_queue",
];

type StatsValue = fn(&MsgStats) -> u64;

/// Counters of deliveries, by queue type.
const BY_QUEUE_TYPE: [(Def, StatsValue); 8] = [
    (
        def(
            "global_messages_acknowledged_total",
            Kind::Counter,
            "Total number of messages acknowledged by consumers",
        ),
        |m| m.ack.get(),
    ),
    (
        def(
            "global_messages_delivered_consume_auto_ack_total",
            Kind::Counter,
            "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
        ),
        |m| m.deliver_no_ack.get(),
    ),
    (
        def(
            "global_messages_delivered_consume_manual_ack_total",
            Kind::Counter,
            "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
        ),
        |m| m.deliver.get(),
    ),
    (
        def(
            "global_messages_delivered_get_auto_ack_total",
            Kind::Counter,
            "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
        ),
        |m| m.get_no_ack.get(),
    ),
    (
        def(
            "global_messages_delivered_get_manual_ack_total",
            Kind::Counter,
            "Total number of messages delivered to consumers using basic.get with manual acknowledgment",
        ),
        |m| m.get.get(),
    ),
    (
        def(
            "global_messages_delivered_total",
            Kind::Counter,
            "Total number of messages delivered to consumers",
        ),
        |m| m.deliver.get() + m.deliver_no_ack.get() + m.get.get() + m.get_no_ack.get(),
    ),
    (
        def(
            "global_messages_get_empty_total",
            Kind::Counter,
            "Total number of times basic.get operations fetched no message",
        ),
        |m| m.get_empty.get(),
    ),
    (
        def(
            "global_messages_redelivered_total",
            Kind::Counter,
            "Total number of messages redelivered to consumers",
        ),
        |m| m.redeliver.get(),
    ),
];

type ChannelCounter = fn(&MsgStats) -> &Counter;

/// Counters of publishing, by protocol only.
const BY_PROTOCOL: [(Def, ChannelCounter); 6] = [
    (
        def(
            "global_messages_confirmed_total",
            Kind::Counter,
            "Total number of messages confirmed to publishers",
        ),
        |m| &m.confirm,
    ),
    (
        def(
            "global_messages_received_confirm_total",
            Kind::Counter,
            "Total number of messages received from publishers expecting confirmations",
        ),
        |m| &m.received_confirm,
    ),
    (
        def(
            "global_messages_received_total",
            Kind::Counter,
            "Total number of messages received from publishers",
        ),
        |m| &m.publish,
    ),
    (
        def(
            "global_messages_routed_total",
            Kind::Counter,
            "Total number of messages routed to queues or streams",
        ),
        |m| &m.routed,
    ),
    (
        def(
            "global_messages_unroutable_dropped_total",
            Kind::Counter,
            "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
        ),
        |m| &m.drop_unroutable,
    ),
    (
        def(
            "global_messages_unroutable_returned_total",
            Kind::Counter,
            "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
        ),
        |m| &m.return_unroutable,
    ),
];

const DEAD_LETTERED_CONFIRMED: Def = def(
    "global_messages_dead_lettered_confirmed_total",
    Kind::Counter,
    "Total number of messages dead-lettered and confirmed by target queues",
);

/// Dead-lettering by reason, by queue type and by strategy: `at_most_once` (the queue has a
/// dead-letter exchange) or `disabled` (the message was dropped). warren has no
/// `at_least_once` strategy; its rows are 0, as they are in RabbitMQ without such queues.
const DEAD_LETTERED: [(Def, Reason); 4] = [
    (
        def(
            "global_messages_dead_lettered_delivery_limit_total",
            Kind::Counter,
            "Total number of messages dead-lettered due to delivery-limit exceeded",
        ),
        Reason::DeliveryLimit,
    ),
    (
        def(
            "global_messages_dead_lettered_expired_total",
            Kind::Counter,
            "Total number of messages dead-lettered due to message TTL exceeded",
        ),
        Reason::Expired,
    ),
    (
        def(
            "global_messages_dead_lettered_maxlen_total",
            Kind::Counter,
            "Total number of messages dead-lettered due to overflow drop-head or reject-publish-dlx",
        ),
        Reason::Maxlen,
    ),
    (
        def(
            "global_messages_dead_lettered_rejected_total",
            Kind::Counter,
            "Total number of messages dead-lettered due to basic.reject or basic.nack",
        ),
        Reason::Rejected,
    ),
];

const CONSUMERS: Def = def(
    "global_consumers",
    Kind::Gauge,
    "Current number of consumers",
);
const PUBLISHERS: Def = def(
    "global_publishers",
    Kind::Gauge,
    "Current number of publishers",
);

/// Every queue's counters since the broker started, by [`QueueKind`].
fn queue_totals(s: &Scrape) -> ([MsgStats; 2], [DeathStats; 2]) {
    let stats: [MsgStats; 2] = Default::default();
    let deaths: [DeathStats; 2] = Default::default();
    for m in s.kept() {
        for kind in [QueueKind::Classic, QueueKind::Quorum] {
            let k = kind as usize;
            stats[k].absorb(&m.retired_queues[k]);
            deaths[k].absorb(&m.retired_deaths[k]);
        }
    }
    for v in &s.vhosts {
        for q in v.queues() {
            let k = q.kind() as usize;
            stats[k].absorb(&q.stats);
            deaths[k].absorb(&q.deaths);
        }
    }
    (stats, deaths)
}

/// The global counters, in RabbitMQ's (alphabetical) order.
pub(super) fn counters(s: &Scrape, w: &mut Writer) {
    let channels: Vec<_> = s.conns.iter().flat_map(|c| c.channels()).collect();
    let consumers: u64 = channels
        .iter()
        .map(|c| ChannelInfo::level(&c.consumers) as u64)
        .sum();
    // A channel that has published is a publisher until it closes.
    let publishers = channels
        .iter()
        .filter(|c| c.stats.publish.get() > 0)
        .count();
    let published = channel_totals(s);
    let (classic_quorum, deaths) = queue_totals(s);
    let [classic, quorum] = &classic_quorum;
    let queues = [classic, quorum, &MsgStats::default()];

    w.family(&CONSUMERS).sample(&[PROTOCOL], consumers);
    by_queue_type(w, &BY_QUEUE_TYPE[0], &queues);
    by_protocol(w, &BY_PROTOCOL[0], &published);
    w.family(&DEAD_LETTERED_CONFIRMED).sample(
        &[
            ("queue_type", QUEUE_TYPES[1]),
            ("dead_letter_strategy", "at_least_once"),
        ],
        0u64,
    );
    for (d, reason) in &DEAD_LETTERED {
        let mut f = w.family(d);
        for (k, kind) in QUEUE_TYPES[..2].iter().enumerate() {
            // RabbitMQ has no at-least-once dead-lettering over length limits.
            if k == 1 && *reason != Reason::Maxlen {
                let labels = [
                    ("queue_type", *kind),
                    ("dead_letter_strategy", "at_least_once"),
                ];
                f.sample(&labels, 0u64);
            }
            for (strategy, dead_lettered) in [("at_most_once", true), ("disabled", false)] {
                let labels = [("queue_type", *kind), ("dead_letter_strategy", strategy)];
                f.sample(&labels, deaths[k].get(*reason, dead_lettered));
            }
        }
    }
    for d in &BY_QUEUE_TYPE[1..7] {
        by_queue_type(w, d, &queues);
    }
    for d in &BY_PROTOCOL[1..3] {
        by_protocol(w, d, &published);
    }
    by_queue_type(w, &BY_QUEUE_TYPE[7], &queues);
    for d in &BY_PROTOCOL[3..] {
        by_protocol(w, d, &published);
    }
    w.family(&PUBLISHERS).sample(&[PROTOCOL], publishers);
}

fn by_queue_type(w: &mut Writer, (d, value): &(Def, StatsValue), queues: &[&MsgStats; 3]) {
    let mut f = w.family(d);
    for (kind, stats) in QUEUE_TYPES.iter().zip(queues) {
        f.sample(&[PROTOCOL, ("queue_type", kind)], value(stats));
    }
}

fn by_protocol(w: &mut Writer, (d, value): &(Def, ChannelCounter), totals: &MsgStats) {
    w.family(d).sample(&[PROTOCOL], value(totals).get());
}

const MESSAGE_SIZE: Def = def(
    "message_size_bytes",
    Kind::Histogram,
    "Size of messages received from publishers",
);

/// Bucket bounds as Prometheus writes them once scraped (and as the Overview dashboard of
/// RabbitMQ 4.1 queries them).
const SIZE_LE: [&str; 9] = [
    "100.0", "1000.0", "10000.0", "100000.0", "1e+06", "1e+07", "5e+07", "1e+08", "+Inf",
];

/// `rabbitmq_message_size_bytes` (RabbitMQ 4.1): sizes of the bodies published since the
/// broker started.
pub(super) fn message_sizes(s: &Scrape, w: &mut Writer) {
    let total = SizeHistogram::default();
    for m in s.kept() {
        total.absorb(&m.retired_sizes);
    }
    for c in s.conns.iter().flat_map(|c| c.channels()) {
        total.absorb(&c.sizes);
    }
    let mut f = w.family(&MESSAGE_SIZE);
    let mut count = 0;
    for (le, bucket) in SIZE_LE.iter().zip(&total.buckets) {
        count += bucket.get();
        f.sample_suffixed("_bucket", &[PROTOCOL, ("le", le)], count.into());
    }
    f.sample_suffixed("_sum", &[PROTOCOL], total.sum.get().into());
    f.sample_suffixed("_count", &[PROTOCOL], count.into());
}
