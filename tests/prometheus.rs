//! The Prometheus endpoint (:15692, RabbitMQ's `rabbitmq_prometheus`): exact counts after
//! known client work, RabbitMQ's names, types, help texts and labels (recorded from 3.10.8),
//! the detailed families and their vhost filter, identity info, no authentication, and text
//! that parses as the exposition format. In-process broker only.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use std::collections::HashMap;
use support::*;

/// One sample of a scrape.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A family: `# TYPE`, `# HELP`, and its samples.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    samples: Vec<Sample>,
}

/// A scrape, parsed and checked against the text exposition format 0.0.4.
struct Metrics {
    /// Families in the order written.
    order: Vec<String>,
    families: HashMap<String, Family>,
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// `{a="x",b="y"}` (after the name): the labels and the rest of the line.
fn parse_labels(line: &str, s: &str) -> (Vec<(String, String)>, String) {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').unwrap();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return (labels, r.to_string());
        }
        let (name, r) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label without =\": {line}"));
        assert!(valid_name(name), "label name {name:?}: {line}");
        assert!(
            !labels.iter().any(|(n, _)| n == name),
            "label {name} twice: {line}"
        );
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?}: {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) | None => panic!("unterminated label value: {line}"),
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        rest = &r[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else {
            assert!(rest.starts_with('}'), "expected , or }}: {line}");
        }
    }
}

/// The family a sample belongs to: its name, or a histogram's without the suffix.
fn family_of(name: &str, families: &HashMap<String, Family>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if families.get(base).is_some_and(|f| f.kind == "histogram") {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

/// Parse a scrape, panicking on anything the exposition format does not allow: every line a
/// `# TYPE`, `# HELP` or a sample; one TYPE and one HELP per family, before its samples;
/// samples of a family together; valid names and label names, escapes, values.
fn parse(text: &str) -> Metrics {
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut m = Metrics {
        order: Vec::new(),
        families: HashMap::new(),
    };
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(valid_name(name), "{line}");
            assert!(
                ["counter", "gauge", "untyped", "histogram", "summary"].contains(&kind),
                "{line}"
            );
            assert!(!m.families.contains_key(name), "family {name} twice");
            m.families.insert(
                name.to_string(),
                Family {
                    kind: kind.to_string(),
                    ..Family::default()
                },
            );
            m.order.push(name.to_string());
            current = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert_eq!(
                Some(name),
                current.as_deref(),
                "HELP right after TYPE: {line}"
            );
            let f = m.families.get_mut(name).unwrap();
            assert!(f.help.is_empty(), "HELP twice: {line}");
            f.help = help.replace("\\n", "\n").replace("\\\\", "\\");
        } else {
            assert!(!line.starts_with('#'), "unknown comment: {line}");
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..end];
            assert!(valid_name(name), "sample name: {line}");
            let (labels, rest) = if line[end..].starts_with('{') {
                parse_labels(line, &line[end..])
            } else {
                (Vec::new(), line[end..].to_string())
            };
            let value = rest
                .strip_prefix(' ')
                .and_then(parse_value)
                .unwrap_or_else(|| panic!("sample value: {line}"));
            let family = family_of(name, &m.families);
            assert_eq!(
                Some(family.as_str()),
                current.as_deref(),
                "sample outside its family: {line}"
            );
            m.families.get_mut(&family).unwrap().samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
    }
    m
}

impl Metrics {
    fn family(&self, name: &str) -> &Family {
        self.families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name}; have {:?}", self.order))
    }

    /// The one sample of `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let f = self.family(&family_of(name, &self.families));
        let found: Vec<&Sample> = f
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0].value
    }

    /// The value of an unlabelled sample.
    fn one(&self, name: &str) -> f64 {
        self.get(name, &[])
    }

    /// `rabbitmq_global_*` of amqp091 classic queues.
    fn classic(&self, name: &str) -> f64 {
        self.get(
            name,
            &[
                ("protocol", "amqp091"),
                ("queue_type", "rabbit_classic_queue"),
            ],
        )
    }
}

async fn scrape(b: &TestBroker, path: &str) -> Metrics {
    let r = http::get_at(b.metrics_addr().expect("metrics endpoint"), path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    parse(&r.body)
}

async fn declare_with(ch: &Channel, name: &str, args: &[(&str, AMQPValue)]) {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert((*k).into(), v.clone());
    }
    within(
        5,
        ch.queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: args.iter().any(|(k, _)| *k == "x-queue-type"),
                ..Default::default()
            },
            t,
        ),
    )
    .await
    .expect("queue.declare");
}

async fn publish_opts(ch: &Channel, x: &str, key: &str, mandatory: bool) -> lapin::Confirmation {
    let opts = BasicPublishOptions {
        mandatory,
        ..Default::default()
    };
    let confirm = within(
        5,
        ch.basic_publish(x.into(), key.into(), opts, b"z", BasicProperties::default()),
    )
    .await
    .expect("basic.publish");
    within(10, confirm).await.expect("confirm")
}

#[tokio::test]
async fn aggregated_metrics_count_exactly_what_clients_did() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (conn, ch) = confirm_channel(&b).await;
    let x = unique("fan");
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let (q1, q2, qe) = (unique("q1"), unique("q2"), unique("qe"));
    for q in [&q1, &q2, &qe] {
        queue(&ch, q).await;
    }
    bind(&ch, &q1, &x, "").await;
    bind(&ch, &q2, &x, "").await;
    // 3 messages to 2 queues each, 1 to one queue, 1 returned, 1 dropped: 6 published,
    // 7 routed.
    for _ in 0..3 {
        publish_confirmed(&ch, &x, "", b"hello").await;
    }
    publish_confirmed(&ch, "", &q1, b"x").await;
    let nowhere = unique("nowhere");
    assert!(publish_opts(&ch, "", &nowhere, true).await.is_ack());
    assert!(publish_opts(&ch, "", &nowhere, false).await.is_ack());

    let consumer = open(&conn).await;
    within(5, consumer.basic_qos(5, BasicQosOptions::default()))
        .await
        .unwrap();
    let mut inbox = consume(&consumer, &q2, "ctag", Default::default()).await;
    let first = inbox.next().await;
    inbox.next().await;
    inbox.next().await;
    within(
        5,
        consumer.basic_ack(first.delivery_tag, Default::default()),
    )
    .await
    .unwrap();
    let auto = within(
        5,
        ch.basic_get(q1.as_str().into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .unwrap();
    assert!(auto.is_some());
    let manual = get(&ch, &q1).await.expect("a message");
    within(
        5,
        ch.basic_ack(manual.delivery.delivery_tag, Default::default()),
    )
    .await
    .unwrap();
    assert!(get(&ch, &qe).await.is_none());

    // Acks reach the broker after basic_ack returns: wait for both.
    let m = eventually(5, || async {
        let m = scrape(&b, "/metrics").await;
        (m.one("rabbitmq_channel_messages_acked_total") == 2.0).then_some(m)
    })
    .await;
    let expect = [
        ("rabbitmq_channel_messages_published_total", 6.0),
        ("rabbitmq_channel_messages_confirmed_total", 6.0),
        ("rabbitmq_channel_messages_unroutable_returned_total", 1.0),
        ("rabbitmq_channel_messages_unroutable_dropped_total", 1.0),
        ("rabbitmq_channel_get_ack_total", 1.0),
        ("rabbitmq_channel_get_total", 1.0),
        ("rabbitmq_channel_messages_delivered_ack_total", 3.0),
        ("rabbitmq_channel_messages_delivered_total", 0.0),
        ("rabbitmq_channel_messages_redelivered_total", 0.0),
        ("rabbitmq_channel_get_empty_total", 1.0),
        ("rabbitmq_channel_consumers", 1.0),
        ("rabbitmq_channel_messages_unacked", 2.0),
        ("rabbitmq_channel_messages_unconfirmed", 0.0),
        ("rabbitmq_consumer_prefetch", 5.0),
        ("rabbitmq_channel_prefetch", 0.0),
        // q1 keeps "hello" and "x"; q2 has two "hello" unacked.
        ("rabbitmq_queue_messages_ready", 2.0),
        ("rabbitmq_queue_messages_unacked", 2.0),
        ("rabbitmq_queue_messages", 4.0),
        ("rabbitmq_queue_messages_bytes", 16.0),
        ("rabbitmq_queue_messages_ready_bytes", 6.0),
        ("rabbitmq_queue_messages_unacked_bytes", 10.0),
        ("rabbitmq_queue_consumers", 1.0),
        ("rabbitmq_queue_messages_published_total", 7.0),
        ("rabbitmq_connection_channels", 2.0),
        ("rabbitmq_connections", 1.0),
        ("rabbitmq_channels", 2.0),
        ("rabbitmq_consumers", 1.0),
        ("rabbitmq_queues", 3.0),
        ("rabbitmq_connections_opened_total", 1.0),
        ("rabbitmq_connections_closed_total", 0.0),
        ("rabbitmq_channels_opened_total", 2.0),
        ("rabbitmq_channels_closed_total", 0.0),
        ("rabbitmq_queues_declared_total", 3.0),
        ("rabbitmq_queues_created_total", 3.0),
        ("rabbitmq_queues_deleted_total", 0.0),
        ("rabbitmq_process_open_tcp_sockets", 1.0),
        ("rabbitmq_alarms_memory_used_watermark", 0.0),
        ("rabbitmq_alarms_free_disk_space_watermark", 0.0),
        ("rabbitmq_alarms_file_descriptor_limit", 0.0),
    ];
    for (name, v) in expect {
        assert_eq!(m.one(name), v, "{name}");
    }
    let amqp = [("protocol", "amqp091")];
    let global = [
        ("rabbitmq_global_messages_received_total", 6.0),
        ("rabbitmq_global_messages_received_confirm_total", 6.0),
        ("rabbitmq_global_messages_routed_total", 7.0),
        ("rabbitmq_global_messages_confirmed_total", 6.0),
        ("rabbitmq_global_messages_unroutable_returned_total", 1.0),
        ("rabbitmq_global_messages_unroutable_dropped_total", 1.0),
        ("rabbitmq_global_publishers", 1.0),
        ("rabbitmq_global_consumers", 1.0),
    ];
    for (name, v) in global {
        assert_eq!(m.get(name, &amqp), v, "{name}");
    }
    let by_type = [
        ("rabbitmq_global_messages_delivered_total", 5.0),
        (
            "rabbitmq_global_messages_delivered_consume_manual_ack_total",
            3.0,
        ),
        (
            "rabbitmq_global_messages_delivered_consume_auto_ack_total",
            0.0,
        ),
        ("rabbitmq_global_messages_delivered_get_auto_ack_total", 1.0),
        (
            "rabbitmq_global_messages_delivered_get_manual_ack_total",
            1.0,
        ),
        ("rabbitmq_global_messages_acknowledged_total", 2.0),
        ("rabbitmq_global_messages_get_empty_total", 1.0),
        ("rabbitmq_global_messages_redelivered_total", 0.0),
    ];
    for (name, v) in by_type {
        assert_eq!(m.classic(name), v, "{name}");
        let quorum = [
            ("protocol", "amqp091"),
            ("queue_type", "rabbit_quorum_queue"),
        ];
        assert_eq!(m.get(name, &quorum), 0.0, "{name} of quorum queues");
    }
    assert_eq!(m.get("rabbitmq_auth_attempts_total", &amqp), 1.0);
    assert_eq!(m.get("rabbitmq_auth_attempts_succeeded_total", &amqp), 1.0);
    assert_eq!(m.get("rabbitmq_auth_attempts_failed_total", &amqp), 0.0);
    // Six bodies, all of at most 100 bytes: "hello" x3, "x", "z" x2.
    let sizes = [("protocol", "amqp091"), ("le", "100.0")];
    assert_eq!(m.get("rabbitmq_message_size_bytes_bucket", &sizes), 6.0);
    let inf = [("protocol", "amqp091"), ("le", "+Inf")];
    assert_eq!(m.get("rabbitmq_message_size_bytes_bucket", &inf), 6.0);
    assert_eq!(m.get("rabbitmq_message_size_bytes_count", &amqp), 6.0);
    assert_eq!(m.get("rabbitmq_message_size_bytes_sum", &amqp), 18.0);
    assert!(m.one("rabbitmq_process_resident_memory_bytes") > 0.0);
    assert!(m.one("rabbitmq_process_open_fds") > 0.0);
    assert!(m.one("rabbitmq_process_max_fds") >= m.one("rabbitmq_process_open_fds"));
    assert!(m.one("rabbitmq_resident_memory_limit_bytes") > 0.0);
    assert_eq!(
        m.one("rabbitmq_disk_space_available_limit_bytes"),
        50_000_000.0
    );
    assert!(m.one("rabbitmq_erlang_uptime_seconds") >= 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    let start = m.one("process_start_time_seconds");
    assert!(start <= now && start > now - 600.0, "{start}");
}

#[tokio::test]
async fn counts_of_closed_channels_and_connections_stay_in_the_totals() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    publish(&ch, "", &q, b"one").await;
    publish(&ch, "", &q, b"two").await;
    wait_ready(&ch, &q, 2).await;
    within(5, ch.close(200, "bye".into())).await.unwrap();
    let ch2 = open(&conn).await;
    publish(&ch2, "amq.direct", "nowhere", b"three").await;
    let m = eventually(5, || async {
        let m = scrape(&b, "/metrics").await;
        (m.one("rabbitmq_channel_messages_published_total") == 3.0).then_some(m)
    })
    .await;
    assert_eq!(m.one("rabbitmq_channels_closed_total"), 1.0);
    assert_eq!(m.one("rabbitmq_channels"), 1.0);
    assert_eq!(
        m.one("rabbitmq_channel_messages_unroutable_dropped_total"),
        1.0
    );

    // Per object: the live channel only, by exchange; the connection under `channel`.
    let p = scrape(&b, "/metrics/per-object").await;
    let published = &p
        .family("rabbitmq_channel_messages_published_total")
        .samples;
    assert_eq!(published.len(), 1, "{published:?}");
    let labels: HashMap<_, _> = published[0].labels.iter().cloned().collect();
    assert_eq!(labels["exchange"], "amq.direct");
    assert_eq!(labels["vhost"], "/");
    let channel = &labels["channel"];
    assert!(channel.ends_with(" (2)"), "{channel}");
    let conn_name = channel.trim_end_matches(" (2)");
    assert!(conn_name.contains(" -> "), "{conn_name}");
    let incoming = p.get(
        "rabbitmq_connection_incoming_bytes_total",
        &[("channel", conn_name)],
    );
    assert!(incoming > 0.0);
    assert_eq!(
        p.get("rabbitmq_connection_channels", &[("channel", conn_name)]),
        1.0
    );
    assert_eq!(
        p.get(
            "rabbitmq_queue_messages_ready",
            &[("vhost", "/"), ("queue", &q)]
        ),
        2.0
    );
    assert_eq!(
        p.get(
            "rabbitmq_queue_messages_published_total",
            &[("queue_vhost", "/"), ("queue", &q)]
        ),
        2.0
    );

    within(5, conn.close(200, "bye".into())).await.unwrap();
    let m = eventually(5, || async {
        let m = scrape(&b, "/metrics").await;
        (m.one("rabbitmq_connections_closed_total") == 1.0).then_some(m)
    })
    .await;
    assert_eq!(m.one("rabbitmq_connections"), 0.0);
    assert_eq!(m.one("rabbitmq_channels_closed_total"), 2.0);
    assert_eq!(m.one("rabbitmq_channel_messages_published_total"), 3.0);
    assert!(m.one("rabbitmq_connection_incoming_bytes_total") >= incoming);
    assert!(m.one("rabbitmq_connection_incoming_packets_total") > 0.0);
    let amqp = [("protocol", "amqp091")];
    assert_eq!(m.get("rabbitmq_global_messages_received_total", &amqp), 3.0);
    assert_eq!(m.get("rabbitmq_global_publishers", &amqp), 0.0);
}

#[tokio::test]
async fn deleted_queues_dead_letters_and_queue_types_are_counted() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (_conn, ch) = confirm_channel(&b).await;
    // Over x-max-length with drop-head: two messages die, dropped (no dead-letter exchange).
    let capped = unique("capped");
    declare_with(&ch, &capped, &[("x-max-length", AMQPValue::LongInt(1))]).await;
    for _ in 0..3 {
        publish_confirmed(&ch, "", &capped, b"m").await;
    }
    // Rejected without requeue from a queue with a dead-letter exchange.
    let (dl, target) = (unique("dl"), unique("target"));
    queue(&ch, &target).await;
    let s = |v: &str| AMQPValue::LongString(LongString::from(v));
    declare_with(
        &ch,
        &dl,
        &[
            ("x-dead-letter-exchange", s("")),
            ("x-dead-letter-routing-key", s(&target)),
        ],
    )
    .await;
    publish_confirmed(&ch, "", &dl, b"r").await;
    let m = get(&ch, &dl).await.expect("a message");
    within(
        5,
        ch.basic_reject(
            m.delivery.delivery_tag,
            BasicRejectOptions { requeue: false },
        ),
    )
    .await
    .unwrap();
    // A queue fetched from, then deleted: its counts stay.
    let gone = unique("gone");
    queue(&ch, &gone).await;
    publish_confirmed(&ch, "", &gone, b"g").await;
    assert!(within(
        5,
        ch.basic_get(gone.as_str().into(), BasicGetOptions { no_ack: true })
    )
    .await
    .unwrap()
    .is_some());
    within(5, ch.queue_delete(gone.as_str().into(), Default::default()))
        .await
        .unwrap();
    // A quorum queue.
    let quorum = unique("quorum");
    declare_with(&ch, &quorum, &[("x-queue-type", s("quorum"))]).await;
    publish_confirmed(&ch, "", &quorum, b"qq").await;
    assert!(within(
        5,
        ch.basic_get(quorum.as_str().into(), BasicGetOptions { no_ack: true })
    )
    .await
    .unwrap()
    .is_some());

    let strategy =
        |t: &'static str, s: &'static str| [("queue_type", t), ("dead_letter_strategy", s)];
    let m = eventually(5, || async {
        let m = scrape(&b, "/metrics").await;
        let rejected = m.get(
            "rabbitmq_global_messages_dead_lettered_rejected_total",
            &strategy("rabbit_classic_queue", "at_most_once"),
        );
        (rejected == 1.0).then_some(m)
    })
    .await;
    assert_eq!(
        m.get(
            "rabbitmq_global_messages_dead_lettered_maxlen_total",
            &strategy("rabbit_classic_queue", "disabled")
        ),
        2.0
    );
    assert_eq!(
        m.get(
            "rabbitmq_global_messages_dead_lettered_maxlen_total",
            &strategy("rabbit_classic_queue", "at_most_once")
        ),
        0.0
    );
    assert_eq!(
        m.get(
            "rabbitmq_global_messages_dead_lettered_expired_total",
            &strategy("rabbit_quorum_queue", "at_least_once")
        ),
        0.0
    );
    assert_eq!(
        m.classic("rabbitmq_global_messages_delivered_get_auto_ack_total"),
        1.0
    );
    assert_eq!(
        m.classic("rabbitmq_global_messages_delivered_get_manual_ack_total"),
        1.0
    );
    let quorum_type = [
        ("protocol", "amqp091"),
        ("queue_type", "rabbit_quorum_queue"),
    ];
    assert_eq!(
        m.get(
            "rabbitmq_global_messages_delivered_get_auto_ack_total",
            &quorum_type
        ),
        1.0
    );
    assert_eq!(m.one("rabbitmq_queues_deleted_total"), 1.0);
    // 3 + 1 + 1 + 1 publishes reached queues (the dead-lettered message is not a publish).
    assert_eq!(m.one("rabbitmq_queue_messages_published_total"), 6.0);
    assert_eq!(
        m.get(
            "rabbitmq_global_messages_routed_total",
            &[("protocol", "amqp091")]
        ),
        6.0
    );
    let p = scrape(&b, "/metrics/per-object").await;
    let arrived = [("queue_vhost", "/"), ("queue", target.as_str())];
    assert_eq!(
        p.get("rabbitmq_queue_messages_published_total", &arrived),
        1.0
    );

    // Expired: dropped from a queue without a dead-letter exchange, on time.
    let ttl = unique("ttl");
    declare_with(&ch, &ttl, &[("x-message-ttl", AMQPValue::LongInt(1))]).await;
    publish_confirmed(&ch, "", &ttl, b"t").await;
    publish_confirmed(&ch, "", &ttl, b"t").await;
    let expired = strategy("rabbit_classic_queue", "disabled");
    eventually(5, || async {
        let m = scrape(&b, "/metrics").await;
        let n = m.get(
            "rabbitmq_global_messages_dead_lettered_expired_total",
            &expired,
        );
        (n == 2.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn text_format_headers_and_help_as_rabbitmq_without_authentication() {
    let b = TestBroker::start().await;
    let Some(addr) = b.metrics_addr() else {
        return;
    };
    let r = http::get_at(addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.headers
    );
    assert!(
        r.headers.contains("content-encoding: identity"),
        "{}",
        r.headers
    );
    assert!(!r.headers.contains("www-authenticate"));
    // Lines exactly as RabbitMQ 3.10.8 writes them.
    for lines in [
        "# TYPE rabbitmq_connections gauge\n# HELP rabbitmq_connections Connections currently open\n",
        "# TYPE rabbitmq_channel_messages_published_total counter\n# HELP rabbitmq_channel_messages_published_total Total number of messages published into an exchange on a channel\n",
        "# TYPE rabbitmq_queue_messages_ready gauge\n# HELP rabbitmq_queue_messages_ready Messages ready to be delivered to consumers\n",
        "# TYPE rabbitmq_build_info untyped\n# HELP rabbitmq_build_info RabbitMQ & Erlang/OTP version info\n",
        "# TYPE rabbitmq_identity_info untyped\n# HELP rabbitmq_identity_info RabbitMQ node & cluster identity info\n",
        "# TYPE rabbitmq_global_messages_routed_total counter\n# HELP rabbitmq_global_messages_routed_total Total number of messages routed to queues or streams\n",
        "# TYPE rabbitmq_alarms_memory_used_watermark untyped\n# HELP rabbitmq_alarms_memory_used_watermark is 1 if VM memory watermark alarm is in effect\n",
        "# TYPE rabbitmq_resident_memory_limit_bytes gauge\n# HELP rabbitmq_resident_memory_limit_bytes Memory high watermark in bytes\n",
        "# TYPE process_start_time_seconds gauge\n# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n",
    ] {
        assert!(r.body.contains(lines), "missing:\n{lines}");
    }
    let m = parse(&r.body);
    // Erlang internals are not pretended.
    assert!(!m.order.iter().any(|f| f.starts_with("erlang_")));
    // Everything RabbitMQ's Overview dashboards (3.10 and 4.1) query is there.
    for name in [
        "rabbitmq_build_info",
        "rabbitmq_identity_info",
        "rabbitmq_channel_consumers",
        "rabbitmq_channels",
        "rabbitmq_channels_closed_total",
        "rabbitmq_channels_opened_total",
        "rabbitmq_connections",
        "rabbitmq_connections_closed_total",
        "rabbitmq_connections_opened_total",
        "rabbitmq_consumers",
        "rabbitmq_disk_space_available_bytes",
        "rabbitmq_disk_space_available_limit_bytes",
        "rabbitmq_erlang_uptime_seconds",
        "rabbitmq_global_consumers",
        "rabbitmq_global_messages_acknowledged_total",
        "rabbitmq_global_messages_confirmed_total",
        "rabbitmq_global_messages_delivered_consume_auto_ack_total",
        "rabbitmq_global_messages_delivered_consume_manual_ack_total",
        "rabbitmq_global_messages_delivered_get_auto_ack_total",
        "rabbitmq_global_messages_delivered_get_manual_ack_total",
        "rabbitmq_global_messages_delivered_total",
        "rabbitmq_global_messages_get_empty_total",
        "rabbitmq_global_messages_received_confirm_total",
        "rabbitmq_global_messages_received_total",
        "rabbitmq_global_messages_redelivered_total",
        "rabbitmq_global_messages_routed_total",
        "rabbitmq_global_messages_unroutable_dropped_total",
        "rabbitmq_global_messages_unroutable_returned_total",
        "rabbitmq_global_publishers",
        "rabbitmq_message_size_bytes",
        "rabbitmq_process_max_fds",
        "rabbitmq_process_max_tcp_sockets",
        "rabbitmq_process_open_fds",
        "rabbitmq_process_open_tcp_sockets",
        "rabbitmq_process_resident_memory_bytes",
        "rabbitmq_queue_messages_ready",
        "rabbitmq_queue_messages_unacked",
        "rabbitmq_queues",
        "rabbitmq_queues_created_total",
        "rabbitmq_queues_declared_total",
        "rabbitmq_queues_deleted_total",
        "rabbitmq_resident_memory_limit_bytes",
    ] {
        assert!(!m.family(name).samples.is_empty(), "{name} has a sample");
    }
    assert_eq!(m.family("rabbitmq_message_size_bytes").kind, "histogram");
    assert_eq!(
        m.family("rabbitmq_channel_get_empty_total").help,
        "Total number of times basic.get operations fetched no message"
    );
    // Every endpoint parses; unknown registries and paths are 404s as in RabbitMQ.
    parse(&http::get_at(addr, "/metrics/per-object").await.body);
    let all = format!("/metrics/detailed?family={}", FAMILIES.join("&family="));
    parse(&http::get_at(addr, &all).await.body);
    let r = http::get_at(addr, "/metrics/nope").await;
    assert_eq!((r.status, r.body.as_str()), (404, "Unknown Registry"));
    let r = http::get_at(addr, "/").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        r#"{"error":"Object Not Found","reason":"Not Found"}"#
    );
}

/// Every family `/metrics/detailed` knows (RabbitMQ's names).
const FAMILIES: &[&str] = &[
    "connection_churn_metrics",
    "node_coarse_metrics",
    "node_metrics",
    "auth_attempt_metrics",
    "queue_coarse_metrics",
    "queue_consumer_count",
    "queue_metrics",
    "channel_metrics",
    "channel_exchange_metrics",
    "channel_queue_metrics",
    "connection_coarse_metrics",
    "connection_metrics",
    "channel_queue_exchange_metrics",
    "vhost_status",
    "exchange_bindings",
    "exchange_names",
];

#[tokio::test]
async fn detailed_families_and_the_vhost_filter() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker() else {
        return;
    };
    broker.add_vhost("other").unwrap();
    broker
        .set_permissions("guest", "other", ".*", ".*", ".*")
        .unwrap();
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let (here, there) = (unique("here"), unique("there"));
    queue(&ch, &here).await;
    publish(&ch, "", &here, b"1").await;
    wait_ready(&ch, &here, 1).await;
    let other =
        lapin::Connection::connect(&b.url_for("guest", "guest", "other"), Default::default())
            .await
            .unwrap();
    let och = open(&other).await;
    queue(&och, &there).await;
    within(
        5,
        och.exchange_declare(
            "ox".into(),
            ExchangeKind::Topic,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();

    let m = scrape(
        &b,
        "/metrics/detailed?family=queue_coarse_metrics&vhost=other",
    )
    .await;
    assert_eq!(
        m.order,
        [
            "rabbitmq_detailed_queue_messages_ready",
            "rabbitmq_detailed_queue_messages_unacked",
            "rabbitmq_detailed_queue_messages",
            "rabbitmq_build_info",
            "rabbitmq_identity_info",
        ]
    );
    let ready = &m.family("rabbitmq_detailed_queue_messages_ready").samples;
    assert_eq!(ready.len(), 1, "{ready:?}");
    assert_eq!(
        ready[0].labels,
        [
            ("vhost".to_string(), "other".to_string()),
            ("queue".to_string(), there.clone())
        ]
    );
    assert_eq!(
        m.get(
            "rabbitmq_identity_info",
            &[("rabbitmq_endpoint", "detailed")]
        ),
        1.0
    );

    // Without the filter, both vhosts; several families in one scrape.
    let m = scrape(
        &b,
        "/metrics/detailed?family=queue_consumer_count&family=vhost_status&family=exchange_names&vhost=%2F&vhost=other",
    )
    .await;
    assert_eq!(
        m.get(
            "rabbitmq_detailed_queue_consumers",
            &[("vhost", "/"), ("queue", &here)]
        ),
        0.0
    );
    assert_eq!(
        m.family("rabbitmq_detailed_queue_consumers").samples.len(),
        2
    );
    assert_eq!(
        m.get("rabbitmq_cluster_vhost_status", &[("vhost", "other")]),
        1.0
    );
    assert_eq!(
        m.get(
            "rabbitmq_cluster_exchange_name",
            &[("vhost", "other"), ("exchange", "ox"), ("type", "topic")]
        ),
        1.0
    );
    // The default exchange is not enumerated.
    assert!(!m
        .family("rabbitmq_cluster_exchange_name")
        .samples
        .iter()
        .any(|s| s
            .labels
            .iter()
            .any(|(k, v)| k == "exchange" && v.is_empty())));

    // queue_metrics includes queue_consumer_count's metric: written once.
    let m = scrape(
        &b,
        "/metrics/detailed?family=queue_metrics&family=queue_consumer_count",
    )
    .await;
    assert_eq!(
        m.order
            .iter()
            .filter(|f| *f == "rabbitmq_detailed_queue_consumers")
            .count(),
        1
    );
    assert_eq!(
        m.get(
            "rabbitmq_detailed_queue_messages_bytes",
            &[("vhost", "/"), ("queue", &here)]
        ),
        1.0
    );

    // Other families, detailed names; an unknown family adds nothing.
    let m = scrape(
        &b,
        "/metrics/detailed?family=connection_churn_metrics&family=channel_metrics&family=bogus",
    )
    .await;
    assert_eq!(m.one("rabbitmq_detailed_connections_opened_total"), 2.0);
    assert_eq!(
        m.family("rabbitmq_detailed_channel_consumers")
            .samples
            .len(),
        2
    );
    assert!(!m.order.iter().any(|f| f.starts_with("rabbitmq_global_")));
    let m = scrape(&b, "/metrics/detailed").await;
    assert_eq!(m.order, ["rabbitmq_build_info", "rabbitmq_identity_info"]);
}

#[tokio::test]
async fn identity_info_names_the_node_and_keeps_the_cluster_id_across_restarts() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker() else {
        return;
    };
    let port = b.metrics_addr().unwrap().port();
    assert!(
        broker.listeners().contains(&("http/prometheus", port)),
        "{:?}",
        broker.listeners()
    );
    let identity = |m: &Metrics| -> HashMap<String, String> {
        let f = m.family("rabbitmq_identity_info");
        assert_eq!(f.samples.len(), 1);
        assert_eq!(f.samples[0].value, 1.0);
        f.samples[0].labels.iter().cloned().collect()
    };
    let m = scrape(&b, "/metrics").await;
    let first = identity(&m);
    let node = warren::broker::node_name();
    assert_eq!(first["rabbitmq_node"], node);
    assert_eq!(first["rabbitmq_cluster"], node);
    assert_eq!(first["rabbitmq_endpoint"], "aggregated");
    let id = &first["rabbitmq_cluster_permanent_id"];
    let suffix = id.strip_prefix("rabbitmq-cluster-id-").expect(id);
    assert_eq!(suffix.len(), 22, "{id}");
    assert!(suffix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    let build: HashMap<String, String> = m.family("rabbitmq_build_info").samples[0]
        .labels
        .iter()
        .cloned()
        .collect();
    assert_eq!(build["rabbitmq_version"], warren::mgmt::VERSION);
    assert!(build.contains_key("erlang_version"));
    let p = scrape(&b, "/metrics/per-object").await;
    assert_eq!(identity(&p)["rabbitmq_endpoint"], "per-object");

    let b = b.restart().await;
    let again = identity(&scrape(&b, "/metrics").await);
    assert_eq!(&again["rabbitmq_cluster_permanent_id"], id);
}

#[tokio::test]
async fn deleting_a_vhost_keeps_its_counts_in_the_totals() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker() else {
        return;
    };
    broker.add_vhost("doomed").unwrap();
    broker
        .set_permissions("guest", "doomed", ".*", ".*", ".*")
        .unwrap();
    let conn =
        lapin::Connection::connect(&b.url_for("guest", "guest", "doomed"), Default::default())
            .await
            .unwrap();
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    publish(&ch, "", &q, b"1").await;
    publish(&ch, "", &q, b"2").await;
    within(5, ch.close(200, "bye".into())).await.unwrap();
    let before = eventually(5, || async {
        let m = scrape(&b, "/metrics").await;
        let done = m.one("rabbitmq_channels_closed_total") == 1.0
            && m.one("rabbitmq_queue_messages_ready") == 2.0;
        done.then_some(m)
    })
    .await;
    assert!(broker.delete_vhost("doomed").unwrap());
    let after = scrape(&b, "/metrics").await;
    let amqp = [("protocol", "amqp091")];
    for name in [
        "rabbitmq_channel_messages_published_total",
        "rabbitmq_queue_messages_published_total",
        "rabbitmq_queues_declared_total",
        "rabbitmq_queues_created_total",
    ] {
        assert_eq!(after.one(name), before.one(name), "{name}");
        assert!(after.one(name) > 0.0, "{name}");
    }
    assert_eq!(
        after.get("rabbitmq_global_messages_received_total", &amqp),
        2.0
    );
    assert_eq!(after.one("rabbitmq_queues_deleted_total"), 1.0);
    assert_eq!(after.one("rabbitmq_queue_messages_ready"), 0.0);
    assert_eq!(after.one("rabbitmq_queues"), 0.0);
}
