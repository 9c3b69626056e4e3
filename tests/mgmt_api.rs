//! The management HTTP API over TCP, with the status codes and bodies RabbitMQ 3.10.8 gave
//! (recorded): authentication and tags, whoami, users, permissions, vhosts, health checks.
//! Talks plain HTTP/1.1 over a socket so no HTTP client library stands between the test and
//! the wire. In-process broker only.

mod common;
mod support;

use common::http::*;
use common::*;
use serde_json::json;

#[tokio::test]
async fn authentication_and_tags_as_rabbitmq() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let r = http(&b, "GET", "/api/whoami", None, None).await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers
            .contains("www-authenticate: basic realm=\"rabbitmq management\""),
        "{}",
        r.headers
    );
    assert_eq!(r.body, "");
    let r = http(&b, "GET", "/api/whoami", Some(("guest", "nope")), None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            json!({"error": "not_authorized", "reason": "Login failed"})
        )
    );
    let r = http(&b, "GET", "/api/whoami", GUEST, None).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"name": "guest", "tags": ["administrator"]}))
    );
    assert!(
        r.headers.contains("content-type: application/json"),
        "{}",
        r.headers
    );

    // A monitoring user may look but not administer; a user without tags may not log in.
    let r = http(
        &b,
        "PUT",
        "/api/users/alice",
        GUEST,
        Some(json!({"password": "s3cret", "tags": "monitoring"})),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = http(
        &b,
        "PUT",
        "/api/users/alice",
        GUEST,
        Some(json!({"password": "s3cret", "tags": "monitoring"})),
    )
    .await;
    assert_eq!(r.status, 204);
    let alice = Some(("alice", "s3cret"));
    let r = http(&b, "GET", "/api/whoami", alice, None).await;
    assert_eq!(r.json(), json!({"name": "alice", "tags": ["monitoring"]}));
    let r = http(&b, "GET", "/api/users", alice, None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            json!({"error": "not_authorised", "reason": "Not administrator user"})
        )
    );
    http(
        &b,
        "PUT",
        "/api/users/nobody",
        GUEST,
        Some(json!({"password": "pw", "tags": ""})),
    )
    .await;
    let r = http(&b, "GET", "/api/whoami", Some(("nobody", "pw")), None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            json!({"error": "not_authorised", "reason": "Not management user"})
        )
    );
    let r = http(&b, "GET", "/api/no-such-thing", GUEST, None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            404,
            json!({"error": "Object Not Found", "reason": "Not Found"})
        )
    );
    b.stop().await;
}

#[tokio::test]
async fn users_permissions_and_vhosts_are_managed_and_used_by_amqp() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    assert_eq!(
        http(&b, "PUT", "/api/vhosts/app", GUEST, None).await.status,
        201
    );
    assert_eq!(
        http(&b, "PUT", "/api/vhosts/app", GUEST, None).await.status,
        204
    );
    // rabbitmqadmin v2 sends the tags as a list and may send a hash.
    let r = http(
        &b,
        "PUT",
        "/api/users/bob",
        GUEST,
        Some(json!({"password": "bob", "tags": ["management"]})),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = http(&b, "GET", "/api/users/bob", GUEST, None).await;
    let user = r.json();
    assert_eq!(user["name"], "bob");
    assert_eq!(user["hashing_algorithm"], "rabbit_password_hashing_sha256");
    assert_eq!(user["tags"], json!(["management"]));
    assert_eq!(user["limits"], json!({}));
    assert_eq!(user["password_hash"].as_str().unwrap().len(), 48);
    let perm = json!({"configure": ".*", "write": ".*", "read": ".*"});
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/permissions/app/bob",
            GUEST,
            Some(perm.clone())
        )
        .await
        .status,
        201
    );
    assert_eq!(
        http(&b, "PUT", "/api/permissions/app/bob", GUEST, Some(perm))
            .await
            .status,
        204
    );
    let r = http(&b, "GET", "/api/permissions/app/bob", GUEST, None).await;
    assert_eq!(
        r.json(),
        json!({"user": "bob", "vhost": "app", "configure": ".*", "write": ".*", "read": ".*"})
    );
    // %2F is the default vhost.
    let r = http(&b, "GET", "/api/permissions/%2F/guest", GUEST, None).await;
    assert_eq!(r.json()["vhost"], "/");
    // What the API set, AMQP uses.
    let conn = within(
        10,
        lapin::Connection::connect(&b.url_for("bob", "bob", "app"), Default::default()),
    )
    .await
    .expect("bob on app");
    drop(conn);
    assert_eq!(
        http(&b, "DELETE", "/api/permissions/app/bob", GUEST, None)
            .await
            .status,
        204
    );
    let err = within(
        10,
        lapin::Connection::connect(&b.url_for("bob", "bob", "app"), Default::default()),
    )
    .await
    .expect_err("no permissions any more");
    assert_eq!(amqp_error(&err).map(|e| e.0), Some(530));
    assert_eq!(
        http(&b, "DELETE", "/api/users/bob", GUEST, None)
            .await
            .status,
        204
    );
    assert_eq!(
        http(&b, "DELETE", "/api/users/bob", GUEST, None)
            .await
            .status,
        404
    );
    let r = http(
        &b,
        "PUT",
        "/api/users/x",
        GUEST,
        Some(json!("not an object")),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad_request");
    b.stop().await;
}

#[tokio::test]
async fn health_checks() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker().cloned() else {
        return;
    };
    for path in [
        "/api/health/checks/alarms",
        "/api/health/checks/local-alarms",
        "/api/health/checks/virtual-hosts",
        "/api/aliveness-test/%2F",
    ] {
        let r = http(&b, "GET", path, GUEST, None).await;
        assert_eq!(
            (r.status, r.json()),
            (200, json!({"status": "ok"})),
            "{path}"
        );
    }
    let port = b.addr.port();
    let r = http(
        &b,
        "GET",
        &format!("/api/health/checks/port-listener/{port}"),
        GUEST,
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"status": "ok", "port": port}))
    );
    let r = http(&b, "GET", "/api/health/checks/port-listener/9", GUEST, None).await;
    assert_eq!(r.status, 503);
    let body = r.json();
    assert_eq!(
        (
            body["status"].clone(),
            body["reason"].clone(),
            body["missing"].clone()
        ),
        (json!("failed"), json!("No active listener"), json!(9))
    );
    assert!(body["ports"].as_array().unwrap().contains(&json!(port)));
    let r = http(
        &b,
        "GET",
        "/api/health/checks/protocol-listener/amqp",
        GUEST,
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"status": "ok", "protocol": "amqp"}))
    );
    let r = http(
        &b,
        "GET",
        "/api/health/checks/protocol-listener/mqtt",
        GUEST,
        None,
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["missing"], "mqtt");
    assert_eq!(
        http(&b, "GET", "/api/aliveness-test/nope", GUEST, None)
            .await
            .status,
        404
    );
    // An alarm fails the alarms checks.
    broker.alarms.set_memory_limit(1);
    eventually(5, || async { broker.alarms.current().memory.then_some(()) }).await;
    let r = http(&b, "GET", "/api/health/checks/alarms", GUEST, None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["alarms"][0]["resource"], "memory");
    broker.alarms.set_memory_limit(u64::MAX);
    b.stop().await;
}

#[tokio::test]
async fn queues_and_exchanges_are_declared_and_deleted_as_rabbitmq_answers() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    // rabbitmqadmin v1 sends booleans as strings.
    let q = json!({"auto_delete": "false", "durable": "true", "arguments": {}, "name": "hdr.test", "vhost": "/"});
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/queues/%2F/hdr.test",
            GUEST,
            Some(q.clone())
        )
        .await
        .status,
        201
    );
    assert_eq!(
        http(&b, "PUT", "/api/queues/%2F/hdr.test", GUEST, Some(q))
            .await
            .status,
        204
    );
    let r = http(
        &b,
        "PUT",
        "/api/queues/%2F/hdr.test",
        GUEST,
        Some(json!({"durable": false})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"error": "bad_request", "reason": "inequivalent arg 'durable' for queue 'hdr.test' in vhost '/': received 'false' but current is 'true'"})
        )
    );
    // A message makes it non-empty.
    let conn = b.connect().await;
    let ch = support::open(&conn).await;
    support::publish(&ch, "", "hdr.test", b"m").await;
    support::wait_ready(&ch, "hdr.test", 1).await;
    let r = http(
        &b,
        "DELETE",
        "/api/queues/%2F/hdr.test?if-empty=true",
        GUEST,
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"error": "bad_request", "reason": "queue 'hdr.test' in vhost '/' not empty"})
        )
    );
    assert_eq!(
        http(
            &b,
            "DELETE",
            "/api/queues/%2F/hdr.test/contents",
            GUEST,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(support::counts(&ch, "hdr.test").await, (0, 0));
    assert_eq!(
        http(
            &b,
            "DELETE",
            "/api/queues/%2F/hdr.test?if-empty=true",
            GUEST,
            None
        )
        .await
        .status,
        204
    );
    let r = http(&b, "DELETE", "/api/queues/%2F/hdr.test", GUEST, None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            404,
            json!({"error": "Object Not Found", "reason": "Not Found"})
        )
    );
    // %2E is a dot (rabbitmqadmin v2).
    let x = json!({"type": "topic", "durable": true, "auto_delete": false, "arguments": {}});
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/exchanges/%2F/v2%2Ex",
            GUEST,
            Some(x.clone())
        )
        .await
        .status,
        201
    );
    assert_eq!(
        http(&b, "PUT", "/api/exchanges/%2F/v2.x", GUEST, Some(x))
            .await
            .status,
        204
    );
    let r = http(
        &b,
        "PUT",
        "/api/exchanges/%2F/v2.x",
        GUEST,
        Some(json!({"type": "fanout"})),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["reason"]
            .as_str()
            .unwrap()
            .starts_with("inequivalent arg 'type' for exchange 'v2.x'"),
        "{}",
        r.body
    );
    let passive = lapin::options::ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    within(
        5,
        ch.exchange_declare(
            "v2.x".into(),
            lapin::ExchangeKind::Topic,
            passive,
            Default::default(),
        ),
    )
    .await
    .expect("declared over HTTP, seen over AMQP");
    assert_eq!(
        http(&b, "DELETE", "/api/exchanges/%2F/v2.x", GUEST, None)
            .await
            .status,
        204
    );
    assert_eq!(
        http(&b, "DELETE", "/api/exchanges/%2F/v2.x", GUEST, None)
            .await
            .status,
        404
    );
    assert_eq!(
        http(&b, "PUT", "/api/queues/nope/q", GUEST, None)
            .await
            .status,
        404
    );
    b.stop().await;
}
