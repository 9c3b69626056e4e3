//! User and permission endpoints beyond the basics: permissions per vhost and per user, users
//! without permissions, bulk delete, user limits (enforced over AMQP), a user's connections,
//! and the endpoints that answer as a RabbitMQ without topic permissions or OAuth.

mod common;

use common::http::*;
use common::*;
use serde_json::json;

#[tokio::test]
async fn per_vhost_and_per_user_views_bulk_delete_and_user_limits() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker() else { return };
    broker.add_user("ann", "pw", &[]).unwrap();
    broker.add_user("bob", "pw", &[]).unwrap();
    broker.add_user("cy", "pw", &[]).unwrap();
    broker
        .set_permissions("ann", "/", "^a", "^a", "^a")
        .unwrap();
    let get = |path: &'static str| http(&b, "GET", path, GUEST, None);
    let r = get("/api/vhosts/%2F/permissions").await;
    assert_eq!(r.status, 200);
    let users: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users, ["ann", "guest"]);
    assert_eq!(
        get("/api/users/ann/permissions").await.json(),
        json!([{"user": "ann", "vhost": "/", "configure": "^a", "write": "^a", "read": "^a"}])
    );
    assert_eq!(get("/api/users/nobody/permissions").await.status, 404);
    assert_eq!(
        get("/api/vhosts/%2F/topic-permissions").await.json(),
        json!([])
    );
    let without: Vec<String> = get("/api/users/without-permissions")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(without, ["bob", "cy"]);
    let r = http(
        &b,
        "POST",
        "/api/users/bulk-delete",
        GUEST,
        Some(json!({"users": ["bob", "cy", "ghost"]})),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        get("/api/users/without-permissions").await.json(),
        json!([])
    );
    assert_eq!(get("/api/users/bob").await.status, 404);
    assert_eq!(
        get("/api/auth").await.json(),
        json!({"enable_uaa": false, "uaa_client_id": "", "uaa_location": ""})
    );

    // A user limit set over HTTP is enforced on AMQP connections.
    let r = http(
        &b,
        "PUT",
        "/api/user-limits/ann/max-connections",
        GUEST,
        Some(json!({"value": 1})),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        get("/api/user-limits").await.json(),
        json!([{"user": "ann", "value": {"max-connections": 1}}])
    );
    let url = b.url.replace("guest:guest", "ann:pw");
    let props = lapin::ConnectionProperties::default;
    let first = within(5, lapin::Connection::connect(&url, props()))
        .await
        .unwrap();
    let second = within(5, lapin::Connection::connect(&url, props())).await;
    let err = second.expect_err("a second connection is over the limit");
    assert_eq!(amqp_error(&err).map(|(c, _)| c), Some(530), "{err:?}");
    let mine = http(&b, "GET", "/api/connections/username/ann", GUEST, None)
        .await
        .json();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["user"], "ann");
    let r = http(&b, "DELETE", "/api/connections/username/ann", GUEST, None).await;
    assert_eq!(r.status, 204);
    eventually(5, || async { (!first.status().connected()).then_some(()) }).await;
    let r = http(
        &b,
        "DELETE",
        "/api/user-limits/ann/max-connections",
        GUEST,
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(get("/api/user-limits/ann").await.json(), json!([]));
}
