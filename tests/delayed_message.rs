//! The `x-delayed-message` exchange (the rabbitmq_delayed_message_exchange plugin's contract):
//! `x-delayed-type` names how it routes; a message with a positive `x-delay` header
//! (milliseconds) is routed only once that delay has passed, in due order, and arrives with
//! `x-delay` negated as the plugin delivers it; without one (or with 0 or less) it is routed
//! at once, untouched. Beyond the plugin: persistent messages held by a durable exchange are
//! stored (confirmed once synced) and released on time after a restart; a mandatory message
//! that is held is not returned; deleting the exchange drops what it holds.

mod common;
mod support;

use common::*;
use lapin::{
    options::*,
    types::{AMQPValue, FieldArray, FieldTable, LongString},
    BasicProperties, Channel, ExchangeKind,
};
use std::time::{Duration, Instant};
use support::*;

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

fn table(args: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn delayed_kind() -> ExchangeKind {
    ExchangeKind::Custom("x-delayed-message".into())
}

async fn declare_x(
    ch: &Channel,
    name: &str,
    args: &[(&str, AMQPValue)],
    durable: bool,
) -> lapin::Result<()> {
    let opts = ExchangeDeclareOptions {
        durable,
        ..Default::default()
    };
    within(
        5,
        ch.exchange_declare(name.into(), delayed_kind(), opts, table(args)),
    )
    .await
}

/// A delayed exchange routing as `kind`.
async fn delayed(ch: &Channel, kind: &str) -> String {
    let x = unique("dx");
    declare_x(ch, &x, &[("x-delayed-type", s(kind))], false)
        .await
        .expect("exchange.declare");
    x
}

async fn bound_queue(ch: &Channel, x: &str, key: &str) -> String {
    let q = unique("q");
    queue(ch, &q).await;
    bind(ch, &q, x, key).await;
    q
}

fn delay(ms: i64) -> BasicProperties {
    BasicProperties::default().with_headers(table(&[("x-delay", AMQPValue::LongInt(ms as i32))]))
}

fn header(props: &BasicProperties, key: &str) -> Option<AMQPValue> {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(key).cloned())
}

fn body(d: &lapin::message::Delivery) -> String {
    String::from_utf8(d.data.clone()).unwrap()
}

async fn get_eventually(ch: &Channel, q: &str, secs: u64) -> lapin::message::BasicGetMessage {
    let ch = ch.clone();
    let q = q.to_string();
    eventually(secs, move || {
        let (ch, q) = (ch.clone(), q.clone());
        async move { get(&ch, &q).await }
    })
    .await
}

#[tokio::test]
async fn the_delayed_type_is_required_and_must_exist() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let mut ch = open(&conn).await;
    let x = unique("dx");
    for (args, text) in [
        (
            vec![],
            "Invalid argument, 'x-delayed-type' must be an existing exchange type".to_string(),
        ),
        (
            vec![("x-delayed-type", AMQPValue::LongInt(1))],
            "Invalid argument, 'x-delayed-type' must be an existing exchange type".to_string(),
        ),
        (
            vec![("x-delayed-type", s("x-delayed-message"))],
            "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'".to_string(),
        ),
        (
            vec![("x-delayed-type", s("no-such-type"))],
            "unknown exchange type 'no-such-type'".to_string(),
        ),
    ] {
        let err = declare_x(&ch, &x, &args, false).await.expect_err("refused");
        assert_eq!(code(&err), (406, format!("PRECONDITION_FAILED - {text}")));
        ch = open(&conn).await;
    }
    // The delayed type's own rules apply: a consistent-hash binding key is a weight.
    let chx = delayed(&ch, "x-consistent-hash").await;
    let q = unique("q");
    queue(&ch, &q).await;
    let err = within(
        5,
        ch.queue_bind(
            q.as_str().into(),
            chx.as_str().into(),
            "w".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("weight");
    assert_eq!(
        code(&err),
        (
            406,
            "PRECONDITION_FAILED - The binding key must be an integer: <<\"w\">>".into()
        )
    );
}

#[tokio::test]
async fn a_message_is_delivered_once_its_delay_has_passed_and_not_before() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = delayed(&ch, "direct").await;
    let q = bound_queue(&ch, &x, "k").await;
    let mut inbox = consume(
        &ch,
        &q,
        "",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await;
    let t0 = Instant::now();
    publish_confirmed_with(&ch, &x, "k", b"later", delay(700)).await;
    // Confirmed at once (nothing durable to wait for), and not in the queue yet.
    assert!(t0.elapsed() < Duration::from_millis(700));
    assert_eq!(counts(&ch, &q).await.0, 0);
    let d = inbox.next().await;
    let waited = t0.elapsed();
    assert_eq!(body(&d), "later");
    assert!(
        waited >= Duration::from_millis(700),
        "delivered after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(2700),
        "delivered after {waited:?}"
    );
}

#[tokio::test]
async fn messages_are_released_in_due_order() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = delayed(&ch, "fanout").await;
    let q = bound_queue(&ch, &x, "").await;
    let mut inbox = consume(
        &ch,
        &q,
        "",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await;
    for (name, ms) in [
        ("c", 900),
        ("a", 300),
        ("b1", 600),
        ("b2", 600),
        ("b3", 600),
        ("now", 0),
    ] {
        publish_confirmed_with(&ch, &x, "", name.as_bytes(), delay(ms)).await;
    }
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(body(&inbox.next().await));
    }
    // Equal delays keep publish order.
    assert_eq!(got, ["now", "a", "b1", "b2", "b3", "c"]);
}

#[tokio::test]
async fn without_a_positive_delay_a_message_is_routed_at_once_untouched() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = delayed(&ch, "direct").await;
    let q = bound_queue(&ch, &x, "k").await;
    let cases = [
        ("absent", BasicProperties::default()),
        ("zero", delay(0)),
        ("negative", delay(-5000)),
        (
            "not a number",
            BasicProperties::default().with_headers(table(&[("x-delay", s("soon"))])),
        ),
        (
            "too long",
            BasicProperties::default()
                .with_headers(table(&[("x-delay", AMQPValue::LongLongInt(1 << 32))])),
        ),
    ];
    for (name, props) in &cases {
        publish_confirmed_with(&ch, &x, "k", name.as_bytes(), props.clone()).await;
        // Routed before the confirm: in the queue already.
        let m = get(&ch, &q)
            .await
            .unwrap_or_else(|| panic!("{name} is not in the queue"));
        assert_eq!(m.delivery.data, name.as_bytes());
        assert_eq!(&m.delivery.properties, props, "{name}: properties changed");
    }
}

#[tokio::test]
async fn released_messages_keep_their_properties_and_carry_the_delay_negated() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = delayed(&ch, "topic").await;
    let q1 = bound_queue(&ch, &x, "a.*").await;
    let q2 = bound_queue(&ch, &x, "#.z").await;
    let q3 = bound_queue(&ch, &x, "bcc").await;
    let headers = table(&[
        ("x-delay", s("300")),
        ("app", s("v")),
        ("n", AMQPValue::LongLongInt(42)),
        (
            "BCC",
            AMQPValue::FieldArray(FieldArray::from(vec![s("bcc")])),
        ),
    ]);
    let props = BasicProperties::default()
        .with_headers(headers)
        .with_content_type("text/plain".into())
        .with_message_id("m-1".into())
        .with_correlation_id("c-1".into())
        .with_priority(4)
        .with_timestamp(1_700_000_000);
    publish_confirmed_with(&ch, &x, "a.z", b"payload", props.clone()).await;
    let mut expected = FieldTable::default();
    for (k, v) in props.headers().as_ref().unwrap().inner() {
        if k.as_str() != "BCC" {
            expected.insert(k.clone(), v.clone());
        }
    }
    expected.insert("x-delay".into(), AMQPValue::LongInt(-300));
    for q in [&q1, &q2, &q3] {
        let m = get_eventually(&ch, q, 5).await;
        assert_eq!(m.delivery.data, b"payload");
        assert_eq!(m.delivery.exchange.as_str(), x);
        assert_eq!(m.delivery.routing_key.as_str(), "a.z");
        let p = &m.delivery.properties;
        assert_eq!(p.headers().as_ref(), Some(&expected));
        assert_eq!(
            p.clone().with_headers(FieldTable::default()),
            props.clone().with_headers(FieldTable::default())
        );
        assert_eq!(header(p, "x-delay"), Some(AMQPValue::LongInt(-300)));
    }
}

#[tokio::test]
async fn a_held_mandatory_message_is_not_returned_and_the_alternate_applies_when_released() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let ae = unique("ae");
    within(
        5,
        ch.exchange_declare(
            ae.as_str().into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let aq = bound_queue(&ch, &ae, "").await;
    let x = unique("dx");
    declare_x(
        &ch,
        &x,
        &[
            ("x-delayed-type", s("direct")),
            ("alternate-exchange", s(&ae)),
        ],
        false,
    )
    .await
    .unwrap();
    let q = bound_queue(&ch, &x, "bound").await;
    let opts = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    for key in ["bound", "unbound"] {
        let c = within(
            5,
            ch.basic_publish(
                x.as_str().into(),
                key.into(),
                opts,
                key.as_bytes(),
                delay(300),
            ),
        )
        .await
        .unwrap();
        let c = within(5, c).await.unwrap();
        assert!(c.is_ack());
        assert!(c.take_message().is_none(), "a held message was returned");
    }
    // Held: the alternate exchange has nothing yet.
    assert!(get(&ch, &aq).await.is_none());
    assert_eq!(get_eventually(&ch, &q, 5).await.delivery.data, b"bound");
    assert_eq!(get_eventually(&ch, &aq, 5).await.delivery.data, b"unbound");
}

#[tokio::test]
async fn dead_letters_to_a_delayed_exchange_are_held_too() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = delayed(&ch, "fanout").await;
    let out = bound_queue(&ch, &x, "").await;
    let q = unique("q");
    within(
        5,
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            table(&[("x-dead-letter-exchange", s(&x))]),
        ),
    )
    .await
    .unwrap();
    publish_confirmed_with(&ch, "", &q, b"retry", delay(400)).await;
    let m = get(&ch, &q).await.expect("queued");
    let t0 = Instant::now();
    within(
        5,
        m.delivery
            .acker
            .reject(BasicRejectOptions { requeue: false }),
    )
    .await
    .unwrap();
    let m = get_eventually(&ch, &out, 5).await;
    assert!(t0.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        header(&m.delivery.properties, "x-delay"),
        Some(AMQPValue::LongInt(-400))
    );
    assert!(header(&m.delivery.properties, "x-death").is_some());
}

#[tokio::test]
async fn deleting_the_exchange_drops_what_it_holds() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = delayed(&ch, "fanout").await;
    let marker_x = delayed(&ch, "fanout").await;
    let q = bound_queue(&ch, &x, "").await;
    bind(&ch, &q, &marker_x, "").await;
    publish_confirmed_with(&ch, &x, "", b"dropped", delay(200)).await;
    within(5, ch.exchange_delete(x.as_str().into(), Default::default()))
        .await
        .unwrap();
    if let Some(broker) = b.broker() {
        assert_eq!(broker.vhost("/").unwrap().held_count(), 0);
    }
    // A marker due later than the dropped message: once it arrives, the other would have.
    publish_confirmed_with(&ch, &marker_x, "", b"marker", delay(500)).await;
    let m = get_eventually(&ch, &q, 5).await;
    assert_eq!(m.delivery.data, b"marker");
    assert!(get(&ch, &q).await.is_none());
}

fn big_body() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn persistent_messages_of_a_durable_exchange_survive_a_restart_on_time() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker() else {
        return; // needs an in-process broker to restart
    };
    let (x, gone_x, q) = (unique("dx"), unique("gone"), unique("q"));
    let t0;
    {
        let (_conn, ch) = confirm_channel(&b).await;
        for name in [&x, &gone_x] {
            declare_x(&ch, name, &[("x-delayed-type", s("direct"))], true)
                .await
                .unwrap();
        }
        within(
            5,
            ch.queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ),
        )
        .await
        .unwrap();
        bind(&ch, &q, &x, "k").await;
        bind(&ch, &q, &gone_x, "k").await;
        let persistent = |ms: i64| delay(ms).with_delivery_mode(2);
        t0 = Instant::now();
        let rounds = broker
            .store
            .syncer()
            .rounds
            .load(std::sync::atomic::Ordering::Relaxed);
        publish_confirmed_with(&ch, &x, "k", b"persistent", persistent(1500)).await;
        // The confirm waited for a group commit.
        let after = broker
            .store
            .syncer()
            .rounds
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(after > rounds, "confirmed before any sync");
        // A large body lives in a body segment, which recovery must keep.
        publish_confirmed_with(&ch, &x, "k", &big_body(), persistent(2500)).await;
        // Due earlier, but not kept: a transient message, and one whose exchange is deleted.
        publish_confirmed_with(&ch, &x, "k", b"transient", delay(800)).await;
        publish_confirmed_with(&ch, &gone_x, "k", b"deleted", persistent(700)).await;
        within(
            5,
            ch.exchange_delete(gone_x.as_str().into(), Default::default()),
        )
        .await
        .unwrap();
        assert_eq!(broker.vhost("/").unwrap().held_count(), 3);
    }
    let b = b.restart().await;
    let (_conn, ch) = confirm_channel(&b).await;
    assert_eq!(b.broker().unwrap().vhost("/").unwrap().held_count(), 2);
    let mut inbox = consume(
        &ch,
        &q,
        "",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await;
    let d = inbox.next().await;
    let waited = t0.elapsed();
    assert_eq!(body(&d), "persistent");
    assert!(
        waited >= Duration::from_millis(1500),
        "released after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(4500),
        "released after {waited:?}"
    );
    assert_eq!(
        header(&d.properties, "x-delay"),
        Some(AMQPValue::LongInt(-1500))
    );
    assert_eq!(d.properties.delivery_mode(), &Some(2));
    // Nothing else came: the transient and the deleted exchange's messages were due earlier.
    assert_eq!(inbox.ready(), 0);
    assert_eq!(counts(&ch, &q).await.0, 0);
    // Another restart: the large message, read back from its body segment, is still held.
    drop((inbox, ch, _conn));
    let b = b.restart().await;
    assert_eq!(b.broker().unwrap().vhost("/").unwrap().held_count(), 1);
    let (_conn, ch) = confirm_channel(&b).await;
    let big = get_eventually(&ch, &q, 5).await;
    assert!(t0.elapsed() >= Duration::from_millis(2500));
    assert_eq!(big.delivery.data, big_body());
    // Released messages leave the store: nothing is held after another restart.
    drop((ch, _conn));
    let b = b.restart().await;
    assert_eq!(b.broker().unwrap().vhost("/").unwrap().held_count(), 0);
}
