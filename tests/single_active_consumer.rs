//! Single active consumer (`x-single-active-consumer`): one registered consumer receives, the
//! others wait and take over in turn (highest `x-priority` first, then registration order).
//! On a quorum queue a higher-priority consumer takes over once the active one has settled
//! its deliveries (RabbitMQ 4.0+).

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;
use support::*;

fn table(args: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert((*k).into(), v.clone());
    }
    t
}

async fn declare_sac(ch: &Channel, name: &str, quorum: bool) {
    let mut args = vec![("x-single-active-consumer", AMQPValue::Boolean(true))];
    if quorum {
        args.push(("x-queue-type", AMQPValue::LongString("quorum".into())));
    }
    let opts = QueueDeclareOptions {
        durable: quorum,
        ..Default::default()
    };
    within(5, ch.queue_declare(name.into(), opts, table(&args)))
        .await
        .expect("queue.declare");
}

async fn consume_with(ch: &Channel, q: &str, tag: &str, priority: Option<i32>) -> Inbox {
    let mut args = FieldTable::default();
    if let Some(p) = priority {
        args.insert("x-priority".into(), AMQPValue::LongInt(p));
    }
    let consumer = within(
        5,
        ch.basic_consume(q.into(), tag.into(), BasicConsumeOptions::default(), args),
    )
    .await
    .expect("basic.consume");
    inbox(consumer)
}

async fn publish_n(ch: &Channel, q: &str, from: u32, to: u32) {
    for i in from..to {
        publish(ch, "", q, format!("m{i}").as_bytes()).await;
    }
}

async fn next_body(inbox: &mut Inbox) -> (String, bool, lapin::message::Delivery) {
    let d = inbox.next().await;
    (String::from_utf8(d.data.clone()).unwrap(), d.redelivered, d)
}

async fn ack(d: &lapin::message::Delivery) {
    within(5, d.acker.ack(BasicAckOptions::default()))
        .await
        .unwrap();
}

/// Nothing arrives in `inbox` for a while.
async fn quiet(inbox: &mut Inbox) {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await; // let a stray delivery land
    assert_eq!(inbox.ready(), 0, "a waiting consumer received a message");
}

#[tokio::test]
async fn only_the_first_consumer_receives_and_the_next_takes_over_with_the_unacked_first() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("sac");
    declare_sac(&ch, &q, false).await;
    let cha = open(&conn).await;
    let chb = open(&conn).await;
    within(5, cha.basic_qos(4, BasicQosOptions::default()))
        .await
        .unwrap();
    let mut a = consume_with(&cha, &q, "a", None).await;
    let mut bb = consume_with(&chb, &q, "b", None).await;
    assert_eq!(counts(&ch, &q).await, (0, 2), "both are registered");
    publish_n(&ch, &q, 0, 4).await;
    for i in 0..4 {
        assert_eq!(next_body(&mut a).await.0, format!("m{i}"));
    }
    // a has no credit left: m4 and m5 wait, b gets nothing.
    publish_n(&ch, &q, 4, 6).await;
    wait_ready(&ch, &q, 2).await;
    quiet(&mut bb).await;
    // a's channel closes with m0..m3 unacked: b takes over and gets them first, redelivered.
    within(5, cha.close(200, "bye".into())).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..6 {
        let (body, redelivered, d) = next_body(&mut bb).await;
        ack(&d).await;
        got.push((body, redelivered));
    }
    let want: Vec<(String, bool)> = (0..6).map(|i| (format!("m{i}"), i < 4)).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_cancelled_active_consumer_is_replaced_by_the_highest_priority_then_the_earliest() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("sac-cancel");
    declare_sac(&ch, &q, false).await;
    let mut a = consume_with(&ch, &q, "a", None).await;
    let mut c1 = consume_with(&ch, &q, "c1", Some(1)).await;
    let mut c2 = consume_with(&ch, &q, "c2", Some(5)).await;
    let mut c3 = consume_with(&ch, &q, "c3", Some(5)).await;
    // On a classic queue a higher priority does not take over from the active consumer.
    publish_n(&ch, &q, 0, 1).await;
    let (body, _, d) = next_body(&mut a).await;
    assert_eq!(body, "m0");
    ack(&d).await;
    within(
        5,
        ch.basic_cancel("a".into(), BasicCancelOptions::default()),
    )
    .await
    .unwrap();
    publish_n(&ch, &q, 1, 2).await;
    let (body, _, d) = next_body(&mut c2).await;
    assert_eq!(body, "m1");
    ack(&d).await;
    within(
        5,
        ch.basic_cancel("c2".into(), BasicCancelOptions::default()),
    )
    .await
    .unwrap();
    publish_n(&ch, &q, 2, 3).await;
    assert_eq!(next_body(&mut c3).await.0, "m2");
    quiet(&mut c1).await;
}

#[tokio::test]
async fn an_exclusive_consumer_is_refused_on_a_single_active_consumer_queue() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("sac-excl");
    declare_sac(&ch, &q, false).await;
    let ch2 = open(&conn).await;
    let refusal = refused(ch2.basic_consume(
        q.as_str().into(),
        "x".into(),
        BasicConsumeOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        refusal,
        (
            403,
            format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use")
        )
    );
}

#[tokio::test]
async fn on_a_quorum_queue_a_higher_priority_consumer_takes_over_once_deliveries_are_settled() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = unique("sac-qq");
    declare_sac(&ch, &q, true).await;
    let cha = open(&conn).await;
    let mut a = consume_with(&cha, &q, "a", None).await;
    publish_n(&ch, &q, 0, 1).await;
    let (body, _, d0) = next_body(&mut a).await;
    assert_eq!(body, "m0");
    // h registers with a higher priority while a still holds m0: nobody gets m1 yet.
    let chh = open(&conn).await;
    let mut h = consume_with(&chh, &q, "h", Some(10)).await;
    publish_n(&ch, &q, 1, 2).await;
    quiet(&mut h).await;
    assert_eq!(a.ready(), 0);
    ack(&d0).await;
    assert_eq!(next_body(&mut h).await.0, "m1");
    publish_n(&ch, &q, 2, 3).await;
    assert_eq!(next_body(&mut h).await.0, "m2");
    assert_eq!(a.ready(), 0);
}

#[tokio::test]
async fn basic_get_is_refused_on_a_quorum_queue_with_single_active_consumer() {
    let b = TestBroker::start().await;
    let ch = open(&b.connect().await).await;
    let q = unique("sac-qq-get");
    declare_sac(&ch, &q, true).await;
    let refusal = refused(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await;
    assert_eq!(
        refusal,
        (
            405,
            format!("RESOURCE_LOCKED - cannot obtain access to locked queue '{q}' in vhost '/'. basic.get operations are not supported by <<\"quorum\">> queues with single active consumer")
        )
    );
}
