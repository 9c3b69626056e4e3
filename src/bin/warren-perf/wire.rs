//! The AMQP 0-9-1 wire: frames, the frame reader, hand-encoded methods and the connection
//! handshake.

use std::fmt::Write as _;
use std::io;
use std::ops::Range;
use std::time::Duration;

use amq_protocol::frame::{gen_frame, AMQPFrame, WriteContext};
use amq_protocol::protocol::{channel, connection, parse_class, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::uri::Uri;

// ---------------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------------

pub(crate) const FRAME_METHOD: u8 = 1;
pub(crate) const FRAME_HEADER: u8 = 2;
pub(crate) const FRAME_BODY: u8 = 3;
pub(crate) const FRAME_END: u8 = 0xCE;
pub(crate) const READ_BUFFER: usize = 256 * 1024;

pub(crate) struct Frame {
    pub(crate) kind: u8,
    channel: u16,
    payload: Range<usize>,
}

/// Buffered frame reader: frames are parsed in place in one large buffer, so a read() brings
/// in as many deliveries or confirms as the socket holds.
pub(crate) struct FrameReader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameReader {
    fn new(rd: OwnedReadHalf) -> FrameReader {
        FrameReader {
            rd,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
        }
    }

    /// Size of the frame at the head of the buffer once complete, if its header is in.
    fn head_frame_len(&self) -> Option<usize> {
        let h = self.buf.get(self.start..self.start + 7)?;
        if self.end - self.start < 7 {
            return None;
        }
        Some(7 + u32::from_be_bytes([h[3], h[4], h[5], h[6]]) as usize + 1)
    }

    /// The next complete frame already in the buffer, if any.
    pub(crate) fn next_buffered(&mut self) -> Result<Option<Frame>, String> {
        let Some(len) = self.head_frame_len() else {
            return Ok(None);
        };
        let h = &self.buf[self.start..self.start + 7];
        if h[0] == b'A' {
            return Err("the broker refused the protocol version (AMQP header sent back)".into());
        }
        if self.end - self.start < len {
            return Ok(None);
        }
        let kind = h[0];
        let channel = u16::from_be_bytes([h[1], h[2]]);
        let payload = self.start + 7..self.start + len - 1;
        if self.buf[payload.end] != FRAME_END {
            return Err(format!("bad frame end marker after a type {kind} frame"));
        }
        self.start += len;
        Ok(Some(Frame {
            kind,
            channel,
            payload,
        }))
    }

    pub(crate) fn payload(&self, f: &Frame) -> &[u8] {
        &self.buf[f.payload.clone()]
    }

    /// Reads more bytes from the socket; Ok(false) at end of stream. Cancel-safe.
    pub(crate) async fn fill(&mut self) -> io::Result<bool> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let need = self.head_frame_len().unwrap_or(7);
        let free = self.buf.len() - self.end;
        if self.start > 0 && (self.start + need > self.buf.len() || free < READ_BUFFER / 16) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if need > self.buf.len() {
            self.buf.resize(need, 0);
        }
        let n = self.rd.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    pub(crate) async fn read_frame(&mut self) -> Result<Frame, String> {
        loop {
            if let Some(f) = self.next_buffered()? {
                return Ok(f);
            }
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => return Err("the broker closed the TCP connection".into()),
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }
}

pub(crate) fn encode_method(channel: u16, method: AMQPClass) -> Result<Vec<u8>, String> {
    let frame = AMQPFrame::Method(channel, method);
    let result = gen_frame(&frame)(WriteContext::from(Vec::with_capacity(128)));
    result
        .map(|ctx| ctx.write)
        .map_err(|e| format!("cannot encode a method frame (name too long?): {e}"))
}

pub(crate) fn be_u16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(p.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn be_u64(p: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(p.get(at..at + 8)?.try_into().ok()?))
}

/// (class id, method id) of a method frame payload.
pub(crate) fn method_id(p: &[u8]) -> (u16, u16) {
    (be_u16(p, 0).unwrap_or(0), be_u16(p, 2).unwrap_or(0))
}

/// The reply code and "404 NOT_FOUND - no queue 'x' (class 60, method 20)" from the payload
/// of a connection.close or channel.close.
pub(crate) fn describe_close(p: &[u8]) -> (u16, String) {
    let code = be_u16(p, 4).unwrap_or(0);
    let len = p.get(6).copied().unwrap_or(0) as usize;
    let text = p
        .get(7..7 + len)
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_default();
    let class = be_u16(p, 7 + len).unwrap_or(0);
    let method = be_u16(p, 9 + len).unwrap_or(0);
    let mut s = format!("{code} {text}");
    if class != 0 {
        let _ = write!(s, " (class {class}, method {method})");
    }
    (code, s)
}

/// basic.ack on channel 1, encoded by hand (the consumers' only write).
pub(crate) fn ack_frame(tag: u64, multiple: bool) -> [u8; 21] {
    let mut f = [0u8; 21];
    f[0] = FRAME_METHOD;
    f[1..3].copy_from_slice(&1u16.to_be_bytes());
    f[3..7].copy_from_slice(&13u32.to_be_bytes());
    f[7..9].copy_from_slice(&60u16.to_be_bytes());
    f[9..11].copy_from_slice(&80u16.to_be_bytes());
    f[11..19].copy_from_slice(&tag.to_be_bytes());
    f[19] = u8::from(multiple);
    f[20] = FRAME_END;
    f
}

pub(crate) fn close_frame() -> Result<Vec<u8>, String> {
    encode_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "Goodbye".into(),
            class_id: 0,
            method_id: 0,
        })),
    )
}

/// An error of a synchronous request: `channel` when only the channel was closed by the
/// broker (the connection is still usable).
pub(crate) struct Failure {
    pub(crate) code: u16,
    pub(crate) channel: bool,
    pub(crate) msg: String,
}

impl From<String> for Failure {
    fn from(msg: String) -> Failure {
        Failure {
            code: 0,
            channel: false,
            msg,
        }
    }
}

/// A connection being set up: handshake and the synchronous requests before the hot loop.
pub(crate) struct Conn {
    pub(crate) rd: FrameReader,
    pub(crate) wr: OwnedWriteHalf,
    pub(crate) frame_max: u32,
    pub(crate) who: String,
}

impl Conn {
    pub(crate) async fn open(uri: &Uri, who: String) -> Result<Conn, String> {
        let stream = TcpStream::connect((uri.host.as_str(), uri.port))
            .await
            .map_err(|e| format!("{who}: cannot connect to {}:{}: {e}", uri.host, uri.port))?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut c = Conn {
            rd: FrameReader::new(rd),
            wr,
            frame_max: 131072,
            who,
        };
        c.handshake(uri)
            .await
            .map_err(|f| format!("{}: {}", c.who, f.msg))?;
        Ok(c)
    }

    async fn handshake(&mut self, uri: &Uri) -> Result<(), Failure> {
        self.write(b"AMQP\x00\x00\x09\x01").await?;
        match self.next_method().await? {
            AMQPClass::Connection(connection::AMQPMethod::Start(s)) => {
                let mechs = String::from_utf8_lossy(s.mechanisms.as_bytes()).into_owned();
                if !mechs.split_whitespace().any(|m| m == "PLAIN") {
                    return Err(format!("the broker does not offer PLAIN (only {mechs})").into());
                }
            }
            m => return Err(format!("expected connection.start, got {m:?}").into()),
        }
        let mut props = FieldTable::default();
        props.insert(
            "product".into(),
            AMQPValue::LongString("warren-perf".into()),
        );
        props.insert(
            "version".into(),
            AMQPValue::LongString(env!("CARGO_PKG_VERSION").into()),
        );
        // Ask for connection.close 403 rather than a dropped socket on a failed login, for
        // basic.cancel when a consumed queue goes away, and for connection.blocked notices.
        let mut caps = FieldTable::default();
        for cap in [
            "authentication_failure_close",
            "consumer_cancel_notify",
            "connection.blocked",
        ] {
            caps.insert(cap.into(), AMQPValue::Boolean(true));
        }
        props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
        let response = format!("\0{}\0{}", uri.user, uri.password);
        self.send(AMQPClass::Connection(connection::AMQPMethod::StartOk(
            connection::StartOk {
                client_properties: props,
                mechanism: "PLAIN".into(),
                response: LongString::from(response.into_bytes()),
                locale: "en_US".into(),
            },
        )))
        .await?;
        // A broker may drop the socket instead of sending connection.close on a failed login.
        let tune = self.next_method().await.map_err(|mut f| {
            if f.code == 0 {
                f.msg
                    .push_str(" right after the login (wrong credentials?)");
            }
            f
        })?;
        match tune {
            AMQPClass::Connection(connection::AMQPMethod::Tune(t)) => {
                if t.frame_max != 0 {
                    self.frame_max = t.frame_max;
                }
                self.send(AMQPClass::Connection(connection::AMQPMethod::TuneOk(
                    connection::TuneOk {
                        channel_max: t.channel_max,
                        frame_max: self.frame_max,
                        heartbeat: 0,
                    },
                )))
                .await?;
            }
            m => return Err(format!("expected connection.tune, got {m:?}").into()),
        }
        self.call(AMQPClass::Connection(connection::AMQPMethod::Open(
            connection::Open {
                virtual_host: uri.vhost.as_str().into(),
            },
        )))
        .await?;
        self.open_channel().await
    }

    pub(crate) async fn open_channel(&mut self) -> Result<(), Failure> {
        self.call(AMQPClass::Channel(channel::AMQPMethod::Open(
            channel::Open {},
        )))
        .await
        .map(|_| ())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.wr
            .write_all(bytes)
            .await
            .map_err(|e| Failure::from(format!("write error: {e}")))
    }

    /// Sends a method, on channel 0 for the connection class, else on channel 1.
    async fn send(&mut self, method: AMQPClass) -> Result<(), Failure> {
        let ch = if matches!(method, AMQPClass::Connection(_)) {
            0
        } else {
            1
        };
        let bytes = encode_method(ch, method)?;
        self.write(&bytes).await
    }

    /// Sends a synchronous request and returns the reply.
    pub(crate) async fn call(&mut self, method: AMQPClass) -> Result<AMQPClass, Failure> {
        self.send(method).await?;
        self.next_method().await
    }

    /// The next method from the broker (heartbeats and content frames are skipped). A
    /// connection.close or channel.close is answered with its close-ok and becomes an error.
    async fn next_method(&mut self) -> Result<AMQPClass, Failure> {
        loop {
            let f = self.rd.read_frame().await?;
            if f.kind != FRAME_METHOD {
                continue;
            }
            let p = self.rd.payload(&f);
            match method_id(p) {
                (10, 50) => {
                    let (code, msg) = describe_close(p);
                    let ok = encode_method(
                        0,
                        AMQPClass::Connection(connection::AMQPMethod::CloseOk(
                            connection::CloseOk {},
                        )),
                    )?;
                    let _ = self.wr.write_all(&ok).await;
                    return Err(Failure {
                        code,
                        channel: false,
                        msg: format!("the broker closed the connection: {msg}"),
                    });
                }
                (20, 40) => {
                    let (code, msg) = describe_close(p);
                    let ok = encode_method(
                        f.channel,
                        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                    )?;
                    self.write(&ok).await?;
                    return Err(Failure {
                        code,
                        channel: true,
                        msg: format!("the broker closed the channel: {msg}"),
                    });
                }
                _ => {}
            }
            return match parse_class(p) {
                Ok((_, m)) => Ok(m),
                Err(_) => {
                    Err(format!("cannot parse method {:?} from the broker", method_id(p)).into())
                }
            };
        }
    }

    /// connection.close, then waits briefly for close-ok.
    pub(crate) async fn close(mut self) {
        let Ok(bytes) = close_frame() else { return };
        if self.wr.write_all(&bytes).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(f) = self.rd.read_frame().await {
                if f.kind == FRAME_METHOD && method_id(self.rd.payload(&f)) == (10, 51) {
                    break;
                }
            }
        })
        .await;
    }
}
