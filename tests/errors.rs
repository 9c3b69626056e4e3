//! Every row of `amqp-errors.md` that a lapin client can reach: the exact reply code and the
//! reply text RabbitMQ sends. Raw-frame misuse lives in `raw_protocol.rs`.

mod common;
mod support;

use common::*;
use lapin::types::FieldTable;
use lapin::{options::*, ConnectionProperties, ExchangeKind};
use support::*;

fn oracle() -> bool {
    std::env::var("WARREN_TEST_URL").is_ok()
}

#[tokio::test]
async fn publish_to_missing_exchange_is_404() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let mut w = watch(&ch).await;
    let x = unique("nox");
    publish(&ch, &x, "k", b"m").await;
    let (code, text) = closed_with(&mut w).await;
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no exchange '{x}' in vhost '/'"));
}

#[tokio::test]
async fn passive_declare_of_missing_entities_is_404() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let q = unique("noq");
    let ch = open(&conn).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let (code, text) =
        refused(ch.queue_declare(q.as_str().into(), passive, FieldTable::default())).await;
    assert_eq!(
        (code, text),
        (404, format!("NOT_FOUND - no queue '{q}' in vhost '/'"))
    );

    let x = unique("nox");
    let ch = open(&conn).await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let (code, text) = refused(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        passive,
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text),
        (404, format!("NOT_FOUND - no exchange '{x}' in vhost '/'"))
    );
}

#[tokio::test]
async fn operations_on_a_missing_queue_are_404() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let q = unique("noq");
    let want = (404, format!("NOT_FOUND - no queue '{q}' in vhost '/'"));

    let ch = open(&conn).await;
    assert_eq!(
        refused(ch.queue_bind(
            q.as_str().into(),
            "amq.direct".into(),
            "k".into(),
            Default::default(),
            FieldTable::default()
        ))
        .await,
        want
    );
    let ch = open(&conn).await;
    assert_eq!(
        refused(ch.queue_purge(q.as_str().into(), Default::default())).await,
        want
    );
    let ch = open(&conn).await;
    assert_eq!(
        refused(ch.basic_consume(
            q.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default()
        ))
        .await,
        want
    );
    let ch = open(&conn).await;
    assert_eq!(
        refused(ch.basic_get(q.as_str().into(), Default::default())).await,
        want
    );
}

#[tokio::test]
async fn bind_to_a_missing_exchange_is_404() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let x = unique("nox");
    let (code, text) = refused(ch.queue_bind(
        q.as_str().into(),
        x.as_str().into(),
        "k".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text),
        (404, format!("NOT_FOUND - no exchange '{x}' in vhost '/'"))
    );
}

#[tokio::test]
async fn empty_queue_name_without_a_previous_declare_is_404() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let (code, text) = refused(ch.queue_purge("".into(), Default::default())).await;
    assert_eq!(
        (code, text.as_str()),
        (404, "NOT_FOUND - no previously declared queue")
    );
}

#[tokio::test]
async fn declaring_reserved_amq_names_is_403() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let (code, text) = refused(ch.exchange_declare(
        "amq.warren-test".into(),
        ExchangeKind::Direct,
        Default::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - exchange name 'amq.warren-test' contains reserved prefix 'amq.*'"
    );

    let ch = open(&conn).await;
    let (code, text) = refused(ch.queue_declare(
        "amq.warren-test".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - queue name 'amq.warren-test' contains reserved prefix 'amq.*'"
    );
}

#[tokio::test]
async fn deleting_an_amq_exchange_is_403() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let (code, text) = refused(ch.exchange_delete("amq.direct".into(), Default::default())).await;
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"
    );
}

#[tokio::test]
async fn binding_the_default_exchange_is_403() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let (code, text) = refused(ch.queue_bind(
        q.as_str().into(),
        "".into(),
        "k".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - operation not permitted on the default exchange"
    );

    let ch = open(&conn).await;
    let (code, text) = refused(ch.queue_unbind(
        q.as_str().into(),
        "".into(),
        q.as_str().into(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - operation not permitted on the default exchange"
    );
}

#[tokio::test]
async fn another_connections_exclusive_queue_is_405() {
    let b = TestBroker::start().await;
    let owner = b.connect().await;
    let q = unique("excl");
    let och = open(&owner).await;
    within(
        5,
        och.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let want = (405, format!("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."));

    let other = b.connect().await;
    let ch = open(&other).await;
    assert_eq!(
        refused(ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::exclusive(),
            FieldTable::default()
        ))
        .await,
        want
    );
    let ch = open(&other).await;
    assert_eq!(
        refused(ch.basic_consume(
            q.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default()
        ))
        .await,
        want
    );
    let ch = open(&other).await;
    assert_eq!(
        refused(ch.queue_purge(q.as_str().into(), Default::default())).await,
        want
    );
    let ch = open(&other).await;
    assert_eq!(
        refused(ch.queue_delete(q.as_str().into(), Default::default())).await,
        want
    );
}

#[tokio::test]
async fn inequivalent_redeclare_is_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let (code, text) = refused(ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(code, 406);
    assert_eq!(text, format!("PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{q}' in vhost '/': received 'true' but current is 'false'"));

    let x = unique("x");
    let ch = open(&conn).await;
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let (code, text) = refused(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        Default::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(code, 406);
    assert_eq!(text, format!("PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': received 'fanout' but current is 'direct'"));
    let _ = open(&conn)
        .await
        .exchange_delete(x.as_str().into(), Default::default())
        .await;
}

#[tokio::test]
async fn unknown_exchange_type_is_406_on_the_channel() {
    // RabbitMQ 3.10 closes the connection with 503 here; 3.12+ (and current clients) expect 406
    // on the channel, which is what warren implements.
    if oracle() {
        return;
    }
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let x = unique("x");
    let kind = ExchangeKind::Custom("x-no-such-type".into());
    let (code, text) = refused(ch.exchange_declare(
        x.as_str().into(),
        kind,
        Default::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(code, 406);
    // RabbitMQ 4.x text (3.x closed the connection with 503 instead).
    assert_eq!(
        text,
        "PRECONDITION_FAILED - unknown exchange type 'x-no-such-type'"
    );
    assert!(conn.status().connected());
}

#[tokio::test]
async fn unknown_delivery_tag_is_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let mut w = watch(&ch).await;
    within(5, ch.basic_ack(99, BasicAckOptions::default()))
        .await
        .unwrap();
    assert_eq!(
        closed_with(&mut w).await,
        (
            406,
            "PRECONDITION_FAILED - unknown delivery tag 99".to_string()
        )
    );
}

#[tokio::test]
async fn tx_commit_without_select_is_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    assert_eq!(
        refused(ch.tx_commit()).await,
        (
            406,
            "PRECONDITION_FAILED - channel is not transactional".to_string()
        )
    );
    let ch = open(&conn).await;
    assert_eq!(
        refused(ch.tx_rollback()).await,
        (
            406,
            "PRECONDITION_FAILED - channel is not transactional".to_string()
        )
    );
}

#[tokio::test]
async fn tx_and_confirm_modes_exclude_each_other() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .unwrap();
    assert_eq!(
        refused(ch.tx_select()).await,
        (
            406,
            "PRECONDITION_FAILED - cannot switch from confirm to tx mode".to_string()
        )
    );
    let ch = open(&conn).await;
    within(5, ch.tx_select()).await.unwrap();
    assert_eq!(
        refused(ch.confirm_select(Default::default())).await,
        (
            406,
            "PRECONDITION_FAILED - cannot switch from tx to confirm mode".to_string()
        )
    );
}

#[tokio::test]
async fn delete_preconditions_are_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    publish(&ch, "", &q, b"m").await;
    wait_ready(&ch, &q, 1).await;
    let opts = QueueDeleteOptions {
        if_empty: true,
        ..Default::default()
    };
    assert_eq!(
        refused(ch.queue_delete(q.as_str().into(), opts)).await,
        (
            406,
            format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty")
        )
    );

    let ch = open(&conn).await;
    let _c = consume(&ch, &q, "", Default::default()).await;
    let other = open(&conn).await;
    let opts = QueueDeleteOptions {
        if_unused: true,
        ..Default::default()
    };
    assert_eq!(
        refused(other.queue_delete(q.as_str().into(), opts)).await,
        (
            406,
            format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' in use")
        )
    );

    let x = unique("x");
    let ch = open(&conn).await;
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    bind(&ch, &q, &x, "").await;
    let opts = ExchangeDeleteOptions {
        if_unused: true,
        ..Default::default()
    };
    assert_eq!(
        refused(ch.exchange_delete(x.as_str().into(), opts)).await,
        (
            406,
            format!("PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use")
        )
    );
    let ch = open(&conn).await;
    within(5, ch.exchange_delete(x.as_str().into(), Default::default()))
        .await
        .unwrap();
    within(5, ch.queue_delete(q.as_str().into(), Default::default()))
        .await
        .unwrap();
}

#[tokio::test]
async fn exclusive_consume_on_a_used_queue_is_403() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let _c = consume(&ch, &q, "", Default::default()).await;
    let ch2 = open(&conn).await;
    let excl = BasicConsumeOptions {
        exclusive: true,
        ..Default::default()
    };
    let (code, text) =
        refused(ch2.basic_consume(q.as_str().into(), "".into(), excl, FieldTable::default())).await;
    assert_eq!(
        (code, text),
        (
            403,
            format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use")
        )
    );
}

#[tokio::test]
async fn unknown_vhost_is_530() {
    let b = TestBroker::start().await;
    let url = b.url_for("guest", "guest", "no-such-vhost");
    let err = within(
        10,
        lapin::Connection::connect(&url, ConnectionProperties::default()),
    )
    .await
    .expect_err("vhost refused");
    assert_eq!(
        code(&err),
        (
            530,
            "NOT_ALLOWED - vhost no-such-vhost not found".to_string()
        )
    );
}

#[tokio::test]
async fn bad_password_is_403_access_refused() {
    let b = TestBroker::start().await;
    let url = b.url_for("guest", "wrong", "/");
    let err = within(
        10,
        lapin::Connection::connect(&url, ConnectionProperties::default()),
    )
    .await
    .expect_err("login refused");
    assert_eq!(
        code(&err),
        (403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.".to_string())
    );
}

#[tokio::test]
async fn reused_consumer_tag_is_530_on_the_connection() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let _c = consume(&ch, &q, "dup", Default::default()).await;
    let (code, text) = refused(ch.basic_consume(
        q.as_str().into(),
        "dup".into(),
        Default::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text.as_str()),
        (530, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'")
    );
    eventually(5, || async { (!conn.status().connected()).then_some(()) }).await;
}
