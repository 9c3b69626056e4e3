//! Settling deliveries: ack / nack / reject, multiple, requeue order and the redelivered flag,
//! unknown tags, requeue on channel close, basic.recover.

mod common;
mod support;

use common::*;
use lapin::{options::*, Channel};
use support::*;

async fn filled(ch: &Channel, n: u8) -> String {
    let q = unique("q");
    queue(ch, &q).await;
    for i in 0..n {
        publish(ch, "", &q, &[i]).await;
    }
    wait_ready(ch, &q, n as u32).await;
    q
}

/// (body byte, redelivered) of every message left in the queue.
async fn contents(ch: &Channel, q: &str) -> Vec<(u8, bool)> {
    let mut out = Vec::new();
    while let Some(m) = within(5, ch.basic_get(q.into(), BasicGetOptions { no_ack: true }))
        .await
        .unwrap()
    {
        out.push((m.delivery.data[0], m.delivery.redelivered));
    }
    out
}

#[tokio::test]
async fn ack_removes_and_tags_count_from_one() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 3).await;
    let c = open(&conn).await;
    let mut inbox = consume(&c, &q, "", Default::default()).await;
    let tags: Vec<u64> = vec![
        inbox.next().await.delivery_tag,
        inbox.next().await.delivery_tag,
        inbox.next().await.delivery_tag,
    ];
    assert_eq!(tags, [1, 2, 3]);
    for t in tags {
        within(5, c.basic_ack(t, Default::default())).await.unwrap();
    }
    within(5, c.close(200, "OK".into())).await.unwrap();
    assert_eq!(counts(&ch, &q).await, (0, 0));
}

#[tokio::test]
async fn ack_multiple_settles_up_to_the_tag() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 5).await;
    let c = open(&conn).await;
    let mut inbox = consume(&c, &q, "", Default::default()).await;
    for _ in 0..5 {
        inbox.next().await;
    }
    within(5, c.basic_ack(3, BasicAckOptions { multiple: true }))
        .await
        .unwrap();
    within(5, c.close(200, "OK".into())).await.unwrap();
    wait_ready(&ch, &q, 2).await;
    assert_eq!(contents(&ch, &q).await, [(3, true), (4, true)]);
}

#[tokio::test]
async fn nack_requeue_keeps_order_and_sets_redelivered() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 5).await;
    let c = open(&conn).await;
    let mut inbox = consume(&c, &q, "c", Default::default()).await;
    for _ in 0..5 {
        inbox.next().await;
    }
    within(5, c.basic_cancel("c".into(), Default::default()))
        .await
        .unwrap();
    within(
        5,
        c.basic_nack(
            5,
            BasicNackOptions {
                multiple: true,
                requeue: true,
            },
        ),
    )
    .await
    .unwrap();
    wait_ready(&ch, &q, 5).await;
    assert_eq!(
        contents(&ch, &q).await,
        [(0, true), (1, true), (2, true), (3, true), (4, true)]
    );
}

#[tokio::test]
async fn requeued_messages_go_back_to_their_place() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 3).await;
    let first = get(&ch, &q).await.unwrap();
    let second = get(&ch, &q).await.unwrap();
    assert!(!first.delivery.redelivered);
    // Rejected in reverse order, they still come back ahead of message 2, in publish order.
    second
        .delivery
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    first
        .delivery
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    wait_ready(&ch, &q, 3).await;
    assert_eq!(contents(&ch, &q).await, [(0, true), (1, true), (2, false)]);
}

#[tokio::test]
async fn reject_and_nack_without_requeue_discard() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 3).await;
    let m0 = get(&ch, &q).await.unwrap();
    let m1 = get(&ch, &q).await.unwrap();
    m0.delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    m1.delivery
        .nack(BasicNackOptions {
            requeue: false,
            multiple: false,
        })
        .await
        .unwrap();
    within(5, ch.close(200, "OK".into())).await.unwrap();
    let ch = open(&conn).await;
    assert_eq!(contents(&ch, &q).await, [(2, false)]);
}

#[tokio::test]
async fn unknown_or_double_acked_tag_is_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 1).await;
    let mut w = watch(&ch).await;
    let m = get(&ch, &q).await.unwrap();
    let tag = m.delivery.delivery_tag;
    within(5, ch.basic_ack(tag, Default::default()))
        .await
        .unwrap();
    within(5, ch.basic_ack(tag, Default::default()))
        .await
        .unwrap();
    assert_eq!(
        closed_with(&mut w).await,
        (
            406,
            format!("PRECONDITION_FAILED - unknown delivery tag {tag}")
        )
    );
}

#[tokio::test]
async fn tags_belong_to_their_channel() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 1).await;
    let m = get(&ch, &q).await.unwrap();
    let other = open(&conn).await;
    let mut w = watch(&other).await;
    within(
        5,
        other.basic_reject(
            m.delivery.delivery_tag,
            BasicRejectOptions { requeue: true },
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        closed_with(&mut w).await,
        (
            406,
            "PRECONDITION_FAILED - unknown delivery tag 1".to_string()
        )
    );
    // The real owner can still settle it.
    m.delivery.ack(Default::default()).await.unwrap();
}

#[tokio::test]
async fn closing_the_channel_requeues_unacked_in_order() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 4).await;
    let c = open(&conn).await;
    let mut inbox = consume(&c, &q, "", Default::default()).await;
    for _ in 0..4 {
        inbox.next().await;
    }
    within(5, c.basic_ack(2, Default::default())).await.unwrap();
    wait_ready(&ch, &q, 0).await;
    within(5, c.close(200, "OK".into())).await.unwrap();
    wait_ready(&ch, &q, 3).await;
    assert_eq!(contents(&ch, &q).await, [(0, true), (2, true), (3, true)]);
}

#[tokio::test]
async fn closing_the_connection_requeues_unacked() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 2).await;
    let consumer_conn = b.connect().await;
    let c = open(&consumer_conn).await;
    let mut inbox = consume(&c, &q, "", Default::default()).await;
    inbox.next().await;
    inbox.next().await;
    within(5, consumer_conn.close(200, "OK".into()))
        .await
        .unwrap();
    wait_ready(&ch, &q, 2).await;
    assert_eq!(contents(&ch, &q).await, [(0, true), (1, true)]);
}

#[tokio::test]
async fn basic_recover_redelivers_unacked() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 2).await;
    let c = open(&conn).await;
    let mut inbox = consume(&c, &q, "", Default::default()).await;
    let first = inbox.next().await;
    inbox.next().await;
    first.ack(Default::default()).await.unwrap();
    within(5, c.basic_recover(BasicRecoverOptions { requeue: true }))
        .await
        .expect("basic.recover-ok");
    let again = inbox.next().await;
    assert_eq!((again.data[0], again.redelivered), (1, true));
    // Redelivery gets a fresh tag on the channel.
    assert_eq!(again.delivery_tag, 3);
    again.ack(Default::default()).await.unwrap();
    within(5, c.close(200, "OK".into())).await.unwrap();
    assert_eq!(counts(&ch, &q).await, (0, 0));
}

#[tokio::test]
async fn basic_get_reports_remaining_count() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, 3).await;
    let m = get(&ch, &q).await.unwrap();
    assert_eq!(
        (m.delivery.data[0], m.message_count, m.delivery.delivery_tag),
        (0, 2, 1)
    );
    assert_eq!(m.delivery.routing_key.as_str(), q);
    assert_eq!(m.delivery.exchange.as_str(), "");
    let m = get(&ch, &q).await.unwrap();
    assert_eq!(
        (m.delivery.data[0], m.message_count, m.delivery.delivery_tag),
        (1, 1, 2)
    );
    let _ = get(&ch, &q).await.unwrap();
    assert!(get(&ch, &q).await.is_none(), "basic.get-empty");
}
