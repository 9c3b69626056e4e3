//! Consumer (delivery acknowledgement) timeouts: a delivery left unacked longer than
//! `amqp.consumer_timeout`, the queue's `x-consumer-timeout` or the consumer's
//! `x-consumer-timeout` closes its channel with RabbitMQ's 406 and requeues everything the
//! channel held; with `x-consumer-timeout-action: cancel-consumer` (or the setting
//! `amqp.consumer_timeout_action`) only the late consumer is cancelled.
//!
//! These tests tune the in-process broker's configuration, so they do not apply to an
//! external broker (`WARREN_TEST_URL`).

mod common;
mod raw;
mod support;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{basic, channel, queue as q, AMQPClass};
use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::Channel;
use std::time::{Duration, Instant};
use support::*;

fn closed_text(channel: u16, ms: u64) -> String {
    format!(
        "PRECONDITION_FAILED - delivery acknowledgement on channel {channel} timed out. Timeout value used: {ms} ms. This timeout value can be configured, see consumers doc guide to learn more"
    )
}

fn int(v: i64) -> AMQPValue {
    AMQPValue::LongLongInt(v)
}

fn text(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

fn table(args: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert((*k).into(), v.clone());
    }
    t
}

/// A fresh queue with `args`, holding one message per body.
async fn filled(ch: &Channel, args: &[(&str, AMQPValue)], bodies: &[&[u8]]) -> String {
    let name = unique("q");
    within(
        5,
        ch.queue_declare(name.as_str().into(), Default::default(), table(args)),
    )
    .await
    .expect("queue.declare");
    for b in bodies {
        publish(ch, "", &name, b).await;
    }
    name
}

async fn consume_with(ch: &Channel, queue: &str, tag: &str, args: FieldTable) -> Inbox {
    let consumer = within(
        5,
        ch.basic_consume(queue.into(), tag.into(), Default::default(), args),
    )
    .await
    .expect("basic.consume");
    inbox(consumer)
}

/// The bodies and redelivered flags left in `queue`, fetched with no-ack.
async fn left(ch: &Channel, queue: &str) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    while let Some(m) = within(
        5,
        ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("basic.get")
    {
        out.push((m.delivery.data, m.delivery.redelivered));
    }
    out
}

#[tokio::test]
async fn a_late_ack_closes_the_channel_and_requeues_its_deliveries() {
    let b = TestBroker::start_with(|c| c.amqp.consumer_timeout = 500).await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, &[], &[b"a", b"b"]).await;
    let start = Instant::now();
    let mut slow = consume(&ch, &q, "slow", Default::default()).await;
    assert_eq!(slow.next().await.data, b"a");
    assert_eq!(slow.next().await.data, b"b");
    assert_eq!(
        closed_with(&mut slow).await,
        (406, closed_text(ch.id(), 500))
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "closed after {waited:?}"
    );

    // Both deliveries are back, in order, flagged redelivered.
    let other = open(&conn).await;
    assert_eq!(
        left(&other, &q).await,
        vec![(b"a".to_vec(), true), (b"b".to_vec(), true)]
    );
}

#[tokio::test]
async fn acked_deliveries_and_other_channels_are_left_alone() {
    let b = TestBroker::start_with(|c| c.amqp.consumer_timeout = 400).await;
    let conn = b.connect().await;
    let (prompt, late) = (open(&conn).await, open(&conn).await);
    let q1 = filled(&prompt, &[], &[b"1"]).await;
    let q2 = filled(&late, &[], &[b"2"]).await;
    let mut acking = consume(&prompt, &q1, "acking", Default::default()).await;
    let mut idle = consume(&late, &q2, "idle", Default::default()).await;
    let d = acking.next().await;
    within(5, d.acker.ack(BasicAckOptions::default()))
        .await
        .unwrap();
    assert_eq!(idle.next().await.data, b"2");
    assert_eq!(
        closed_with(&mut idle).await,
        (406, closed_text(late.id(), 400))
    );
    // The channel whose delivery was acked in time is still open; its message is gone.
    within(5, prompt.basic_qos(1, Default::default()))
        .await
        .expect("still open");
    assert_eq!(counts(&prompt, &q1).await, (0, 1));
    assert_eq!(counts(&prompt, &q2).await, (1, 0));
}

#[tokio::test]
async fn the_queue_argument_overrides_the_setting() {
    let b = TestBroker::start_with(|c| c.amqp.consumer_timeout = 3_600_000).await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, &[("x-consumer-timeout", int(300))], &[b"x"]).await;
    let mut c = consume(&ch, &q, "", Default::default()).await;
    c.next().await;
    assert_eq!(closed_with(&mut c).await, (406, closed_text(ch.id(), 300)));
}

#[tokio::test]
async fn the_queue_argument_applies_when_the_setting_is_off() {
    let b = TestBroker::start_with(|c| c.amqp.consumer_timeout = 0).await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, &[("x-consumer-timeout", int(250))], &[b"x"]).await;
    let mut c = consume(&ch, &q, "", Default::default()).await;
    c.next().await;
    assert_eq!(closed_with(&mut c).await, (406, closed_text(ch.id(), 250)));
}

#[tokio::test]
async fn the_consumer_argument_overrides_the_queue() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, &[("x-consumer-timeout", int(3_600_000))], &[b"x"]).await;
    let mut c = consume_with(&ch, &q, "", table(&[("x-consumer-timeout", int(200))])).await;
    c.next().await;
    assert_eq!(closed_with(&mut c).await, (406, closed_text(ch.id(), 200)));
}

#[tokio::test]
async fn basic_get_deliveries_time_out_too() {
    // Even with cancel-consumer: a basic.get delivery has no consumer to cancel.
    let b = TestBroker::start_with(|c| {
        c.amqp.consumer_timeout = 300;
        c.amqp.consumer_timeout_action = "cancel-consumer".into();
    })
    .await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, &[], &[b"got"]).await;
    let mut watcher = watch(&ch).await;
    let m = get(&ch, &q).await.expect("a message");
    assert_eq!(m.delivery.data, b"got");
    assert_eq!(
        closed_with(&mut watcher).await,
        (406, closed_text(ch.id(), 300))
    );
    let other = open(&conn).await;
    assert_eq!(left(&other, &q).await, vec![(b"got".to_vec(), true)]);
}

#[tokio::test]
async fn cancel_consumer_cancels_only_the_late_consumer() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let gentle = [
        ("x-consumer-timeout", int(300)),
        ("x-consumer-timeout-action", text("cancel-consumer")),
    ];
    let slow_q = filled(&ch, &gentle, &[b"s1", b"s2"]).await;
    let fast_q = filled(&ch, &[], &[b"f1"]).await;
    let mut slow = consume(&ch, &slow_q, "slow", Default::default()).await;
    let mut fast = consume(&ch, &fast_q, "fast", Default::default()).await;
    let s1 = slow.next().await;
    assert_eq!(slow.next().await.data, b"s2");
    let f1 = fast.next().await;
    within(5, f1.acker.ack(BasicAckOptions::default()))
        .await
        .unwrap();

    // basic.cancel, not a channel error.
    slow.end().await.expect("the late consumer is cancelled");
    let other = open(&conn).await;
    assert_eq!(counts(&other, &slow_q).await, (2, 0));

    // A late ack of a requeued delivery is ignored; the channel stays open.
    within(5, s1.acker.ack(BasicAckOptions::default()))
        .await
        .unwrap();
    within(5, ch.basic_qos(0, Default::default()))
        .await
        .expect("channel still open");
    assert_eq!(counts(&other, &slow_q).await, (2, 0));

    // The other consumer on the channel carries on.
    publish(&other, "", &fast_q, b"f2").await;
    assert_eq!(fast.next().await.data, b"f2");
    assert_eq!(
        left(&other, &slow_q).await,
        vec![(b"s1".to_vec(), true), (b"s2".to_vec(), true)]
    );
}

#[tokio::test]
async fn the_setting_can_make_cancel_consumer_the_default() {
    let b = TestBroker::start_with(|c| {
        c.amqp.consumer_timeout = 300;
        c.amqp.consumer_timeout_action = "cancel-consumer".into();
    })
    .await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = filled(&ch, &[], &[b"x"]).await;
    let mut c = consume(&ch, &q, "late", Default::default()).await;
    let d = c.next().await;
    c.end().await.expect("cancelled, not closed");
    // A multiple ack covering only requeued deliveries is ignored too.
    within(5, d.acker.ack(BasicAckOptions { multiple: true }))
        .await
        .unwrap();
    within(5, ch.basic_qos(0, Default::default()))
        .await
        .expect("channel still open");
    // The queue's own argument wins over the setting.
    let strict = filled(
        &ch,
        &[("x-consumer-timeout-action", text("close-channel"))],
        &[b"y"],
    )
    .await;
    let mut c = consume(&ch, &strict, "strict", Default::default()).await;
    c.next().await;
    assert_eq!(closed_with(&mut c).await, (406, closed_text(ch.id(), 300)));
}

#[tokio::test]
async fn invalid_timeout_arguments_are_refused() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let cases = [
        (
            ("x-consumer-timeout", int(-1)),
            "{value_negative,-1}".to_string(),
        ),
        (
            ("x-consumer-timeout", text("soon")),
            "\"expected integer, got longstr\"".to_string(),
        ),
        (
            ("x-consumer-timeout-action", text("explode")),
            "invalid_consumer_timeout_action".to_string(),
        ),
        (
            ("x-consumer-timeout-action", int(1)),
            "{unacceptable_type,long}".to_string(),
        ),
    ];
    for ((key, value), why) in cases {
        let ch = open(&conn).await;
        let name = unique("bad");
        let (code, reply) = refused(ch.queue_declare(
            name.as_str().into(),
            Default::default(),
            table(&[(key, value)]),
        ))
        .await;
        assert_eq!(
            (code, reply),
            (
                406,
                format!(
                    "PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/': {why}"
                )
            )
        );
    }
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let (code, reply) = refused(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        Default::default(),
        table(&[("x-consumer-timeout", int(-5))]),
    ))
    .await;
    assert_eq!(
        (code, reply),
        (
            406,
            format!("PRECONDITION_FAILED - invalid arg 'x-consumer-timeout' for queue '{q}' in vhost '/': {{value_negative,-5}}")
        )
    );
}

/// A client that did not announce `consumer_cancel_notify` cannot be told about a cancel:
/// its channel is closed instead, as RabbitMQ 4.3 does.
#[tokio::test]
async fn clients_without_cancel_notify_get_the_channel_closed() {
    use raw::*;
    let b = TestBroker::start_with(|c| {
        c.amqp.consumer_timeout = 300;
        c.amqp.consumer_timeout_action = "cancel-consumer".into();
    })
    .await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    let name = unique("q");
    raw.send(&method(1, declare(&name))).await;
    let f = raw.recv().await;
    assert!(
        matches!(
            f,
            Some(AMQPFrame::Method(
                1,
                AMQPClass::Queue(q::AMQPMethod::DeclareOk(_))
            ))
        ),
        "{f:?}"
    );
    let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: name.as_str().into(),
        mandatory: false,
        immediate: false,
    }));
    raw.send(&method(1, publish)).await;
    raw.send(&header(1, 60, 1)).await;
    raw.send(&AMQPFrame::Body(1, b"x".to_vec())).await;
    let consume = AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
        queue: name.as_str().into(),
        consumer_tag: "late".into(),
        no_local: false,
        no_ack: false,
        exclusive: false,
        nowait: false,
        arguments: Default::default(),
    }));
    raw.send(&method(1, consume)).await;
    let close = loop {
        match raw.recv().await {
            Some(AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Close(c)))) => {
                break c
            }
            Some(AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Cancel(c)))) => {
                panic!("basic.cancel sent to a client that did not ask for it: {c:?}")
            }
            Some(_) => continue,
            None => panic!("socket closed"),
        }
    };
    assert_eq!(
        (
            close.reply_code,
            close.reply_text.to_string(),
            close.class_id,
            close.method_id
        ),
        (406, closed_text(1, 300), 0, 0)
    );
}
