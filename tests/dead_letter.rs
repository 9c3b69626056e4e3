//! Dead-letter exchanges and length limits, as RabbitMQ has them: messages rejected without
//! requeue, expired, or pushed out by `x-max-length` go to the queue's dead-letter exchange
//! with an `x-death` history; `x-overflow` reject-publish refuses publishes (a nack for a
//! confirming publisher).

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};
use lapin::{BasicProperties, Channel};
use support::*;

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

/// Declare queue `name` with `args` (string or integer values).
async fn declare(ch: &Channel, name: &str, args: &[(&str, AMQPValue)]) {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert((*k).into(), v.clone());
    }
    within(
        5,
        ch.queue_declare(name.into(), QueueDeclareOptions::default(), t),
    )
    .await
    .expect("queue.declare");
}

/// A fanout dead-letter exchange feeding a fresh queue; returns (exchange, queue).
async fn dlx(ch: &Channel) -> (String, String) {
    let x = unique("dlx");
    let q = unique("dlq");
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            lapin::ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    queue(ch, &q).await;
    bind(ch, &q, &x, "").await;
    (x, q)
}

async fn get_eventually(ch: &Channel, q: &str) -> lapin::message::BasicGetMessage {
    let ch = ch.clone();
    let q = q.to_string();
    eventually(5, move || {
        let (ch, q) = (ch.clone(), q.clone());
        async move { get(&ch, &q).await }
    })
    .await
}

fn header<'a>(props: &'a BasicProperties, key: &str) -> &'a AMQPValue {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(key))
        .unwrap_or_else(|| panic!("no header {key} in {props:?}"))
}

fn deaths(props: &BasicProperties) -> Vec<FieldTable> {
    match header(props, "x-death") {
        AMQPValue::FieldArray(a) => a
            .as_slice()
            .iter()
            .map(|v| match v {
                AMQPValue::FieldTable(t) => t.clone(),
                other => panic!("x-death entry {other:?}"),
            })
            .collect(),
        other => panic!("x-death {other:?}"),
    }
}

fn entry<'a>(t: &'a FieldTable, key: &str) -> &'a AMQPValue {
    t.inner()
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {t:?}"))
}

#[tokio::test]
async fn rejected_message_goes_to_the_dead_letter_exchange_with_its_history() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let (x, dlq) = dlx(&ch).await;
    let q = unique("work");
    declare(&ch, &q, &[("x-dead-letter-exchange", s(&x))]).await;
    let mut headers = FieldTable::default();
    headers.insert("app".into(), s("kept"));
    headers.insert(
        "CC".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![s("also")])),
    );
    let props = BasicProperties::default()
        .with_headers(headers)
        .with_message_id("m1".into())
        .with_expiration("60000".into());
    publish_with(&ch, "", &q, b"poison", props).await;
    let m = get(&ch, &q).await.expect("the message");
    within(
        5,
        m.delivery
            .acker
            .reject(BasicRejectOptions { requeue: false }),
    )
    .await
    .unwrap();

    let d = get_eventually(&ch, &dlq).await;
    assert_eq!(d.delivery.data, b"poison");
    assert_eq!(d.delivery.exchange.as_str(), x);
    assert_eq!(d.delivery.routing_key.as_str(), q);
    assert!(!d.delivery.redelivered);
    let p = &d.delivery.properties;
    assert_eq!(p.message_id().as_ref().map(|m| m.as_str()), Some("m1"));
    assert_eq!(p.expiration(), &None, "expiration moves into x-death");
    assert_eq!(header(p, "app"), &s("kept"));
    assert_eq!(header(p, "x-first-death-queue"), &s(&q));
    assert_eq!(header(p, "x-first-death-reason"), &s("rejected"));
    assert_eq!(header(p, "x-first-death-exchange"), &s(""));
    let ds = deaths(p);
    assert_eq!(ds.len(), 1);
    let e = &ds[0];
    assert_eq!(entry(e, "count"), &AMQPValue::LongLongInt(1));
    assert_eq!(entry(e, "reason"), &s("rejected"));
    assert_eq!(entry(e, "queue"), &s(&q));
    assert_eq!(entry(e, "exchange"), &s(""));
    assert_eq!(entry(e, "original-expiration"), &s("60000"));
    assert_eq!(
        entry(e, "routing-keys"),
        &AMQPValue::FieldArray(FieldArray::from(vec![s(&q), s("also")]))
    );
    assert!(matches!(entry(e, "time"), AMQPValue::Timestamp(t) if *t > 1_600_000_000));
    assert_eq!(e.inner().len(), 7, "{e:?}");
}

#[tokio::test]
async fn nack_without_requeue_and_the_routing_key_override() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let dlq = unique("dlq");
    queue(&ch, &dlq).await;
    let q = unique("work");
    // The default exchange and a fixed key: straight to the dead-letter queue.
    declare(
        &ch,
        &q,
        &[
            ("x-dead-letter-exchange", s("")),
            ("x-dead-letter-routing-key", s(&dlq)),
        ],
    )
    .await;
    for body in [b"one", b"two"] {
        publish(&ch, "", &q, body).await;
    }
    let _first = get(&ch, &q).await.unwrap();
    let second = get(&ch, &q).await.unwrap();
    within(
        5,
        second.delivery.acker.nack(BasicNackOptions {
            multiple: true,
            requeue: false,
        }),
    )
    .await
    .unwrap();
    let a = get_eventually(&ch, &dlq).await;
    let b2 = get_eventually(&ch, &dlq).await;
    assert_eq!(
        (a.delivery.data.as_slice(), b2.delivery.data.as_slice()),
        (&b"one"[..], &b"two"[..])
    );
    assert_eq!(a.delivery.routing_key.as_str(), dlq);
    assert_eq!(
        entry(&deaths(&a.delivery.properties)[0], "routing-keys"),
        &AMQPValue::FieldArray(FieldArray::from(vec![s(&q)]))
    );
    // Requeued messages do not die.
    publish(&ch, "", &q, b"three").await;
    let m = get(&ch, &q).await.unwrap();
    within(
        5,
        m.delivery.acker.nack(BasicNackOptions {
            multiple: false,
            requeue: true,
        }),
    )
    .await
    .unwrap();
    assert_eq!(get(&ch, &q).await.unwrap().delivery.data, b"three");
    assert!(get(&ch, &dlq).await.is_none());
}

#[tokio::test]
async fn expired_messages_die_with_reason_expired_and_counts_grow_per_queue_and_reason() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let (x, dlq) = dlx(&ch).await;
    let q = unique("ttl");
    declare(
        &ch,
        &q,
        &[
            ("x-dead-letter-exchange", s(&x)),
            ("x-message-ttl", AMQPValue::LongInt(20)),
        ],
    )
    .await;
    publish(&ch, "", &q, b"late").await;
    let d = get_eventually(&ch, &dlq).await;
    let p = &d.delivery.properties;
    assert_eq!(header(p, "x-first-death-reason"), &s("expired"));
    assert_eq!(entry(&deaths(p)[0], "reason"), &s("expired"));
    assert!(deaths(p)[0].inner().get("original-expiration").is_none());
    // The same message dying again in the same queue for the same reason: count 2, one entry.
    let q2 = unique("again");
    declare(&ch, &q2, &[("x-dead-letter-exchange", s(&x))]).await;
    let back = BasicProperties::default().with_headers(p.headers().clone().unwrap());
    publish_with(&ch, "", &q2, b"late", back.clone()).await;
    let m = get(&ch, &q2).await.unwrap();
    within(
        5,
        m.delivery
            .acker
            .reject(BasicRejectOptions { requeue: false }),
    )
    .await
    .unwrap();
    let d2 = get_eventually(&ch, &dlq).await;
    publish_with(&ch, "", &q2, b"late", d2.delivery.properties.clone()).await;
    let m = get(&ch, &q2).await.unwrap();
    within(
        5,
        m.delivery
            .acker
            .reject(BasicRejectOptions { requeue: false }),
    )
    .await
    .unwrap();
    let d3 = get_eventually(&ch, &dlq).await;
    let ds = deaths(&d3.delivery.properties);
    assert_eq!(ds.len(), 2, "{ds:?}");
    assert_eq!(entry(&ds[0], "queue"), &s(&q2));
    assert_eq!(entry(&ds[0], "count"), &AMQPValue::LongLongInt(2));
    assert_eq!(entry(&ds[1], "queue"), &s(&q));
    assert_eq!(entry(&ds[1], "reason"), &s("expired"));
    let p3 = &d3.delivery.properties;
    assert_eq!(header(p3, "x-first-death-queue"), &s(&q));
    assert_eq!(header(p3, "x-first-death-reason"), &s("expired"));
}

#[tokio::test]
async fn max_length_drops_the_oldest_and_dead_letters_them_as_maxlen() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let (x, dlq) = dlx(&ch).await;
    let q = unique("capped");
    declare(
        &ch,
        &q,
        &[
            ("x-dead-letter-exchange", s(&x)),
            ("x-max-length", AMQPValue::LongInt(2)),
        ],
    )
    .await;
    for body in [b"1", b"2", b"3", b"4"] {
        publish(&ch, "", &q, body).await;
    }
    wait_ready(&ch, &q, 2).await;
    assert_eq!(drain(&ch, &q).await, vec![b"3".to_vec(), b"4".to_vec()]);
    let first = get_eventually(&ch, &dlq).await;
    assert_eq!(first.delivery.data, b"1");
    assert_eq!(
        header(&first.delivery.properties, "x-first-death-reason"),
        &s("maxlen")
    );
    assert_eq!(get_eventually(&ch, &dlq).await.delivery.data, b"2");

    // x-max-length-bytes counts bodies: 10 bytes hold two 4-byte bodies.
    let q = unique("bytes");
    declare(&ch, &q, &[("x-max-length-bytes", AMQPValue::LongInt(10))]).await;
    for body in [b"aaaa", b"bbbb", b"cccc"] {
        publish(&ch, "", &q, body).await;
    }
    wait_ready(&ch, &q, 2).await;
    assert_eq!(
        drain(&ch, &q).await,
        vec![b"bbbb".to_vec(), b"cccc".to_vec()]
    );
}

#[tokio::test]
async fn reject_publish_nacks_the_overflow_and_keeps_the_queue() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let (x, dlq) = dlx(&ch).await;
    let q = unique("full");
    declare(
        &ch,
        &q,
        &[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", s("reject-publish")),
        ],
    )
    .await;
    let mut confirms = Vec::new();
    for body in [b"kept", b"over", b"more"] {
        confirms.push(confirmation(&ch, "", &q, body, BasicProperties::default()).await);
    }
    assert!(confirms[0].is_ack());
    assert!(confirms[1].is_nack());
    assert!(confirms[2].is_nack());
    assert_eq!(drain(&ch, &q).await, vec![b"kept".to_vec()]);
    // Room again: accepted.
    let later = confirmation(&ch, "", &q, b"later", BasicProperties::default()).await;
    assert!(later.is_ack());

    // reject-publish-dlx: the refused message also goes to the dead-letter exchange.
    let q = unique("full-dlx");
    declare(
        &ch,
        &q,
        &[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", s("reject-publish-dlx")),
            ("x-dead-letter-exchange", s(&x)),
        ],
    )
    .await;
    for (body, ack) in [(b"kept", true), (b"over", false)] {
        let c = confirmation(&ch, "", &q, body, BasicProperties::default()).await;
        assert_eq!(c.is_ack(), ack);
    }
    let d = get_eventually(&ch, &dlq).await;
    assert_eq!(d.delivery.data, b"over");
    assert_eq!(
        header(&d.delivery.properties, "x-first-death-reason"),
        &s("maxlen")
    );
}

#[tokio::test]
async fn an_automatic_dead_letter_cycle_is_dropped_but_a_rejection_breaks_it() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    // Expired messages dead-letter into the same queue: the second lap is a cycle.
    let q = unique("loop");
    declare(
        &ch,
        &q,
        &[
            ("x-dead-letter-exchange", s("")),
            ("x-message-ttl", AMQPValue::LongInt(10)),
        ],
    )
    .await;
    publish(&ch, "", &q, b"round").await;
    // It expires once and comes back; it expires again and is dropped (the cycle).
    eventually(5, || async { (counts(&ch, &q).await.0 == 0).then_some(()) }).await;
    // Still empty a little later: not looping.
    let ch2 = ch.clone();
    let q2 = q.clone();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await; // a quiet period
    assert_eq!(counts(&ch2, &q2).await.0, 0);
    // Rejections go round as often as the consumer rejects.
    let r = unique("reject-loop");
    declare(&ch, &r, &[("x-dead-letter-exchange", s(""))]).await;
    publish(&ch, "", &r, b"again").await;
    for lap in 1..=3i64 {
        let m = get_eventually(&ch, &r).await;
        if lap > 1 {
            let ds = deaths(&m.delivery.properties);
            assert_eq!(entry(&ds[0], "count"), &AMQPValue::LongLongInt(lap - 1));
        }
        within(
            5,
            m.delivery
                .acker
                .reject(BasicRejectOptions { requeue: false }),
        )
        .await
        .unwrap();
    }
}
