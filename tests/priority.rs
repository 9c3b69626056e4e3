//! Priority queues (`x-max-priority`), as RabbitMQ's classic queues have them: a message with
//! a higher `priority` is delivered first, a priority above the maximum counts as the maximum,
//! no priority is 0, FIFO within a priority, and a requeued message goes back to its place in
//! its priority. Paged-out and recovered messages keep their priority order.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use support::*;

fn table(args: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert((*k).into(), v.clone());
    }
    t
}

async fn declare(ch: &Channel, name: &str, durable: bool, args: &[(&str, AMQPValue)]) {
    let opts = QueueDeclareOptions {
        durable,
        ..Default::default()
    };
    within(5, ch.queue_declare(name.into(), opts, table(args)))
        .await
        .expect("queue.declare");
}

fn prio(p: Option<u8>) -> BasicProperties {
    match p {
        Some(p) => BasicProperties::default().with_priority(p),
        None => BasicProperties::default(),
    }
}

fn bodies(v: Vec<Vec<u8>>) -> Vec<String> {
    v.into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

#[tokio::test]
async fn higher_priority_first_fifo_within_a_priority_above_max_counts_as_max() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("prio");
    declare(
        &ch,
        &q,
        false,
        &[("x-max-priority", AMQPValue::ShortShortUInt(10))],
    )
    .await;
    let msgs: [(&str, Option<u8>); 9] = [
        ("none", None),
        ("p1", Some(1)),
        ("p5a", Some(5)),
        ("p10", Some(10)),
        ("p5b", Some(5)),
        ("p200", Some(200)),
        ("p0", Some(0)),
        ("p3", Some(3)),
        ("none2", None),
    ];
    for (body, p) in msgs {
        publish_with(&ch, "", &q, body.as_bytes(), prio(p)).await;
    }
    wait_ready(&ch, &q, 9).await;
    // A consumer sees the same order as basic.get.
    let mut inbox = consume(
        &ch,
        &q,
        "c",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..9 {
        got.push(String::from_utf8(inbox.next().await.data).unwrap());
    }
    assert_eq!(
        got,
        ["p10", "p200", "p5a", "p5b", "p3", "p1", "none", "p0", "none2"]
    );
    // The priority property is delivered as published.
    publish_with(&ch, "", &q, b"x", prio(Some(200))).await;
    assert_eq!(inbox.next().await.properties.priority(), &Some(200));
}

#[tokio::test]
async fn requeued_messages_go_back_to_their_place_within_their_priority() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("prio-requeue");
    declare(&ch, &q, false, &[("x-max-priority", AMQPValue::LongInt(9))]).await;
    for (body, p) in [("a", 5), ("b", 5), ("c", 1)] {
        publish_with(&ch, "", &q, body.as_bytes(), prio(Some(p))).await;
    }
    wait_ready(&ch, &q, 3).await;
    let a = get(&ch, &q).await.unwrap();
    let bm = get(&ch, &q).await.unwrap();
    assert_eq!(
        (a.delivery.data.as_slice(), bm.delivery.data.as_slice()),
        (&b"a"[..], &b"b"[..])
    );
    publish_with(&ch, "", &q, b"d", prio(Some(9))).await;
    publish_with(&ch, "", &q, b"e", prio(Some(5))).await;
    wait_ready(&ch, &q, 3).await;
    for m in [bm, a] {
        within(
            5,
            m.delivery.acker.nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            }),
        )
        .await
        .unwrap();
    }
    wait_ready(&ch, &q, 5).await;
    let mut order = Vec::new();
    while let Some(m) = get(&ch, &q).await {
        order.push((
            String::from_utf8(m.delivery.data.clone()).unwrap(),
            m.delivery.redelivered,
        ));
        within(5, m.delivery.acker.ack(BasicAckOptions::default()))
            .await
            .unwrap();
    }
    let want = [
        ("d", false),
        ("a", true),
        ("b", true),
        ("e", false),
        ("c", false),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(s, r)| (s.to_string(), *r)).collect();
    assert_eq!(order, want);
}

#[tokio::test]
async fn without_x_max_priority_or_with_0_the_priority_property_is_ignored() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    for args in [vec![], vec![("x-max-priority", AMQPValue::LongInt(0))]] {
        let q = unique("fifo");
        declare(&ch, &q, false, &args).await;
        for (body, p) in [("a", None), ("b", Some(9)), ("c", Some(1))] {
            publish_with(&ch, "", &q, body.as_bytes(), prio(p)).await;
        }
        wait_ready(&ch, &q, 3).await;
        assert_eq!(bodies(drain(&ch, &q).await), ["a", "b", "c"], "{args:?}");
    }
}

fn body(i: u32) -> Vec<u8> {
    let mut v = format!("m{i:04}-").into_bytes();
    v.resize(2048, b'x');
    v
}

/// The order a priority queue with maximum 3 gives messages `i` with priority `i % 5`.
fn expected(n: u32) -> Vec<Vec<u8>> {
    let mut ids: Vec<u32> = (0..n).collect();
    ids.sort_by_key(|i| (std::cmp::Reverse((i % 5).min(3)), *i));
    ids.into_iter().map(body).collect()
}

#[tokio::test]
async fn paged_out_priority_messages_come_back_in_priority_order() {
    const BUDGET: u64 = 64 * 1024;
    let b = TestBroker::start_with(|c| {
        c.storage.memory_budget = BUDGET;
        c.storage.transient_budget = BUDGET;
    })
    .await;
    let ch = open(&b.connect().await).await;
    declare(
        &ch,
        "deep-prio",
        true,
        &[("x-max-priority", AMQPValue::LongInt(3))],
    )
    .await;
    let n = 300u32;
    for i in 0..n {
        let props = prio(Some((i % 5) as u8)).with_delivery_mode(if i % 2 == 0 { 2 } else { 1 });
        publish_with(&ch, "", "deep-prio", &body(i), props).await;
    }
    wait_ready(&ch, "deep-prio", n).await;
    let paged = b
        .broker()
        .unwrap()
        .vhost("/")
        .unwrap()
        .queue("deep-prio")
        .unwrap()
        .paged_out();
    assert!(paged > 150, "only {paged} paged out");
    assert_eq!(drain(&ch, "deep-prio").await, expected(n));
}

#[tokio::test]
async fn a_durable_priority_queue_recovers_its_messages_in_priority_order() {
    // A small budget: most bodies stay on disk at recovery, their priority read alone.
    let b = TestBroker::start_with(|c| c.storage.memory_budget = 32 * 1024).await;
    let (conn, ch) = confirm_channel(&b).await;
    declare(
        &ch,
        "prio-durable",
        true,
        &[("x-max-priority", AMQPValue::LongInt(3))],
    )
    .await;
    let n = 100u32;
    for i in 0..n {
        let props = prio(Some((i % 5) as u8)).with_delivery_mode(2);
        publish_confirmed_with(&ch, "", "prio-durable", &body(i), props).await;
    }
    drop(conn);
    let b = b.restart().await;
    let ch = open(&b.connect().await).await;
    wait_ready(&ch, "prio-durable", n).await;
    assert_eq!(drain(&ch, "prio-durable").await, expected(n));
}
