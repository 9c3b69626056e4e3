//! Access control on every AMQP method, as RabbitMQ 3.10.8 answered the same calls for a user
//! `bob` with permissions `^bob-.*` for configure, write and read on `/` (texts recorded
//! from it): configure for declare and delete, write on a binding's destination and read on
//! its source, write to publish (the default exchange is `amq.default`), read to get,
//! consume and purge; a vhost without permissions is refused with 530. Users and permissions
//! are created through the in-process broker, so this does not apply to an external broker.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};
use support::*;

fn refused(kind: &str, name: &str) -> (u16, String) {
    (
        403,
        format!("ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user 'bob'"),
    )
}

fn arg(key: &str, value: &str) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert(key.into(), AMQPValue::LongString(value.into()));
    t
}

async fn bob(b: &TestBroker) -> Connection {
    within(
        10,
        Connection::connect(&b.url_for("bob", "bob", "/"), Default::default()),
    )
    .await
    .expect("bob connects")
}

/// Run `op` on a fresh channel of `conn` and return how the server refused it.
async fn denied<F, Fut, T>(conn: &Connection, op: F) -> (u16, String)
where
    F: FnOnce(Channel) -> Fut,
    Fut: std::future::Future<Output = lapin::Result<T>>,
    T: std::fmt::Debug,
{
    let ch = open(conn).await;
    support::refused(op(ch)).await
}

#[tokio::test]
async fn every_method_checks_the_users_permissions() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker().cloned() else {
        return;
    };
    broker.add_user("bob", "bob", &[]).unwrap();
    broker
        .set_permissions("bob", "/", "^bob-.*", "^bob-.*", "^bob-.*")
        .unwrap();
    // Set up by guest.
    let guest = b.connect().await;
    let g = open(&guest).await;
    for q in ["other-q", "bob-q"] {
        queue(&g, q).await;
    }
    for x in ["other-x", "bob-x"] {
        within(
            5,
            g.exchange_declare(
                x.into(),
                ExchangeKind::Direct,
                Default::default(),
                Default::default(),
            ),
        )
        .await
        .unwrap();
    }
    let conn = bob(&b).await;

    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    assert_eq!(
        denied(&conn, |c| async move {
            c.queue_declare("other-q".into(), Default::default(), Default::default())
                .await
        })
        .await,
        refused("queue", "other-q")
    );
    // Passive declares need no permission.
    let c = open(&conn).await;
    within(
        5,
        c.queue_declare("other-q".into(), passive, Default::default()),
    )
    .await
    .unwrap();
    within(
        5,
        c.queue_declare("bob-q".into(), Default::default(), Default::default()),
    )
    .await
    .unwrap();
    assert_eq!(
        denied(&conn, |c| async move {
            c.queue_declare(
                "bob-q2".into(),
                Default::default(),
                arg("x-dead-letter-exchange", "other-x"),
            )
            .await
        })
        .await,
        refused("exchange", "other-x")
    );
    let (code, text) = denied(&conn, |c| async move {
        c.queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
    })
    .await;
    assert_eq!(code, 403);
    assert!(
        text.starts_with("ACCESS_REFUSED - access to queue 'amq.gen-"),
        "{text}"
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.queue_delete("other-q".into(), Default::default()).await
        })
        .await,
        refused("queue", "other-q")
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.queue_purge("other-q".into(), Default::default()).await
        })
        .await,
        refused("queue", "other-q")
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.queue_bind(
                "bob-q".into(),
                "other-x".into(),
                "k".into(),
                Default::default(),
                Default::default(),
            )
            .await
        })
        .await,
        refused("exchange", "other-x")
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.queue_bind(
                "other-q".into(),
                "bob-x".into(),
                "k".into(),
                Default::default(),
                Default::default(),
            )
            .await
        })
        .await,
        refused("queue", "other-q")
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.queue_unbind(
                "bob-q".into(),
                "other-x".into(),
                "k".into(),
                Default::default(),
            )
            .await
        })
        .await,
        refused("exchange", "other-x")
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.exchange_declare(
                "other-x2".into(),
                ExchangeKind::Direct,
                Default::default(),
                Default::default(),
            )
            .await
        })
        .await,
        refused("exchange", "other-x2")
    );
    let c = open(&conn).await;
    let xpassive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    within(
        5,
        c.exchange_declare(
            "other-x".into(),
            ExchangeKind::Direct,
            xpassive,
            Default::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        denied(&conn, |c| async move {
            c.exchange_declare(
                "bob-x2".into(),
                ExchangeKind::Direct,
                Default::default(),
                arg("alternate-exchange", "other-x"),
            )
            .await
        })
        .await,
        refused("exchange", "other-x")
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.exchange_delete("other-x".into(), Default::default())
                .await
        })
        .await,
        refused("exchange", "other-x")
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.exchange_bind(
                "bob-x".into(),
                "other-x".into(),
                "k".into(),
                Default::default(),
                Default::default(),
            )
            .await
        })
        .await,
        refused("exchange", "other-x")
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.exchange_bind(
                "other-x".into(),
                "bob-x".into(),
                "k".into(),
                Default::default(),
                Default::default(),
            )
            .await
        })
        .await,
        refused("exchange", "other-x")
    );
    for (x, shown) in [
        ("", "amq.default"),
        ("other-x", "other-x"),
        ("amq.direct", "amq.direct"),
    ] {
        let ch = open(&conn).await;
        // A consumer (on a queue bob may read) sees the channel close.
        let mut w = consume(&ch, "bob-q", "", BasicConsumeOptions::default()).await;
        publish(&ch, x, "bob-q", b"m").await;
        assert_eq!(closed_with(&mut w).await, refused("exchange", shown));
    }
    assert_eq!(
        denied(&conn, |c| async move {
            c.basic_get("other-q".into(), Default::default()).await
        })
        .await,
        refused("queue", "other-q")
    );
    assert_eq!(
        denied(&conn, |c| async move {
            c.basic_consume(
                "other-q".into(),
                "".into(),
                Default::default(),
                Default::default(),
            )
            .await
        })
        .await,
        refused("queue", "other-q")
    );
    // What bob may do works.
    let c = open(&conn).await;
    assert!(get(&c, "bob-q").await.is_none());
    within(
        5,
        c.queue_bind(
            "bob-q".into(),
            "bob-x".into(),
            "k".into(),
            Default::default(),
            Default::default(),
        ),
    )
    .await
    .unwrap();
    b.stop().await;
}

#[tokio::test]
async fn a_vhost_without_permissions_is_refused_with_530_and_users_survive_a_restart() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker().cloned() else {
        return;
    };
    broker.add_user("carol", "s3cret", &["monitoring"]).unwrap();
    let err = within(
        10,
        Connection::connect(&b.url_for("carol", "s3cret", "/"), Default::default()),
    )
    .await
    .expect_err("no permissions on /");
    assert_eq!(
        amqp_error(&err),
        Some((
            530,
            "NOT_ALLOWED - access to vhost '/' refused for user 'carol'".to_string()
        ))
    );
    broker.set_permissions("carol", "/", "", "", ".*").unwrap();
    drop(broker);
    let b = b.restart().await;
    let conn = within(
        10,
        Connection::connect(&b.url_for("carol", "s3cret", "/"), Default::default()),
    )
    .await
    .expect("carol, after a restart");
    let ch = open(&conn).await;
    let q = unique("carol");
    // Empty configure pattern: nothing may be declared.
    assert_eq!(
        support::refused(ch.queue_declare(
            q.as_str().into(),
            Default::default(),
            Default::default()
        ))
        .await,
        (
            403,
            format!("ACCESS_REFUSED - access to queue '{q}' in vhost '/' refused for user 'carol'")
        )
    );
    let wrong = within(
        10,
        Connection::connect(&b.url_for("carol", "nope", "/"), Default::default()),
    )
    .await;
    assert!(wrong.is_err());
    b.stop().await;
}
