//! Connection lifecycle through lapin: tune negotiation, heartbeats, graceful close, many
//! concurrent clients. The handshake byte by byte is in `raw_protocol.rs`.

mod common;
mod support;

use common::*;
use lapin::{Connection, ConnectionProperties};
use support::*;

fn oracle() -> bool {
    std::env::var("WARREN_TEST_URL").is_ok()
}

async fn connect_url(url: &str) -> Connection {
    within(
        10,
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    .expect("connect")
}

#[tokio::test]
async fn negotiates_the_server_defaults() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let cfg = conn.configuration();
    assert_eq!(cfg.frame_max(), 131072);
    assert_eq!(cfg.channel_max(), 2047);
    assert_eq!(cfg.heartbeat(), 60);
    assert!(conn.status().connected());
    assert_eq!(conn.status().vhost().as_str(), "/");
    assert_eq!(conn.status().username(), "guest");
}

#[tokio::test]
async fn client_can_lower_the_tune_values() {
    let b = TestBroker::start().await;
    let url = format!("{}?frame_max=8192&channel_max=16&heartbeat=5", b.url);
    let conn = connect_url(&url).await;
    let cfg = conn.configuration();
    assert_eq!(
        (cfg.frame_max(), cfg.channel_max(), cfg.heartbeat()),
        (8192, 16, 5)
    );
    // The lowered frame_max is really used: a body of several frames still arrives whole.
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    let body: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    publish(&ch, "", &q, &body).await;
    wait_ready(&ch, &q, 1).await;
    assert_eq!(get(&ch, &q).await.expect("message").delivery.data, body);
}

#[tokio::test]
async fn server_side_tune_values_come_from_the_config() {
    // The oracle's configuration cannot be changed from a test.
    if oracle() {
        return;
    }
    let b = TestBroker::start_with(|cfg| {
        cfg.amqp.frame_max = 16384;
        cfg.amqp.channel_max = 8;
        cfg.amqp.heartbeat = 7;
    })
    .await;
    let conn = b.connect().await;
    let cfg = conn.configuration();
    assert_eq!(
        (cfg.frame_max(), cfg.channel_max(), cfg.heartbeat()),
        (16384, 8, 7)
    );
}

#[tokio::test]
async fn short_heartbeats_keep_an_idle_connection_alive() {
    let b = TestBroker::start().await;
    let conn = connect_url(&format!("{}?heartbeat=1", b.url)).await;
    assert_eq!(conn.configuration().heartbeat(), 1);
    let ch = open(&conn).await;
    // Idle for three heartbeat intervals: lapin fails the connection if the server sends no
    // heartbeats, and the server closes it if it ignores ours.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert!(conn.status().connected(), "connection dropped while idle");
    let q = unique("q");
    queue(&ch, &q).await;
}

#[tokio::test]
async fn graceful_close() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("q");
    queue(&ch, &q).await;
    within(5, conn.close(200, "bye".into()))
        .await
        .expect("connection.close-ok");
    // lapin updates its connection and channel states from a task of its own: poll.
    eventually(5, || async {
        (conn.status().closed() && !ch.status().connected()).then_some(())
    })
    .await;
    assert!(ch.basic_qos(1, Default::default()).await.is_err());

    // The broker is unaffected and still has the (non-exclusive) queue.
    let conn = b.connect().await;
    let ch = open(&conn).await;
    assert_eq!(counts(&ch, &q).await, (0, 0));
    within(5, ch.queue_delete(q.as_str().into(), Default::default()))
        .await
        .unwrap();
}

#[tokio::test]
async fn closing_a_connection_deletes_its_exclusive_queues() {
    let b = TestBroker::start().await;
    let q = unique("excl");
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(
        5,
        ch.queue_declare(
            q.as_str().into(),
            lapin::options::QueueDeclareOptions::exclusive(),
            Default::default(),
        ),
    )
    .await
    .unwrap();
    within(5, conn.close(200, "bye".into())).await.unwrap();

    let conn = b.connect().await;
    eventually(5, || {
        let conn = &conn;
        let q = q.clone();
        async move {
            let ch = conn.create_channel().await.ok()?;
            let passive = lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let err = ch
                .queue_declare(q.as_str().into(), passive, Default::default())
                .await
                .err()?;
            assert_eq!(
                code(&err),
                (404, format!("NOT_FOUND - no queue '{q}' in vhost '/'"))
            );
            Some(())
        }
    })
    .await;
}

#[tokio::test]
async fn many_concurrent_connections() {
    let b = TestBroker::start().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = b.url.clone();
        tasks.push(tokio::spawn(async move {
            let conn = connect_url(&url).await;
            let ch = open(&conn).await;
            let q = unique("q");
            queue(&ch, &q).await;
            let body = format!("m{i}");
            publish(&ch, "", &q, body.as_bytes()).await;
            wait_ready(&ch, &q, 1).await;
            assert_eq!(drain(&ch, &q).await, vec![body.into_bytes()]);
            within(5, ch.queue_delete(q.as_str().into(), Default::default()))
                .await
                .unwrap();
            within(5, conn.close(200, "OK".into())).await.unwrap();
        }));
    }
    for t in tasks {
        within(30, t).await.expect("client task");
    }
}
