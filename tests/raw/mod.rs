//! A raw AMQP client for tests that need byte-level control: it encodes frames with
//! amq-protocol and reads the server's replies frame by frame.
#![allow(dead_code)]

use crate::common::*;
use amq_protocol::frame::{
    gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, ProtocolVersion, WriteContext,
};
use amq_protocol::protocol::{basic, channel, connection, queue, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw {
    pub sock: TcpStream,
    pub buf: Vec<u8>,
}

pub fn encode(frame: &AMQPFrame) -> Vec<u8> {
    gen_frame(frame)(WriteContext::from(Vec::new()))
        .expect("encode frame")
        .write
}

pub fn method(ch: u16, m: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(ch, m)
}

impl Raw {
    pub async fn connect(b: &TestBroker) -> Raw {
        Raw {
            sock: within(5, TcpStream::connect(b.addr)).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, frame: &AMQPFrame) {
        self.send_bytes(&encode(frame)).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).await.expect("write");
    }

    /// Read until `n` bytes or EOF.
    pub async fn read_exact_or_eof(&mut self, n: usize) -> Vec<u8> {
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
    pub async fn recv(&mut self) -> Option<AMQPFrame> {
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
    pub async fn open(
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
    pub async fn ready(b: &TestBroker) -> (Raw, connection::Tune) {
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

    pub async fn open_channel(&mut self, id: u16) {
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
    pub async fn connection_close(&mut self) -> (u16, String, u16, u16) {
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
    pub async fn handshake_refused(&mut self, want: (u16, &str, u16, u16)) {
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

pub fn start_ok(mechanism: &str, response: &[u8]) -> AMQPFrame {
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

pub fn declare(name: &str) -> AMQPClass {
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

pub fn publish() -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: "nowhere".into(),
        mandatory: false,
        immediate: false,
    }))
}

pub fn header(ch: u16, class_id: u16, size: u64) -> AMQPFrame {
    AMQPFrame::Header(
        ch,
        AMQPContentHeader {
            class_id,
            body_size: size,
            properties: basic::AMQPProperties::default(),
        },
    )
}
