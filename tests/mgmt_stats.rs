//! The management API's listings with message statistics, after real AMQP traffic from lapin:
//! overview, queues, exchanges, bindings, connections, channels, consumers, vhosts and nodes,
//! with RabbitMQ's field names, `columns`, `sort` and pagination, rates sampled by the broker,
//! and what users of each tag may see. In-process broker only.

mod common;
mod support;

use common::http::*;
use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use serde_json::{json, Value};
use support::*;

/// The one item of `list` whose `key` is `value`.
fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|v| v[key] == value)
        .unwrap_or_else(|| panic!("no {key}={value} in {list}"))
}

async fn get_json(b: &TestBroker, path: &str) -> Value {
    let r = http(b, "GET", path, GUEST, None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

#[tokio::test]
async fn listings_count_what_clients_did() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (conn, ch) = confirm_channel(&b).await;
    within(
        5,
        ch.exchange_declare(
            "orders".into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    queue(&ch, "orders.created").await;
    bind(&ch, "orders.created", "orders", "order.created.#").await;
    for i in 0..5 {
        publish_confirmed_with(
            &ch,
            "orders",
            "order.created.eu",
            format!("order-{i}").as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await;
    }
    // Unroutable, not mandatory: dropped.
    publish_confirmed(&ch, "", "nowhere", b"x").await;
    let m = get(&ch, "orders.created").await.expect("a message");
    within(5, m.ack(BasicAckOptions::default())).await.unwrap();
    // A second channel consumes another queue with prefetch 1 and leaves one delivery unacked.
    let ch2 = open(&conn).await;
    queue(&ch2, "q.work").await;
    for _ in 0..3 {
        publish_confirmed(&ch, "", "q.work", b"abc").await;
    }
    within(5, ch2.basic_qos(1, BasicQosOptions::default()))
        .await
        .unwrap();
    let mut inbox = consume(&ch2, "q.work", "worker-1", BasicConsumeOptions::default()).await;
    inbox.next().await;

    let q = get_json(&b, "/api/queues/%2F/orders.created").await;
    assert_eq!(q["messages"], 4);
    assert_eq!(q["messages_ready"], 4);
    assert_eq!(q["messages_unacknowledged"], 0);
    assert_eq!(q["message_bytes"], 4 * 7);
    assert_eq!(q["message_stats"]["publish"], 5);
    assert_eq!(q["message_stats"]["get"], 1);
    assert_eq!(q["message_stats"]["ack"], 1);
    assert_eq!(q["message_stats"]["deliver_get"], 1);
    assert_eq!(q["type"], "classic");
    assert_eq!(q["state"], "running");
    assert_eq!(q["consumer_details"], json!([]));
    assert_eq!(q["policy"], Value::Null);

    let work = get_json(&b, "/api/queues/%2F/q.work").await;
    assert_eq!(
        (
            &work["messages"],
            &work["messages_ready"],
            &work["messages_unacknowledged"]
        ),
        (&json!(3), &json!(2), &json!(1))
    );
    assert_eq!(work["message_bytes_unacknowledged"], 3);
    assert_eq!(work["consumers"], 1);
    assert_eq!(work["message_stats"]["deliver"], 1);
    let c = &work["consumer_details"][0];
    assert_eq!(c["consumer_tag"], "worker-1");
    assert_eq!(c["prefetch_count"], 1);
    assert_eq!(c["ack_required"], true);
    assert_eq!(c["queue"], json!({"name": "q.work", "vhost": "/"}));
    assert_eq!(c["channel_details"]["number"], 2);

    let x = get_json(&b, "/api/exchanges/%2F/orders").await;
    assert_eq!(x["type"], "topic");
    assert_eq!(x["message_stats"]["publish_in"], 5);
    assert_eq!(x["message_stats"]["publish_out"], 5);
    let default = get_json(&b, "/api/exchanges/%2F/amq.default").await;
    assert_eq!(default["name"], "");
    assert_eq!(default["message_stats"]["publish_in"], 4);
    assert_eq!(default["message_stats"]["publish_out"], 3);

    let o = get_json(&b, "/api/overview").await;
    assert_eq!(o["product_name"], "RabbitMQ");
    assert_eq!(
        o["object_totals"],
        json!({"channels": 2, "connections": 1, "consumers": 1, "exchanges": 7, "queues": 2})
    );
    assert_eq!(o["queue_totals"]["messages"], 7);
    assert_eq!(o["queue_totals"]["messages_ready"], 6);
    assert_eq!(o["queue_totals"]["messages_unacknowledged"], 1);
    let ms = &o["message_stats"];
    assert_eq!(
        (&ms["publish"], &ms["confirm"], &ms["drop_unroutable"]),
        (&json!(9), &json!(9), &json!(1))
    );
    assert_eq!(
        (&ms["get"], &ms["ack"], &ms["deliver"]),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(ms["deliver_get"], 2);
    assert_eq!(ms["return_unroutable"], 0);
    assert_eq!(o["churn_rates"]["connection_created"], 1);
    assert_eq!(o["churn_rates"]["queue_created"], 2);
    let cols = get_json(
        &b,
        "/api/overview?columns=rabbitmq_version,queue_totals.messages,object_totals.queues",
    )
    .await;
    assert_eq!(
        cols,
        json!({"rabbitmq_version": o["rabbitmq_version"], "queue_totals": {"messages": 7},
               "object_totals": {"queues": 2}})
    );

    let conns = get_json(&b, "/api/connections").await;
    assert_eq!(conns.as_array().unwrap().len(), 1);
    let c = &conns[0];
    assert_eq!(c["user"], "guest");
    assert_eq!(c["vhost"], "/");
    assert_eq!(c["channels"], 2);
    assert_eq!(c["protocol"], "AMQP 0-9-1");
    assert_eq!(c["auth_mechanism"], "PLAIN");
    assert_eq!(c["client_properties"]["product"], "lapin");
    assert_eq!(c["state"], "running");
    assert_eq!(c["port"], b.addr.port());
    let name = c["name"].as_str().unwrap().to_string();
    assert_eq!(
        name,
        format!(
            "127.0.0.1:{} -> 127.0.0.1:{}",
            c["peer_port"],
            b.addr.port()
        )
    );
    assert!(c["recv_oct"].as_u64().unwrap() > 100, "{c}");
    assert!(c["send_oct"].as_u64().unwrap() > 100, "{c}");
    let path = format!(
        "/api/connections/{}",
        name.replace(' ', "%20").replace('>', "%3E")
    );
    assert_eq!(get_json(&b, &path).await["name"], name);
    let chans = get_json(&b, &format!("{path}/channels")).await;
    assert_eq!(chans.as_array().unwrap().len(), 2);

    let chans = get_json(&b, "/api/channels").await;
    let first = numbered(&chans, 1);
    assert_eq!(first["confirm"], true);
    assert_eq!(first["message_stats"]["publish"], 9);
    assert_eq!(first["message_stats"]["confirm"], 9);
    assert_eq!(first["name"], format!("{name} (1)"));
    let second = find(&chans, "name", &format!("{name} (2)"));
    assert_eq!(second["prefetch_count"], 1);
    assert_eq!(second["consumer_count"], 1);
    assert_eq!(second["messages_unacknowledged"], 1);
    assert_eq!(second["message_stats"]["deliver"], 1);

    let consumers = get_json(&b, "/api/consumers").await;
    assert_eq!(consumers.as_array().unwrap().len(), 1);
    assert_eq!(consumers[0]["consumer_tag"], "worker-1");
    assert_eq!(consumers[0]["channel_details"]["connection_name"], name);

    let bindings = get_json(&b, "/api/bindings").await;
    let topic = find(&bindings, "source", "orders");
    assert_eq!(
        topic,
        &json!({"source": "orders", "vhost": "/", "destination": "orders.created",
                "destination_type": "queue", "routing_key": "order.created.#",
                "arguments": {}, "properties_key": "order.created.#"})
    );
    let implicit: Vec<&Value> = bindings
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["source"] == "")
        .collect();
    assert_eq!(implicit.len(), 2);

    let vh = get_json(&b, "/api/vhosts/%2F").await;
    assert_eq!(vh["messages"], 7);
    assert_eq!(vh["message_stats"]["publish"], 9);
    assert!(vh["recv_oct"].as_u64().unwrap() > 0);
    let nodes = get_json(&b, "/api/nodes?columns=name,type,mem_used").await;
    assert_eq!(nodes[0]["type"], "disc");
    assert!(nodes[0]["mem_used"].as_u64().unwrap() > 1_000_000);

    // Counts outlive the channels that made them.
    within(5, conn.close(200, "bye".into())).await.unwrap();
    let o = eventually(5, || async {
        let o = get_json(&b, "/api/overview").await;
        (o["object_totals"]["connections"] == 0).then_some(o)
    })
    .await;
    assert_eq!(o["message_stats"]["publish"], 9);
    assert_eq!(o["churn_rates"]["channel_closed"], 2);
    assert_eq!(o["churn_rates"]["connection_closed"], 1);
}

/// The channel numbered `n` in `list`.
fn numbered(list: &Value, n: u64) -> &Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["number"] == n)
        .unwrap_or_else(|| panic!("no channel {n} in {list}"))
}

#[tokio::test]
async fn columns_sort_and_pages_as_rabbitmqadmin_asks() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let conn = b.connect().await;
    let ch = open(&conn).await;
    for (name, n) in [("pg.c", 1), ("pg.a", 3), ("pg.b", 2), ("other", 0)] {
        queue(&ch, name).await;
        for _ in 0..n {
            publish(&ch, "", name, b"m").await;
        }
    }
    wait_ready(&ch, "pg.a", 3).await;
    wait_ready(&ch, "pg.b", 2).await;
    let cols = get_json(&b, "/api/queues?columns=name,messages").await;
    assert_eq!(
        cols,
        json!([{"name": "other", "messages": 0}, {"name": "pg.a", "messages": 3},
               {"name": "pg.b", "messages": 2}, {"name": "pg.c", "messages": 1}])
    );
    let sorted = get_json(
        &b,
        "/api/queues/%2F?columns=name&sort=messages&sort_reverse=true",
    )
    .await;
    assert_eq!(
        sorted,
        json!([{"name": "pg.a"}, {"name": "pg.b"}, {"name": "pg.c"}, {"name": "other"}])
    );
    let page = get_json(
        &b,
        "/api/queues?page=2&page_size=2&name=pg&columns=name&sort=name",
    )
    .await;
    assert_eq!(
        page,
        json!({"filtered_count": 3, "item_count": 1, "items": [{"name": "pg.c"}], "page": 2,
               "page_count": 2, "page_size": 2, "total_count": 4})
    );
    let regex = get_json(
        &b,
        "/api/queues?page=1&page_size=10&name=%5Epg%5C.%5Bab%5D%24&use_regex=true&columns=name",
    )
    .await;
    assert_eq!(regex["items"], json!([{"name": "pg.a"}, {"name": "pg.b"}]));
    // Refusals in RabbitMQ's words.
    let refused = [
        (
            "/api/queues?page=5&page_size=2",
            "page_out_of_range",
            "Page out of range, page: 5 page size: 2, len: 4",
        ),
        (
            "/api/queues?page=1&page_size=501",
            "invalid_pagination_parameters",
            "Invalid pagination parameters: page number 1, page size 501",
        ),
        (
            "/api/queues?page=0",
            "invalid_pagination_parameters",
            "Invalid pagination parameters: page number 0, page size undefined",
        ),
        (
            "/api/queues?page=x",
            "bad_request",
            "Pagination parameters are invalid",
        ),
        (
            "/api/queues?page=1&name=%5B&use_regex=true",
            "bad_request",
            "Pagination parameters are invalid",
        ),
    ];
    for (path, error, reason) in refused {
        let r = http(&b, "GET", path, GUEST, None).await;
        assert_eq!(
            (r.status, r.json()),
            (400, json!({"error": error, "reason": reason})),
            "{path}"
        );
    }
    let r = http(&b, "GET", "/api/queues/nosuchvhost", GUEST, None).await;
    assert_eq!(r.status, 404);
    let r = http(&b, "GET", "/api/queues/%2F/nosuchqueue", GUEST, None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            404,
            json!({"error": "Object Not Found", "reason": "Not Found"})
        )
    );
}

#[tokio::test]
async fn rates_are_sampled_per_second() {
    let b = TestBroker::start_with(|c| c.management.collect_statistics_interval = 200).await;
    if b.broker().is_none() {
        return;
    }
    let (_conn, ch) = confirm_channel(&b).await;
    queue(&ch, "rated").await;
    // Publish steadily until a sample has seen it; the rate is positive and the queue's
    // depth rate follows the growth.
    let o = eventually(10, || async {
        for _ in 0..20 {
            publish_confirmed(&ch, "", "rated", b"r").await;
        }
        let o = get_json(&b, "/api/overview").await;
        let rate = o["message_stats"]["publish_details"]["rate"]
            .as_f64()
            .unwrap();
        (rate > 0.0).then_some(o)
    })
    .await;
    assert!(
        o["message_stats"]["confirm_details"]["rate"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let q = get_json(&b, "/api/queues/%2F/rated").await;
    assert!(
        q["message_stats"]["publish_details"]["rate"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{q}"
    );
    // With nothing published, the rate falls back to zero at the next samples.
    eventually(10, || async {
        let o = get_json(&b, "/api/overview").await;
        (o["message_stats"]["publish_details"]["rate"] == 0.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn users_see_their_vhosts_and_connections_monitoring_sees_all() {
    let b = TestBroker::start().await;
    let Some(broker) = b.broker() else { return };
    broker.add_vhost("team").unwrap();
    broker.add_user("mia", "pw", &["management"]).unwrap();
    broker
        .set_permissions("mia", "team", ".*", ".*", ".*")
        .unwrap();
    broker.add_user("mo", "pw", &["monitoring"]).unwrap();
    let conn = b.connect().await;
    let ch = open(&conn).await;
    queue(&ch, "root.q").await;
    broker
        .vhost("team")
        .unwrap()
        .declare_queue("team.q", false, false, false, FieldTable::default(), 0)
        .unwrap();
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mia = Some(("mia", "pw"));
    let r = http(&b, "GET", "/api/queues?columns=name", mia, None).await;
    assert_eq!(names(r.json()), ["team.q"]);
    let r = http(&b, "GET", "/api/vhosts?columns=name", mia, None).await;
    assert_eq!(names(r.json()), ["team"]);
    let r = http(&b, "GET", "/api/connections", mia, None).await;
    assert_eq!(r.json(), json!([]));
    let r = http(&b, "GET", "/api/queues/%2F", mia, None).await;
    assert_eq!(r.status, 401);
    let mo = Some(("mo", "pw"));
    let r = http(&b, "GET", "/api/queues?columns=name", mo, None).await;
    assert_eq!(names(r.json()), ["root.q", "team.q"]);
    let r = http(&b, "GET", "/api/connections", mo, None).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = http(
        &b,
        "GET",
        "/api/overview?columns=object_totals.queues",
        mia,
        None,
    )
    .await;
    assert_eq!(r.json(), json!({"object_totals": {"queues": 1}}));
}
