//! Publisher confirms: sequential tags, acks for routed and unroutable messages, and the
//! basic.return that precedes the ack of an unroutable mandatory message.

mod common;
mod support;

use common::*;
use lapin::{options::*, BasicProperties, Confirmation};
use support::*;

#[tokio::test]
async fn every_publish_is_acked_in_order() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .expect("confirm.select-ok");
    assert!(ch.status().confirm());
    let q = unique("q");
    queue(&ch, &q).await;
    let mut pending = Vec::new();
    for i in 0..100u8 {
        pending.push(
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                Default::default(),
                &[i],
                BasicProperties::default(),
            )
            .await
            .unwrap(),
        );
    }
    for p in pending {
        assert!(within(5, p).await.unwrap().is_ack());
    }
    assert!(within(5, ch.wait_for_confirms()).await.unwrap().is_empty());
    assert_eq!(counts(&ch, &q).await, (100, 0));
}

#[tokio::test]
async fn unroutable_messages_are_acked_too() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    let c = ch
        .basic_publish(
            "amq.direct".into(),
            unique("nobody").as_str().into(),
            Default::default(),
            b"lost",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let confirmation = within(5, c).await.unwrap();
    assert!(confirmation.is_ack());
    assert_eq!(confirmation.take_message(), None);
}

#[tokio::test]
async fn mandatory_unroutable_is_returned_before_the_ack() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    let key = unique("nobody");
    let props = BasicProperties::default().with_message_id("m-1".into());
    let opts = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let c = ch
        .basic_publish(
            "amq.direct".into(),
            key.as_str().into(),
            opts,
            b"bounce",
            props.clone(),
        )
        .await
        .unwrap();
    // lapin attaches a basic.return to the confirm only if it arrived before the basic.ack.
    let confirmation = within(5, c).await.unwrap();
    assert!(confirmation.is_ack());
    let ret = confirmation
        .take_message()
        .expect("basic.return before basic.ack");
    assert_eq!(ret.reply_code, 312);
    assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(ret.delivery.exchange.as_str(), "amq.direct");
    assert_eq!(ret.delivery.routing_key.as_str(), key);
    assert_eq!(ret.delivery.data, b"bounce");
    assert_eq!(ret.delivery.properties, props);
}

#[tokio::test]
async fn routed_mandatory_is_not_returned() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    let q = unique("q");
    queue(&ch, &q).await;
    let opts = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let c = ch
        .basic_publish(
            "".into(),
            q.as_str().into(),
            opts,
            b"ok",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let confirmation = within(5, c).await.unwrap();
    assert!(
        matches!(confirmation, Confirmation::Ack(None)),
        "{confirmation:?}"
    );
}

#[tokio::test]
async fn confirm_select_is_idempotent_and_tags_continue() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    let q = unique("q");
    queue(&ch, &q).await;
    publish_confirmed(&ch, "", &q, b"1").await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    publish_confirmed(&ch, "", &q, b"2").await;
    assert_eq!(counts(&ch, &q).await, (2, 0));
}

#[tokio::test]
async fn publish_to_missing_exchange_fails_the_confirm() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    let x = unique("nox");
    let c = ch
        .basic_publish(
            x.as_str().into(),
            "k".into(),
            Default::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let err = within(5, c)
        .await
        .expect_err("channel closed before the ack");
    assert_eq!(
        code(&err),
        (404, format!("NOT_FOUND - no exchange '{x}' in vhost '/'"))
    );
}

#[tokio::test]
async fn confirms_on_separate_channels_are_independent() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let q = unique("q");
    let setup = open(&conn).await;
    queue(&setup, &q).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let ch = open(&conn).await;
        within(5, ch.confirm_select(Default::default()))
            .await
            .unwrap();
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u8 {
                publish_confirmed(&ch, "", &q, &[i]).await;
            }
        }));
    }
    for t in tasks {
        within(20, t).await.unwrap();
    }
    assert_eq!(counts(&setup, &q).await, (100, 0));
}
