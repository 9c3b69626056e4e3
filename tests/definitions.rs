//! Definitions (RabbitMQ's JSON export format) imported at boot from `auth.load_definitions`:
//! users with RabbitMQ password hashes and tags, vhosts, permissions, exchanges, queues with
//! arguments, bindings; imported again, unchanged, at every start. Configures the in-process
//! broker, so not for an external broker.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::Connection;
use support::*;

/// RabbitMQ's documented example: the hash of "test12" with salt 908DC60A.
const TEST12: &str = "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR";

fn definitions() -> String {
    format!(
        r#"{{
  "rabbit_version": "3.10.8",
  "users": [
    {{"name": "alice", "password_hash": "{TEST12}",
      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "monitoring,management", "limits": {{}}}}
  ],
  "vhosts": [{{"name": "/"}}, {{"name": "app"}}],
  "permissions": [
    {{"user": "alice", "vhost": "app", "configure": ".*", "write": ".*", "read": ".*"}},
    {{"user": "guest", "vhost": "app", "configure": ".*", "write": ".*", "read": ".*"}}
  ],
  "topic_permissions": [],
  "parameters": [
    {{"component": "vhost-limits", "name": "limits", "vhost": "app", "value": {{"max-queues": 1}}}}
  ],
  "global_parameters": [{{"name": "internal_cluster_id", "value": "x"}}],
  "policies": [],
  "queues": [
    {{"name": "orders.created", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {{}}}},
    {{"name": "q.ttl", "vhost": "/", "durable": true, "auto_delete": false,
      "arguments": {{"x-max-length": 1000, "x-message-ttl": 60000}}}},
    {{"name": "q.quorum", "vhost": "/", "durable": true, "auto_delete": false,
      "arguments": {{"x-queue-type": "quorum"}}}},
    {{"name": "app.work", "vhost": "app", "durable": true, "auto_delete": false, "arguments": {{}}}}
  ],
  "exchanges": [
    {{"name": "orders", "vhost": "/", "type": "topic", "durable": true, "auto_delete": false,
      "internal": false, "arguments": {{}}}}
  ],
  "bindings": [
    {{"source": "orders", "vhost": "/", "destination": "orders.created", "destination_type": "queue",
      "routing_key": "order.created.#", "arguments": {{}}}}
  ]
}}"#
    )
}

#[tokio::test]
async fn a_definitions_file_is_imported_at_every_start() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    let dir = TempDir::new();
    let file = dir.path.join("definitions.json");
    std::fs::write(&file, definitions()).unwrap();
    let f = file.clone();
    let mut b = TestBroker::start_with(move |c| c.auth.load_definitions = f).await;
    for round in 0..2 {
        // alice, by the imported hash, on the imported vhost.
        let alice = within(
            10,
            Connection::connect(&b.url_for("alice", "test12", "app"), Default::default()),
        )
        .await
        .unwrap_or_else(|e| panic!("alice on app (round {round}): {e:?}"));
        let ch = open(&alice).await;
        let (messages, _) = counts(&ch, "app.work").await;
        assert_eq!(messages, 0);
        // The imported vhost limit: app.work is the one queue app may have.
        let (code, text) =
            refused(ch.queue_declare("more".into(), Default::default(), Default::default())).await;
        assert_eq!(
            (code, text.as_str()),
            (406, "PRECONDITION_FAILED - cannot declare queue 'more': queue limit in vhost 'app' (1) is reached")
        );
        // No permissions on "/".
        let err = within(
            10,
            Connection::connect(&b.url_for("alice", "test12", "/"), Default::default()),
        )
        .await
        .expect_err("alice has no permissions on /");
        assert_eq!(
            amqp_error(&err),
            Some((
                530,
                "NOT_ALLOWED - access to vhost '/' refused for user 'alice'".into()
            ))
        );
        // The topology: the binding routes, the queue has its arguments.
        let guest = b.connect().await;
        let g = open(&guest).await;
        publish(
            &g,
            "orders",
            "order.created.eu",
            format!("o{round}").as_bytes(),
        )
        .await;
        wait_ready(&g, "orders.created", 1).await;
        assert_eq!(
            drain(&g, "orders.created").await,
            vec![format!("o{round}").into_bytes()]
        );
        let mut other = FieldTable::default();
        other.insert("x-max-length".into(), AMQPValue::LongLongInt(5));
        other.insert("x-message-ttl".into(), AMQPValue::LongLongInt(60000));
        let (code, text) = refused(g.queue_declare(
            "q.ttl".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            other,
        ))
        .await;
        assert_eq!(code, 406);
        assert!(text.contains("inequivalent arg 'x-max-length'"), "{text}");
        let g = open(&guest).await;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        within(
            5,
            g.queue_declare("q.quorum".into(), passive, Default::default()),
        )
        .await
        .expect("quorum queue");
        drop(alice);
        drop(guest);
        if round == 0 {
            b = b.restart().await;
        }
    }
    b.stop().await;
}

#[tokio::test]
async fn a_malformed_definitions_file_stops_the_start_with_its_line() {
    let dir = TempDir::new();
    let file = dir.path.join("bad.json");
    std::fs::write(&file, "{\n  \"users\": [\n    {\"name\": }\n  ]\n}\n").unwrap();
    let mut cfg = warren::config::Config::for_test(dir.path.join("data"));
    cfg.auth.load_definitions = file;
    let err = match warren::server::start(cfg).await {
        Ok(_) => panic!("started with a malformed definitions file"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("bad.json") && err.contains("line 3"), "{err}");
}
