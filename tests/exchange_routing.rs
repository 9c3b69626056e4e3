//! Routing through every exchange type, the default and predeclared `amq.*` exchanges,
//! exchange-to-exchange bindings and internal exchanges.

mod common;
mod support;

use common::*;
use lapin::{
    options::*,
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, ExchangeKind,
};
use support::*;

async fn exchange(ch: &Channel, kind: ExchangeKind) -> String {
    let x = unique("x");
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            kind,
            ExchangeDeclareOptions {
                auto_delete: false,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.declare");
    x
}

/// Publish each routing key in order (body = key) on a confirm channel, then return what
/// `queue` holds.
async fn route(ch: &Channel, x: &str, q: &str, keys: &[&str]) -> Vec<String> {
    for k in keys {
        publish_confirmed(ch, x, k, k.as_bytes()).await;
    }
    drain(ch, q)
        .await
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

async fn bound_queue(ch: &Channel, x: &str, key: &str) -> String {
    let q = unique("q");
    queue(ch, &q).await;
    bind(ch, &q, x, key).await;
    q
}

#[tokio::test]
async fn direct_routes_on_exact_key() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, ExchangeKind::Direct).await;
    let q = bound_queue(&ch, &x, "a.b").await;
    bind(&ch, &q, &x, "c").await;
    assert_eq!(
        route(&ch, &x, &q, &["a.b", "a", "a.b.c", "c", "C", ""]).await,
        ["a.b", "c"]
    );
}

#[tokio::test]
async fn fanout_ignores_the_key() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, ExchangeKind::Fanout).await;
    let q1 = bound_queue(&ch, &x, "").await;
    let q2 = bound_queue(&ch, &x, "whatever").await;
    for k in ["k1", "", "k2"] {
        publish_confirmed(&ch, &x, k, k.as_bytes()).await;
    }
    assert_eq!(
        drain(&ch, &q1).await,
        [b"k1".to_vec(), b"".to_vec(), b"k2".to_vec()]
    );
    assert_eq!(drain(&ch, &q2).await.len(), 3);
}

#[tokio::test]
async fn topic_wildcards() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, ExchangeKind::Topic).await;
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "a.*.c",
            &["a.b.c", "a..c"],
            &["a.c", "a.b.b.c", "a.b.c.d", "x.b.c"],
        ),
        ("a.#", &["a", "a.b", "a.b.c", "a."], &["b.a", "ab"]),
        ("#.c", &["c", "a.c", "a.b.c"], &["c.a", "ac"]),
        ("a.#.c", &["a.c", "a.b.c", "a.b.b.c"], &["a.b", "a.cc"]),
        ("*", &["a"], &["a.b", ".", ""]),
        ("#", &["", "a", "a.b.c", "."], &[]),
        ("*.*", &["a.b", ".", "a."], &["a", "a.b.c"]),
        ("a.*.#", &["a.b", "a.b.c"], &["a"]),
        ("", &[""], &["a"]),
        ("a..c", &["a..c"], &["a.b.c"]),
    ];
    for (pattern, hits, misses) in cases {
        let q = bound_queue(&ch, &x, pattern).await;
        let keys: Vec<&str> = hits.iter().chain(misses.iter()).copied().collect();
        assert_eq!(
            route(&ch, &x, &q, &keys).await,
            *hits,
            "pattern {pattern:?}"
        );
        within(5, ch.queue_delete(q.as_str().into(), Default::default()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn headers_all_and_any() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, ExchangeKind::Headers).await;
    let table = |pairs: &[(&str, AMQPValue)]| {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    };
    let s = |v: &str| AMQPValue::LongString(v.into());
    let q_all = unique("all");
    let q_any = unique("any");
    let q_none = unique("none");
    for q in [&q_all, &q_any, &q_none] {
        queue(&ch, q).await;
    }
    let args_all = table(&[("x-match", s("all")), ("a", s("1")), ("b", s("2"))]);
    let args_any = table(&[("x-match", s("any")), ("a", s("1")), ("b", s("2"))]);
    let args_none = table(&[]);
    for (q, args) in [(&q_all, args_all), (&q_any, args_any), (&q_none, args_none)] {
        within(
            5,
            ch.queue_bind(
                q.as_str().into(),
                x.as_str().into(),
                "".into(),
                Default::default(),
                args,
            ),
        )
        .await
        .unwrap();
    }
    let msgs: Vec<(&str, FieldTable)> = vec![
        (
            "both",
            table(&[("a", s("1")), ("b", s("2")), ("c", s("3"))]),
        ),
        ("only-a", table(&[("a", s("1"))])),
        ("a-wrong", table(&[("a", s("9")), ("b", s("2"))])),
        ("none", table(&[])),
    ];
    for (body, headers) in msgs {
        let props = BasicProperties::default().with_headers(headers);
        let c = ch
            .basic_publish(
                x.as_str().into(),
                "".into(),
                Default::default(),
                body.as_bytes(),
                props,
            )
            .await
            .unwrap();
        assert!(within(5, c).await.unwrap().is_ack());
    }
    let text = |v: Vec<Vec<u8>>| {
        v.into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(text(drain(&ch, &q_all).await), ["both"]);
    assert_eq!(
        text(drain(&ch, &q_any).await),
        ["both", "only-a", "a-wrong"]
    );
    // No x-match means all; an empty binding matches every message.
    assert_eq!(
        text(drain(&ch, &q_none).await),
        ["both", "only-a", "a-wrong", "none"]
    );
}

#[tokio::test]
async fn default_exchange_routes_by_queue_name() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let q = unique("q");
    queue(&ch, &q).await;
    assert_eq!(
        route(&ch, "", &q, &[q.as_str(), "other"]).await,
        [q.as_str()]
    );
    // RabbitMQ refuses even a passive declare of the default exchange.
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let (code, text) = refused(ch.exchange_declare(
        "".into(),
        ExchangeKind::Direct,
        passive,
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text.as_str()),
        (
            403,
            "ACCESS_REFUSED - operation not permitted on the default exchange"
        )
    );
}

#[tokio::test]
async fn amq_exchanges_are_predeclared() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        within(
            5,
            ch.exchange_declare(name.into(), kind, passive, FieldTable::default()),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Redeclaring an amq.* exchange with its own type and flags is allowed.
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(
        5,
        ch.exchange_declare(
            "amq.direct".into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let q = bound_queue(&ch, "amq.topic", "t.#").await;
    assert_eq!(route(&ch, "amq.topic", &q, &["t.1", "u.1"]).await, ["t.1"]);
}

#[tokio::test]
async fn exchange_to_exchange_bindings() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let src = exchange(&ch, ExchangeKind::Topic).await;
    let mid = exchange(&ch, ExchangeKind::Direct).await;
    within(
        5,
        ch.exchange_bind(
            mid.as_str().into(),
            src.as_str().into(),
            "a.*".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let q = bound_queue(&ch, &mid, "a.x").await;
    let direct = bound_queue(&ch, &src, "#").await;
    // src(topic a.*) -> mid(direct a.x) -> q: the key is matched again at each hop.
    assert_eq!(route(&ch, &src, &q, &["a.x", "a.y", "b.x"]).await, ["a.x"]);
    assert_eq!(drain(&ch, &direct).await.len(), 3);
    // A message reaching the same queue by two paths is delivered once.
    bind(&ch, &q, &src, "a.x").await;
    assert_eq!(route(&ch, &src, &q, &["a.x"]).await, ["a.x"]);
    within(
        5,
        ch.exchange_unbind(
            mid.as_str().into(),
            src.as_str().into(),
            "a.*".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    within(
        5,
        ch.queue_unbind(
            q.as_str().into(),
            src.as_str().into(),
            "a.x".into(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    assert!(route(&ch, &src, &q, &["a.x"]).await.is_empty());
}

#[tokio::test]
async fn exchange_to_exchange_cycles_terminate() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x1 = exchange(&ch, ExchangeKind::Fanout).await;
    let x2 = exchange(&ch, ExchangeKind::Fanout).await;
    within(
        5,
        ch.exchange_bind(
            x2.as_str().into(),
            x1.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    within(
        5,
        ch.exchange_bind(
            x1.as_str().into(),
            x2.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let q = bound_queue(&ch, &x2, "").await;
    assert_eq!(route(&ch, &x1, &q, &["loop"]).await, ["loop"]);
}

#[tokio::test]
async fn internal_exchanges_refuse_publishes_but_route_from_exchanges() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let front = exchange(&ch, ExchangeKind::Fanout).await;
    let internal = unique("internal");
    let opts = ExchangeDeclareOptions {
        internal: true,
        ..Default::default()
    };
    within(
        5,
        ch.exchange_declare(
            internal.as_str().into(),
            ExchangeKind::Fanout,
            opts,
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    within(
        5,
        ch.exchange_bind(
            internal.as_str().into(),
            front.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let q = bound_queue(&ch, &internal, "").await;
    assert_eq!(route(&ch, &front, &q, &["via front"]).await, ["via front"]);

    let c = ch
        .basic_publish(
            internal.as_str().into(),
            "".into(),
            Default::default(),
            b"direct",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let err = within(5, c)
        .await
        .expect_err("publish to an internal exchange");
    assert_eq!(
        code(&err),
        (
            403,
            format!(
                "ACCESS_REFUSED - cannot publish to internal exchange '{internal}' in vhost '/'"
            )
        )
    );
}

#[tokio::test]
async fn exchange_delete_removes_its_bindings() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = exchange(&ch, ExchangeKind::Fanout).await;
    let q = bound_queue(&ch, &x, "").await;
    within(5, ch.exchange_delete(x.as_str().into(), Default::default()))
        .await
        .unwrap();
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    assert!(route(&ch, &x, &q, &["after"]).await.is_empty());
    // Deleting a missing exchange is not an error.
    within(
        5,
        ch.exchange_delete(unique("gone").as_str().into(), Default::default()),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn auto_delete_exchange_goes_with_its_last_binding() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let x = unique("ad");
    let opts = ExchangeDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Fanout,
            opts,
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let q = bound_queue(&ch, &x, "").await;
    within(
        5,
        ch.queue_unbind(
            q.as_str().into(),
            x.as_str().into(),
            "".into(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let (code, text) = refused(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        passive,
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text),
        (404, format!("NOT_FOUND - no exchange '{x}' in vhost '/'"))
    );
}
