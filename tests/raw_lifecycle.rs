//! Connection and channel life cycle at the byte level: heartbeats, AMQPLAIN, the closing
//! handshake of a channel, and broker shutdown.

mod common;
mod raw;

use amq_protocol::frame::{parse_frame, AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{channel, connection, queue, AMQPClass};
use amq_protocol::types::FieldTable;
use common::*;
use raw::*;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

fn passive_declare(name: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: name.into(),
        passive: true,
        durable: false,
        exclusive: false,
        auto_delete: false,
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

#[tokio::test]
async fn silent_peer_is_disconnected_after_two_missed_heartbeats() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::open(&b, |t| t.heartbeat = 1).await;
    let started = Instant::now();
    let mut heartbeats = 0;
    let mut open_ok = false;
    // Read everything the server sends while we stay silent, until it drops the socket.
    loop {
        while let Ok((rest, frame)) = parse_frame(raw.buf.as_slice()) {
            let used = raw.buf.len() - rest.len();
            raw.buf.drain(..used);
            match frame {
                AMQPFrame::Heartbeat => heartbeats += 1,
                AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))) => {
                    open_ok = true
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut chunk = [0u8; 256];
        let n = within(10, raw.sock.read(&mut chunk)).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.buf.extend_from_slice(&chunk[..n]);
    }
    let waited = started.elapsed();
    assert!(open_ok);
    assert!(heartbeats >= 1, "the server sent no heartbeat");
    // Two missed 1 s intervals, checked on a 1 s tick.
    assert!(
        waited >= Duration::from_secs(2),
        "dropped too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(6),
        "dropped too late: {waited:?}"
    );
}

#[tokio::test]
async fn amqplain_login_opens_the_connection() {
    let b = TestBroker::start().await;
    let mut raw = Raw::connect(&b).await;
    raw.send(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
        .await;
    let start = raw.recv().await;
    let Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(s)))) = start
    else {
        panic!("expected connection.start, got {start:?}")
    };
    assert_eq!(s.mechanisms.to_string(), "PLAIN AMQPLAIN");
    let creds = amq_protocol::auth::Credentials::new("guest".into(), "guest".into());
    let response = creds.sasl_auth_string(amq_protocol::auth::SASLMechanism::AMQPlain);
    raw.send(&start_ok("AMQPLAIN", response.as_bytes())).await;
    let Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(t)))) =
        raw.recv().await
    else {
        panic!("expected connection.tune")
    };
    let ok = connection::TuneOk {
        channel_max: t.channel_max,
        frame_max: t.frame_max,
        heartbeat: 0,
    };
    raw.send(&method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(ok)),
    ))
    .await;
    let open = connection::Open {
        virtual_host: "/".into(),
    };
    raw.send(&method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Open(open)),
    ))
    .await;
    let f = raw.recv().await;
    assert!(
        matches!(
            f,
            Some(AMQPFrame::Method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))
            ))
        ),
        "{f:?}"
    );
}

#[tokio::test]
async fn frames_for_a_closing_channel_are_discarded_until_close_ok() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    let missing = unique("missing");
    raw.send(&method(1, passive_declare(&missing))).await;
    let f = raw.recv().await;
    let Some(AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Close(c)))) = f else {
        panic!("expected channel.close, got {f:?}")
    };
    assert_eq!(c.reply_code, 404);
    assert_eq!(
        c.reply_text.as_str(),
        format!("NOT_FOUND - no queue '{missing}' in vhost '/'")
    );
    assert_eq!((c.class_id, c.method_id), (50, 10));
    // Until close-ok these are ignored: no reply, and no connection error.
    raw.send(&method(1, passive_declare(&missing))).await;
    raw.send(&header(1, 60, 3)).await;
    raw.send(&AMQPFrame::Body(1, b"abc".to_vec())).await;
    raw.send(&method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
    ))
    .await;
    // The channel number is free again, and the first reply is its open-ok.
    raw.open_channel(1).await;
    let q = unique("q");
    let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: q.as_str().into(),
        passive: false,
        durable: false,
        exclusive: true,
        auto_delete: false,
        nowait: false,
        arguments: FieldTable::default(),
    }));
    raw.send(&method(1, declare)).await;
    let f = raw.recv().await;
    assert!(
        matches!(&f, Some(AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(d)))) if d.queue.as_str() == q),
        "{f:?}"
    );
}

#[tokio::test]
async fn crossing_channel_closes_are_both_answered_and_the_connection_lives_on() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    let missing = unique("missing");
    raw.send(&method(1, passive_declare(&missing))).await;
    // The client closes the channel before it has read the server's close.
    let close = AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }));
    raw.send(&method(1, close)).await;
    let f = raw.recv().await;
    assert!(
        matches!(&f, Some(AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Close(c)))) if c.reply_code == 404),
        "{f:?}"
    );
    let f = raw.recv().await;
    assert!(
        matches!(
            &f,
            Some(AMQPFrame::Method(
                1,
                AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))
            ))
        ),
        "{f:?}"
    );
    // The client now answers the server's close; that is no error either.
    raw.send(&method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
    ))
    .await;
    raw.open_channel(1).await;
}

#[tokio::test]
async fn every_connection_close_gets_its_close_ok() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }));
    for _ in 0..3 {
        raw.send(&method(0, close.clone())).await;
    }
    for i in 0..3 {
        let f = raw.recv().await;
        assert!(
            matches!(
                &f,
                Some(AMQPFrame::Method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))
                ))
            ),
            "close-ok {i}: {f:?}"
        );
    }
}

#[tokio::test]
async fn shutdown_closes_connections_with_320() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return; // stopping an external broker is not ours to do
    }
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    let stopping = tokio::spawn(b.stop());
    let (code, text, class_id, method_id) = raw.connection_close().await;
    assert_eq!(code, 320);
    assert_eq!(
        text,
        "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
    );
    assert_eq!((class_id, method_id), (0, 0));
    within(10, stopping).await.unwrap();
}
