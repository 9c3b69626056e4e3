//! What survives a restart: durable exchanges, queues, bindings and persistent messages,
//! byte-exact and in order; and what does not: transient and exclusive things, deleted ones.
//! Also that a confirm is only sent once its message is synced, and that syncs are grouped.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use std::sync::atomic::Ordering;
use support::*;

async fn declare(ch: &Channel, name: &str, durable: bool, exclusive: bool, args: FieldTable) {
    let opts = QueueDeclareOptions {
        durable,
        exclusive,
        ..Default::default()
    };
    within(5, ch.queue_declare(name.into(), opts, args))
        .await
        .unwrap();
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

async fn exists(b: &TestBroker, queue: &str) -> bool {
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let opts = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    within(
        5,
        ch.queue_declare(queue.into(), opts, FieldTable::default()),
    )
    .await
    .is_ok()
}

async fn exchange_exists(b: &TestBroker, name: &str) -> bool {
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let opts = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    within(
        5,
        ch.exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            opts,
            FieldTable::default(),
        ),
    )
    .await
    .is_ok()
}

#[tokio::test]
async fn durable_entities_survive_and_others_do_not() {
    let b = TestBroker::start().await;
    let (conn, ch) = confirm_channel(&b).await;
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(10));
    declare(&ch, "dq", true, false, args.clone()).await;
    declare(&ch, "tq", false, false, FieldTable::default()).await;
    declare(&ch, "xq", true, true, FieldTable::default()).await;
    declare(&ch, "gone", true, false, FieldTable::default()).await;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(
        5,
        ch.exchange_declare(
            "dx".into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    within(
        5,
        ch.exchange_declare(
            "tx".into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    bind(&ch, "dq", "dx", "a.#").await;
    bind(&ch, "dq", "amq.direct", "k").await;
    within(
        5,
        ch.queue_delete("gone".into(), QueueDeleteOptions::default()),
    )
    .await
    .unwrap();
    drop(conn);

    let b = b.restart().await;
    assert!(exists(&b, "dq").await);
    assert!(!exists(&b, "tq").await, "transient queue survived");
    assert!(!exists(&b, "xq").await, "exclusive queue survived");
    assert!(!exists(&b, "gone").await, "deleted queue came back");
    assert!(exchange_exists(&b, "dx").await);
    assert!(
        !exchange_exists(&b, "tx").await,
        "transient exchange survived"
    );

    let (_conn, ch) = confirm_channel(&b).await;
    // Same arguments: accepted; different: 406, so the arguments came back too.
    declare(&ch, "dq", true, false, args).await;
    let opts = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let (code, _) = refused(ch.queue_declare("dq".into(), opts, FieldTable::default())).await;
    assert_eq!(code, 406);
    // Both bindings route.
    let ch = open(&b.connect().await).await;
    within(5, ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    publish_confirmed_with(&ch, "dx", "a.b", b"via-topic", persistent()).await;
    publish_confirmed_with(&ch, "amq.direct", "k", b"via-direct", persistent()).await;
    assert_eq!(
        drain(&ch, "dq").await,
        vec![b"via-topic".to_vec(), b"via-direct".to_vec()]
    );
}

#[tokio::test]
async fn persistent_messages_survive_in_order_byte_exact() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    declare(&ch, "orders", true, false, FieldTable::default()).await;
    let mut headers = FieldTable::default();
    headers.insert(
        "z-last".into(),
        AMQPValue::LongString(LongString::from("z")),
    );
    headers.insert("a-first".into(), AMQPValue::LongLongInt(-5));
    headers.insert(
        "nested".into(),
        AMQPValue::FieldTable(FieldTable::default()),
    );
    let props = persistent()
        .with_content_type("application/json".into())
        .with_correlation_id("c-1".into())
        .with_message_id("m-1".into())
        .with_timestamp(1_700_000_000)
        .with_priority(3)
        .with_headers(headers);
    let mut sent = Vec::new();
    for i in 0..50u32 {
        let body = format!("order-{i}").into_bytes();
        publish_confirmed_with(&ch, "", "orders", &body, props.clone()).await;
        sent.push(body);
    }
    // A transient message in a durable queue does not survive.
    publish_confirmed_with(&ch, "", "orders", b"transient", BasicProperties::default()).await;

    let b = b.restart().await;
    let ch = open(&b.connect().await).await;
    assert_eq!(counts(&ch, "orders").await.0, 50);
    for body in &sent {
        let m = get(&ch, "orders").await.expect("a message");
        assert_eq!(&m.delivery.data, body);
        assert_eq!(m.delivery.properties, props);
        assert!(!m.delivery.redelivered);
        within(5, m.delivery.acker.ack(BasicAckOptions::default()))
            .await
            .unwrap();
    }
    assert!(get(&ch, "orders").await.is_none());
}

#[tokio::test]
async fn unacked_come_back_redelivered_and_acked_do_not_come_back() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    declare(&ch, "work", true, false, FieldTable::default()).await;
    for body in [b"acked".as_slice(), b"unacked", b"untouched"] {
        publish_confirmed_with(&ch, "", "work", body, persistent()).await;
    }
    let first = get(&ch, "work").await.unwrap();
    assert_eq!(first.delivery.data, b"acked");
    within(5, first.delivery.acker.ack(BasicAckOptions::default()))
        .await
        .unwrap();
    let second = get(&ch, "work").await.unwrap();
    assert_eq!(second.delivery.data, b"unacked");
    // The ack above is processed before this round trip returns.
    counts(&ch, "work").await;

    let b = b.restart().await;
    let ch = open(&b.connect().await).await;
    let m = get(&ch, "work").await.unwrap();
    assert_eq!(
        (m.delivery.data.as_slice(), m.delivery.redelivered),
        (&b"unacked"[..], true)
    );
    let m = get(&ch, "work").await.unwrap();
    assert_eq!(
        (m.delivery.data.as_slice(), m.delivery.redelivered),
        (&b"untouched"[..], false)
    );
    assert!(get(&ch, "work").await.is_none());
}

#[tokio::test]
async fn purged_and_deleted_messages_stay_gone() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    declare(&ch, "p", true, false, FieldTable::default()).await;
    for _ in 0..5 {
        publish_confirmed_with(&ch, "", "p", b"x", persistent()).await;
    }
    within(5, ch.queue_purge("p".into(), QueuePurgeOptions::default()))
        .await
        .unwrap();
    declare(&ch, "d", true, false, FieldTable::default()).await;
    publish_confirmed_with(&ch, "", "d", b"old", persistent()).await;
    within(
        5,
        ch.queue_delete("d".into(), QueueDeleteOptions::default()),
    )
    .await
    .unwrap();
    declare(&ch, "d", true, false, FieldTable::default()).await;

    let b = b.restart().await;
    let ch = open(&b.connect().await).await;
    assert_eq!(counts(&ch, "p").await.0, 0);
    assert_eq!(
        counts(&ch, "d").await.0,
        0,
        "a deleted queue's messages came back"
    );
}

#[tokio::test]
async fn confirms_wait_for_a_sync_and_syncs_are_grouped() {
    let b = TestBroker::start().await;
    let rounds = || {
        b.broker()
            .unwrap()
            .store
            .syncer()
            .rounds
            .load(Ordering::Relaxed)
    };
    let (_conn, ch) = confirm_channel(&b).await;
    declare(&ch, "s", true, false, FieldTable::default()).await;
    // Transient messages need no sync at all.
    let before = rounds();
    for _ in 0..20 {
        publish_confirmed_with(&ch, "", "s", b"t", BasicProperties::default()).await;
    }
    assert_eq!(rounds(), before);
    // One at a time: each confirm needs a sync of its own, so confirms <= syncs.
    let before = rounds();
    for _ in 0..20 {
        publish_confirmed_with(&ch, "", "s", b"p", persistent()).await;
    }
    assert!(rounds() - before >= 20, "a confirm went out without a sync");
    // Pipelined: many confirms share each sync.
    let before = rounds();
    let mut pending = Vec::new();
    for _ in 0..2000 {
        let c = ch
            .basic_publish(
                "".into(),
                "s".into(),
                BasicPublishOptions::default(),
                b"g",
                persistent(),
            )
            .await
            .unwrap();
        pending.push(c);
    }
    for c in pending {
        assert!(within(30, c).await.unwrap().is_ack());
    }
    let used = rounds() - before;
    assert!((1..2000).contains(&used), "{used} syncs for 2000 confirms");
}

#[tokio::test]
async fn tx_commit_of_persistent_messages_waits_for_a_sync() {
    let b = TestBroker::start().await;
    let rounds = || {
        b.broker()
            .unwrap()
            .store
            .syncer()
            .rounds
            .load(Ordering::Relaxed)
    };
    let conn = b.connect().await;
    let ch = open(&conn).await;
    declare(&ch, "txq", true, false, FieldTable::default()).await;
    within(5, ch.tx_select()).await.unwrap();
    for i in 0..10u8 {
        let c = ch
            .basic_publish(
                "".into(),
                "txq".into(),
                BasicPublishOptions::default(),
                &[i],
                persistent(),
            )
            .await
            .unwrap();
        drop(c);
    }
    let before = rounds();
    within(10, ch.tx_commit()).await.unwrap();
    assert!(
        rounds() > before,
        "commit-ok before the messages were synced"
    );
    drop(conn);
    let b = b.restart().await;
    let ch = open(&b.connect().await).await;
    assert_eq!(
        drain(&ch, "txq").await,
        (0..10u8).map(|i| vec![i]).collect::<Vec<_>>()
    );
}

/// A restart that comes while the previous owner of the data directory still holds the
/// store's lock (its sled threads let go a little after the broker is dropped) waits for it
/// instead of failing.
#[test]
fn opening_waits_for_the_previous_owner_to_let_go_of_the_store() {
    let dir = std::env::temp_dir().join(format!("warren-lockwait-{}", std::process::id()));
    let cfg = warren::config::Config::for_test(&dir);
    let first = warren::store::Store::open(&cfg.storage).expect("first open");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let second = {
        let (cfg, done) = (cfg.clone(), done.clone());
        std::thread::spawn(move || {
            let r = warren::store::Store::open(&cfg.storage).map(|_| ());
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    // The second open is still waiting while the first holds the lock.
    std::thread::sleep(std::time::Duration::from_millis(300)); // the first owner's lifetime
    assert!(
        !done.load(Ordering::SeqCst),
        "opened while the lock was held"
    );
    first.close().unwrap();
    drop(first);
    second
        .join()
        .unwrap()
        .expect("the second open once the first let go");
    let _ = std::fs::remove_dir_all(&dir);
}
