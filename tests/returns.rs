//! basic.return for mandatory messages that reach no queue, without publisher confirms.

mod common;
mod support;

use common::*;
use lapin::{message::BasicReturnMessage, options::*, BasicProperties, Channel, ExchangeKind};
use support::*;

/// Returned messages collected so far by lapin, polled until `n` have arrived. Without
/// confirms `wait_for_confirms` resolves at once and just drains them.
async fn returned(ch: &Channel, n: usize) -> Vec<BasicReturnMessage> {
    let mut all = Vec::new();
    within(5, async {
        loop {
            all.extend(ch.wait_for_confirms().await.expect("returned messages"));
            if all.len() >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    all
}

async fn mandatory(ch: &Channel, x: &str, key: &str, body: &[u8], props: BasicProperties) {
    let opts = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    within(5, ch.basic_publish(x.into(), key.into(), opts, body, props))
        .await
        .unwrap();
}

#[tokio::test]
async fn unroutable_mandatory_is_returned_with_312() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let key = unique("nobody");
    let props = BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_priority(3);
    mandatory(&ch, "amq.direct", &key, b"back", props.clone()).await;
    let r = returned(&ch, 1).await;
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].reply_code, r[0].reply_text.as_str()),
        (312, "NO_ROUTE")
    );
    assert_eq!(r[0].delivery.exchange.as_str(), "amq.direct");
    assert_eq!(r[0].delivery.routing_key.as_str(), key);
    assert_eq!(r[0].delivery.data, b"back");
    assert_eq!(r[0].delivery.properties, props);
}

#[tokio::test]
async fn default_exchange_to_missing_queue_is_returned() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let key = unique("noq");
    mandatory(&ch, "", &key, b"x", BasicProperties::default()).await;
    let r = returned(&ch, 1).await;
    assert_eq!(
        (
            r[0].reply_code,
            r[0].delivery.exchange.as_str(),
            r[0].delivery.routing_key.as_str()
        ),
        (312, "", key.as_str())
    );
}

#[tokio::test]
async fn returns_keep_publish_order_and_large_bodies() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    mandatory(&ch, "amq.fanout", "", b"first", BasicProperties::default()).await;
    mandatory(&ch, "amq.fanout", "", &big, BasicProperties::default()).await;
    mandatory(&ch, "amq.fanout", "", b"", BasicProperties::default()).await;
    let r = returned(&ch, 3).await;
    let bodies: Vec<&[u8]> = r.iter().map(|m| m.delivery.data.as_slice()).collect();
    assert_eq!(bodies, [&b"first"[..], &big[..], &b""[..]]);
}

#[tokio::test]
async fn non_mandatory_unroutable_is_dropped_silently() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    publish(&ch, "amq.direct", &unique("nobody"), b"gone").await;
    // A mandatory unroutable message published afterwards is the only one returned.
    mandatory(
        &ch,
        "amq.direct",
        "marker",
        b"marker",
        BasicProperties::default(),
    )
    .await;
    let r = returned(&ch, 1).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].delivery.data, b"marker");
    assert!(ch.status().connected());
}

#[tokio::test]
async fn routed_mandatory_is_not_returned() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let x = unique("x");
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Topic,
            Default::default(),
            Default::default(),
        ),
    )
    .await
    .unwrap();
    let q = unique("q");
    queue(&ch, &q).await;
    bind(&ch, &q, &x, "a.#").await;
    mandatory(&ch, &x, "a.b", b"routed", BasicProperties::default()).await;
    mandatory(&ch, &x, "b.a", b"unrouted", BasicProperties::default()).await;
    let r = returned(&ch, 1).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].delivery.data, b"unrouted");
    wait_ready(&ch, &q, 1).await;
    assert_eq!(drain(&ch, &q).await, [b"routed".to_vec()]);
}
