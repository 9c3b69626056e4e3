//! Policies: the management API's `/api/policies` with RabbitMQ 3.10.8's status codes, bodies,
//! validation texts and access rules (recorded from it), and what a policy does to queues and
//! exchanges, checked through a real client: limits applied to existing queues at once,
//! precedence against the queue's own arguments, priorities, deletion, restarts and
//! definitions files. In-process broker only (the API and the restarts need it).

mod common;
mod support;

use common::http::{http, http_raw, GUEST};
use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel};
use serde_json::{json, Value};
use support::*;

fn text(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

async fn declare(ch: &Channel, name: &str, durable: bool, arguments: FieldTable) {
    let opts = QueueDeclareOptions {
        durable,
        ..Default::default()
    };
    within(5, ch.queue_declare(name.into(), opts, arguments))
        .await
        .expect("queue.declare");
}

async fn exchange(ch: &Channel, name: &str, kind: lapin::ExchangeKind, arguments: FieldTable) {
    within(
        5,
        ch.exchange_declare(name.into(), kind, Default::default(), arguments),
    )
    .await
    .expect("exchange.declare");
}

/// Set a policy on "/" and expect it taken (201 or 204).
async fn set_policy(b: &TestBroker, name: &str, body: Value) {
    let r = http(
        b,
        "PUT",
        &format!("/api/policies/%2F/{name}"),
        GUEST,
        Some(body),
    )
    .await;
    assert!(matches!(r.status, 201 | 204), "{} {}", r.status, r.body);
}

async fn delete_policy(b: &TestBroker, name: &str) {
    let r = http(
        b,
        "DELETE",
        &format!("/api/policies/%2F/{name}"),
        GUEST,
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
}

fn bodies(v: Vec<Vec<u8>>) -> Vec<String> {
    v.into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

/// The name of the policy the in-process broker applied to a queue or an exchange of "/".
fn applied(b: &TestBroker, queue: Option<&str>, exchange: Option<&str>) -> Option<String> {
    let vh = b.broker().unwrap().vhost("/").unwrap();
    let p = match (queue, exchange) {
        (Some(q), _) => vh.queue(q).unwrap().policy(),
        (None, Some(x)) => vh.exchange(x).unwrap().policy(),
        _ => None,
    };
    p.map(|p| p.name.clone())
}

#[tokio::test]
async fn create_read_update_delete_as_rabbitmq() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let body = json!({"pattern": "^q\\.", "definition": {"max-length": 500}, "apply-to": "queues"});
    // As rabbitmqadmin v1 sends it (name, vhost and priority in the body).
    let mut v1 = body.clone();
    v1["priority"] = json!(0);
    v1["name"] = json!("ttl-pol");
    v1["vhost"] = json!("/");
    let r = http(&b, "PUT", "/api/policies/%2F/ttl-pol", GUEST, Some(v1)).await;
    assert_eq!((r.status, r.body.as_str()), (201, ""));
    let r = http(&b, "PUT", "/api/policies/%2F/ttl-pol", GUEST, Some(body)).await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    let recorded = json!({"vhost": "/", "name": "ttl-pol", "pattern": "^q\\.",
                          "apply-to": "queues", "definition": {"max-length": 500}, "priority": 0});
    let r = http(&b, "GET", "/api/policies/%2F/ttl-pol", GUEST, None).await;
    assert_eq!((r.status, r.json()), (200, recorded.clone()));
    // Exactly RabbitMQ's bytes for the listing.
    let r = http(&b, "GET", "/api/policies", GUEST, None).await;
    assert_eq!(
        r.body,
        r#"[{"vhost":"/","name":"ttl-pol","pattern":"^q\\.","apply-to":"queues","definition":{"max-length":500},"priority":0}]"#
    );
    // Defaults: apply-to all, priority 0; a fraction is a priority too. Listed by priority.
    let r = http(
        &b,
        "PUT",
        "/api/policies/%2F/frac",
        GUEST,
        Some(json!({"pattern": "zzz", "definition": {"expires": 1000}, "priority": -1.5})),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = http(&b, "GET", "/api/policies/%2F", GUEST, None).await;
    assert_eq!(
        r.json(),
        json!([{"vhost": "/", "name": "frac", "pattern": "zzz", "apply-to": "all",
                "definition": {"expires": 1000}, "priority": -1.5}, recorded])
    );
    // Not found: the policy, the vhost; setting one on a vhost that does not exist.
    let not_found = json!({"error": "Object Not Found", "reason": "Not Found"});
    for path in [
        "/api/policies/%2F/nope",
        "/api/policies/nope",
        "/api/policies/nope/ttl-pol",
    ] {
        let r = http(&b, "GET", path, GUEST, None).await;
        assert_eq!((r.status, r.json()), (404, not_found.clone()), "{path}");
    }
    let r = http(
        &b,
        "PUT",
        "/api/policies/nope/p",
        GUEST,
        Some(json!({"pattern": "a", "definition": {"max-length": 1}})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (
            404,
            json!({"error": "not_found", "reason": "vhost_not_found"})
        )
    );
    let r = http(&b, "DELETE", "/api/policies/%2F/ttl-pol", GUEST, None).await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    let r = http(&b, "DELETE", "/api/policies/%2F/ttl-pol", GUEST, None).await;
    assert_eq!((r.status, r.json()), (404, not_found));
    b.stop().await;
}

#[tokio::test]
async fn refused_with_rabbitmqs_validation_texts() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    // Recorded from RabbitMQ 3.10.8, HTML escaping included.
    let cases: Vec<(&str, &str)> = vec![
        (
            r#"{"pattern":"^q","definition":{"foo":6,"bar":1}}"#,
            "Validation failed\n\n[{&lt;&lt;\"bar\"&gt;&gt;,1},{&lt;&lt;\"foo\"&gt;&gt;,6}] are not recognised policy settings\n",
        ),
        (
            r#"{"pattern":"^q","definition":{"max-length":"x"}}"#,
            "Validation failed\n\n&lt;&lt;\"x\"&gt;&gt; is not a valid maximum length\n",
        ),
        (
            r#"{"pattern":"^q","definition":{"message-ttl":-1}}"#,
            "Validation failed\n\n-1 is not a valid message TTL\n",
        ),
        (
            r#"{"pattern":"^q","definition":{"expires":0}}"#,
            "Validation failed\n\n0 is not a valid queue expiry\n",
        ),
        (
            r#"{"pattern":"^q","definition":{"overflow":"foo"}}"#,
            "Validation failed\n\n&lt;&lt;\"foo\"&gt;&gt; is not a valid overflow value\n",
        ),
        (
            r#"{"pattern":"^q","definition":{"dead-letter-exchange":5}}"#,
            "Validation failed\n\n5 is not a valid dead letter exchange name\n",
        ),
        (
            r#"{"pattern":"^q","definition":{"alternate-exchange":5}}"#,
            "Validation failed\n\n5 is not a valid alternate exchange name\n",
        ),
        (
            r#"{"pattern":"^q","definition":{"delivery-limit":"x"}}"#,
            "Validation failed\n\n&lt;&lt;\"x\"&gt;&gt; is not a valid delivery limit\n",
        ),
        (
            r#"{"pattern":"(","definition":{"max-length":1}}"#,
            "Validation failed\n\npattern should be regular expression but is invalid: {\"missing )\",1}\n",
        ),
        (
            r#"{"pattern":")","definition":{"max-length":1}}"#,
            "Validation failed\n\npattern should be regular expression but is invalid: {\"unmatched parentheses\",\n                                                      0}\n",
        ),
        (
            r#"{"pattern":"a","definition":{"max-length":1},"apply-to":"foo"}"#,
            "Validation failed\n\napply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'\n",
        ),
        (
            r#"{"pattern":"a","definition":{}}"#,
            "Validation failed\n\nno policy provided\n",
        ),
        (
            r#"{"pattern":"a","definition":{"max-length":1},"priority":"7"}"#,
            "Validation failed\n\npriority should be a number, actually was &lt;&lt;\"7\"&gt;&gt;\n",
        ),
        (
            r#"{"pattern":5,"definition":{"max-length":1}}"#,
            "Validation failed\n\npattern should be a binary but was 5\n",
        ),
        (
            r#"{"pattern":"(","definition":{"max-length":"x"},"priority":"x","apply-to":"q"}"#,
            "Validation failed\n\n&lt;&lt;\"x\"&gt;&gt; is not a valid maximum length\napply-to 'q' unrecognised; should be 'queues', 'exchanges' or 'all'\npattern should be regular expression but is invalid: {\"missing )\",1}\npriority should be a number, actually was &lt;&lt;\"x\"&gt;&gt;\n",
        ),
        (r#"{"pattern":"a"}"#, "[{key_missing,definition}]"),
        ("", "[{key_missing,pattern},{key_missing,definition}]"),
        ("nojson", "not_json"),
        ("[1]", "not_json"),
    ];
    for (body, reason) in cases {
        let r = http_raw(&b, "PUT", "/api/policies/%2F/p", GUEST, body).await;
        assert_eq!(
            (r.status, r.json()),
            (400, json!({"error": "bad_request", "reason": reason})),
            "{body}"
        );
    }
    // Nothing was created; keys RabbitMQ knows but warren has no use for are kept.
    let r = http(&b, "GET", "/api/policies", GUEST, None).await;
    assert_eq!(r.json(), json!([]));
    let ha = json!({"pattern": ".*", "definition": {"ha-mode": "all", "queue-mode": "lazy"}});
    let r = http(&b, "PUT", "/api/policies/%2F/ha", GUEST, Some(ha)).await;
    assert_eq!(r.status, 201);
    b.stop().await;
}

#[tokio::test]
async fn who_may_list_read_and_write() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    set_policy(
        &b,
        "p",
        json!({"pattern": "zzz", "definition": {"max-length": 1}}),
    )
    .await;
    let users = [
        ("mon", "monitoring", true),
        ("mg", "management", true),
        ("pm", "policymaker", true),
        ("pmnp", "policymaker", false),
        ("adnp", "administrator", false),
    ];
    for (user, tag, perms) in users {
        let body = json!({"password": "pw", "tags": tag});
        let r = http(&b, "PUT", &format!("/api/users/{user}"), GUEST, Some(body)).await;
        assert_eq!(r.status, 201);
        if perms {
            let all = json!({"configure": ".*", "write": ".*", "read": ".*"});
            let path = format!("/api/permissions/%2F/{user}");
            assert_eq!(http(&b, "PUT", &path, GUEST, Some(all)).await.status, 201);
        }
    }
    let object =
        json!({"error": "not_authorised", "reason": "User not authorised to access object"});
    let listed = json!([{"vhost": "/", "name": "p", "pattern": "zzz", "apply-to": "all",
                         "definition": {"max-length": 1}, "priority": 0}]);
    let body = json!({"pattern": "zzz", "definition": {"max-length": 2}});
    // (user, may manage policies of "/", sees "/")
    for (user, manages, sees) in [
        ("mon", false, true),
        ("mg", false, true),
        ("pm", true, true),
        ("pmnp", false, false),
        ("adnp", true, true),
    ] {
        let auth = Some((user, "pw"));
        let r = http(&b, "GET", "/api/policies", auth, None).await;
        let expected = if sees { listed.clone() } else { json!([]) };
        assert_eq!((r.status, r.json()), (200, expected), "{user}");
        let r = http(&b, "GET", "/api/policies/%2F", auth, None).await;
        match sees {
            true => assert_eq!((r.status, r.json()), (200, listed.clone()), "{user}"),
            false => assert_eq!(
                (r.status, r.json()),
                (
                    401,
                    json!({"error": "not_authorised",
                           "reason": "User not authorised to access virtual host"})
                ),
                "{user}"
            ),
        }
        let path = format!("/api/policies/%2F/{user}-pol");
        let get = http(&b, "GET", "/api/policies/%2F/p", auth, None).await;
        let put = http(&b, "PUT", &path, auth, Some(body.clone())).await;
        let delete = http(&b, "DELETE", &path, auth, None).await;
        if manages {
            assert_eq!(
                (get.status, put.status, delete.status),
                (200, 201, 204),
                "{user}"
            );
        } else {
            for r in [get, put, delete] {
                assert_eq!((r.status, r.json()), (401, object.clone()), "{user}");
            }
        }
    }
    b.stop().await;
}

#[tokio::test]
async fn a_max_length_policy_truncates_an_existing_queue_and_limits_it() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (_conn, ch) = confirm_channel(&b).await;
    declare(&ch, "q.long", false, FieldTable::default()).await;
    for i in 1..=10 {
        publish_confirmed(&ch, "", "q.long", format!("m{i}").as_bytes()).await;
    }
    set_policy(
        &b,
        "short",
        json!({"pattern": "^q\\.long$", "definition": {"max-length": 3}, "apply-to": "queues"}),
    )
    .await;
    // Applied before the PUT answered: the oldest messages are gone already.
    assert_eq!(counts(&ch, "q.long").await.0, 3);
    assert_eq!(applied(&b, Some("q.long"), None).as_deref(), Some("short"));
    for i in 11..=12 {
        publish_confirmed(&ch, "", "q.long", format!("m{i}").as_bytes()).await;
    }
    assert_eq!(bodies(drain(&ch, "q.long").await), ["m10", "m11", "m12"]);
    b.stop().await;
}

#[tokio::test]
async fn a_message_ttl_policy_expires_messages_published_after_it() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (_conn, ch) = confirm_channel(&b).await;
    declare(&ch, "q.ttl", false, FieldTable::default()).await;
    publish_confirmed(&ch, "", "q.ttl", b"before").await;
    set_policy(
        &b,
        "ttl",
        json!({"pattern": "^q\\.ttl$", "definition": {"message-ttl": 50}}),
    )
    .await;
    publish_confirmed(&ch, "", "q.ttl", b"after").await;
    // The message published under the policy expires; the one before keeps no expiry, as in
    // RabbitMQ.
    wait_ready(&ch, "q.ttl", 1).await;
    assert_eq!(bodies(drain(&ch, "q.ttl").await), ["before"]);
    b.stop().await;
}

#[tokio::test]
async fn numbers_take_the_smaller_value_and_the_queues_dead_letter_exchange_wins() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (_conn, ch) = confirm_channel(&b).await;
    let long = |n| AMQPValue::LongLongInt(n);
    declare(&ch, "min.arg", false, args(&[("x-max-length", long(2))])).await;
    declare(&ch, "min.pol", false, args(&[("x-max-length", long(10))])).await;
    set_policy(
        &b,
        "min",
        json!({"pattern": "^min\\.", "definition": {"max-length": 3}}),
    )
    .await;
    for q in ["min.arg", "min.pol"] {
        for i in 1..=6 {
            publish_confirmed(&ch, "", q, format!("m{i}").as_bytes()).await;
        }
    }
    assert_eq!(counts(&ch, "min.arg").await.0, 2, "the argument is smaller");
    assert_eq!(counts(&ch, "min.pol").await.0, 3, "the policy is smaller");

    // Dead-letter exchange: the queue's argument wins over the policy's.
    for (x, q) in [("dlx.arg", "dead.arg"), ("dlx.pol", "dead.pol")] {
        exchange(&ch, x, lapin::ExchangeKind::Fanout, FieldTable::default()).await;
        declare(&ch, q, false, FieldTable::default()).await;
        bind(&ch, q, x, "").await;
    }
    declare(
        &ch,
        "dl.q",
        false,
        args(&[("x-dead-letter-exchange", text("dlx.arg"))]),
    )
    .await;
    set_policy(
        &b,
        "dl",
        json!({"pattern": "^dl\\.q$", "definition": {"dead-letter-exchange": "dlx.pol"}}),
    )
    .await;
    publish_confirmed(&ch, "", "dl.q", b"bad").await;
    let m = get(&ch, "dl.q").await.expect("a message");
    within(
        5,
        m.delivery
            .acker
            .reject(BasicRejectOptions { requeue: false }),
    )
    .await
    .unwrap();
    wait_ready(&ch, "dead.arg", 1).await;
    assert_eq!(counts(&ch, "dead.pol").await.0, 0);
    b.stop().await;
}

#[tokio::test]
async fn a_policys_dead_letter_exchange_and_routing_key() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (_conn, ch) = confirm_channel(&b).await;
    exchange(
        &ch,
        "dlx",
        lapin::ExchangeKind::Direct,
        FieldTable::default(),
    )
    .await;
    declare(&ch, "dead", false, FieldTable::default()).await;
    bind(&ch, "dead", "dlx", "to-dead").await;
    declare(&ch, "work", false, FieldTable::default()).await;
    set_policy(
        &b,
        "dl",
        json!({"pattern": "^work$", "apply-to": "queues", "definition": {
            "dead-letter-exchange": "dlx", "dead-letter-routing-key": "to-dead", "max-length": 1}}),
    )
    .await;
    publish_confirmed(&ch, "", "work", b"first").await;
    publish_confirmed(&ch, "", "work", b"second").await;
    wait_ready(&ch, "dead", 1).await;
    let m = get(&ch, "dead").await.expect("dead-lettered");
    assert_eq!(m.delivery.data, b"first");
    assert_eq!(m.delivery.routing_key.as_str(), "to-dead");
    let headers = m.delivery.properties.headers().clone().unwrap();
    assert_eq!(
        headers.inner().get("x-first-death-reason"),
        Some(&text("maxlen"))
    );
    assert_eq!(bodies(drain(&ch, "work").await), ["second"]);
    b.stop().await;
}

#[tokio::test]
async fn a_policys_alternate_exchange_and_apply_to() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (_conn, ch) = confirm_channel(&b).await;
    for (x, q) in [("ae", "ae.q"), ("own-ae", "own-ae.q")] {
        exchange(&ch, x, lapin::ExchangeKind::Fanout, FieldTable::default()).await;
        declare(&ch, q, false, FieldTable::default()).await;
        bind(&ch, q, x, "").await;
    }
    exchange(
        &ch,
        "x.plain",
        lapin::ExchangeKind::Direct,
        FieldTable::default(),
    )
    .await;
    let own = args(&[("alternate-exchange", text("own-ae"))]);
    exchange(&ch, "x.own", lapin::ExchangeKind::Direct, own).await;
    // A queue the pattern matches too: an exchanges-only policy leaves it alone.
    declare(&ch, "x.queue", false, FieldTable::default()).await;
    set_policy(
        &b,
        "ae",
        json!({"pattern": "^(x\\.|amq\\.direct$)", "apply-to": "exchanges",
               "definition": {"alternate-exchange": "ae", "max-length": 1}}),
    )
    .await;
    assert_eq!(applied(&b, None, Some("x.plain")).as_deref(), Some("ae"));
    assert_eq!(applied(&b, None, Some("amq.direct")).as_deref(), Some("ae"));
    assert_eq!(applied(&b, Some("x.queue"), None), None);
    let x = b
        .broker()
        .unwrap()
        .vhost("/")
        .unwrap()
        .exchange("x.plain")
        .unwrap();
    assert_eq!(
        x.effective_policy_definition(),
        json!({"alternate-exchange": "ae", "max-length": 1})
    );
    for (x, body) in [("x.plain", "a"), ("amq.direct", "b"), ("x.own", "c")] {
        publish_confirmed(&ch, x, "nowhere", body.as_bytes()).await;
    }
    assert_eq!(bodies(drain(&ch, "ae.q").await), ["a", "b"]);
    assert_eq!(
        bodies(drain(&ch, "own-ae.q").await),
        ["c"],
        "the argument wins"
    );
    for i in 0..3 {
        publish_confirmed(&ch, "", "x.queue", format!("m{i}").as_bytes()).await;
    }
    assert_eq!(counts(&ch, "x.queue").await.0, 3, "not a queue policy");

    // The same pattern applied to queues only: the exchange loses its alternate.
    set_policy(
        &b,
        "ae",
        json!({"pattern": "^(x\\.|amq\\.direct$)", "apply-to": "queues",
               "definition": {"alternate-exchange": "ae", "max-length": 1}}),
    )
    .await;
    assert_eq!(applied(&b, None, Some("x.plain")), None);
    assert_eq!(applied(&b, Some("x.queue"), None).as_deref(), Some("ae"));
    assert_eq!(counts(&ch, "x.queue").await.0, 1);
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let confirm = within(
        5,
        ch.basic_publish(
            "x.plain".into(),
            "nowhere".into(),
            mandatory,
            b"d",
            BasicProperties::default(),
        ),
    )
    .await
    .unwrap();
    let c = within(5, confirm).await.unwrap();
    assert!(
        c.take_message().is_some(),
        "returned: no alternate any more"
    );
    assert_eq!(counts(&ch, "ae.q").await.0, 0);
    b.stop().await;
}

#[tokio::test]
async fn the_highest_priority_applies_and_deleting_restores_the_arguments() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (_conn, ch) = confirm_channel(&b).await;
    declare(
        &ch,
        "prio",
        false,
        args(&[("x-max-length", AMQPValue::LongLongInt(4))]),
    )
    .await;
    set_policy(
        &b,
        "low",
        json!({"pattern": "^prio$", "definition": {"max-length": 3}, "priority": 1}),
    )
    .await;
    set_policy(
        &b,
        "high",
        json!({"pattern": "^pr", "definition": {"max-length": 1}, "priority": 2}),
    )
    .await;
    for i in 1..=5 {
        publish_confirmed(&ch, "", "prio", format!("m{i}").as_bytes()).await;
    }
    assert_eq!(applied(&b, Some("prio"), None).as_deref(), Some("high"));
    assert_eq!(counts(&ch, "prio").await.0, 1);
    delete_policy(&b, "high").await;
    assert_eq!(applied(&b, Some("prio"), None).as_deref(), Some("low"));
    for i in 6..=10 {
        publish_confirmed(&ch, "", "prio", format!("m{i}").as_bytes()).await;
    }
    assert_eq!(counts(&ch, "prio").await.0, 3);
    // No policy left: the queue's own x-max-length again.
    delete_policy(&b, "low").await;
    assert_eq!(applied(&b, Some("prio"), None), None);
    for i in 11..=15 {
        publish_confirmed(&ch, "", "prio", format!("m{i}").as_bytes()).await;
    }
    assert_eq!(
        bodies(drain(&ch, "prio").await),
        ["m12", "m13", "m14", "m15"]
    );
    b.stop().await;
}

#[tokio::test]
async fn an_expires_policy_deletes_an_unused_queue() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let conn = b.connect().await;
    let ch = open(&conn).await;
    declare(&ch, "idle", false, FieldTable::default()).await;
    set_policy(
        &b,
        "exp",
        json!({"pattern": "^idle$", "definition": {"expires": 100}}),
    )
    .await;
    let vh = b.broker().unwrap().vhost("/").unwrap();
    eventually(5, || {
        let gone = vh.queue("idle").is_none();
        async move { gone.then_some(()) }
    })
    .await;
    b.stop().await;
}

#[tokio::test]
async fn a_delivery_limit_policy_on_a_quorum_queue() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (_conn, ch) = confirm_channel(&b).await;
    declare(&ch, "qq", true, args(&[("x-queue-type", text("quorum"))])).await;
    set_policy(
        &b,
        "limit",
        json!({"pattern": "^qq$", "definition": {"delivery-limit": 1}}),
    )
    .await;
    publish_confirmed(&ch, "", "qq", b"poison").await;
    for _ in 0..2 {
        let m = get(&ch, "qq").await.expect("delivered");
        within(
            5,
            m.delivery
                .acker
                .reject(BasicRejectOptions { requeue: true }),
        )
        .await
        .unwrap();
    }
    // Two failed deliveries are more than the policy's limit of 1 (the default is 20).
    wait_ready(&ch, "qq", 0).await;
    assert!(get(&ch, "qq").await.is_none());
    b.stop().await;
}

#[tokio::test]
async fn policies_survive_a_restart_and_apply_to_recovered_queues() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let (conn, ch) = confirm_channel(&b).await;
    declare(&ch, "kept", true, FieldTable::default()).await;
    set_policy(
        &b,
        "two",
        json!({"pattern": "^kept$", "definition": {"max-length": 2}}),
    )
    .await;
    let persistent = BasicProperties::default().with_delivery_mode(2);
    for i in 1..=4 {
        publish_confirmed_with(
            &ch,
            "",
            "kept",
            format!("m{i}").as_bytes(),
            persistent.clone(),
        )
        .await;
    }
    drop(conn);
    let b = b.restart().await;
    let r = http(&b, "GET", "/api/policies/%2F/two", GUEST, None).await;
    assert_eq!(
        (r.status, r.json()),
        (
            200,
            json!({"vhost": "/", "name": "two", "pattern": "^kept$", "apply-to": "all",
                   "definition": {"max-length": 2}, "priority": 0})
        )
    );
    assert_eq!(applied(&b, Some("kept"), None).as_deref(), Some("two"));
    let (_conn, ch) = confirm_channel(&b).await;
    publish_confirmed_with(&ch, "", "kept", b"m5", persistent).await;
    assert_eq!(bodies(drain(&ch, "kept").await), ["m4", "m5"]);
    b.stop().await;
}

#[tokio::test]
async fn policies_from_a_definitions_file() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    let dir = TempDir::new();
    let file = dir.path.join("definitions.json");
    let defs = json!({
        "vhosts": [{"name": "/"}],
        "policies": [{"vhost": "/", "name": "ttl-pol", "pattern": "^q\\.", "apply-to": "queues",
                      "definition": {"max-length": 1}, "priority": 0}],
        "queues": [{"name": "q.defined", "vhost": "/", "durable": true, "auto_delete": false,
                    "arguments": {}}]
    });
    std::fs::write(&file, defs.to_string()).unwrap();
    let b = TestBroker::start_with(move |c| c.auth.load_definitions = file).await;
    assert_eq!(
        b.broker().unwrap().policies_json(),
        json!([{"vhost": "/", "name": "ttl-pol", "pattern": "^q\\.", "apply-to": "queues",
                "definition": {"max-length": 1}, "priority": 0}])
    );
    assert_eq!(
        applied(&b, Some("q.defined"), None).as_deref(),
        Some("ttl-pol")
    );
    let (_conn, ch) = confirm_channel(&b).await;
    for body in ["a", "b"] {
        publish_confirmed(&ch, "", "q.defined", body.as_bytes()).await;
    }
    assert_eq!(bodies(drain(&ch, "q.defined").await), ["b"]);
    b.stop().await;
}

#[tokio::test]
async fn management_views_definitions_and_vhost_deletion_know_policies() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let conn = b.connect().await;
    let ch = open(&conn).await;
    declare(&ch, "q.ttl", true, FieldTable::default()).await;
    declare(&ch, "plain", false, FieldTable::default()).await;
    exchange(
        &ch,
        "x.e",
        lapin::ExchangeKind::Topic,
        FieldTable::default(),
    )
    .await;
    set_policy(
        &b,
        "ttl-pol",
        json!({"pattern": "^q\\.", "apply-to": "queues", "definition": {"max-length": 500}}),
    )
    .await;
    set_policy(
        &b,
        "ae-pol",
        json!({"pattern": "^x\\.", "apply-to": "exchanges",
               "definition": {"alternate-exchange": "ae"}, "priority": 3}),
    )
    .await;
    // As RabbitMQ 3.10.8 shows a queue with a policy, and one without.
    let q = http(&b, "GET", "/api/queues/%2F/q.ttl", GUEST, None)
        .await
        .json();
    assert_eq!(
        (
            &q["policy"],
            &q["effective_policy_definition"],
            &q["operator_policy"]
        ),
        (&json!("ttl-pol"), &json!({"max-length": 500}), &Value::Null)
    );
    let q = http(&b, "GET", "/api/queues/%2F/plain", GUEST, None)
        .await
        .json();
    assert_eq!(
        (&q["policy"], &q["effective_policy_definition"]),
        (&Value::Null, &json!({}))
    );
    let x = http(&b, "GET", "/api/exchanges/%2F/x.e", GUEST, None)
        .await
        .json();
    assert_eq!(x["policy"], json!("ae-pol"));

    // Definitions exports carry the policies; a vhost's export names no vhost.
    let ttl = json!({"vhost": "/", "name": "ttl-pol", "pattern": "^q\\.", "apply-to": "queues",
                     "definition": {"max-length": 500}, "priority": 0});
    let ae = json!({"vhost": "/", "name": "ae-pol", "pattern": "^x\\.", "apply-to": "exchanges",
                    "definition": {"alternate-exchange": "ae"}, "priority": 3});
    let all = http(&b, "GET", "/api/definitions", GUEST, None)
        .await
        .json();
    assert_eq!(all["policies"], json!([ttl, ae]));
    let one = http(&b, "GET", "/api/definitions/%2F", GUEST, None)
        .await
        .json();
    let mut ttl_here = ttl.clone();
    ttl_here.as_object_mut().unwrap().remove("vhost");
    assert_eq!(one["policies"][0], ttl_here);

    // A deleted vhost takes its policies along, also from the store.
    assert_eq!(
        http(&b, "PUT", "/api/vhosts/gone", GUEST, None)
            .await
            .status,
        201
    );
    let r = http(
        &b,
        "PUT",
        "/api/policies/gone/p",
        GUEST,
        Some(json!({"pattern": ".*", "definition": {"max-length": 1}})),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        http(&b, "DELETE", "/api/vhosts/gone", GUEST, None)
            .await
            .status,
        204
    );
    assert_eq!(
        http(&b, "PUT", "/api/vhosts/gone", GUEST, None)
            .await
            .status,
        201
    );
    let r = http(&b, "GET", "/api/policies/gone", GUEST, None).await;
    assert_eq!((r.status, r.json()), (200, json!([])));
    drop(conn);
    let b = b.restart().await;
    let r = http(&b, "GET", "/api/policies", GUEST, None).await;
    assert_eq!(r.json(), json!([ttl, ae]));
    b.stop().await;
}
