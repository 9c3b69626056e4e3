//! Bounded memory: beyond the memory budget, persistent messages of durable queues keep only
//! a small index in RAM and their bodies are read back from the store when delivered.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use support::*;

const BUDGET: u64 = 64 * 1024;

fn paged_out(b: &TestBroker, queue: &str) -> usize {
    b.broker()
        .unwrap()
        .vhost("/")
        .unwrap()
        .queue(queue)
        .unwrap()
        .paged_out()
}

fn body(i: u32) -> Vec<u8> {
    let mut v = format!("message-{i}-").into_bytes();
    v.resize(1024, b'x');
    v
}

/// Declare the durable queue "deep" and publish `body(i)` with `props(i)` for each i in
/// `0..n`, pipelined, then wait for every confirm.
async fn fill(
    b: &TestBroker,
    n: u32,
    props: impl Fn(u32) -> BasicProperties,
) -> (lapin::Connection, Channel) {
    let (conn, ch) = confirm_channel(b).await;
    let opts = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(
        5,
        ch.queue_declare("deep".into(), opts, FieldTable::default()),
    )
    .await
    .unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let c = ch
            .basic_publish(
                "".into(),
                "deep".into(),
                BasicPublishOptions::default(),
                &body(i),
                props(i),
            )
            .await
            .unwrap();
        pending.push(c);
    }
    for c in pending {
        assert!(within(30, c).await.unwrap().is_ack());
    }
    (conn, ch)
}

#[tokio::test]
async fn deep_queue_pages_bodies_out_and_delivers_them_intact_in_order() {
    let b = TestBroker::start_with(|c| c.storage.memory_budget = BUDGET).await;
    let mut headers = FieldTable::default();
    headers.insert("k".into(), AMQPValue::LongInt(7));
    let persistent = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers);
    // Every tenth message is transient: it stays in memory, in its place.
    let props = |i: u32| {
        if i.is_multiple_of(10) {
            BasicProperties::default()
        } else {
            persistent.clone()
        }
    };
    let (_conn, ch) = fill(&b, 500, props).await;

    let paged = paged_out(&b, "deep");
    assert!(
        paged > 300,
        "only {paged} of 450 persistent bodies paged out with a 64 KiB budget"
    );
    // Transient bodies cannot be paged out: they count on top of the budget.
    let used = b.broker().unwrap().store.budget().used();
    assert!(
        used <= BUDGET + 50 * 1024,
        "{used} bytes held against a budget of {BUDGET}"
    );

    for i in 0..500u32 {
        let m = get(&ch, "deep")
            .await
            .unwrap_or_else(|| panic!("message {i} missing"));
        assert_eq!(m.delivery.data, body(i), "message {i}");
        assert_eq!(m.delivery.properties, props(i));
        within(5, m.delivery.acker.ack(BasicAckOptions::default()))
            .await
            .unwrap();
    }
    assert!(get(&ch, "deep").await.is_none());
    assert_eq!(b.broker().unwrap().store.budget().used(), 0);
}

#[tokio::test]
async fn recovery_of_a_deep_queue_stays_within_the_budget() {
    let b = TestBroker::start_with(|c| c.storage.memory_budget = BUDGET).await;
    drop(
        fill(&b, 300, |_| {
            BasicProperties::default().with_delivery_mode(2)
        })
        .await,
    );
    let b = b.restart().await;
    assert!(b.broker().unwrap().store.budget().used() <= BUDGET);
    assert!(paged_out(&b, "deep") > 200);
    let ch = open(&b.connect().await).await;
    let got = drain(&ch, "deep").await;
    assert_eq!(got, (0..300u32).map(body).collect::<Vec<_>>());
}
