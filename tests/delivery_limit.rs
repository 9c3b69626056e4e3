//! Delivery limits (`x-delivery-limit`) on any queue type, with RabbitMQ 4.3's quorum queue
//! semantics: every return counts in `x-acquired-count`; a failed delivery (basic.reject with
//! requeue, or the channel closing with it unsettled) also counts in `x-delivery-count`; a
//! message with more failed deliveries than the limit is dead-lettered with reason
//! `delivery_limit` (or dropped). basic.nack with requeue does not count as failed.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel};
use support::*;

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

async fn declare(ch: &Channel, name: &str, args: &[(&str, AMQPValue)]) {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert((*k).into(), v.clone());
    }
    within(
        5,
        ch.queue_declare(name.into(), QueueDeclareOptions::default(), t),
    )
    .await
    .expect("queue.declare");
}

/// A fanout dead-letter exchange feeding a fresh queue; returns (exchange, queue).
async fn dlx(ch: &Channel) -> (String, String) {
    let x = unique("dlx");
    let q = unique("dlq");
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            lapin::ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    queue(ch, &q).await;
    bind(ch, &q, &x, "").await;
    (x, q)
}

fn header(p: &BasicProperties, key: &str) -> Option<AMQPValue> {
    p.headers()
        .as_ref()
        .and_then(|h| h.inner().get(key).cloned())
}

/// (x-acquired-count, x-delivery-count) of a delivery.
fn counts_of(p: &BasicProperties) -> (Option<AMQPValue>, Option<AMQPValue>) {
    (header(p, "x-acquired-count"), header(p, "x-delivery-count"))
}

fn long(n: i64) -> Option<AMQPValue> {
    Some(AMQPValue::LongLongInt(n))
}

async fn get_eventually(ch: &Channel, q: &str) -> lapin::message::BasicGetMessage {
    let (ch, q) = (ch.clone(), q.to_string());
    eventually(5, move || {
        let (ch, q) = (ch.clone(), q.clone());
        async move { get(&ch, &q).await }
    })
    .await
}

async fn reject(m: &lapin::message::BasicGetMessage) {
    within(
        5,
        m.delivery
            .acker
            .reject(BasicRejectOptions { requeue: true }),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn rejected_beyond_the_limit_the_message_is_dead_lettered_with_reason_delivery_limit() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let (x, dlq) = dlx(&ch).await;
    let q = unique("limited");
    declare(
        &ch,
        &q,
        &[
            ("x-delivery-limit", AMQPValue::LongInt(2)),
            ("x-dead-letter-exchange", s(&x)),
        ],
    )
    .await;
    let mut h = FieldTable::default();
    h.insert("app".into(), s("kept"));
    publish_with(
        &ch,
        "",
        &q,
        b"poison",
        BasicProperties::default().with_headers(h),
    )
    .await;
    // Delivered limit + 1 = 3 times, each redelivery counting the failures before it.
    for n in 0..3i64 {
        let m = get_eventually(&ch, &q).await;
        assert_eq!(m.delivery.redelivered, n > 0);
        let p = &m.delivery.properties;
        if n == 0 {
            assert_eq!(counts_of(p), (None, None), "no count on the first delivery");
        } else {
            assert_eq!(counts_of(p), (long(n), long(n)));
        }
        assert_eq!(header(p, "app"), Some(s("kept")));
        reject(&m).await;
    }
    let d = get_eventually(&ch, &dlq).await;
    assert_eq!(d.delivery.data, b"poison");
    let p = &d.delivery.properties;
    assert_eq!(header(p, "x-first-death-reason"), Some(s("delivery_limit")));
    let Some(AMQPValue::FieldArray(deaths)) = header(p, "x-death") else {
        panic!("no x-death in {p:?}");
    };
    let AMQPValue::FieldTable(death) = &deaths.as_slice()[0] else {
        panic!("x-death {deaths:?}");
    };
    assert_eq!(death.inner().get("reason"), Some(&s("delivery_limit")));
    assert_eq!(death.inner().get("queue"), Some(&s(&q)));
    assert_eq!(death.inner().get("count"), Some(&AMQPValue::LongLongInt(1)));
    assert_eq!(counts(&ch, &q).await.0, 0);
}

#[tokio::test]
async fn a_nack_with_requeue_is_not_a_failed_delivery() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("nacked");
    declare(&ch, &q, &[("x-delivery-limit", AMQPValue::LongInt(0))]).await;
    publish(&ch, "", &q, b"again").await;
    for n in 0..5i64 {
        let m = get_eventually(&ch, &q).await;
        let want = if n == 0 {
            (None, None)
        } else {
            (long(n), None)
        };
        assert_eq!(counts_of(&m.delivery.properties), want);
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
    // One failed delivery exceeds a limit of 0: the message is dropped (no dead-letter
    // exchange).
    let m = get_eventually(&ch, &q).await;
    assert_eq!(counts_of(&m.delivery.properties), (long(5), None));
    reject(&m).await;
    wait_ready(&ch, &q, 0).await;
    assert!(get(&ch, &q).await.is_none());
}

#[tokio::test]
async fn a_closed_channel_is_a_failed_delivery() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("closed");
    declare(&ch, &q, &[("x-delivery-limit", AMQPValue::LongInt(1))]).await;
    publish(&ch, "", &q, b"m").await;
    for n in 0..2i64 {
        let c = open(&conn).await;
        let mut inbox = consume(&c, &q, "c", BasicConsumeOptions::default()).await;
        let d = inbox.next().await;
        let want = if n == 0 {
            (None, None)
        } else {
            (long(n), long(n))
        };
        assert_eq!(counts_of(&d.properties), want);
        within(5, c.close(200, "bye".into())).await.unwrap();
    }
    // Two failed deliveries exceed the limit of 1.
    wait_ready(&ch, &q, 0).await;
}

#[tokio::test]
async fn a_queue_without_a_delivery_limit_adds_no_headers() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("plain");
    declare(&ch, &q, &[]).await;
    publish(&ch, "", &q, b"m").await;
    for _ in 0..3 {
        let m = get_eventually(&ch, &q).await;
        assert_eq!(m.delivery.properties.headers(), &None);
        reject(&m).await;
    }
}
