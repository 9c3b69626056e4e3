//! Queue types (`x-queue-type`): `classic`, `quorum` with the semantics its clients observe
//! (RabbitMQ 4.3: durable, not exclusive, not auto-delete, not server-named; every message
//! kept across restarts; a delivery limit of 20 by default; returned messages delivered
//! first; 32 strict message priorities), and `stream`, refused.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel};
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

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

async fn declare(
    ch: &Channel,
    name: &str,
    opts: QueueDeclareOptions,
    args: &[(&str, AMQPValue)],
) -> lapin::Result<lapin::Queue> {
    within(5, ch.queue_declare(name.into(), opts, table(args))).await
}

async fn quorum(ch: &Channel, name: &str, args: &[(&str, AMQPValue)]) {
    let mut all = vec![("x-queue-type", s("quorum"))];
    all.extend_from_slice(args);
    declare(ch, name, durable(), &all)
        .await
        .expect("quorum queue");
}

#[tokio::test]
async fn quorum_queues_must_be_durable_not_exclusive_not_auto_delete() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let qq = [("x-queue-type", s("quorum"))];
    let cases = [
        (QueueDeclareOptions::default(), "non-durable"),
        (
            QueueDeclareOptions {
                durable: true,
                exclusive: true,
                ..Default::default()
            },
            "exclusive-owner",
        ),
        (
            QueueDeclareOptions {
                durable: true,
                auto_delete: true,
                exclusive: true,
                ..Default::default()
            },
            "auto-delete",
        ),
    ];
    for (opts, property) in cases {
        let ch = open(&conn).await;
        let q = unique("qq-bad");
        let err = declare(&ch, &q, opts, &qq).await.expect_err("refused");
        assert_eq!(
            code(&err),
            (406, format!("PRECONDITION_FAILED - invalid property '{property}' for queue '{q}' in vhost '/'"))
        );
    }
    let ch = open(&conn).await;
    let err = declare(&ch, "", durable(), &qq).await.expect_err("refused");
    assert_eq!(
        code(&err),
        (406, "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue".to_string())
    );
    let ch = open(&conn).await;
    let q = unique("qq-prio");
    let err = declare(
        &ch,
        &q,
        durable(),
        &[qq[0].clone(), ("x-max-priority", AMQPValue::LongInt(5))],
    )
    .await
    .expect_err("refused");
    assert_eq!(
        code(&err),
        (406, format!("PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '{q}' in vhost '/' of queue type rabbit_quorum_queue"))
    );
    let ch = open(&conn).await;
    let q = unique("stream");
    let err = declare(&ch, &q, durable(), &[("x-queue-type", s("stream"))])
        .await
        .expect_err("refused");
    assert_eq!(
        code(&err),
        (406, format!("PRECONDITION_FAILED - cannot declare queue '{q}' in vhost '/': streams are not supported by warren"))
    );
}

#[tokio::test]
async fn redeclaring_with_another_queue_type_is_inequivalent() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let qq = unique("qq");
    quorum(&ch, &qq, &[]).await;
    quorum(&ch, &qq, &[]).await;
    let err = declare(&ch, &qq, durable(), &[])
        .await
        .expect_err("refused");
    assert_eq!(
        code(&err),
        (406, format!("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{qq}' in vhost '/': received 'classic' but current is 'quorum'"))
    );
    let ch = open(&conn).await;
    let cq = unique("cq");
    declare(&ch, &cq, durable(), &[]).await.unwrap();
    declare(&ch, &cq, durable(), &[("x-queue-type", s("classic"))])
        .await
        .unwrap();
    let err = declare(&ch, &cq, durable(), &[("x-queue-type", s("quorum"))])
        .await
        .expect_err("refused");
    assert_eq!(
        code(&err),
        (406, format!("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{cq}' in vhost '/': received 'quorum' but current is 'classic'"))
    );
}

#[tokio::test]
async fn the_default_delivery_limit_is_20_and_counts_show_in_headers() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("qq-limit");
    quorum(&ch, &q, &[]).await;
    publish(&ch, "", &q, b"poison").await;
    for n in 0..=20i64 {
        let m = eventually(5, || {
            let (ch, q) = (ch.clone(), q.clone());
            async move { get(&ch, &q).await }
        })
        .await;
        let h = m.delivery.properties.headers().clone().unwrap_or_default();
        if n == 0 {
            assert!(!h.inner().contains_key("x-delivery-count"));
        } else {
            assert_eq!(
                h.inner().get("x-delivery-count"),
                Some(&AMQPValue::LongLongInt(n))
            );
            assert_eq!(
                h.inner().get("x-acquired-count"),
                Some(&AMQPValue::LongLongInt(n))
            );
        }
        within(
            5,
            m.delivery
                .acker
                .reject(BasicRejectOptions { requeue: true }),
        )
        .await
        .unwrap();
    }
    // The 21st failed delivery is one too many: dropped.
    wait_ready(&ch, &q, 0).await;
}

#[tokio::test]
async fn returned_messages_come_first_and_priorities_are_strict_up_to_31() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("qq-order");
    quorum(&ch, &q, &[]).await;
    let prio = |p: u8| BasicProperties::default().with_priority(p);
    publish(&ch, "", &q, b"a").await;
    publish(&ch, "", &q, b"b").await;
    wait_ready(&ch, &q, 2).await;
    let a = get(&ch, &q).await.unwrap();
    assert_eq!(a.delivery.data, b"a");
    publish_with(&ch, "", &q, b"p0", prio(0)).await;
    publish_with(&ch, "", &q, b"p9", prio(9)).await;
    publish_with(&ch, "", &q, b"p200", prio(200)).await;
    publish_with(&ch, "", &q, b"p31", prio(31)).await;
    wait_ready(&ch, &q, 5).await;
    within(
        5,
        a.delivery.acker.nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        }),
    )
    .await
    .unwrap();
    wait_ready(&ch, &q, 6).await;
    let order: Vec<String> = drain(&ch, &q)
        .await
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect();
    // No priority counts as 4.
    assert_eq!(order, ["a", "p200", "p31", "p9", "b", "p0"]);
}

#[tokio::test]
async fn a_quorum_queue_keeps_transient_messages_across_a_restart() {
    let b = TestBroker::start().await;
    let (conn, ch) = confirm_channel(&b).await;
    quorum(&ch, "qq-restart", &[]).await;
    publish_confirmed(&ch, "", "qq-restart", b"transient").await;
    publish_confirmed_with(
        &ch,
        "",
        "qq-restart",
        b"persistent",
        BasicProperties::default().with_delivery_mode(2),
    )
    .await;
    drop(conn);
    let b = b.restart().await;
    let ch = open(&b.connect().await).await;
    assert_eq!(
        drain(&ch, "qq-restart").await,
        [b"transient".to_vec(), b"persistent".to_vec()]
    );
}

#[tokio::test]
async fn consuming_with_a_global_prefetch_is_not_implemented() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("qq-global");
    quorum(&ch, &q, &[]).await;
    within(5, ch.basic_qos(10, BasicQosOptions { global: true }))
        .await
        .unwrap();
    let err = within(
        5,
        ch.basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("refused");
    assert_eq!(
        code(&err),
        (
            540,
            format!("NOT_IMPLEMENTED - queue '{q}' in vhost '/' does not support global qos")
        )
    );
}
