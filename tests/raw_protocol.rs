//! Protocol errors a well-behaved client never makes, sent as raw frames over a TcpStream:
//! the reply code, text and failing class/method of the `connection.close`, then the socket
//! closing once the client answers close-ok.

mod common;

use amq_protocol::frame::{
    gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, ProtocolVersion, WriteContext,
};
use amq_protocol::protocol::{basic, channel, confirm, connection, queue, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Raw {
    sock: TcpStream,
    buf: Vec<u8>,
}

fn encode(frame: &AMQPFrame) -> Vec<u8> {
    gen_frame(frame)(WriteContext::from(Vec::new()))
        .expect("encode frame")
        .write
}

fn method(ch: u16, m: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(ch, m)
}

impl Raw {
    async fn connect(b: &TestBroker) -> Raw {
        Raw {
            sock: within(5, TcpStream::connect(b.addr)).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, frame: &AMQPFrame) {
        self.send_bytes(&encode(frame)).await;
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).await.expect("write");
    }

    /// Read until `n` bytes or EOF.
    async fn read_exact_or_eof(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 1024];
        while out.len() < n {
            let k = within(5, self.sock.read(&mut chunk)).await.unwrap_or(0);
            if k == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..k]);
        }
        out
    }

    /// The next frame other than a heartbeat, or None once the server closes the socket.
    async fn recv(&mut self) -> Option<AMQPFrame> {
        loop {
            if let Ok((rest, frame)) = parse_frame(self.buf.as_slice()) {
                let used = self.buf.len() - rest.len();
                self.buf.drain(..used);
                if frame == AMQPFrame::Heartbeat {
                    continue;
                }
                return Some(frame);
            }
            let mut chunk = [0u8; 4096];
            match within(5, self.sock.read(&mut chunk)).await {
                Ok(0) | Err(_) => return None,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
    }

    /// Connect, authenticate as guest, tune to the server's values (or `tune`) and open `/`.
    async fn open(
        b: &TestBroker,
        tune: impl FnOnce(&mut connection::TuneOk),
    ) -> (Raw, connection::Tune) {
        let mut raw = Raw::connect(b).await;
        raw.send(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
            .await;
        let Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(_)))) =
            raw.recv().await
        else {
            panic!("expected connection.start")
        };
        raw.send(&start_ok("PLAIN", b"\0guest\0guest")).await;
        let Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(t)))) =
            raw.recv().await
        else {
            panic!("expected connection.tune")
        };
        let mut ok = connection::TuneOk {
            channel_max: t.channel_max,
            frame_max: t.frame_max,
            heartbeat: 0,
        };
        tune(&mut ok);
        raw.send(&method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(ok)),
        ))
        .await;
        raw.send(&method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: "/".into(),
            })),
        ))
        .await;
        (raw, t)
    }

    /// `open` plus waiting for open-ok.
    async fn ready(b: &TestBroker) -> (Raw, connection::Tune) {
        let (mut raw, t) = Raw::open(b, |_| {}).await;
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
        (raw, t)
    }

    async fn open_channel(&mut self, id: u16) {
        self.send(&method(
            id,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        ))
        .await;
        let f = self.recv().await;
        assert!(
            matches!(
                f,
                Some(AMQPFrame::Method(
                    _,
                    AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))
                ))
            ),
            "{f:?}"
        );
    }

    /// Expect connection.close; answer close-ok and expect the socket to close.
    async fn connection_close(&mut self) -> (u16, String, u16, u16) {
        let close = loop {
            match self.recv().await {
                Some(AMQPFrame::Method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::Close(c)),
                )) => break c,
                Some(AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))) => {
                    continue
                }
                other => panic!("expected connection.close, got {other:?}"),
            }
        };
        self.send(&method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
        ))
        .await;
        assert_eq!(self.recv().await, None, "socket stays open after close-ok");
        (
            close.reply_code,
            close.reply_text.to_string(),
            close.class_id,
            close.method_id,
        )
    }
}

impl Raw {
    /// A handshake error before connection.open-ok: RabbitMQ just closes the socket (it only
    /// sends connection.close once the connection is open, or for a refused login); a
    /// connection.close, if sent, must carry `want`. Either way the connection never opens.
    async fn handshake_refused(&mut self, want: (u16, &str, u16, u16)) {
        match self.recv().await {
            None => {}
            Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
                assert_eq!(
                    (c.reply_code, c.reply_text.as_str(), c.class_id, c.method_id),
                    want
                );
                self.send(&method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                ))
                .await;
                assert_eq!(self.recv().await, None, "socket stays open after close-ok");
            }
            other => panic!("expected the handshake to fail, got {other:?}"),
        }
    }
}

fn start_ok(mechanism: &str, response: &[u8]) -> AMQPFrame {
    let mut caps = FieldTable::default();
    caps.insert(
        "authentication_failure_close".into(),
        AMQPValue::Boolean(true),
    );
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: props,
            mechanism: mechanism.into(),
            response: response.to_vec().into(),
            locale: "en_US".into(),
        })),
    )
}

fn declare(name: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: name.into(),
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

fn publish() -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: "nowhere".into(),
        mandatory: false,
        immediate: false,
    }))
}

fn header(ch: u16, class_id: u16, size: u64) -> AMQPFrame {
    AMQPFrame::Header(
        ch,
        AMQPContentHeader {
            class_id,
            body_size: size,
            properties: basic::AMQPProperties::default(),
        },
    )
}

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
