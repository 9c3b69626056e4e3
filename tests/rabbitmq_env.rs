//! RabbitMQ's container environment: a warren started with `RABBITMQ_DEFAULT_USER`,
//! `RABBITMQ_DEFAULT_PASS` and `RABBITMQ_DEFAULT_VHOST` creates that user and vhost on first
//! start instead of guest, and a client logs in with them unchanged.

mod common;

use common::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

#[tokio::test]
async fn the_default_user_and_vhost_come_from_the_environment() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return; // starts its own warren
    }
    let dir = std::env::temp_dir().join(unique("warren-rmqenv"));
    let env = [
        ("RABBITMQ_DEFAULT_USER", "app"),
        ("RABBITMQ_DEFAULT_PASS", "s3cret"),
        ("RABBITMQ_DEFAULT_VHOST", "orders"),
    ];
    let child = spawn_warren(&dir, &env).await;
    let url = format!("amqp://app:s3cret@127.0.0.1:{}/orders", child.port);
    let conn = within(
        5,
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()),
    )
    .await
    .expect("the configured user logs in to the configured vhost");
    let ch = within(5, conn.create_channel()).await.unwrap();
    within(
        5,
        ch.queue_declare(
            "work".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("with full permissions there");
    // guest was not created.
    let guest = format!("amqp://guest:guest@127.0.0.1:{}/%2f", child.port);
    let err = within(
        5,
        lapin::Connection::connect(&guest, lapin::ConnectionProperties::default()),
    )
    .await
    .expect_err("no guest user");
    assert_eq!(amqp_error(&err).map(|(c, _)| c), Some(403), "{err:?}");
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_node_is_named_by_rabbitmq_nodename() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = std::env::temp_dir().join(unique("warren-nodename"));
    let child = spawn_warren(&dir, &[("RABBITMQ_NODENAME", "rabbit@broker-1")]).await;
    let mgmt = {
        let log = child.log.lock().unwrap();
        log.iter()
            .find_map(|l| {
                l.split("Management API started on ")
                    .nth(1)
                    .map(|a| a.trim().to_string())
            })
            .expect("the management address is logged")
    };
    let port = mgmt.rsplit(':').next().unwrap();
    let mut s = within(
        5,
        tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")),
    )
    .await
    .unwrap();
    let req = "GET /api/overview?columns=node,cluster_name HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    within(5, s.read_to_string(&mut raw)).await.unwrap();
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap(),
        serde_json::json!({"node": "rabbit@broker-1", "cluster_name": "rabbit@broker-1"})
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
