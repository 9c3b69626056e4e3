//! Per-vhost limits (max-connections, max-queues) and per-user limits (max-connections,
//! max-channels), with the replies RabbitMQ 3.10.8 gave for the same calls. Set through the
//! in-process broker (not for an external broker), and kept across a restart.

mod common;
mod support;

use common::*;
use lapin::Connection;
use support::*;
use warren::access::{UserLimits, VhostLimits};

#[tokio::test]
async fn vhost_limits_refuse_connections_and_queues_beyond_them() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker().cloned() else {
        return;
    };
    broker
        .set_vhost_limits(
            "/",
            VhostLimits {
                max_connections: Some(1),
                max_queues: Some(1),
            },
        )
        .unwrap();
    let first = b.connect().await;
    let err = within(10, Connection::connect(&b.url, Default::default()))
        .await
        .expect_err("a second connection");
    assert_eq!(
        amqp_error(&err),
        Some((
            530,
            "NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (1) is reached"
                .into()
        ))
    );
    let ch = open(&first).await;
    queue(&ch, "lim-1").await;
    let (code, text) =
        refused(ch.queue_declare("lim-2".into(), Default::default(), Default::default())).await;
    assert_eq!(
        (code, text.as_str()),
        (406, "PRECONDITION_FAILED - cannot declare queue 'lim-2': queue limit in vhost '/' (1) is reached")
    );
    // Redeclaring the existing queue is fine.
    let ch = open(&first).await;
    queue(&ch, "lim-1").await;
    // A negative limit is no limit; kept across a restart.
    broker
        .set_vhost_limits(
            "/",
            VhostLimits {
                max_connections: Some(-1),
                max_queues: Some(2),
            },
        )
        .unwrap();
    drop(first);
    drop(broker);
    let b = b.restart().await;
    let _a = b.connect().await;
    let c = b.connect().await;
    let ch = open(&c).await;
    // The transient lim-1 did not survive the restart: two queues fit, not three.
    queue(&ch, "lim-2").await;
    queue(&ch, "lim-3").await;
    let (code, _) =
        refused(ch.queue_declare("lim-4".into(), Default::default(), Default::default())).await;
    assert_eq!(code, 406);
    b.stop().await;
}

#[tokio::test]
async fn user_limits_refuse_connections_and_channels_beyond_them() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker().cloned() else {
        return;
    };
    broker.add_user("bob", "bob", &[]).unwrap();
    broker
        .set_permissions("bob", "/", ".*", ".*", ".*")
        .unwrap();
    assert!(broker
        .set_user_limits(
            "bob",
            UserLimits {
                max_connections: Some(1),
                max_channels: Some(1)
            }
        )
        .unwrap());
    let url = b.url_for("bob", "bob", "/");
    let first = within(10, Connection::connect(&url, Default::default()))
        .await
        .unwrap();
    let err = within(10, Connection::connect(&url, Default::default()))
        .await
        .expect_err("a second connection");
    assert_eq!(
        amqp_error(&err),
        Some((
            530,
            "NOT_ALLOWED - connection refused for user 'bob': user connection limit (1) is reached"
                .into()
        ))
    );
    let _ch = open(&first).await;
    let err = within(5, first.create_channel())
        .await
        .expect_err("a second channel");
    assert_eq!(
        amqp_error(&err),
        Some((
            530,
            "NOT_ALLOWED - number of channels opened for user 'bob' has reached the maximum allowed user limit of (1)"
                .into()
        ))
    );
    // guest is not limited.
    let g = b.connect().await;
    open(&g).await;
    open(&g).await;
    b.stop().await;
}
