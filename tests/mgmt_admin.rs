//! The management API's write side beyond declaring: bindings, publish and get, closing a
//! connection, deleting a vhost, definitions export and import, vhost limits. Status codes,
//! headers and bodies as RabbitMQ answers them; effects checked over AMQP with lapin.

mod common;
mod support;

use common::http::*;
use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{json, Value};
use support::*;

async fn ok_json(b: &TestBroker, method: &str, path: &str, body: Option<Value>) -> Value {
    let r = http(b, method, path, GUEST, body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    r.json()
}

#[tokio::test]
async fn bindings_are_created_listed_and_deleted() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let conn = b.connect().await;
    let ch = open(&conn).await;
    queue(&ch, "bq").await;
    let r = http(
        &b,
        "POST",
        "/api/bindings/%2F/e/amq.topic/q/bq",
        GUEST,
        Some(json!({"routing_key": "a.#", "arguments": {}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.headers
            .contains("location: /api/bindings/%2f/e/amq.topic/q/bq/a.%23"),
        "{}",
        r.headers
    );
    // The binding routes.
    publish(&ch, "amq.topic", "a.b", b"routed").await;
    wait_ready(&ch, "bq", 1).await;
    // With arguments, the properties key carries their hash; v1's body names everything.
    let r = http(
        &b,
        "POST",
        "/api/bindings/%2F/e/amq.topic/q/bq",
        GUEST,
        Some(
            json!({"destination_type": "queue", "routing_key": "a.#", "arguments": {"x": 1},
                    "source": "amq.topic", "destination": "bq", "vhost": "/"}),
        ),
    )
    .await;
    assert_eq!(r.status, 201);
    let list = ok_json(&b, "GET", "/api/bindings/%2F/e/amq.topic/q/bq", None).await;
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["properties_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], "a.#");
    assert!(keys[1].starts_with("a.#~"), "{keys:?}");
    let one = ok_json(&b, "GET", "/api/bindings/%2F/e/amq.topic/q/bq/a.%23", None).await;
    assert_eq!(one["routing_key"], "a.#");
    assert_eq!(one["destination_type"], "queue");
    let of_queue = ok_json(&b, "GET", "/api/queues/%2F/bq/bindings", None).await;
    assert_eq!(of_queue.as_array().unwrap().len(), 3);
    assert_eq!(of_queue[0]["source"], "");
    // Exchange to exchange, as rabbitmqadmin v1 sends it, then deleted by its key.
    let r = http(
        &b,
        "POST",
        "/api/bindings/%2F/e/amq.direct/e/amq.fanout",
        GUEST,
        Some(json!({"destination_type": "exchange", "routing_key": "x", "arguments": {}})),
    )
    .await;
    assert_eq!(r.status, 201);
    let src = ok_json(
        &b,
        "GET",
        "/api/exchanges/%2F/amq.direct/bindings/source",
        None,
    )
    .await;
    assert_eq!(src[0]["destination"], "amq.fanout");
    let dst = ok_json(
        &b,
        "GET",
        "/api/exchanges/%2F/amq.fanout/bindings/destination",
        None,
    )
    .await;
    assert_eq!(dst[0]["source"], "amq.direct");
    let del = |path: &'static str| http(&b, "DELETE", path, GUEST, None);
    assert_eq!(
        del("/api/bindings/%2F/e/amq.direct/e/amq.fanout/x")
            .await
            .status,
        204
    );
    assert_eq!(
        del("/api/bindings/%2F/e/amq.direct/e/amq.fanout/x")
            .await
            .status,
        404
    );
    assert_eq!(
        del("/api/bindings/%2F/e/amq.topic/q/bq/a.%23").await.status,
        204
    );
    publish(
        &ch,
        "amq.topic",
        "a.c",
        b"still routed by the one with arguments",
    )
    .await;
    wait_ready(&ch, "bq", 2).await;
    // Missing ends are 404.
    let r = http(
        &b,
        "POST",
        "/api/bindings/%2F/e/amq.topic/q/nosuch",
        GUEST,
        Some(json!({"routing_key": "k"})),
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn publish_and_get_over_http() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(
        5,
        ch.queue_declare(
            "web".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let publish = |rk: &'static str, body: Value| {
        let mut req = json!({"properties": {}, "routing_key": rk, "payload_encoding": "string"});
        if let (Some(r), Some(extra)) = (req.as_object_mut(), body.as_object()) {
            r.extend(extra.clone());
        }
        http(
            &b,
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            GUEST,
            Some(req),
        )
    };
    let r = publish(
        "web",
        json!({"payload": "{\"id\":1}", "properties": {"content_type": "application/json",
               "delivery_mode": 2, "headers": {"h": "v"}}}),
    )
    .await;
    assert_eq!((r.status, r.json()), (200, json!({"routed": true})));
    let r = publish(
        "web",
        json!({"payload": "//4A", "payload_encoding": "base64"}),
    )
    .await;
    assert_eq!(r.json(), json!({"routed": true}));
    let r = publish("nowhere", json!({"payload": "lost"})).await;
    assert_eq!(r.json(), json!({"routed": false}));
    let r = publish(
        "web",
        json!({"payload": "!!", "payload_encoding": "base64"}),
    )
    .await;
    assert_eq!(r.status, 400);
    // The persistent one arrived intact over AMQP too.
    let m = get(&ch, "web").await.expect("the published message");
    assert_eq!(m.delivery.data, b"{\"id\":1}");
    assert_eq!(
        m.delivery
            .properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str()),
        Some("application/json")
    );
    assert_eq!(m.delivery.properties.delivery_mode(), &Some(2));
    let h = m.delivery.properties.headers().clone().unwrap();
    assert_eq!(h.inner().get("h"), Some(&AMQPValue::LongString("v".into())));
    within(
        5,
        m.nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    // get with requeue leaves them, marked redelivered; v1 sends count as a string.
    let got = ok_json(
        &b,
        "POST",
        "/api/queues/%2F/web/get",
        Some(json!({"count": "5", "ackmode": "ack_requeue_true", "encoding": "auto"})),
    )
    .await;
    assert_eq!(got.as_array().unwrap().len(), 2);
    assert_eq!(got[0]["payload"], "{\"id\":1}");
    assert_eq!(got[0]["payload_encoding"], "string");
    assert_eq!(got[0]["redelivered"], true);
    assert_eq!(got[0]["message_count"], 1);
    assert_eq!(got[0]["exchange"], "");
    assert_eq!(got[0]["routing_key"], "web");
    assert_eq!(
        got[0]["properties"],
        json!({"content_type": "application/json", "delivery_mode": 2, "headers": {"h": "v"}})
    );
    assert_eq!(got[1]["payload"], "//4A");
    assert_eq!(got[1]["payload_encoding"], "base64");
    assert_eq!(got[1]["payload_bytes"], 3);
    assert_eq!(got[1]["properties"], json!([]));
    let got = ok_json(
        &b,
        "POST",
        "/api/queues/%2F/web/get",
        Some(
            json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto", "truncate": 3}),
        ),
    )
    .await;
    assert_eq!(got[0]["payload"], "{\"i");
    assert_eq!(got[0]["payload_bytes"], 8);
    assert_eq!(got[0]["redelivered"], true);
    assert_eq!(counts(&ch, "web").await.0, 1);
    let r = http(
        &b,
        "POST",
        "/api/queues/%2F/web/get",
        GUEST,
        Some(json!({"count": 1, "ackmode": "nonsense", "encoding": "auto"})),
    )
    .await;
    assert_eq!(r.status, 400);
    // reject_requeue_false dead-letters, as basic.reject does.
    within(
        5,
        ch.queue_declare(
            "web.dlq".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString("web.dlq".into()),
    );
    within(
        5,
        ch.queue_declare("web.dl".into(), QueueDeclareOptions::default(), args),
    )
    .await
    .unwrap();
    publish_confirmed_or_plain(&ch, "web.dl").await;
    let got = ok_json(
        &b,
        "POST",
        "/api/queues/%2F/web.dl/get",
        Some(json!({"count": 1, "ackmode": "reject_requeue_false", "encoding": "base64"})),
    )
    .await;
    assert_eq!(got[0]["payload_encoding"], "base64");
    assert_eq!(got[0]["payload"], "ZGVhZA==");
    wait_ready(&ch, "web.dlq", 1).await;
    assert_eq!(counts(&ch, "web.dl").await.0, 0);
}

async fn publish_confirmed_or_plain(ch: &lapin::Channel, queue: &str) {
    publish(ch, "", queue, b"dead").await;
    wait_ready(ch, queue, 1).await;
}

/// The (code, text) of the connection.close the server will send on `conn`.
fn close_reason(conn: &lapin::Connection) -> tokio::sync::mpsc::UnboundedReceiver<(u16, String)> {
    use futures_core::Stream;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut events = Box::pin(conn.events_listener());
    tokio::spawn(async move {
        while let Some(ev) = std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
            if let lapin::Event::Error(e) = ev {
                let _ = tx.send(code(&e));
            }
        }
    });
    rx
}

#[tokio::test]
async fn closing_a_connection_and_deleting_a_vhost() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker() else { return };
    let conn = b.connect().await;
    let mut closed = close_reason(&conn);
    let conns = ok_json(&b, "GET", "/api/connections?columns=name", None).await;
    let name = conns[0]["name"]
        .as_str()
        .unwrap()
        .replace(' ', "%20")
        .replace('>', "%3E");
    let r = http(
        &b,
        "DELETE",
        &format!("/api/connections/{name}"),
        GUEST,
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        within(5, closed.recv()).await.unwrap(),
        (
            320,
            "CONNECTION_FORCED - Closed via management plugin".to_string()
        )
    );
    eventually(5, || async { broker.connections.is_empty().then_some(()) }).await;

    // A vhost with a durable queue, a permission and a client on it. Its creator has full
    // permissions on it already (so setting them again is 204, as rabbitmqadmin v1 saw).
    assert_eq!(
        http(&b, "PUT", "/api/vhosts/doomed", GUEST, None)
            .await
            .status,
        201
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/permissions/doomed/guest",
            GUEST,
            Some(json!({"configure": ".*", "write": ".*", "read": ".*"}))
        )
        .await
        .status,
        204
    );
    assert_eq!(
        http(
            &b,
            "PUT",
            "/api/queues/doomed/dq",
            GUEST,
            Some(json!({"durable": true}))
        )
        .await
        .status,
        201
    );
    let url = b.url.replace("%2f", "doomed");
    let conn = within(
        5,
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()),
    )
    .await
    .unwrap();
    let mut closed = close_reason(&conn);
    assert_eq!(
        http(&b, "DELETE", "/api/vhosts/doomed", GUEST, None)
            .await
            .status,
        204
    );
    assert_eq!(
        within(5, closed.recv()).await.unwrap(),
        (
            320,
            "CONNECTION_FORCED - vhost 'doomed' is deleted".to_string()
        )
    );
    assert_eq!(
        http(&b, "GET", "/api/vhosts/doomed", GUEST, None)
            .await
            .status,
        404
    );
    assert_eq!(
        http(&b, "DELETE", "/api/vhosts/doomed", GUEST, None)
            .await
            .status,
        404
    );
    let perms = ok_json(&b, "GET", "/api/permissions", None).await;
    assert!(perms
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["vhost"] != "doomed"));
    // Gone for good: not back after a restart.
    let b = b.restart().await;
    assert_eq!(
        http(&b, "GET", "/api/vhosts/doomed", GUEST, None)
            .await
            .status,
        404
    );
    let qs = ok_json(&b, "GET", "/api/queues?columns=name,vhost", None).await;
    assert_eq!(qs, json!([]));
}

#[tokio::test]
async fn definitions_export_and_import_over_http() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let put = |path: &'static str, body: Value| http(&b, "PUT", path, GUEST, Some(body));
    assert_eq!(put("/api/vhosts/app", json!({})).await.status, 201);
    assert_eq!(
        put(
            "/api/exchanges/%2F/orders",
            json!({"type": "topic", "durable": true})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        put(
            "/api/queues/%2F/orders.created",
            json!({"durable": true, "arguments": {"x-max-length": 10}})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        put("/api/queues/app/app.work", json!({"durable": true}))
            .await
            .status,
        201
    );
    let r = http(
        &b,
        "POST",
        "/api/bindings/%2F/e/orders/q/orders.created",
        GUEST,
        Some(json!({"routing_key": "order.#"})),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        put("/api/vhost-limits/app/max-queues", json!({"value": 7}))
            .await
            .status,
        204
    );
    let defs = ok_json(&b, "GET", "/api/definitions", None).await;
    assert_eq!(defs["product_name"], "RabbitMQ");
    assert_eq!(defs["vhosts"], json!([{"name": "/"}, {"name": "app"}]));
    assert_eq!(
        defs["exchanges"],
        json!([{"name": "orders", "vhost": "/", "type": "topic", "durable": true,
                "auto_delete": false, "internal": false, "arguments": {}}])
    );
    assert_eq!(
        defs["queues"],
        json!([{"name": "orders.created", "vhost": "/", "durable": true, "auto_delete": false,
                "arguments": {"x-max-length": 10, "x-queue-type": "classic"}},
               {"name": "app.work", "vhost": "app", "durable": true, "auto_delete": false,
                "arguments": {"x-queue-type": "classic"}}])
    );
    assert_eq!(
        defs["bindings"],
        json!([{"source": "orders", "vhost": "/", "destination": "orders.created",
                "destination_type": "queue", "routing_key": "order.#", "arguments": {}}])
    );
    assert_eq!(
        defs["parameters"],
        json!([{"value": {"max-queues": 7}, "vhost": "app", "component": "vhost-limits",
                "name": "limits"}])
    );
    let guest = defs["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "guest")
        .unwrap();
    assert_eq!(guest["tags"], json!(["administrator"]));
    assert_eq!(guest["hashing_algorithm"], "rabbit_password_hashing_sha256");
    let app = ok_json(&b, "GET", "/api/definitions/app", None).await;
    assert_eq!(
        app["queues"],
        json!([{"name": "app.work", "durable": true, "auto_delete": false,
                "arguments": {"x-queue-type": "classic"}}])
    );
    assert!(app.get("users").is_none());
    let limits = ok_json(&b, "GET", "/api/vhost-limits", None).await;
    assert_eq!(
        limits,
        json!([{"vhost": "app", "value": {"max-queues": 7}}])
    );

    // Into a fresh broker: everything comes back, the guest password hash included.
    let fresh = TestBroker::start().await;
    let r = http(
        &fresh,
        "POST",
        "/api/definitions",
        GUEST,
        Some(defs.clone()),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        ok_json(&fresh, "GET", "/api/definitions", None).await["queues"],
        defs["queues"]
    );
    // A vhost's definitions go into the vhost the path names.
    assert_eq!(
        http(&fresh, "PUT", "/api/vhosts/copy", GUEST, None)
            .await
            .status,
        201
    );
    let r = http(&fresh, "POST", "/api/definitions/copy", GUEST, Some(app)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let q = ok_json(&fresh, "GET", "/api/queues/copy/app.work", None).await;
    assert_eq!(q["durable"], true);
    let r = http(&fresh, "POST", "/api/definitions", GUEST, None).await;
    assert_eq!(
        (r.status, r.json()),
        (400, json!({"error": "bad_request", "reason": "not_json"}))
    );
    // Limits are removed one by one.
    assert_eq!(
        http(
            &b,
            "DELETE",
            "/api/vhost-limits/app/max-queues",
            GUEST,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        ok_json(&b, "GET", "/api/vhost-limits/app", None).await,
        json!([])
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_before_they_are_read() {
    let b = TestBroker::start_with(|c| c.management.max_body_size = 1000).await;
    if b.broker().is_none() {
        return;
    }
    let big = json!({"queues": [], "padding": "x".repeat(2000)});
    let r = http(&b, "POST", "/api/definitions", GUEST, Some(big)).await;
    assert_eq!(
        (r.status, r.json()),
        (
            413,
            json!({"error": "payload_too_large",
                   "reason": "request body is larger than the limit of 1000 bytes"})
        )
    );
    let small = json!({"queues": [{"name": "fits", "vhost": "/", "durable": true}]});
    let r = http(&b, "POST", "/api/definitions", GUEST, Some(small)).await;
    assert_eq!(r.status, 204, "{}", r.body);
}
