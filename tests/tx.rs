//! Transactions: publishes and acks take effect on tx.commit and vanish on tx.rollback.

mod common;
mod support;

use common::*;
use lapin::{options::*, Channel};
use support::*;

async fn tx_channel(conn: &lapin::Connection) -> Channel {
    let ch = open(conn).await;
    within(5, ch.tx_select()).await.expect("tx.select-ok");
    ch
}

#[tokio::test]
async fn publishes_wait_for_commit() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let plain = open(&conn).await;
    let q = unique("q");
    queue(&plain, &q).await;
    let tx = tx_channel(&conn).await;
    publish(&tx, "", &q, b"1").await;
    publish(&tx, "", &q, b"2").await;
    // Not visible before the commit: a round trip on the tx channel is processed after the
    // publishes, so if they were enqueued the count would show them.
    within(5, tx.basic_qos(0, Default::default()))
        .await
        .unwrap();
    assert_eq!(counts(&plain, &q).await, (0, 0));
    within(5, tx.tx_commit()).await.expect("tx.commit-ok");
    // After commit-ok the messages are in the queue, no polling needed.
    assert_eq!(counts(&plain, &q).await, (2, 0));
    assert_eq!(drain(&plain, &q).await, [b"1".to_vec(), b"2".to_vec()]);
}

#[tokio::test]
async fn rollback_discards_publishes() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let plain = open(&conn).await;
    let q = unique("q");
    queue(&plain, &q).await;
    let tx = tx_channel(&conn).await;
    publish(&tx, "", &q, b"dropped").await;
    within(5, tx.tx_rollback()).await.expect("tx.rollback-ok");
    publish(&tx, "", &q, b"kept").await;
    within(5, tx.tx_commit()).await.unwrap();
    assert_eq!(drain(&plain, &q).await, [b"kept".to_vec()]);
}

#[tokio::test]
async fn acks_wait_for_commit() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let plain = open(&conn).await;
    let q = unique("q");
    queue(&plain, &q).await;
    for i in 0..2u8 {
        publish(&plain, "", &q, &[i]).await;
    }
    wait_ready(&plain, &q, 2).await;
    let tx = tx_channel(&conn).await;
    let m0 = get(&tx, &q).await.unwrap();
    let m1 = get(&tx, &q).await.unwrap();
    m0.delivery.ack(Default::default()).await.unwrap();
    within(5, tx.tx_commit()).await.unwrap();
    // The rolled-back ack leaves message 1 unacked, so closing the channel requeues it.
    within(
        5,
        tx.basic_ack(m1.delivery.delivery_tag, Default::default()),
    )
    .await
    .unwrap();
    within(5, tx.tx_rollback()).await.unwrap();
    within(5, tx.close(200, "OK".into())).await.unwrap();
    wait_ready(&plain, &q, 1).await;
    let back = drain(&plain, &q).await;
    assert_eq!(back, [vec![1u8]]);
}

#[tokio::test]
async fn rejects_wait_for_commit() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let plain = open(&conn).await;
    let q = unique("q");
    queue(&plain, &q).await;
    publish(&plain, "", &q, b"m").await;
    wait_ready(&plain, &q, 1).await;
    let tx = tx_channel(&conn).await;
    let m = get(&tx, &q).await.unwrap();
    m.delivery
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    within(5, tx.basic_qos(0, Default::default()))
        .await
        .unwrap();
    assert_eq!(counts(&plain, &q).await, (0, 0));
    within(5, tx.tx_commit()).await.unwrap();
    assert_eq!(counts(&plain, &q).await, (1, 0));
}

#[tokio::test]
async fn closing_discards_uncommitted_work() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let plain = open(&conn).await;
    let q = unique("q");
    queue(&plain, &q).await;
    let tx = tx_channel(&conn).await;
    publish(&tx, "", &q, b"never").await;
    within(5, tx.close(200, "OK".into())).await.unwrap();
    assert_eq!(counts(&plain, &q).await, (0, 0));
}

#[tokio::test]
async fn tx_select_is_idempotent_and_commit_without_work_is_fine() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let tx = tx_channel(&conn).await;
    within(5, tx.tx_select()).await.unwrap();
    within(5, tx.tx_commit()).await.unwrap();
    within(5, tx.tx_rollback()).await.unwrap();
}

#[tokio::test]
async fn commit_without_select_is_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let (code, text) = refused(ch.tx_commit()).await;
    assert_eq!(
        (code, text.as_str()),
        (406, "PRECONDITION_FAILED - channel is not transactional")
    );
}

#[tokio::test]
async fn mandatory_return_in_tx_comes_on_commit() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let tx = tx_channel(&conn).await;
    let opts = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    within(
        5,
        tx.basic_publish(
            "amq.direct".into(),
            unique("nobody").as_str().into(),
            opts,
            b"r",
            Default::default(),
        ),
    )
    .await
    .unwrap();
    within(5, tx.tx_commit()).await.unwrap();
    let returned = eventually(5, || async {
        let r = tx.wait_for_confirms().await.unwrap();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(returned.len(), 1);
    assert_eq!(
        (returned[0].reply_code, returned[0].reply_text.as_str()),
        (312, "NO_ROUTE")
    );
}
