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
