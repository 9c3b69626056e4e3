//! Direct reply-to, as RabbitMQ has it: a requester consumes (no-ack) from the pseudo-queue
//! `amq.rabbitmq.reply-to`, publishes requests with `reply_to: amq.rabbitmq.reply-to`, which
//! the broker rewrites to a generated name, and replies published to the default exchange
//! under that name come straight back to it.

mod common;
mod support;

use common::*;
use lapin::message::Delivery;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection};
use support::*;

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

fn no_ack() -> BasicConsumeOptions {
    BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    }
}

/// A requester: a channel consuming from the pseudo-queue.
async fn requester(conn: &Connection) -> (Channel, Inbox) {
    let ch = open(conn).await;
    let inbox = consume(&ch, REPLY_TO, "", no_ack()).await;
    (ch, inbox)
}

/// Publish a request to `queue` asking for a direct reply.
async fn request(ch: &Channel, queue: &str, body: &[u8], correlation: &str) {
    let props = BasicProperties::default()
        .with_reply_to(REPLY_TO.into())
        .with_correlation_id(correlation.into());
    publish_with(ch, "", queue, body, props).await;
}

/// The next request waiting in `queue` (published on another connection).
async fn next_request(ch: &Channel, queue: &str) -> Delivery {
    let (ch, queue) = (ch.clone(), queue.to_string());
    eventually(5, move || {
        let (ch, queue) = (ch.clone(), queue.clone());
        async move { get(&ch, &queue).await.map(|m| m.delivery) }
    })
    .await
}

/// The generated reply name a request arrived with.
fn reply_name(d: &Delivery) -> String {
    d.properties
        .reply_to()
        .as_ref()
        .expect("reply_to on the request")
        .to_string()
}

async fn publish_opts(
    ch: &Channel,
    key: &str,
    body: &[u8],
    props: BasicProperties,
    mandatory: bool,
) -> lapin::Confirmation {
    let opts = BasicPublishOptions {
        mandatory,
        ..Default::default()
    };
    let confirm = within(
        5,
        ch.basic_publish("".into(), key.into(), opts, body, props),
    )
    .await
    .expect("basic.publish");
    within(5, confirm).await.expect("confirm")
}

#[tokio::test]
async fn rpc_round_trip_between_two_connections() {
    let b = TestBroker::start().await;
    let (server_conn, client_conn) = (b.connect().await, b.connect().await);
    let server = open(&server_conn).await;
    let rpc = unique("rpc");
    queue(&server, &rpc).await;
    let mut requests = consume(&server, &rpc, "", no_ack()).await;

    let (client, mut replies) = requester(&client_conn).await;
    request(&client, &rpc, b"2+2", "c-1").await;
    let req = requests.next().await;
    let name = reply_name(&req);
    assert!(name.starts_with("amq.rabbitmq.reply-to."), "{name}");
    assert!(name.len() > REPLY_TO.len() + 20, "an opaque token: {name}");
    assert_eq!(req.data, b"2+2");
    assert_eq!(
        req.properties.correlation_id().as_ref().unwrap().as_str(),
        "c-1"
    );

    let props = BasicProperties::default()
        .with_correlation_id("c-1".into())
        .with_content_type("text/plain".into());
    publish_with(&server, "", &name, b"4", props.clone()).await;
    let reply = replies.next().await;
    assert_eq!(reply.data, b"4");
    assert_eq!(reply.properties, props);
    assert_eq!(reply.exchange.as_str(), "");
    assert_eq!(reply.routing_key.as_str(), name);
    assert!(!reply.redelivered);
    assert_eq!(reply.delivery_tag, 1);

    // The same channel keeps its name; another requester gets another one.
    request(&client, &rpc, b"3+3", "c-2").await;
    assert_eq!(reply_name(&requests.next().await), name);
    let (other, _other_replies) = requester(&client_conn).await;
    request(&other, &rpc, b"1+1", "c-3").await;
    let other_name = reply_name(&requests.next().await);
    assert_ne!(other_name, name);

    // A reply reaches only the requester it names.
    publish(&server, "", &name, b"6").await;
    let reply = replies.next().await;
    assert_eq!((reply.data.as_slice(), reply.delivery_tag), (&b"6"[..], 2));
    assert_eq!(replies.ready(), 0);
}

#[tokio::test]
async fn replies_count_as_routed_and_are_confirmed() {
    let b = TestBroker::start().await;
    let client_conn = b.connect().await;
    let (_server_conn, server) = confirm_channel(&b).await;
    let rpc = unique("rpc");
    queue(&server, &rpc).await;
    let mut requests = consume(&server, &rpc, "", no_ack()).await;
    let (client, mut replies) = requester(&client_conn).await;
    request(&client, &rpc, b"ping", "1").await;
    let name = reply_name(&requests.next().await);

    // Mandatory, confirmed, delivered: an ack and no basic.return.
    let c = publish_opts(&server, &name, b"pong", BasicProperties::default(), true).await;
    assert!(c.is_ack());
    assert!(
        c.take_message().is_none(),
        "a delivered reply is not returned"
    );
    assert_eq!(replies.next().await.data, b"pong");

    // A name the broker never generated is unroutable: 312 NO_ROUTE, then the ack.
    let bogus = "amq.rabbitmq.reply-to.bogus";
    let c = publish_opts(&server, bogus, b"lost", BasicProperties::default(), true).await;
    assert!(c.is_ack());
    let returned = c.take_message().expect("basic.return");
    assert_eq!(
        (returned.reply_code, returned.reply_text.as_str()),
        (312, "NO_ROUTE")
    );
    assert_eq!(returned.delivery.routing_key.as_str(), bogus);

    // The requester goes away. As RabbitMQ 4.2+, whether it is still there is not checked at
    // routing time: the reply counts as routed (no basic.return) and is dropped.
    within(5, client.close(200, "bye".into())).await.unwrap();
    let c = publish_opts(&server, &name, b"late", BasicProperties::default(), true).await;
    assert!(c.is_ack());
    assert!(c.take_message().is_none());
}

#[tokio::test]
async fn a_passive_declare_tells_whether_the_requester_is_there() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let q = within(
        5,
        ch.queue_declare(
            REPLY_TO.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("the pseudo-queue always exists");
    assert_eq!(
        (q.name().as_str(), q.message_count(), q.consumer_count()),
        (REPLY_TO, 0, 1)
    );

    let rpc = unique("rpc");
    queue(&ch, &rpc).await;
    let client_conn = b.connect().await;
    let (client, _replies) = requester(&client_conn).await;
    request(&client, &rpc, b"?", "1").await;
    let name = reply_name(&next_request(&ch, &rpc).await);
    assert_eq!(counts(&ch, &name).await, (0, 1));

    within(5, client.close(200, "bye".into())).await.unwrap();
    let (code, text) = refused(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text),
        (404, format!("NOT_FOUND - no queue '{name}' in vhost '/'"))
    );
}

#[tokio::test]
async fn consuming_with_acks_is_refused() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let (code, text) = refused(ch.basic_consume(
        REPLY_TO.into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text.as_str()),
        (
            406,
            "PRECONDITION_FAILED - reply consumer cannot acknowledge"
        )
    );
}

#[tokio::test]
async fn one_reply_consumer_per_channel() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let (ch, _replies) = requester(&conn).await;
    let (code, text) = refused(ch.basic_consume(
        REPLY_TO.into(),
        "second".into(),
        no_ack(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text.as_str()),
        (406, "PRECONDITION_FAILED - reply consumer already set")
    );
}

#[tokio::test]
async fn requesting_a_reply_without_consuming_closes_the_channel() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let mut watcher = watch(&ch).await;
    request(&ch, &unique("rpc"), b"?", "1").await;
    assert_eq!(
        closed_with(&mut watcher).await,
        (
            406,
            "PRECONDITION_FAILED - fast reply consumer does not exist".to_string()
        )
    );
}

#[tokio::test]
async fn after_cancel_the_name_is_gone_and_requests_are_refused() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let rpc = unique("rpc");
    queue(&ch, &rpc).await;
    let replies = consume(&ch, REPLY_TO, "replies", no_ack()).await;
    request(&ch, &rpc, b"?", "1").await;
    let name = reply_name(&next_request(&ch, &rpc).await);
    within(5, ch.basic_cancel("replies".into(), Default::default()))
        .await
        .expect("basic.cancel of the reply consumer");
    drop(replies);

    let other = open(&conn).await;
    let (code, _) = refused(other.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await;
    assert_eq!(code, 404);

    // Consuming again gives a new name.
    let _again = consume(&ch, REPLY_TO, "again", no_ack()).await;
    request(&ch, &rpc, b"?", "2").await;
    let renamed = reply_name(&next_request(&ch, &rpc).await);
    assert_ne!(renamed, name);

    let plain = open(&conn).await;
    let mut watcher = watch(&plain).await;
    request(&plain, &rpc, b"?", "3").await;
    assert_eq!(closed_with(&mut watcher).await.0, 406);
}

#[tokio::test]
async fn generated_names_are_not_queues() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let rpc = unique("rpc");
    queue(&ch, &rpc).await;
    let (client, _replies) = requester(&b.connect().await).await;
    request(&client, &rpc, b"?", "1").await;
    let name = reply_name(&next_request(&ch, &rpc).await);

    let (code, text) = refused(ch.queue_bind(
        name.as_str().into(),
        "amq.direct".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text.as_str()),
        (
            403,
            "ACCESS_REFUSED - cannot bind or unbind to a volatile (direct reply-to) queue"
        )
    );

    let ch = open(&conn).await;
    let (code, text) = refused(ch.basic_consume(
        name.as_str().into(),
        "".into(),
        no_ack(),
        FieldTable::default(),
    ))
    .await;
    assert_eq!(
        (code, text),
        (
            406,
            format!("PRECONDITION_FAILED - only creator channel may consume from queue '{name}' in vhost '/'")
        )
    );

    // basic.get is not implemented for it: 540 closes the connection.
    let ch = open(&conn).await;
    let err = within(
        5,
        ch.basic_get(name.as_str().into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect_err("basic.get refused");
    assert_eq!(
        support::code(&err),
        (
            540,
            format!(
                "NOT_IMPLEMENTED - basic.get not supported by volatile queue '{name}' in vhost '/'"
            )
        )
    );
}

#[tokio::test]
async fn sender_selected_keys_reach_requesters_too() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let rpc = unique("rpc");
    queue(&ch, &rpc).await;
    let (client, mut replies) = requester(&b.connect().await).await;
    request(&client, &rpc, b"?", "1").await;
    let name = reply_name(&next_request(&ch, &rpc).await);

    let mut headers = FieldTable::default();
    headers.insert(
        "CC".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongString(
            LongString::from(name.as_str()),
        )])),
    );
    let props = BasicProperties::default().with_headers(headers);
    publish_with(&ch, "", &unique("nobody"), b"via cc", props).await;
    assert_eq!(replies.next().await.data, b"via cc");
}

#[tokio::test]
async fn transactional_replies_arrive_at_commit() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    let rpc = unique("rpc");
    queue(&ch, &rpc).await;
    let (client, mut replies) = requester(&b.connect().await).await;
    request(&client, &rpc, b"?", "1").await;
    let name = reply_name(&next_request(&ch, &rpc).await);

    within(5, ch.tx_select()).await.unwrap();
    publish(&ch, "", &name, b"held").await;
    // basic.qos is answered after the publish is handled: nothing was delivered yet.
    within(5, ch.basic_qos(0, Default::default()))
        .await
        .unwrap();
    within(5, client.basic_qos(0, Default::default()))
        .await
        .unwrap();
    assert_eq!(replies.ready(), 0);
    within(5, ch.tx_commit()).await.unwrap();
    assert_eq!(replies.next().await.data, b"held");
}
