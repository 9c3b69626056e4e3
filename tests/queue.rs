//! queue.declare / bind / unbind / purge / delete and the counts the server reports.

mod common;
mod support;

use common::*;
use lapin::{
    options::*,
    types::{AMQPValue, FieldTable},
};
use support::*;

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

#[tokio::test]
async fn server_named_queues() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q1 = within(
        5,
        ch.queue_declare(
            "".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let q2 = within(
        5,
        ch.queue_declare(
            "".into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    for q in [&q1, &q2] {
        assert!(q.name().as_str().starts_with("amq.gen-"), "{}", q.name());
        assert_eq!((q.message_count(), q.consumer_count()), (0, 0));
    }
    assert_ne!(q1.name(), q2.name());
    // An empty queue name means the last queue declared on the channel.
    publish(&ch, "", q2.name().as_str(), b"m").await;
    wait_ready(&ch, q2.name().as_str(), 1).await;
    let purged = within(5, ch.queue_purge("".into(), Default::default()))
        .await
        .unwrap();
    assert_eq!(purged, 1);
}

#[tokio::test]
async fn declare_ok_reports_counts() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    for i in 0..3u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    wait_ready(&ch, &q, 3).await;
    let c = open(&conn).await;
    within(5, c.basic_qos(1, Default::default())).await.unwrap();
    let mut inbox = consume(&c, &q, "", Default::default()).await;
    inbox.next().await;
    // message_count counts ready messages only: one is out unacked with the consumer.
    let again = within(
        5,
        ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()),
    )
    .await
    .unwrap();
    assert_eq!((again.message_count(), again.consumer_count()), (2, 1));
    assert_eq!(counts(&ch, &q).await, (2, 1));
}

#[tokio::test]
async fn passive_declare_does_not_create() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    // Passive ignores the flags and arguments given.
    let passive = QueueDeclareOptions {
        passive: true,
        durable: true,
        exclusive: true,
        ..Default::default()
    };
    let found = within(
        5,
        ch.queue_declare(
            q.as_str().into(),
            passive,
            args(&[("x-max-length", AMQPValue::LongInt(1))]),
        ),
    )
    .await
    .unwrap();
    assert_eq!(found.name().as_str(), q);
}

#[tokio::test]
async fn redeclare_with_the_same_args_is_ok_different_args_is_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    let a = args(&[("x-max-length", AMQPValue::LongInt(10))]);
    within(
        5,
        ch.queue_declare(q.as_str().into(), Default::default(), a.clone()),
    )
    .await
    .unwrap();
    within(
        5,
        ch.queue_declare(q.as_str().into(), Default::default(), a),
    )
    .await
    .unwrap();
    let other = args(&[("x-max-length", AMQPValue::LongInt(20))]);
    let (code, text) =
        refused(ch.queue_declare(q.as_str().into(), Default::default(), other)).await;
    assert_eq!(code, 406);
    assert_eq!(text, format!("PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{q}' in vhost '/': received '20' but current is '10'"));

    let ch = open(&conn).await;
    let opts = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    let (code, text) =
        refused(ch.queue_declare(q.as_str().into(), opts, FieldTable::default())).await;
    assert_eq!(code, 406);
    assert_eq!(text, format!("PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '{q}' in vhost '/': received 'true' but current is 'false'"));
}

#[tokio::test]
async fn exclusive_queue_belongs_to_its_connection() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("excl");
    within(
        5,
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    // Any channel of the owning connection may use it.
    let ch2 = open(&conn).await;
    publish(&ch2, "", &q, b"m").await;
    wait_ready(&ch2, &q, 1).await;
    let other = b.connect().await;
    let och = open(&other).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    // Even a passive declare from another connection is refused.
    let (code, _) =
        refused(och.queue_declare(q.as_str().into(), passive, FieldTable::default())).await;
    assert_eq!(code, 405);
}

#[tokio::test]
async fn auto_delete_queue_goes_with_its_last_consumer() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("ad");
    let opts = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    within(
        5,
        ch.queue_declare(q.as_str().into(), opts, FieldTable::default()),
    )
    .await
    .unwrap();
    // Never consumed: it stays.
    assert_eq!(counts(&ch, &q).await, (0, 0));
    let c1 = consume(&ch, &q, "c1", Default::default()).await;
    let _c2 = consume(&ch, &q, "c2", Default::default()).await;
    within(5, ch.basic_cancel(c1.consumer.tag(), Default::default()))
        .await
        .unwrap();
    assert_eq!(counts(&ch, &q).await, (0, 1));
    within(5, ch.basic_cancel("c2".into(), Default::default()))
        .await
        .unwrap();
    let watcher = open(&conn).await;
    eventually(5, || {
        let conn = &conn;
        let q = q.clone();
        async move {
            let ch = conn.create_channel().await.ok()?;
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let err = ch
                .queue_declare(q.as_str().into(), passive, FieldTable::default())
                .await
                .err()?;
            assert_eq!(code(&err).0, 404);
            Some(())
        }
    })
    .await;
    drop(watcher);
}

#[tokio::test]
async fn purge_returns_the_count_and_keeps_unacked() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    for i in 0..5u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    wait_ready(&ch, &q, 5).await;
    let held = get(&ch, &q).await.expect("message");
    assert_eq!(
        within(5, ch.queue_purge(q.as_str().into(), Default::default()))
            .await
            .unwrap(),
        4
    );
    assert_eq!(counts(&ch, &q).await, (0, 0));
    // The unacked message survives the purge and comes back on reject.
    held.delivery
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    wait_ready(&ch, &q, 1).await;
    assert_eq!(
        within(5, ch.queue_purge(q.as_str().into(), Default::default()))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn delete_returns_the_count_and_honours_if_empty_if_unused() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    for i in 0..3u8 {
        publish(&ch, "", &q, &[i]).await;
    }
    wait_ready(&ch, &q, 3).await;
    let opts = QueueDeleteOptions {
        if_unused: true,
        ..Default::default()
    };
    assert_eq!(
        within(5, ch.queue_delete(q.as_str().into(), opts))
            .await
            .unwrap(),
        3
    );
    // Deleting a missing queue is not an error and reports 0.
    assert_eq!(
        within(5, ch.queue_delete(q.as_str().into(), Default::default()))
            .await
            .unwrap(),
        0
    );

    let q = unique("q");
    queue(&ch, &q).await;
    let opts = QueueDeleteOptions {
        if_empty: true,
        if_unused: true,
        ..Default::default()
    };
    assert_eq!(
        within(5, ch.queue_delete(q.as_str().into(), opts))
            .await
            .unwrap(),
        0
    );
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    assert_eq!(
        refused(ch.queue_declare(q.as_str().into(), passive, FieldTable::default()))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn bind_and_unbind() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    let q = unique("q");
    queue(&ch, &q).await;
    bind(&ch, &q, "amq.direct", &q).await;
    // Binding twice is idempotent: one copy per message.
    bind(&ch, &q, "amq.direct", &q).await;
    publish_confirmed(&ch, "amq.direct", &q, b"1").await;
    assert_eq!(drain(&ch, &q).await, [b"1".to_vec()]);
    within(
        5,
        ch.queue_unbind(
            q.as_str().into(),
            "amq.direct".into(),
            q.as_str().into(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    publish_confirmed(&ch, "amq.direct", &q, b"2").await;
    assert!(drain(&ch, &q).await.is_empty());
    // Unbinding a binding that does not exist is fine.
    within(
        5,
        ch.queue_unbind(
            q.as_str().into(),
            "amq.direct".into(),
            "nope".into(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn deleting_a_queue_removes_its_bindings() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    let q = unique("q");
    queue(&ch, &q).await;
    bind(&ch, &q, "amq.fanout", "").await;
    within(5, ch.queue_delete(q.as_str().into(), Default::default()))
        .await
        .unwrap();
    queue(&ch, &q).await;
    publish_confirmed(&ch, "amq.direct", &q, b"x").await;
    assert!(drain(&ch, &q).await.is_empty());
    within(5, ch.queue_delete(q.as_str().into(), Default::default()))
        .await
        .unwrap();
}
