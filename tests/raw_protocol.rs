//! Protocol errors a well-behaved client never makes, sent as raw frames over a TcpStream:
//! the reply code, text and failing class/method of the `connection.close`, then the socket
//! closing once the client answers close-ok.

mod common;
mod raw;

use amq_protocol::frame::{AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{basic, channel, confirm, connection, AMQPClass};
use amq_protocol::types::AMQPValue;
use common::*;
use raw::*;

#[tokio::test]
async fn bad_protocol_header_gets_ours_then_close() {
    let b = TestBroker::start().await;
    for bad in [
        &b"AMQP\x00\x00\x09\x02"[..],
        b"AMQP\x01\x01\x00\x0a",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut raw = Raw::connect(&b).await;
        raw.send_bytes(bad).await;
        assert_eq!(
            raw.read_exact_or_eof(64).await,
            b"AMQP\x00\x00\x09\x01",
            "reply to {bad:?}"
        );
    }
}

#[tokio::test]
async fn connection_start_advertises_rabbitmq_capabilities() {
    let b = TestBroker::start().await;
    let mut raw = Raw::connect(&b).await;
    raw.send(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
        .await;
    let Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start)))) =
        raw.recv().await
    else {
        panic!("expected connection.start")
    };
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    let mechanisms = String::from_utf8_lossy(start.mechanisms.as_bytes()).to_string();
    assert!(mechanisms.split(' ').any(|m| m == "PLAIN"), "{mechanisms}");
    assert_eq!(start.locales.as_bytes(), b"en_US");
    let props = start.server_properties.inner();
    for key in [
        "product",
        "version",
        "platform",
        "copyright",
        "information",
        "cluster_name",
    ] {
        assert!(
            matches!(props.get(key), Some(AMQPValue::LongString(_))),
            "server property {key}: {:?}",
            props.get(key)
        );
    }
    let Some(AMQPValue::FieldTable(caps)) = props.get("capabilities") else {
        panic!("no capabilities")
    };
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        assert_eq!(
            caps.inner().get(cap),
            Some(&AMQPValue::Boolean(true)),
            "capability {cap}"
        );
    }
}

#[tokio::test]
async fn frame_larger_than_frame_max_is_501() {
    let b = TestBroker::start().await;
    let (mut raw, t) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    // Only the 7-byte header: the server must refuse on the declared size, not wait for it.
    let size = t.frame_max + 1;
    let mut h = vec![1u8, 0, 1];
    h.extend_from_slice(&size.to_be_bytes());
    raw.send_bytes(&h).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (501, 0, 0));
    assert_eq!(
        text,
        format!(
            "FRAME_ERROR - type 1, all octets = <<>>: {{frame_too_large,{size},{}}}",
            t.frame_max - 8
        )
    );
}

#[tokio::test]
async fn bad_frame_end_is_501() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    let mut bytes = encode(&method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
    ));
    *bytes.last_mut().unwrap() = 0x00;
    raw.send_bytes(&bytes).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (501, 0, 0));
    // RabbitMQ prints the frame type and payload octets as Erlang terms.
    assert_eq!(
        text,
        "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}"
    );
}

#[tokio::test]
async fn unknown_frame_type_is_501() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.send_bytes(&[9, 0, 1, 0, 0, 0, 1, 0, 0xCE]).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (501, 0, 0));
    assert_eq!(
        text,
        "FRAME_ERROR - type 9, all octets = <<0>>: unknown_frame"
    );
}

#[tokio::test]
async fn heartbeat_on_a_channel_is_505() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    raw.send(&AMQPFrame::InvalidHeartbeat(1)).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (505, 0, 0));
    assert_eq!(text, "UNEXPECTED_FRAME - type 8, all octets = <<>>");
}

#[tokio::test]
async fn method_on_an_unopened_channel_is_504() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.send(&method(5, declare("q"))).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (504, 50, 10));
    assert_eq!(text, "CHANNEL_ERROR - expected 'channel.open'");
}

#[tokio::test]
async fn second_channel_open_is_504() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    raw.send(&method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
    ))
    .await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (504, 20, 10));
    assert_eq!(text, "CHANNEL_ERROR - second 'channel.open' seen");
}

#[tokio::test]
async fn body_without_method_is_505() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    raw.send(&AMQPFrame::Body(1, b"stray".to_vec())).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (505, 0, 0));
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
    );
}

#[tokio::test]
async fn header_without_method_is_505() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    raw.send(&header(1, 60, 3)).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (505, 0, 0));
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
    );
}

#[tokio::test]
async fn header_with_wrong_class_is_505() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    raw.send(&method(1, publish())).await;
    raw.send(&header(1, 50, 3)).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (505, 60, 40));
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead"
    );
}

#[tokio::test]
async fn method_in_the_middle_of_content_is_505() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    raw.send(&method(1, publish())).await;
    raw.send(&header(1, 60, 10)).await;
    raw.send(&AMQPFrame::Body(1, b"12345".to_vec())).await;
    raw.send(&method(1, declare("q"))).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (505, 60, 40));
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead"
    );
}

#[tokio::test]
async fn prefetch_size_is_540() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    let qos = basic::Qos {
        prefetch_count: 0,
        global: false,
    };
    // amq-protocol's Qos has no prefetch_size field: patch it into the encoded frame.
    let mut bytes = encode(&method(1, AMQPClass::Basic(basic::AMQPMethod::Qos(qos))));
    bytes[11..15].copy_from_slice(&7u32.to_be_bytes());
    raw.send_bytes(&bytes).await;
    let (code, text, class, meth) = raw.connection_close().await;
    assert_eq!((code, class, meth), (540, 60, 10));
    assert_eq!(text, "NOT_IMPLEMENTED - prefetch_size!=0 (7)");
}

#[tokio::test]
async fn channel_beyond_channel_max_is_530() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::open(&b, |t| t.channel_max = 2).await;
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
    raw.open_channel(1).await;
    raw.open_channel(2).await;
    // RabbitMQ counts open channels rather than checking the number; with 1 and 2 open both
    // rules refuse channel 3.
    raw.send(&method(
        3,
        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
    ))
    .await;
    let (code, text, class, meth) = raw.connection_close().await;
    // RabbitMQ sends class and method 0 here.
    assert_eq!((code, class, meth), (530, 0, 0));
    assert_eq!(
        text,
        "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"
    );
}

#[tokio::test]
async fn tune_ok_frame_max_above_the_servers_is_refused() {
    let b = TestBroker::start().await;
    let (mut raw, t) = Raw::open(&b, |t| t.frame_max += 1).await;
    let text = format!(
        "NOT_ALLOWED - frame_max={} > {} max size",
        t.frame_max + 1,
        t.frame_max
    );
    raw.handshake_refused((530, &text, 10, 31)).await;
}

#[tokio::test]
async fn unknown_sasl_mechanism_is_refused() {
    let b = TestBroker::start().await;
    let mut raw = Raw::connect(&b).await;
    raw.send(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
        .await;
    assert!(raw.recv().await.is_some());
    raw.send(&start_ok("FOO", b"x")).await;
    raw.handshake_refused((
        503,
        "COMMAND_INVALID - unknown authentication mechanism 'FOO'",
        10,
        11,
    ))
    .await;
}

/// A PLAIN response without its separators, and an AMQPLAIN one that is not a field table:
/// 502 SYNTAX_ERROR on start-ok (RabbitMQ 3.10 resets the socket instead, which
/// `handshake_refused` also accepts).
#[tokio::test]
async fn malformed_sasl_responses_are_502() {
    let b = TestBroker::start().await;
    for (mechanism, response) in [
        ("PLAIN", &b"noseparators"[..]),
        ("AMQPLAIN", &b"\x05LOGIN"[..]),
    ] {
        let mut raw = Raw::connect(&b).await;
        raw.send(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
            .await;
        assert!(raw.recv().await.is_some());
        raw.send(&start_ok(mechanism, response)).await;
        let text = format!("SYNTAX_ERROR - {mechanism} response could not be decoded");
        raw.handshake_refused((502, &text, 10, 11)).await;
    }
}

#[tokio::test]
async fn wrong_password_is_403_with_authentication_failure_close() {
    let b = TestBroker::start().await;
    let mut raw = Raw::connect(&b).await;
    raw.send(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
        .await;
    assert!(raw.recv().await.is_some());
    raw.send(&start_ok("PLAIN", b"\0guest\0nope")).await;
    let (code, text, class, meth) = raw.connection_close().await;
    // RabbitMQ sends class and method 0 here.
    assert_eq!((code, class, meth), (403, 0, 0));
    assert_eq!(text, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.");
}

#[tokio::test]
async fn confirm_tags_are_sequential() {
    let b = TestBroker::start().await;
    let (mut raw, _) = Raw::ready(&b).await;
    raw.open_channel(1).await;
    raw.send(&method(
        1,
        AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
            nowait: false,
        })),
    ))
    .await;
    assert!(matches!(
        raw.recv().await,
        Some(AMQPFrame::Method(
            1,
            AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))
        ))
    ));
    for _ in 0..5 {
        raw.send(&method(1, publish())).await;
        raw.send(&header(1, 60, 1)).await;
        raw.send(&AMQPFrame::Body(1, b"x".to_vec())).await;
    }
    // Acks may be coalesced with multiple=true, but must cover 1..=5 in order, each once.
    let mut next = 1;
    while next <= 5 {
        match raw.recv().await {
            Some(AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Ack(a)))) => {
                assert!(
                    a.delivery_tag >= next,
                    "tag {} after {}",
                    a.delivery_tag,
                    next - 1
                );
                assert!(
                    a.multiple || a.delivery_tag == next,
                    "gap before single ack {}",
                    a.delivery_tag
                );
                next = a.delivery_tag + 1;
            }
            other => panic!("expected basic.ack, got {other:?}"),
        }
    }
    assert_eq!(next, 6);
}

#[tokio::test]
async fn frame_over_8192_before_tune_closes_the_connection() {
    let b = TestBroker::start().await;
    let mut raw = Raw::connect(&b).await;
    raw.send(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
        .await;
    assert!(raw.recv().await.is_some());
    let mut h = vec![1u8, 0, 0];
    h.extend_from_slice(&10_000u32.to_be_bytes());
    raw.send_bytes(&h).await;
    let text = "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,10000,4088}";
    raw.handshake_refused((501, text, 0, 0)).await;
}
