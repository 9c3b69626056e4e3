//! Queue arguments checked when a queue is created, with RabbitMQ's exact reply texts
//! (checked against RabbitMQ 3.10 and matching current RabbitMQ).

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use support::*;

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

#[tokio::test]
async fn invalid_queue_arguments_are_refused_with_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let int = AMQPValue::LongInt;
    let cases: Vec<(Vec<(&str, AMQPValue)>, &str)> = vec![
        (
            vec![("x-message-ttl", s("abc"))],
            "\"expected integer, got longstr\"",
        ),
        (vec![("x-message-ttl", int(-1))], "{value_negative,-1}"),
        (vec![("x-expires", int(0))], "{value_zero,0}"),
        (vec![("x-expires", int(-5))], "{value_negative,-5}"),
        (
            vec![("x-max-length", s("ten"))],
            "\"expected integer, got longstr\"",
        ),
        (vec![("x-max-length", int(-1))], "{value_negative,-1}"),
        (vec![("x-max-length-bytes", int(-1))], "{value_negative,-1}"),
        (vec![("x-overflow", s("nope"))], "invalid_overflow"),
        (
            vec![("x-overflow", int(5))],
            "{unacceptable_type,signedint}",
        ),
        (
            vec![("x-max-priority", int(256))],
            "{max_value_exceeded,256}",
        ),
        (
            vec![("x-max-priority", AMQPValue::Boolean(true))],
            "\"expected integer, got bool\"",
        ),
        (
            vec![("x-queue-mode", s("fast"))],
            "\"unsupported queue mode 'fast'\"",
        ),
        (
            vec![("x-queue-type", s("nope"))],
            "\"unsupported queue type 'nope'\"",
        ),
        (
            vec![("x-single-active-consumer", s("yes"))],
            "{unacceptable_type,longstr}",
        ),
        (
            vec![("x-dead-letter-routing-key", s("rk"))],
            "routing_key_but_no_dlx_defined",
        ),
        (
            vec![
                ("x-dead-letter-exchange", s("dlx")),
                ("x-dead-letter-routing-key", int(5)),
            ],
            "{unacceptable_type,signedint}",
        ),
    ];
    for (args, why) in cases {
        let ch = open(&conn).await;
        let q = unique("args");
        let key = args.last().unwrap().0;
        let mut table = FieldTable::default();
        for (k, v) in args.clone() {
            table.insert(k.into(), v);
        }
        let (code, text) =
            refused(ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), table))
                .await;
        assert_eq!(code, 406, "{args:?}");
        assert_eq!(
            text,
            format!(
                "PRECONDITION_FAILED - invalid arg '{key}' for queue '{q}' in vhost '/': {why}"
            ),
            "{args:?}"
        );
    }
    let ch = open(&conn).await;
    let q = unique("args");
    let mut table = FieldTable::default();
    table.insert("x-dead-letter-exchange".into(), AMQPValue::LongInt(5));
    let refusal =
        refused(ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), table)).await;
    assert_eq!(
        refusal,
        (
            406,
            format!("PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue '{q}' in vhost '/'")
        )
    );
    // Valid ones are taken, in any integer width.
    let ch = open(&conn).await;
    let mut table = FieldTable::default();
    table.insert("x-max-length".into(), AMQPValue::ShortShortUInt(3));
    table.insert("x-message-ttl".into(), AMQPValue::LongLongInt(60_000));
    table.insert("x-overflow".into(), s("reject-publish"));
    table.insert("x-queue-mode".into(), s("lazy"));
    within(
        5,
        ch.queue_declare(
            unique("ok").as_str().into(),
            QueueDeclareOptions::default(),
            table,
        ),
    )
    .await
    .unwrap();
}
