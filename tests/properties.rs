//! Every basic property and every field-table value type lapin can encode reaches the consumer
//! exactly as published, through basic.deliver, basic.get-ok and basic.return.

mod common;
mod support;

use common::*;
use lapin::{
    options::*,
    types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString},
    BasicProperties,
};
use support::*;

/// One header per value type, with edge values. ShortString is left out: it has no type tag
/// of its own in RabbitMQ's table encoding (amq-protocol marks it internal only).
fn every_value_type() -> FieldTable {
    let mut nested = FieldTable::default();
    nested.insert("inner".into(), AMQPValue::LongString("deep".into()));
    nested.insert("n".into(), AMQPValue::LongLongInt(-1));
    let mut t = FieldTable::default();
    let values: Vec<(&str, AMQPValue)> = vec![
        ("bool-t", AMQPValue::Boolean(true)),
        ("bool-f", AMQPValue::Boolean(false)),
        ("i8", AMQPValue::ShortShortInt(-128)),
        ("u8", AMQPValue::ShortShortUInt(255)),
        ("i16", AMQPValue::ShortInt(-32768)),
        ("u16", AMQPValue::ShortUInt(65535)),
        ("i32", AMQPValue::LongInt(i32::MIN)),
        ("u32", AMQPValue::LongUInt(u32::MAX)),
        ("i64", AMQPValue::LongLongInt(i64::MIN)),
        ("f32", AMQPValue::Float(1.5)),
        ("f64", AMQPValue::Double(-2.25e300)),
        (
            "decimal",
            AMQPValue::DecimalValue(DecimalValue {
                scale: 2,
                value: 12345,
            }),
        ),
        ("string", AMQPValue::LongString("héllo wörld".into())),
        (
            "binary-string",
            AMQPValue::LongString(LongString::from(vec![0u8, 0xff, 0xfe, 1])),
        ),
        ("empty-string", AMQPValue::LongString("".into())),
        (
            "array",
            AMQPValue::FieldArray(FieldArray::from(vec![
                AMQPValue::LongInt(1),
                AMQPValue::LongString("two".into()),
                AMQPValue::FieldTable(nested.clone()),
                AMQPValue::FieldArray(FieldArray::default()),
            ])),
        ),
        ("timestamp", AMQPValue::Timestamp(1_700_000_000)),
        ("table", AMQPValue::FieldTable(nested)),
        (
            "bytes",
            AMQPValue::ByteArray(ByteArray::from(vec![0u8, 1, 2, 255])),
        ),
        ("void", AMQPValue::Void),
    ];
    for (k, v) in values {
        t.insert(k.into(), v);
    }
    t
}

fn every_property() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("gzip".into())
        .with_headers(every_value_type())
        .with_delivery_mode(2)
        .with_priority(7)
        .with_correlation_id("corr-1".into())
        .with_reply_to("reply.here".into())
        .with_expiration("60000".into())
        .with_message_id("msg-1".into())
        .with_timestamp(1_700_000_123)
        .with_type("event.created".into())
        .with_user_id("guest".into())
        .with_app_id("warren-tests".into())
        .with_cluster_id("cluster-x".into())
}

#[tokio::test]
async fn every_property_round_trips_through_deliver_and_get() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let props = every_property();
    publish_with(&ch, "", &q, b"get", props.clone()).await;
    wait_ready(&ch, &q, 1).await;
    let m = get(&ch, &q).await.expect("message");
    assert_eq!(m.delivery.properties, props);
    assert_eq!(m.delivery.data, b"get");

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
    publish_with(&ch, "", &q, b"deliver", props.clone()).await;
    let d = inbox.next().await;
    assert_eq!(d.properties, props);
    assert_eq!(d.data, b"deliver");
}

#[tokio::test]
async fn each_property_alone_round_trips() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let d = BasicProperties::default();
    let singles = vec![
        d.clone(),
        d.clone().with_content_type("text/plain".into()),
        d.clone().with_content_encoding("utf-8".into()),
        d.clone().with_headers(FieldTable::default()),
        d.clone().with_delivery_mode(1),
        d.clone().with_priority(0),
        d.clone().with_correlation_id("".into()),
        d.clone().with_reply_to("replies".into()),
        d.clone().with_expiration("0".into()),
        d.clone().with_message_id("x".repeat(255).as_str().into()),
        d.clone().with_timestamp(0),
        d.clone().with_type("t".into()),
        d.clone().with_user_id("guest".into()),
        d.clone().with_app_id("a".into()),
        d.clone().with_cluster_id("c".into()),
    ];
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
    for (i, p) in singles.iter().enumerate() {
        // An expiration of 0 may expire on arrival unless a consumer is waiting; one is.
        publish_with(&ch, "", &q, &[i as u8], p.clone()).await;
        let got = inbox.next().await;
        assert_eq!(got.data, [i as u8]);
        assert_eq!(&got.properties, p, "property set #{i}");
    }
}

#[tokio::test]
async fn header_values_round_trip_one_by_one() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
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
    for (k, v) in &every_value_type() {
        let mut t = FieldTable::default();
        t.insert(k.clone(), v.clone());
        let props = BasicProperties::default().with_headers(t.clone());
        publish_with(&ch, "", &q, b"h", props).await;
        let got = inbox.next().await;
        assert_eq!(got.properties.headers().as_ref(), Some(&t), "header {k}");
    }
}

#[tokio::test]
async fn properties_survive_requeue_and_return() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let props = every_property();
    publish_with(&ch, "", &q, b"r", props.clone()).await;
    wait_ready(&ch, &q, 1).await;
    let m = get(&ch, &q).await.unwrap();
    m.delivery
        .nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await
        .unwrap();
    wait_ready(&ch, &q, 1).await;
    let again = get(&ch, &q).await.unwrap();
    assert!(again.delivery.redelivered);
    assert_eq!(again.delivery.properties, props);

    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    let opts = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let c = ch
        .basic_publish(
            "amq.direct".into(),
            unique("nobody").as_str().into(),
            opts,
            b"ret",
            props.clone(),
        )
        .await
        .unwrap();
    let ret = within(5, c)
        .await
        .unwrap()
        .take_message()
        .expect("returned");
    assert_eq!(ret.delivery.properties, props);
}

#[tokio::test]
async fn routing_key_and_exchange_are_reported() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let key = "a.routing.key.with.é-unicode";
    bind(&ch, &q, "amq.topic", "a.#").await;
    let mut inbox = consume(
        &ch,
        &q,
        "ctag",
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
    )
    .await;
    publish(&ch, "amq.topic", key, b"k").await;
    let d = inbox.next().await;
    assert_eq!(
        (d.exchange.as_str(), d.routing_key.as_str(), d.redelivered),
        ("amq.topic", key, false)
    );
}
