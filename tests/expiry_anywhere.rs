//! Message expiry anywhere in a queue (a warren extension: RabbitMQ only expires messages at
//! the head): an expired message is never delivered, even behind a message that does not
//! expire, and it leaves on time (dead-lettered with reason `expired`), so its space comes
//! back without waiting for what is ahead of it.

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

fn ttl(ms: u32) -> BasicProperties {
    BasicProperties::default().with_expiration(ms.to_string().into())
}

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

#[tokio::test]
async fn a_buried_expired_message_is_dead_lettered_on_time_and_never_delivered() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let (x, dlq) = dlx(&ch).await;
    let q = unique("buried");
    declare(&ch, &q, &[("x-dead-letter-exchange", s(&x))]).await;
    publish(&ch, "", &q, b"first").await;
    publish_with(&ch, "", &q, b"short", ttl(100)).await;
    publish_with(&ch, "", &q, b"long", ttl(60_000)).await;
    publish_with(&ch, "", &q, b"shorter", ttl(50)).await;
    publish(&ch, "", &q, b"last").await;
    // Both short ones leave while "first" (no TTL) stays at the head.
    wait_ready(&ch, &dlq, 2).await;
    let dead: Vec<Vec<u8>> = drain(&ch, &dlq).await;
    assert_eq!(dead, [b"shorter".to_vec(), b"short".to_vec()]);
    assert_eq!(counts(&ch, &q).await.0, 3);
    assert_eq!(
        drain(&ch, &q).await,
        [b"first".to_vec(), b"long".to_vec(), b"last".to_vec()]
    );
}

#[tokio::test]
async fn an_expired_message_is_skipped_by_consumers_and_basic_get() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("skip");
    declare(&ch, &q, &[("x-message-ttl", AMQPValue::LongInt(60_000))]).await;
    publish(&ch, "", &q, b"a").await;
    publish_with(&ch, "", &q, b"gone1", ttl(30)).await;
    publish(&ch, "", &q, b"b").await;
    publish_with(&ch, "", &q, b"gone2", ttl(30)).await;
    publish(&ch, "", &q, b"c").await;
    wait_ready(&ch, &q, 3).await;
    assert_eq!(get(&ch, &q).await.unwrap().delivery.data, b"a");
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
    assert_eq!(inbox.next().await.data, b"b");
    assert_eq!(inbox.next().await.data, b"c");
}

#[tokio::test]
async fn expired_messages_behind_a_long_lived_one_free_their_space() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("reclaim");
    declare(&ch, &q, &[("x-max-priority", AMQPValue::LongInt(5))]).await;
    publish_with(&ch, "", &q, b"keeper", ttl(60_000)).await;
    for i in 0..200u32 {
        let props = ttl(50 + i % 50).with_priority((i % 3) as u8);
        publish_with(&ch, "", &q, &[0u8; 1024], props).await;
    }
    wait_ready(&ch, &q, 1).await;
    assert_eq!(drain(&ch, &q).await, [b"keeper".to_vec()]);
}
