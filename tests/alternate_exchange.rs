//! Alternate exchanges (`alternate-exchange`), as RabbitMQ has them: a message that an
//! exchange routes to no destination goes to its alternate exchange instead, recursively; a
//! cycle or a missing alternate exchange drops it; a mandatory publish is returned only when
//! no queue at all got the message. Also: internal exchanges as alternates, dead-lettering
//! through an exchange with an alternate, argument checks on declare and redeclare, and the
//! argument surviving a restart.

mod common;
mod support;

use common::*;
use lapin::{
    options::*,
    types::{AMQPValue, FieldArray, FieldTable, LongString},
    BasicProperties, Channel, Confirmation, ExchangeKind,
};
use support::*;

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v))
}

fn table(args: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert((*k).into(), v.clone());
    }
    t
}

async fn declare_x(
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
    args: &[(&str, AMQPValue)],
) -> lapin::Result<()> {
    within(
        5,
        ch.exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions::default(),
            table(args),
        ),
    )
    .await
}

/// A new exchange of `kind` whose alternate is `ae` (when given).
async fn exchange(ch: &Channel, kind: ExchangeKind, ae: Option<&str>) -> String {
    let x = unique("x");
    let args: Vec<(&str, AMQPValue)> = ae
        .map(|a| ("alternate-exchange", s(a)))
        .into_iter()
        .collect();
    declare_x(ch, &x, kind, &args)
        .await
        .expect("exchange.declare");
    x
}

async fn bound_queue(ch: &Channel, x: &str, key: &str) -> String {
    let q = unique("q");
    queue(ch, &q).await;
    bind(ch, &q, x, key).await;
    q
}

fn bodies(v: Vec<Vec<u8>>) -> Vec<String> {
    v.into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

/// Publish with `mandatory` on a confirm channel: the confirmation carries a basic.return.
async fn mandatory(ch: &Channel, x: &str, key: &str, body: &[u8]) -> Confirmation {
    let opts = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let c = within(
        5,
        ch.basic_publish(x.into(), key.into(), opts, body, BasicProperties::default()),
    )
    .await
    .expect("basic.publish");
    within(10, c).await.expect("confirm")
}

fn returned(c: Confirmation) -> Option<(u16, String, String, String)> {
    assert!(c.is_ack(), "{c:?}");
    c.take_message().map(|r| {
        (
            r.reply_code,
            r.reply_text.to_string(),
            r.delivery.exchange.to_string(),
            r.delivery.routing_key.to_string(),
        )
    })
}

#[tokio::test]
async fn unroutable_messages_go_to_the_alternate_exchange() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let ae = exchange(&ch, ExchangeKind::Fanout, None).await;
    let aq = bound_queue(&ch, &ae, "").await;
    let x = exchange(&ch, ExchangeKind::Direct, Some(&ae)).await;
    let q = bound_queue(&ch, &x, "known").await;
    publish_confirmed(&ch, &x, "known", b"routed").await;
    publish_confirmed(&ch, &x, "unknown", b"alternate").await;
    assert_eq!(bodies(drain(&ch, &q).await), ["routed"]);
    let m = get(&ch, &aq).await.expect("the unroutable message");
    // Delivered as published: its exchange and routing key are the original ones.
    assert_eq!(m.delivery.exchange.as_str(), x);
    assert_eq!(m.delivery.routing_key.as_str(), "unknown");
    assert_eq!(m.delivery.data, b"alternate");
    assert!(get(&ch, &aq).await.is_none());
}

#[tokio::test]
async fn a_mandatory_message_taken_by_the_alternate_is_not_returned() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let ae = exchange(&ch, ExchangeKind::Fanout, None).await;
    let aq = bound_queue(&ch, &ae, "").await;
    let x = exchange(&ch, ExchangeKind::Topic, Some(&ae)).await;
    assert_eq!(returned(mandatory(&ch, &x, "a.b", b"m").await), None);
    assert_eq!(bodies(drain(&ch, &aq).await), ["m"]);
}

#[tokio::test]
async fn alternates_chain_and_a_cycle_drops_the_message() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    // x1 -> x2 -> x3 (fanout, bound): each unroutable step passes to the next alternate.
    let x3 = exchange(&ch, ExchangeKind::Fanout, None).await;
    let q3 = bound_queue(&ch, &x3, "").await;
    let x2 = exchange(&ch, ExchangeKind::Direct, Some(&x3)).await;
    let x1 = exchange(&ch, ExchangeKind::Direct, Some(&x2)).await;
    publish_confirmed(&ch, &x1, "k", b"chained").await;
    assert_eq!(bodies(drain(&ch, &q3).await), ["chained"]);

    // y1 <-> y2 name each other and route nowhere: dropped, returned if mandatory.
    let y1 = unique("y1");
    let y2 = unique("y2");
    declare_x(
        &ch,
        &y1,
        ExchangeKind::Direct,
        &[("alternate-exchange", s(&y2))],
    )
    .await
    .unwrap();
    declare_x(
        &ch,
        &y2,
        ExchangeKind::Direct,
        &[("alternate-exchange", s(&y1))],
    )
    .await
    .unwrap();
    let r = returned(mandatory(&ch, &y1, "k", b"loop").await);
    assert_eq!(r, Some((312, "NO_ROUTE".into(), y1.clone(), "k".into())));
    // An exchange naming itself is the shortest cycle.
    let me = unique("self");
    declare_x(
        &ch,
        &me,
        ExchangeKind::Fanout,
        &[("alternate-exchange", s(&me))],
    )
    .await
    .unwrap();
    let r = returned(mandatory(&ch, &me, "k", b"self").await);
    assert_eq!(r, Some((312, "NO_ROUTE".into(), me.clone(), "k".into())));
    assert!(ch.status().connected());
}

#[tokio::test]
async fn a_missing_alternate_drops_or_returns_the_message() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let ae = unique("late");
    let x = exchange(&ch, ExchangeKind::Direct, Some(&ae)).await;
    publish_confirmed(&ch, &x, "k", b"dropped").await;
    let r = returned(mandatory(&ch, &x, "k", b"back").await);
    assert_eq!(r, Some((312, "NO_ROUTE".into(), x.clone(), "k".into())));
    // Declaring the alternate later makes it take messages from then on.
    declare_x(&ch, &ae, ExchangeKind::Fanout, &[])
        .await
        .unwrap();
    let aq = bound_queue(&ch, &ae, "").await;
    assert_eq!(returned(mandatory(&ch, &x, "k", b"now").await), None);
    assert_eq!(bodies(drain(&ch, &aq).await), ["now"]);
}

#[tokio::test]
async fn the_alternate_is_used_per_exchange_along_exchange_bindings() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let a1 = exchange(&ch, ExchangeKind::Fanout, None).await;
    let a1q = bound_queue(&ch, &a1, "").await;
    let a2 = exchange(&ch, ExchangeKind::Fanout, None).await;
    let a2q = bound_queue(&ch, &a2, "").await;
    // front (alternate a1) routes everything to inner (alternate a2), which routes "in" only.
    let front = exchange(&ch, ExchangeKind::Fanout, Some(&a1)).await;
    let inner = exchange(&ch, ExchangeKind::Direct, Some(&a2)).await;
    within(
        5,
        ch.exchange_bind(
            inner.as_str().into(),
            front.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let q = bound_queue(&ch, &inner, "in").await;
    publish_confirmed(&ch, &front, "in", b"inner").await;
    publish_confirmed(&ch, &front, "out", b"inner's alternate").await;
    assert_eq!(bodies(drain(&ch, &q).await), ["inner"]);
    assert_eq!(bodies(drain(&ch, &a2q).await), ["inner's alternate"]);
    // front routed both messages (to inner): its own alternate saw nothing.
    assert!(drain(&ch, &a1q).await.is_empty());

    // Without a2, a message inner cannot route reaches no queue: returned, and front's
    // alternate still does not take it.
    within(
        5,
        ch.exchange_delete(a2.as_str().into(), Default::default()),
    )
    .await
    .unwrap();
    let r = returned(mandatory(&ch, &front, "out", b"lost").await);
    assert_eq!(
        r,
        Some((312, "NO_ROUTE".into(), front.clone(), "out".into()))
    );
    assert!(drain(&ch, &a1q).await.is_empty());
}

#[tokio::test]
async fn cc_keys_that_route_keep_the_message_from_the_alternate() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let ae = exchange(&ch, ExchangeKind::Fanout, None).await;
    let aq = bound_queue(&ch, &ae, "").await;
    let x = exchange(&ch, ExchangeKind::Direct, Some(&ae)).await;
    let q = bound_queue(&ch, &x, "cc-key").await;
    let mut h = FieldTable::default();
    h.insert(
        "CC".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![s("cc-key")])),
    );
    let props = BasicProperties::default().with_headers(h);
    publish_confirmed_with(&ch, &x, "no-such-key", b"cc", props).await;
    assert_eq!(bodies(drain(&ch, &q).await), ["cc"]);
    assert!(drain(&ch, &aq).await.is_empty());
}

#[tokio::test]
async fn an_internal_exchange_serves_as_alternate() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let ae = unique("internal-ae");
    within(
        5,
        ch.exchange_declare(
            ae.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                internal: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let aq = bound_queue(&ch, &ae, "").await;
    let x = exchange(&ch, ExchangeKind::Headers, Some(&ae)).await;
    publish_confirmed(&ch, &x, "", b"via internal").await;
    assert_eq!(bodies(drain(&ch, &aq).await), ["via internal"]);
}

#[tokio::test]
async fn dead_letters_go_through_the_alternate_of_the_dead_letter_exchange() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let ae = exchange(&ch, ExchangeKind::Fanout, None).await;
    let aq = bound_queue(&ch, &ae, "").await;
    let dlx = exchange(&ch, ExchangeKind::Direct, Some(&ae)).await;
    let q = unique("q");
    within(
        5,
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            table(&[("x-dead-letter-exchange", s(&dlx))]),
        ),
    )
    .await
    .unwrap();
    publish_confirmed(&ch, "", &q, b"dies").await;
    let m = get(&ch, &q).await.expect("queued");
    within(
        5,
        m.delivery
            .acker
            .reject(BasicRejectOptions { requeue: false }),
    )
    .await
    .unwrap();
    let ch2 = ch.clone();
    let aq2 = aq.clone();
    let dead = eventually(5, move || {
        let (ch, aq) = (ch2.clone(), aq2.clone());
        async move { get(&ch, &aq).await }
    })
    .await;
    assert_eq!(dead.delivery.data, b"dies");
    assert_eq!(dead.delivery.routing_key.as_str(), q);
}

#[tokio::test]
async fn the_argument_is_checked_on_declare_and_compared_on_redeclare() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let x = unique("x");
    let err = declare_x(
        &ch,
        &x,
        ExchangeKind::Direct,
        &[("alternate-exchange", AMQPValue::LongInt(5))],
    )
    .await
    .expect_err("an integer alternate-exchange");
    assert_eq!(
        code(&err),
        (
            406,
            format!(
                "PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in exchange '{x}' in vhost '/'"
            )
        )
    );

    let ch = open(&conn).await;
    declare_x(
        &ch,
        &x,
        ExchangeKind::Direct,
        &[("alternate-exchange", s("ae1"))],
    )
    .await
    .unwrap();
    // The same, and with other (uncompared) arguments added: fine.
    declare_x(
        &ch,
        &x,
        ExchangeKind::Direct,
        &[("alternate-exchange", s("ae1"))],
    )
    .await
    .unwrap();
    declare_x(
        &ch,
        &x,
        ExchangeKind::Direct,
        &[("alternate-exchange", s("ae1")), ("other", s("v"))],
    )
    .await
    .unwrap();
    let err = declare_x(
        &ch,
        &x,
        ExchangeKind::Direct,
        &[("alternate-exchange", s("ae2"))],
    )
    .await
    .expect_err("another alternate");
    assert_eq!(
        code(&err),
        (
            406,
            format!(
                "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '{x}' in vhost '/': received 'ae2' but current is 'ae1'"
            )
        )
    );
    let ch = open(&conn).await;
    let err = declare_x(&ch, &x, ExchangeKind::Direct, &[])
        .await
        .expect_err("no alternate");
    assert_eq!(
        code(&err),
        (
            406,
            format!(
                "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '{x}' in vhost '/': received none but current is the value 'ae1' of type 'longstr'"
            )
        )
    );
    let ch = open(&conn).await;
    within(5, ch.exchange_delete(x.as_str().into(), Default::default()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_durable_exchange_keeps_its_alternate_across_a_restart() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return; // needs an in-process broker to restart
    }
    let (x, ae, aq) = (unique("x"), unique("ae"), unique("aq"));
    {
        let (_conn, ch) = confirm_channel(&b).await;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        within(
            5,
            ch.exchange_declare(
                ae.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            ),
        )
        .await
        .unwrap();
        within(
            5,
            ch.exchange_declare(
                x.as_str().into(),
                ExchangeKind::Direct,
                durable,
                table(&[("alternate-exchange", s(&ae))]),
            ),
        )
        .await
        .unwrap();
        within(
            5,
            ch.queue_declare(
                aq.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ),
        )
        .await
        .unwrap();
        bind(&ch, &aq, &ae, "").await;
        let persistent = BasicProperties::default().with_delivery_mode(2);
        publish_confirmed_with(&ch, &x, "k", b"before", persistent).await;
    }
    let b = b.restart().await;
    let (_conn, ch) = confirm_channel(&b).await;
    publish_confirmed(&ch, &x, "k", b"after").await;
    assert_eq!(bodies(drain(&ch, &aq).await), ["before", "after"]);
    // Redeclaring with the same alternate is still equivalent.
    within(
        5,
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            table(&[("alternate-exchange", s(&ae))]),
        ),
    )
    .await
    .unwrap();
}
