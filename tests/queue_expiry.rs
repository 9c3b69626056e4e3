//! Queue TTL (`x-expires`): a queue unused for that long (no consumers, no basic.get, no
//! redeclare) is deleted with its messages; a durable one also from the store. The timer
//! starts again when the broker restarts, as in RabbitMQ.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use std::time::Duration;
use support::*;

async fn declare(ch: &Channel, name: &str, ms: i32, durable: bool) {
    let mut t = FieldTable::default();
    t.insert("x-expires".into(), AMQPValue::LongInt(ms));
    let opts = QueueDeclareOptions {
        durable,
        ..Default::default()
    };
    within(5, ch.queue_declare(name.into(), opts, t))
        .await
        .expect("queue.declare");
}

/// Whether the queue exists (a passive declare on a fresh channel).
async fn exists(conn: &Connection, name: &str) -> bool {
    let ch = open(conn).await;
    let opts = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match within(
        5,
        ch.queue_declare(name.into(), opts, FieldTable::default()),
    )
    .await
    {
        Ok(_) => {
            let _ = ch.close(200, "".into()).await;
            true
        }
        Err(e) => {
            assert_eq!(code(&e).0, 404, "{e:?}");
            false
        }
    }
}

/// Wait until the queue is gone, probing with mandatory publishes, which (unlike a passive
/// declare) do not count as a use.
async fn gone(conn: &Connection, name: &str) {
    let ch = open(conn).await;
    within(5, ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    eventually(5, || {
        let ch = ch.clone();
        async move {
            let c = within(
                5,
                ch.basic_publish(
                    "".into(),
                    name.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    b"probe",
                    Default::default(),
                ),
            )
            .await
            .unwrap();
            let confirmation = within(5, c).await.unwrap();
            confirmation.take_message().map(|_| ())
        }
    })
    .await;
}

#[tokio::test]
async fn an_unused_queue_is_deleted_with_its_messages() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("expires");
    declare(&ch, &q, 300, false).await;
    publish(&ch, "", &q, b"lost").await;
    // Publishing is not a use: the probes do not keep it alive.
    gone(&conn, &q).await;
    assert!(!exists(&conn, &q).await);
}

#[tokio::test]
async fn a_queue_with_a_consumer_does_not_expire_and_the_timer_restarts_when_it_goes() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("expires-consumed");
    let unused = unique("expires-unused");
    declare(&ch, &q, 300, false).await;
    let _inbox = consume(&ch, &q, "c", BasicConsumeOptions::default()).await;
    // A twin declared after it with the same x-expires and no consumer: once it is gone, the
    // consumed queue has outlived its x-expires.
    declare(&ch, &unused, 300, false).await;
    gone(&conn, &unused).await;
    assert_eq!(counts(&ch, &q).await, (0, 1));
    within(
        5,
        ch.basic_cancel("c".into(), BasicCancelOptions::default()),
    )
    .await
    .unwrap();
    gone(&conn, &q).await;
}

#[tokio::test]
async fn basic_get_and_redeclaring_keep_a_queue_alive() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("expires-polled");
    declare(&ch, &q, 400, false).await;
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await; // a client polling
        if i % 2 == 0 {
            assert!(get(&ch, &q).await.is_none());
        } else {
            declare(&ch, &q, 400, false).await;
        }
    }
    assert!(exists(&conn, &q).await);
    gone(&conn, &q).await;
}

#[tokio::test]
async fn a_durable_queue_expires_from_the_store_too_and_its_timer_restarts_with_the_broker() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    declare(&ch, "expires-durable", 1500, true).await;
    declare(&ch, "expires-kept", 60_000, true).await;
    // Clocks: queues declared now with x-expires 1000 ms; once one is gone, 1 s has passed.
    declare(&ch, "clock-before", 1000, false).await;
    gone(&conn, "clock-before").await; // most of expires-durable's TTL
    drop(conn);
    let b = b.restart().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    declare(&ch, "clock-after", 1000, false).await;
    gone(&conn, "clock-after").await;
    // The timer started again at the restart: still there 1 s later (2 s after creation).
    assert!(exists(&conn, "expires-durable").await);
    gone(&conn, "expires-durable").await;
    drop(conn);
    let b = b.restart().await;
    let conn = b.connect().await;
    assert!(!exists(&conn, "expires-durable").await);
    assert!(exists(&conn, "expires-kept").await);
}
