//! Client-side helpers for the feature tests, on top of `common`: declare, publish, consume into
//! an ordered inbox, and catch the `channel.close` / `connection.close` a misuse provokes.
//!
//! The dev-dependencies have no `StreamExt`, so consumers are read through
//! `Consumer::set_delegate`. lapin calls the delegate closure in delivery order and only spawns
//! the future it returns, so the closure forwards synchronously into an mpsc channel.
#![allow(dead_code)]

use crate::common::{amqp_error, within, TestBroker};
use lapin::{
    message::{BasicGetMessage, Delivery, DeliveryResult},
    options::*,
    types::FieldTable,
    BasicProperties, Channel, Connection, Consumer,
};
use tokio::sync::mpsc;

pub async fn open(conn: &Connection) -> Channel {
    within(5, conn.create_channel())
        .await
        .expect("channel.open")
}

/// A transient, non-exclusive queue with default arguments.
pub async fn queue(ch: &Channel, name: &str) {
    within(
        5,
        ch.queue_declare(
            name.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.declare");
}

pub async fn bind(ch: &Channel, queue: &str, exchange: &str, key: &str) {
    within(
        5,
        ch.queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.bind");
}

pub async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    publish_with(ch, exchange, key, body, BasicProperties::default()).await;
}

pub async fn publish_with(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    within(
        5,
        ch.basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            props,
        ),
    )
    .await
    .expect("basic.publish");
}

/// A connection and a channel in confirm mode.
pub async fn confirm_channel(b: &TestBroker) -> (Connection, Channel) {
    let conn = b.connect().await;
    let ch = open(&conn).await;
    within(5, ch.confirm_select(Default::default()))
        .await
        .expect("confirm.select");
    (conn, ch)
}

/// Publish on a confirm channel and wait for the ack, so the message is surely enqueued.
pub async fn publish_confirmed(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    publish_confirmed_with(ch, exchange, key, body, BasicProperties::default()).await;
}

/// `publish_confirmed` with properties.
pub async fn publish_confirmed_with(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    assert!(confirmation(ch, exchange, key, body, props).await.is_ack());
}

/// Publish on a confirm channel and wait for the broker's answer, ack or nack.
pub async fn confirmation(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) -> lapin::Confirmation {
    let confirm = within(
        5,
        ch.basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            props,
        ),
    )
    .await
    .expect("basic.publish");
    within(10, confirm).await.expect("confirm")
}

/// basic.get with manual ack.
pub async fn get(ch: &Channel, queue: &str) -> Option<BasicGetMessage> {
    within(5, ch.basic_get(queue.into(), BasicGetOptions::default()))
        .await
        .expect("basic.get")
}

/// The bodies of every message left in `queue`, fetched with no-ack.
pub async fn drain(ch: &Channel, queue: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(m) = within(
        5,
        ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("basic.get")
    {
        out.push(m.delivery.data);
    }
    out
}

/// (message_count, consumer_count) from a passive declare.
pub async fn counts(ch: &Channel, queue: &str) -> (u32, u32) {
    let q = within(
        5,
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("passive queue.declare");
    (q.message_count(), q.consumer_count())
}

/// Wait until the queue reports `messages` ready messages (polling a passive declare).
pub async fn wait_ready(ch: &Channel, queue: &str, messages: u32) {
    crate::common::eventually(5, || {
        let ch = ch.clone();
        let queue = queue.to_string();
        async move { (counts(&ch, &queue).await.0 == messages).then_some(()) }
    })
    .await
}

/// A consumer whose deliveries arrive, in order, in `rx`.
pub struct Inbox {
    pub consumer: Consumer,
    rx: mpsc::UnboundedReceiver<DeliveryResult>,
}

pub async fn consume(ch: &Channel, queue: &str, tag: &str, options: BasicConsumeOptions) -> Inbox {
    let consumer = within(
        5,
        ch.basic_consume(queue.into(), tag.into(), options, FieldTable::default()),
    )
    .await
    .expect("basic.consume");
    inbox(consumer)
}

pub fn inbox(consumer: Consumer) -> Inbox {
    let (tx, rx) = mpsc::unbounded_channel();
    consumer.set_delegate(move |d: DeliveryResult| {
        let _ = tx.send(d);
        async {}
    });
    Inbox { consumer, rx }
}

impl Inbox {
    /// The next delivery; fails the test on timeout, cancel or error.
    pub async fn next(&mut self) -> Delivery {
        match within(5, self.rx.recv()).await {
            Some(Ok(Some(d))) => d,
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    /// Wait for the consumer to end: Ok(()) on cancel, Err on a channel/connection error.
    pub async fn end(&mut self) -> Result<(), lapin::Error> {
        loop {
            match within(5, self.rx.recv()).await {
                Some(Ok(Some(_))) => continue,
                Some(Ok(None)) | None => return Ok(()),
                Some(Err(e)) => return Err(e),
            }
        }
    }

    /// Deliveries already received, without waiting.
    pub fn ready(&mut self) -> usize {
        let mut n = 0;
        while let Ok(d) = self.rx.try_recv() {
            assert!(matches!(d, Ok(Some(_))), "unexpected {d:?}");
            n += 1;
        }
        n
    }
}

/// Watch `ch` for the close a later misuse provokes: a consumer on a private queue sees the
/// error lapin records when the server closes the channel or the connection.
pub async fn watch(ch: &Channel) -> Inbox {
    let q = within(
        5,
        ch.queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("watch queue");
    consume(ch, q.name().as_str(), "", BasicConsumeOptions::default()).await
}

/// The reply (code, text) that closed the channel or connection `inbox` watches.
pub async fn closed_with(inbox: &mut Inbox) -> (u16, String) {
    let err = inbox
        .end()
        .await
        .expect_err("expected the server to close the channel");
    code(&err)
}

/// The (code, text) of a connection.close provoked by a method with no reply that was just
/// sent on `ch`: lapin cancels consumers without an error on a connection close but fails
/// pending requests with it, so this sends basic.qos, which the server never answers because
/// it handles the channel's methods in order.
pub async fn probe(ch: &lapin::Channel) -> (u16, String) {
    refused(ch.basic_qos(0, BasicQosOptions::default())).await
}

/// The (code, text) of an AMQP close carried by `err`.
pub fn code(err: &lapin::Error) -> (u16, String) {
    amqp_error(err).unwrap_or_else(|| panic!("not an AMQP close: {err:?}"))
}

/// Await an operation the server must refuse, returning its (code, text).
pub async fn refused<T: std::fmt::Debug>(
    fut: impl std::future::Future<Output = lapin::Result<T>>,
) -> (u16, String) {
    let err = within(5, fut)
        .await
        .expect_err("expected the server to refuse");
    code(&err)
}
