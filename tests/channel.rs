//! Channels: independent lifecycles on one connection, soft errors that close only their
//! channel, channel.flow.

mod common;
mod support;

use common::*;
use lapin::{options::*, types::FieldTable};
use support::*;

#[tokio::test]
async fn channels_are_independent() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let a = open(&conn).await;
    let c = open(&conn).await;
    assert_ne!(a.id(), c.id());
    let qa = unique("qa");
    let qc = unique("qc");
    queue(&a, &qa).await;
    queue(&c, &qc).await;
    within(5, a.close(200, "OK".into()))
        .await
        .expect("channel.close-ok");
    assert!(!a.status().connected());
    // The other channel still works, and sees what the closed one declared.
    publish(&c, "", &qa, b"via c").await;
    wait_ready(&c, &qa, 1).await;
    assert_eq!(drain(&c, &qa).await, vec![b"via c".to_vec()]);
}

#[tokio::test]
async fn soft_error_closes_only_its_channel() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let bad = open(&conn).await;
    let good = open(&conn).await;
    let q = unique("q");
    queue(&good, &q).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let missing = unique("missing");
    let (code, _) =
        refused(bad.queue_declare(missing.as_str().into(), passive, FieldTable::default())).await;
    assert_eq!(code, 404);
    eventually(5, || async { (!bad.status().connected()).then_some(()) }).await;
    assert!(conn.status().connected());
    assert!(good.status().connected());
    publish(&good, "", &q, b"still here").await;
    wait_ready(&good, &q, 1).await;
    // A new channel after the error works too.
    let again = open(&conn).await;
    assert_eq!(drain(&again, &q).await, vec![b"still here".to_vec()]);
}

#[tokio::test]
async fn many_channels_on_one_connection() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let q = unique("q");
    let first = open(&conn).await;
    queue(&first, &q).await;
    let mut chans = Vec::new();
    for i in 0..50u32 {
        let ch = open(&conn).await;
        publish(&ch, "", &q, &i.to_be_bytes()).await;
        chans.push(ch);
    }
    wait_ready(&first, &q, 50).await;
    for ch in chans.iter().step_by(2) {
        within(5, ch.close(200, "OK".into())).await.unwrap();
    }
    // Channel numbers freed by close can be reused.
    let ch = open(&conn).await;
    assert!(ch.status().connected());
    assert_eq!(drain(&ch, &q).await.len(), 50);
}

#[tokio::test]
async fn flow_active_true_is_accepted() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let active = within(5, ch.channel_flow(ChannelFlowOptions { active: true }))
        .await
        .expect("channel.flow-ok");
    assert!(active);
}

#[tokio::test]
async fn flow_active_false_is_540() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let (code, text) = refused(ch.channel_flow(ChannelFlowOptions { active: false })).await;
    assert_eq!(
        (code, text.as_str()),
        (540, "NOT_IMPLEMENTED - active=false")
    );
    eventually(5, || async { (!conn.status().connected()).then_some(()) }).await;
}

#[tokio::test]
async fn closing_a_channel_cancels_its_consumers() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let other = open(&conn).await;
    let _c = consume(&other, &q, "c1", Default::default()).await;
    eventually(5, || async { (counts(&ch, &q).await.1 == 1).then_some(()) }).await;
    within(5, other.close(200, "OK".into())).await.unwrap();
    eventually(5, || async { (counts(&ch, &q).await.1 == 0).then_some(()) }).await;
}
