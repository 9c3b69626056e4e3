//! `amqp.connection_max`: at the limit warren stops accepting, so a further client waits (its
//! TCP connection sits in the backlog and gets no connection.start) until a connection closes.
//! Configures the in-process broker: not for an external broker (`WARREN_TEST_URL`).

mod common;
mod raw;
mod support;

use amq_protocol::frame::{AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{connection, AMQPClass};
use common::*;
use raw::Raw;
use support::*;

#[tokio::test]
async fn a_client_beyond_connection_max_waits_for_a_free_slot() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    let b = TestBroker::start_with(|c| c.amqp.connection_max = 2).await;
    let first = b.connect().await;
    let second = b.connect().await;
    let ch = open(&second).await;
    queue(&ch, &unique("limit")).await;

    let mut third = Raw::connect(&b).await;
    third
        .send(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
        .await;
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), third.recv()).await;
    assert!(early.is_err(), "served beyond connection_max: {early:?}");

    // A slot frees up: the waiting client is served.
    within(5, first.close(200, "bye".into())).await.unwrap();
    let f = third.recv().await;
    assert!(
        matches!(
            f,
            Some(AMQPFrame::Method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Start(_))
            ))
        ),
        "{f:?}"
    );
    drop(third);
    b.stop().await;
}
