//! Malformed message properties (`expiration`, `user_id`), refused publish flags and sizes, and
//! binding arguments a headers exchange refuses: each answered with RabbitMQ's reply code and
//! text.

mod common;
mod support;

use common::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{options::*, BasicProperties};
use support::*;

fn oracle() -> bool {
    std::env::var("WARREN_TEST_URL").is_ok()
}

#[tokio::test]
async fn invalid_expiration_is_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let mut w = watch(&ch).await;
    publish_with(
        &ch,
        "",
        "x",
        b"m",
        BasicProperties::default().with_expiration("soon".into()),
    )
    .await;
    assert_eq!(
        closed_with(&mut w).await,
        (
            406,
            "PRECONDITION_FAILED - invalid expiration 'soon': no_integer".to_string()
        )
    );
}

#[tokio::test]
async fn expirations_out_of_range_or_with_leftovers_are_406_with_rabbitmqs_reason() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    for (exp, why) in [
        ("-1", "{value_negative,-1}"),
        ("10abc", "{leftover_string,\"abc\"}"),
        (
            "99999999999999999999",
            "{value_too_large,99999999999999999999}",
        ),
    ] {
        let ch = open(&conn).await;
        let mut w = watch(&ch).await;
        publish_with(
            &ch,
            "",
            "x",
            b"m",
            BasicProperties::default().with_expiration(exp.into()),
        )
        .await;
        assert_eq!(
            closed_with(&mut w).await,
            (
                406,
                format!("PRECONDITION_FAILED - invalid expiration '{exp}': {why}")
            )
        );
    }
}

#[tokio::test]
async fn a_headers_binding_with_an_invalid_x_match_is_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let cases = [
        (
            AMQPValue::LongString("foo".into()),
            "PRECONDITION_FAILED - Invalid x-match field value <<\"foo\">>; expected all, any, all-with-x, or any-with-x",
        ),
        (
            AMQPValue::LongInt(23),
            "PRECONDITION_FAILED - Invalid x-match field type signedint (value 23); expected longstr",
        ),
    ];
    for (value, text) in cases {
        let ch = open(&conn).await;
        let q = unique("xmatch");
        queue(&ch, &q).await;
        let mut args = FieldTable::default();
        args.insert("x-match".into(), value);
        let got = refused(ch.queue_bind(
            q.as_str().into(),
            "amq.headers".into(),
            "".into(),
            Default::default(),
            args,
        ))
        .await;
        assert_eq!(got, (406, text.to_string()));
    }
    // The four modes are taken.
    let ch = open(&conn).await;
    let q = unique("xmatch");
    queue(&ch, &q).await;
    for mode in ["all", "any", "all-with-x", "any-with-x"] {
        let mut args = FieldTable::default();
        args.insert("x-match".into(), AMQPValue::LongString(mode.into()));
        within(
            5,
            ch.queue_bind(
                q.as_str().into(),
                "amq.headers".into(),
                "".into(),
                Default::default(),
                args,
            ),
        )
        .await
        .expect("queue.bind");
    }
}

#[tokio::test]
async fn forged_user_id_is_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let mut w = watch(&ch).await;
    publish_with(
        &ch,
        "",
        "x",
        b"m",
        BasicProperties::default().with_user_id("mallory".into()),
    )
    .await;
    assert_eq!(
        closed_with(&mut w).await,
        (406, "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'".to_string())
    );
}

#[tokio::test]
async fn immediate_publish_is_540_on_the_connection() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let opts = BasicPublishOptions {
        immediate: true,
        ..Default::default()
    };
    within(
        5,
        ch.basic_publish(
            "".into(),
            "x".into(),
            opts,
            b"m",
            BasicProperties::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        probe(&ch).await,
        (540, "NOT_IMPLEMENTED - immediate=true".to_string())
    );
    eventually(5, || async { (!conn.status().connected()).then_some(()) }).await;
}

#[tokio::test]
async fn oversized_message_is_406() {
    // The oracle's max_message_size cannot be lowered from here.
    if oracle() {
        return;
    }
    let b = TestBroker::start_with(|cfg| cfg.amqp.max_message_size = 1024).await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let mut w = watch(&ch).await;
    publish(&ch, "", "x", &[0u8; 2000]).await;
    assert_eq!(
        closed_with(&mut w).await,
        (
            406,
            "PRECONDITION_FAILED - message size 2000 is larger than configured max size 1024"
                .to_string()
        )
    );
}
