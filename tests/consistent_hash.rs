//! The `x-consistent-hash` exchange (the rabbitmq_consistent_hash_exchange plugin's
//! contract): binding keys are weights, each message reaches exactly one destination chosen
//! by a hash of its routing key (or of the header `hash-header`, or the property
//! `hash-property`), the same value always the same destination, shares proportional to the
//! weights, and bindings added or removed only move the values of the destinations they
//! concern. Argument and binding-key errors carry the plugin's texts.

mod common;
mod support;

use common::*;
use lapin::{
    options::*,
    types::{AMQPValue, FieldTable, LongString},
    BasicProperties, Channel, ExchangeKind,
};
use std::collections::HashMap;
use support::*;

fn chx() -> ExchangeKind {
    ExchangeKind::Custom("x-consistent-hash".into())
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

async fn declare_x(
    ch: &Channel,
    name: &str,
    args: &[(&str, AMQPValue)],
    durable: bool,
) -> lapin::Result<()> {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert((*k).into(), v.clone());
    }
    let opts = ExchangeDeclareOptions {
        durable,
        ..Default::default()
    };
    within(5, ch.exchange_declare(name.into(), chx(), opts, t)).await
}

async fn exchange(ch: &Channel, args: &[(&str, AMQPValue)]) -> String {
    let x = unique("chx");
    declare_x(ch, &x, args, false)
        .await
        .expect("exchange.declare");
    x
}

async fn try_bind(ch: &Channel, q: &str, x: &str, key: &str) -> lapin::Result<()> {
    within(
        5,
        ch.queue_bind(
            q.into(),
            x.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
}

/// `n` new queues bound to `x` with the given weights.
async fn weighted(ch: &Channel, x: &str, weights: &[&str]) -> Vec<String> {
    let mut qs = Vec::new();
    for w in weights {
        let q = unique("q");
        queue(ch, &q).await;
        bind(ch, &q, x, w).await;
        qs.push(q);
    }
    qs
}

/// Publish every message (pipelined), then wait for all confirms.
async fn publish_all(ch: &Channel, x: &str, msgs: &[(String, BasicProperties)]) {
    for (key, props) in msgs {
        within(
            5,
            ch.basic_publish(
                x.into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                key.as_bytes(),
                props.clone(),
            ),
        )
        .await
        .expect("basic.publish");
    }
    let returned = within(60, ch.wait_for_confirms()).await.expect("confirms");
    assert!(returned.is_empty());
}

/// Where each message body went: body -> index of the queue in `qs`.
async fn placement(ch: &Channel, qs: &[String]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for (i, q) in qs.iter().enumerate() {
        for b in drain(ch, q).await {
            let prev = out.insert(String::from_utf8(b).unwrap(), i);
            assert!(prev.is_none(), "a message reached two queues");
        }
    }
    out
}

fn keys(prefix: &str, n: usize) -> Vec<(String, BasicProperties)> {
    (0..n)
        .map(|i| (format!("{prefix}-{i}"), BasicProperties::default()))
        .collect()
}

#[tokio::test]
async fn shares_are_proportional_to_weights_and_each_key_sticks_to_one_queue() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, &[]).await;
    let qs = weighted(&ch, &x, &["1", "3"]).await;
    let n = 10_000;
    publish_all(&ch, &x, &keys("key", n)).await;
    let first = placement(&ch, &qs).await;
    assert_eq!(first.len(), n, "every message reaches exactly one queue");
    let light = first.values().filter(|i| **i == 0).count();
    // Expected 2,500 (weight 1 of 4). Keys hash independently, so the count is binomial:
    // standard deviation sqrt(10000 * 1/4 * 3/4) = 43; 250 is almost 6 of them.
    assert!(
        (2250..=2750).contains(&light),
        "weight 1 of 4 got {light} of {n}"
    );

    // The same keys again: every one reaches the queue it reached before.
    let sample: Vec<(String, BasicProperties)> = keys("key", n).into_iter().step_by(10).collect();
    publish_all(&ch, &x, &sample).await;
    let again = placement(&ch, &qs).await;
    for (k, i) in &again {
        assert_eq!(first[k], *i, "key {k} moved");
    }
}

#[tokio::test]
async fn adding_or_removing_a_queue_moves_only_that_queues_keys() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, &[]).await;
    let mut qs = weighted(&ch, &x, &["2", "2"]).await;
    let msgs = keys("move", 2000);
    publish_all(&ch, &x, &msgs).await;
    let before = placement(&ch, &qs).await;
    qs.extend(weighted(&ch, &x, &["2"]).await);
    publish_all(&ch, &x, &msgs).await;
    let after = placement(&ch, &qs).await;
    let moved = after.iter().filter(|(k, i)| before[*k] != **i).count();
    for (k, i) in &after {
        assert!(*i == before[k] || *i == 2, "{k} moved between old queues");
    }
    // About a third move to the new queue.
    assert!((500..=850).contains(&moved), "{moved} of 2000 moved");

    // Unbinding the first queue: only its keys move. That is warren's guarantee, not the
    // plugin's: its ring renumbers the points after the removed ones, which moves other keys.
    if b.broker().is_none() {
        return;
    }
    within(
        5,
        ch.queue_unbind(
            qs[0].as_str().into(),
            x.as_str().into(),
            "2".into(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    publish_all(&ch, &x, &msgs).await;
    let last = placement(&ch, &qs).await;
    for (k, i) in &last {
        assert!(*i != 0);
        if after[k] != 0 {
            assert_eq!(*i, after[k], "{k} moved though its queue stayed bound");
        }
    }
}

#[tokio::test]
async fn a_queue_counts_once_and_leaves_the_ring_with_any_of_its_bindings() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, &[]).await;
    let qs = weighted(&ch, &x, &["1", "1"]).await;
    // A second binding of the first queue, heavier: ignored, as the plugin ignores it.
    bind(&ch, &qs[0], &x, "10").await;
    publish_all(&ch, &x, &keys("twice", 2000)).await;
    let got = placement(&ch, &qs).await;
    let first = got.values().filter(|i| **i == 0).count();
    // Expected 1000, standard deviation 22.
    assert!((850..=1150).contains(&first), "{first} of 2000");
    // Removing either binding takes the queue off the ring, as the plugin does.
    within(
        5,
        ch.queue_unbind(
            qs[0].as_str().into(),
            x.as_str().into(),
            "10".into(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    publish_all(&ch, &x, &keys("after", 200)).await;
    let got = placement(&ch, &qs).await;
    assert_eq!(got.values().filter(|i| **i == 1).count(), 200);
}

#[tokio::test]
async fn binding_keys_must_be_positive_integers() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let mut ch = open(&conn).await;
    let x = exchange(&ch, &[]).await;
    let q = unique("q");
    queue(&ch, &q).await;
    for (key, text) in [
        ("abc", "The binding key must be an integer: <<\"abc\">>"),
        ("", "The binding key must be an integer: <<>>"),
        ("1.5", "The binding key must be an integer: <<\"1.5\">>"),
        ("a\nb", "The binding key must be an integer: <<\"a\\nb\">>"),
        ("0", "The binding key must be greater than 0"),
        ("-3", "The binding key must be greater than 0"),
    ] {
        let err = try_bind(&ch, &q, &x, key).await.expect_err(key);
        assert_eq!(
            code(&err),
            (406, format!("PRECONDITION_FAILED - {text}")),
            "{key:?}"
        );
        ch = open(&conn).await;
    }
    try_bind(&ch, &q, &x, "+5").await.unwrap();
    // An exchange may be a destination too.
    let inner = unique("inner");
    within(
        5,
        ch.exchange_declare(
            inner.as_str().into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let err = within(
        5,
        ch.exchange_bind(
            inner.as_str().into(),
            x.as_str().into(),
            "heavy".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("a non-integer exchange binding");
    assert_eq!(
        code(&err),
        (
            406,
            "PRECONDITION_FAILED - The binding key must be an integer: <<\"heavy\">>".into()
        )
    );
}

#[tokio::test]
async fn an_exchange_destination_takes_its_share() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, &[]).await;
    let inner = unique("inner");
    within(
        5,
        ch.exchange_declare(
            inner.as_str().into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    within(
        5,
        ch.exchange_bind(
            inner.as_str().into(),
            x.as_str().into(),
            "1".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let via = unique("via");
    queue(&ch, &via).await;
    bind(&ch, &via, &inner, "").await;
    let direct = weighted(&ch, &x, &["1"]).await;
    publish_all(&ch, &x, &keys("e2e", 400)).await;
    let got = placement(&ch, &[via, direct[0].clone()]).await;
    assert_eq!(got.len(), 400);
    let through = got.values().filter(|i| **i == 0).count();
    assert!(
        (120..=280).contains(&through),
        "{through} of 400 via the exchange"
    );
}

#[tokio::test]
async fn hash_header_hashes_a_header_instead_of_the_routing_key() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, &[("hash-header", s("user"))]).await;
    let qs = weighted(&ch, &x, &["1", "1"]).await;
    // 600 messages, 60 users, each with 10 different routing keys.
    let msgs: Vec<(String, BasicProperties)> = (0..600)
        .map(|i| {
            let mut h = FieldTable::default();
            h.insert("user".into(), s(&format!("user-{}", i % 60)));
            (format!("m{i}"), BasicProperties::default().with_headers(h))
        })
        .collect();
    publish_all(&ch, &x, &msgs).await;
    let got = placement(&ch, &qs).await;
    assert_eq!(got.len(), 600);
    let mut per_user: HashMap<usize, usize> = HashMap::new();
    for (k, i) in &got {
        let n: usize = k[1..].parse().unwrap();
        let prev = per_user.insert(n % 60, *i);
        assert!(prev.is_none_or(|p| p == *i), "user {} split", n % 60);
    }
    let first = per_user.values().filter(|i| **i == 0).count();
    assert!(
        (12..=48).contains(&first),
        "{first} of 60 users on the first queue"
    );

    // Without the header every message goes to one and the same queue.
    publish_all(&ch, &x, &keys("noheader", 50)).await;
    let got = placement(&ch, &qs).await;
    let targets: std::collections::HashSet<usize> = got.values().copied().collect();
    assert_eq!((got.len(), targets.len()), (50, 1));
}

#[tokio::test]
async fn hash_property_hashes_the_message_id() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, &[("hash-property", s("message_id"))]).await;
    let qs = weighted(&ch, &x, &["1", "1"]).await;
    let msgs: Vec<(String, BasicProperties)> = (0..400)
        .map(|i| {
            let id = format!("id-{}", i % 40);
            let props = BasicProperties::default().with_message_id(id.into());
            (format!("m{i}"), props)
        })
        .collect();
    publish_all(&ch, &x, &msgs).await;
    let got = placement(&ch, &qs).await;
    assert_eq!(got.len(), 400);
    let mut per_id: HashMap<usize, usize> = HashMap::new();
    for (k, i) in &got {
        let n: usize = k[1..].parse().unwrap();
        let prev = per_id.insert(n % 40, *i);
        assert!(prev.is_none_or(|p| p == *i), "message id {} split", n % 40);
    }
    let first = per_id.values().filter(|i| **i == 0).count();
    assert!(
        (6..=34).contains(&first),
        "{first} of 40 ids on the first queue"
    );
}

#[tokio::test]
async fn hash_arguments_are_checked() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let x = unique("chx");
    let err = declare_x(
        &ch,
        &x,
        &[("hash-header", s("h")), ("hash-property", s("message_id"))],
        false,
    )
    .await
    .expect_err("both");
    assert_eq!(
        code(&err),
        (
            406,
            "PRECONDITION_FAILED - hash-header and hash-property are mutually exclusive".into()
        )
    );
    let ch = open(&conn).await;
    let err = declare_x(&ch, &x, &[("hash-property", s("app_id"))], false)
        .await
        .expect_err("unsupported property");
    assert_eq!(
        code(&err),
        (
            406,
            "PRECONDITION_FAILED - Unsupported property: app_id".into()
        )
    );
    let ch = open(&conn).await;
    for p in ["correlation_id", "message_id", "timestamp"] {
        let x = unique("chx");
        declare_x(&ch, &x, &[("hash-property", s(p))], false)
            .await
            .unwrap();
        within(5, ch.exchange_delete(x.as_str().into(), Default::default()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn with_no_binding_a_message_is_unroutable() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, &[]).await;
    let opts = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let c = within(
        5,
        ch.basic_publish(
            x.as_str().into(),
            "k".into(),
            opts,
            b"none",
            BasicProperties::default(),
        ),
    )
    .await
    .unwrap();
    let r = within(5, c)
        .await
        .unwrap()
        .take_message()
        .expect("returned");
    assert_eq!((r.reply_code, r.reply_text.as_str()), (312, "NO_ROUTE"));
}

#[tokio::test]
async fn a_durable_ring_routes_every_key_as_before_a_restart() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return; // needs an in-process broker to restart
    }
    let x = unique("chx");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut qs = Vec::new();
    let msgs = keys("restart", 500);
    let before = {
        let (_conn, ch) = confirm_channel(&b).await;
        declare_x(&ch, &x, &[], true).await.unwrap();
        for w in ["3", "1", "2"] {
            let q = unique("q");
            within(
                5,
                ch.queue_declare(q.as_str().into(), durable, FieldTable::default()),
            )
            .await
            .unwrap();
            bind(&ch, &q, &x, w).await;
            qs.push(q);
        }
        publish_all(&ch, &x, &msgs).await;
        placement(&ch, &qs).await
    };
    let b = b.restart().await;
    let (_conn, ch) = confirm_channel(&b).await;
    publish_all(&ch, &x, &msgs).await;
    assert_eq!(placement(&ch, &qs).await, before);
}
