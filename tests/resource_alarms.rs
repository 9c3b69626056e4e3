//! Memory and disk alarms: during an alarm, a connection that publishes is blocked (its
//! socket is no longer read; `connection.blocked` tells clients that announce the capability,
//! with RabbitMQ's reason text) and unblocked with `connection.unblocked` once every alarm
//! has cleared; connections that only consume keep working. The alarms are driven by lowering
//! the in-process broker's limits at run time, so these tests do not apply to an external
//! broker (`WARREN_TEST_URL`).

mod common;
mod raw;
mod support;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{basic, AMQPClass};
use common::*;
use futures_core::Stream;
use lapin::options::*;
use lapin::{Connection, Event};
use raw::{encode, header, method, Raw};
use std::pin::Pin;
use support::*;

/// The next blocked/unblocked event of `conn` (other events skipped), within 5 s.
async fn next_block_event(
    events: &mut Pin<Box<dyn Stream<Item = Event> + Send>>,
) -> Option<String> {
    loop {
        let ev = within(5, std::future::poll_fn(|cx| events.as_mut().poll_next(cx)))
            .await
            .expect("connection events ended");
        match ev {
            Event::ConnectionBlocked(reason) => return Some(reason),
            Event::ConnectionUnblocked => return None,
            _ => continue,
        }
    }
}

fn events_of(conn: &Connection) -> Pin<Box<dyn Stream<Item = Event> + Send>> {
    Box::pin(conn.events_listener())
}

#[tokio::test]
async fn a_publisher_is_blocked_during_a_memory_alarm_and_resumes_after() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker().cloned() else {
        return; // an external broker: its alarms cannot be driven from here
    };
    let consumer_conn = b.connect().await;
    let cch = open(&consumer_conn).await;
    let name = unique("alarm");
    queue(&cch, &name).await;
    let mut inbox = consume(
        &cch,
        &name,
        "c",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await;

    let (pub_conn, pch) = confirm_channel(&b).await;
    let mut events = events_of(&pub_conn);
    publish_confirmed(&pch, "", &name, b"before").await;
    assert_eq!(inbox.next().await.data, b"before");

    broker.alarms.set_memory_limit(1);
    eventually(5, || async { broker.alarms.current().memory.then_some(()) }).await;
    // The publish that finds the alarm is taken and confirmed; then the connection is blocked.
    publish_confirmed(&pch, "", &name, b"finds the alarm").await;
    assert_eq!(inbox.next().await.data, b"finds the alarm");
    assert_eq!(
        next_block_event(&mut events).await.as_deref(),
        Some("low on memory")
    );
    assert!(pub_conn.status().blocked());

    // lapin holds publishes while its connection is blocked (see the raw test below for a
    // client that does not): this one goes out once it is unblocked.
    let pch2 = pch.clone();
    let queue_name = name.clone();
    let pending = tokio::spawn(async move {
        pch2.basic_publish(
            "".into(),
            queue_name.as_str().into(),
            BasicPublishOptions::default(),
            b"while blocked",
            Default::default(),
        )
        .await
        .expect("basic.publish")
        .await
        .expect("confirm")
    });
    // A connection that only consumes is not blocked: it declares, and sees no message yet.
    let (messages, consumers) = counts(&cch, &name).await;
    assert_eq!((messages, consumers), (0, 1));
    assert_eq!(inbox.ready(), 0);

    broker.alarms.set_memory_limit(u64::MAX);
    assert_eq!(
        next_block_event(&mut events).await,
        None,
        "connection.unblocked"
    );
    assert!(!pub_conn.status().blocked());
    assert_eq!(inbox.next().await.data, b"while blocked");
    assert!(within(5, pending).await.expect("publisher task").is_ack());
    b.stop().await;
}

#[tokio::test]
async fn a_disk_alarm_blocks_with_its_own_reason_and_both_alarms_name_both() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker().cloned() else {
        return;
    };
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let name = unique("disk");
    queue(&ch, &name).await;
    let mut events = events_of(&conn);

    broker.alarms.set_disk_free_limit(u64::MAX);
    eventually(5, || async { broker.alarms.current().disk.then_some(()) }).await;
    publish(&ch, "", &name, b"one").await;
    assert_eq!(
        next_block_event(&mut events).await.as_deref(),
        Some("low on disk")
    );
    // Lifting the disk alarm while a memory alarm is on keeps the connection blocked: one
    // connection.unblocked, when both have cleared.
    broker.alarms.set_memory_limit(1);
    eventually(5, || async { broker.alarms.current().memory.then_some(()) }).await;
    broker.alarms.set_disk_free_limit(0);
    eventually(5, || async {
        (!broker.alarms.current().disk).then_some(())
    })
    .await;
    assert!(conn.status().blocked());
    broker.alarms.set_memory_limit(u64::MAX);
    assert_eq!(
        next_block_event(&mut events).await,
        None,
        "connection.unblocked"
    );
    wait_ready(&ch, &name, 1).await;
    b.stop().await;
}

#[tokio::test]
async fn a_connection_that_does_not_publish_is_never_blocked() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker().cloned() else {
        return;
    };
    let conn = b.connect().await;
    let ch = open(&conn).await;
    broker.alarms.set_memory_limit(1);
    eventually(5, || async { broker.alarms.current().memory.then_some(()) }).await;
    // Declares, binds, gets and acks all go on.
    let name = unique("idle");
    queue(&ch, &name).await;
    bind(&ch, &name, "amq.direct", "k").await;
    assert!(get(&ch, &name).await.is_none());
    within(5, ch.queue_delete(name.as_str().into(), Default::default()))
        .await
        .expect("queue.delete");
    assert!(!conn.status().blocked());
    broker.alarms.set_memory_limit(u64::MAX);
    b.stop().await;
}

/// A client that ignores blocking (and did not announce the capability, so it is not told)
/// keeps writing: warren does not read it until the alarm clears.
#[tokio::test]
async fn a_blocked_connection_is_not_read_until_the_alarm_clears() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker().cloned() else {
        return;
    };
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let name = unique("unread");
    queue(&ch, &name).await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    let publish_bytes = |body: &'static [u8]| {
        [
            encode(&method(
                1,
                AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                    exchange: "".into(),
                    routing_key: name.as_str().into(),
                    mandatory: false,
                    immediate: false,
                })),
            )),
            encode(&header(1, 60, body.len() as u64)),
            encode(&AMQPFrame::Body(1, body.to_vec())),
        ]
        .concat()
    };
    broker.alarms.set_memory_limit(1);
    eventually(5, || async { broker.alarms.current().memory.then_some(()) }).await;
    raw.send_bytes(&publish_bytes(b"taken")).await;
    wait_ready(&ch, &name, 1).await;
    // Blocked now: a second publish and a basic.qos wait unread.
    raw.send_bytes(&publish_bytes(b"waits")).await;
    raw.send(&method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: 10,
            global: false,
        })),
    ))
    .await;
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), raw.recv()).await;
    assert!(early.is_err(), "answered while blocked: {early:?}");
    assert_eq!(counts(&ch, &name).await, (1, 0));

    broker.alarms.set_memory_limit(u64::MAX);
    // No connection.unblocked for a client without the capability: the next frame is qos-ok.
    let f = raw.recv().await;
    assert!(
        matches!(
            f,
            Some(AMQPFrame::Method(
                1,
                AMQPClass::Basic(basic::AMQPMethod::QosOk(_))
            ))
        ),
        "{f:?}"
    );
    wait_ready(&ch, &name, 2).await;
    b.stop().await;
}
