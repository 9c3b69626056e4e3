//! basic.consume and basic.qos: prefetch, round-robin, cancel, exclusive consumers.

mod common;
mod support;

use common::*;
use lapin::{options::*, types::FieldTable};
use support::*;

async fn filled(ch: &lapin::Channel, n: u8) -> String {
    let q = unique("q");
    queue(ch, &q).await;
    for i in 0..n {
        publish(ch, "", &q, &[i]).await;
    }
    wait_ready(ch, &q, n as u32).await;
    q
}

#[tokio::test]
async fn prefetch_limits_unacked_deliveries_per_consumer() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 5).await;
    let c = open(&conn).await;
    within(5, c.basic_qos(2, Default::default())).await.unwrap();
    let mut inbox = consume(&c, &q, "", Default::default()).await;
    let d0 = inbox.next().await;
    let d1 = inbox.next().await;
    assert_eq!(
        (d0.data.as_slice(), d1.data.as_slice()),
        (&[0u8][..], &[1u8][..])
    );
    // The queue holds back the rest: three stay ready.
    wait_ready(&ch, &q, 3).await;
    assert_eq!(inbox.ready(), 0);
    d0.ack(Default::default()).await.unwrap();
    assert_eq!(inbox.next().await.data, [2]);
    wait_ready(&ch, &q, 2).await;
    // A multiple ack frees two slots at once.
    within(5, c.basic_ack(3, BasicAckOptions { multiple: true }))
        .await
        .unwrap();
    assert_eq!(inbox.next().await.data, [3]);
    assert_eq!(inbox.next().await.data, [4]);
}

#[tokio::test]
async fn per_consumer_prefetch_applies_to_each_consumer() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 6).await;
    let c = open(&conn).await;
    within(5, c.basic_qos(1, Default::default())).await.unwrap();
    let mut a = consume(&c, &q, "a", Default::default()).await;
    let mut z = consume(&c, &q, "z", Default::default()).await;
    a.next().await;
    z.next().await;
    wait_ready(&ch, &q, 4).await;
    assert_eq!((a.ready(), z.ready()), (0, 0));
}

#[tokio::test]
async fn global_prefetch_limits_the_whole_channel() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 6).await;
    let c = open(&conn).await;
    within(5, c.basic_qos(3, BasicQosOptions { global: true }))
        .await
        .unwrap();
    let mut a = consume(&c, &q, "a", Default::default()).await;
    let mut z = consume(&c, &q, "z", Default::default()).await;
    // Three deliveries in all, shared between the two consumers.
    wait_ready(&ch, &q, 3).await;
    let mut n = 0;
    eventually(5, || {
        n += a.ready() + z.ready();
        std::future::ready((n == 3).then_some(()))
    })
    .await;
}

#[tokio::test]
async fn round_robin_between_consumers() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let c = open(&conn).await;
    let noack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let mut a = consume(&c, &q, "a", noack).await;
    let mut z = consume(&c, &q, "z", noack).await;
    for i in 0..6u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    let mut got_a = Vec::new();
    let mut got_z = Vec::new();
    for _ in 0..3 {
        got_a.push(a.next().await.data[0]);
        got_z.push(z.next().await.data[0]);
    }
    assert_eq!(got_a.len() + got_z.len(), 6);
    // Strict alternation: each consumer gets every other message, in order.
    let first_a = got_a[0] == 0;
    let (even, odd) = if first_a {
        (&got_a, &got_z)
    } else {
        (&got_z, &got_a)
    };
    assert_eq!(even, &vec![0, 2, 4]);
    assert_eq!(odd, &vec![1, 3, 5]);
}

#[tokio::test]
async fn cancel_stops_deliveries_and_requeues_nothing_acked() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 1).await;
    let c = open(&conn).await;
    let mut inbox = consume(&c, &q, "tag-1", Default::default()).await;
    assert_eq!(inbox.consumer.tag().as_str(), "tag-1");
    let d = inbox.next().await;
    within(5, c.basic_cancel("tag-1".into(), Default::default()))
        .await
        .unwrap();
    inbox.end().await.expect("cancelled cleanly");
    assert_eq!(counts(&ch, &q).await, (0, 0));
    // Deliveries made before the cancel stay unacked on the channel and can still be acked.
    d.ack(Default::default()).await.unwrap();
    publish(&ch, "", &q, b"after").await;
    wait_ready(&ch, &q, 1).await;
}

#[tokio::test]
async fn server_generates_consumer_tags() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let a = consume(&ch, &q, "", Default::default()).await;
    let z = consume(&ch, &q, "", Default::default()).await;
    assert!(
        a.consumer.tag().as_str().starts_with("amq.ctag-"),
        "{}",
        a.consumer.tag()
    );
    assert_ne!(a.consumer.tag(), z.consumer.tag());
}

#[tokio::test]
async fn queue_delete_sends_basic_cancel_to_consumers() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let c = open(&conn).await;
    let mut inbox = consume(&c, &q, "doomed", Default::default()).await;
    within(5, ch.queue_delete(q.as_str().into(), Default::default()))
        .await
        .unwrap();
    inbox
        .end()
        .await
        .expect("server-sent basic.cancel, not a channel error");
    // The consumer's channel stays open.
    assert!(c.status().connected());
    within(5, c.basic_qos(1, Default::default())).await.unwrap();
}

#[tokio::test]
async fn no_ack_consumers_need_no_acks() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 3).await;
    let c = open(&conn).await;
    within(5, c.basic_qos(1, Default::default())).await.unwrap();
    let noack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let mut inbox = consume(&c, &q, "", noack).await;
    // Prefetch does not apply to no-ack consumers.
    for i in 0..3u8 {
        assert_eq!(inbox.next().await.data, [i]);
    }
    within(5, c.close(200, "OK".into())).await.unwrap();
    // Nothing comes back: the messages were settled on delivery.
    assert_eq!(counts(&ch, &q).await, (0, 0));
}

#[tokio::test]
async fn exclusive_consumer_blocks_others() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let excl = BasicConsumeOptions {
        exclusive: true,
        ..Default::default()
    };
    let _owner = consume(&ch, &q, "owner", excl).await;
    let other = open(&conn).await;
    let (code, text) = refused(other.basic_consume(
        q.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text),
        (
            403,
            format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use")
        )
    );
}

#[tokio::test]
async fn duplicate_consumer_tag_is_530() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let _a = consume(&ch, &q, "same", Default::default()).await;
    // The same tag on another channel is fine.
    let ch2 = open(&conn).await;
    let _b = consume(&ch2, &q, "same", Default::default()).await;
    let (code, text) = refused(ch.basic_consume(
        q.as_str().into(),
        "same".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text.as_str()),
        (530, "NOT_ALLOWED - attempt to reuse consumer tag 'same'")
    );
}

#[tokio::test]
async fn qos_raised_later_releases_more_messages() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 4).await;
    let c = open(&conn).await;
    within(5, c.basic_qos(1, Default::default())).await.unwrap();
    let mut inbox = consume(&c, &q, "", Default::default()).await;
    inbox.next().await;
    wait_ready(&ch, &q, 3).await;
    // RabbitMQ applies a new per-consumer prefetch to consumers created afterwards only.
    within(5, c.basic_qos(3, Default::default())).await.unwrap();
    let mut second = consume(&c, &q, "", Default::default()).await;
    second.next().await;
    second.next().await;
    second.next().await;
    wait_ready(&ch, &q, 0).await;
}

/// Consumer priorities beyond 32 bits order as the largest, not wrapped: the consumer with
/// `x-priority` 2^32 gets every message before the one with 5.
#[tokio::test]
async fn a_64_bit_consumer_priority_is_not_wrapped() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("prio64");
    queue(&ch, &q).await;
    let with_priority = |p: lapin::types::AMQPValue| {
        let mut t = lapin::types::FieldTable::default();
        t.insert("x-priority".into(), p);
        t
    };
    let low = within(
        5,
        ch.basic_consume(
            q.as_str().into(),
            "low".into(),
            BasicConsumeOptions::default(),
            with_priority(lapin::types::AMQPValue::LongInt(5)),
        ),
    )
    .await
    .unwrap();
    let mut low = inbox(low);
    let high = within(
        5,
        ch.basic_consume(
            q.as_str().into(),
            "high".into(),
            BasicConsumeOptions::default(),
            with_priority(lapin::types::AMQPValue::LongLongInt(1 << 32)),
        ),
    )
    .await
    .unwrap();
    let mut high = inbox(high);
    for i in 0..3u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    for i in 0..3u8 {
        assert_eq!(high.next().await.data, vec![i]);
    }
    assert_eq!(low.ready(), 0);
}
