//! Frames on the wire.
//!
//! The 7-byte frame envelope is read here so that an oversized frame is refused before its
//! payload is buffered, and so that a body frame becomes a zero-copy slice of the read buffer.
//! Methods and content headers are decoded and encoded by amq-protocol, except on the hot
//! path: `basic.publish` and `basic.ack` are decoded and `basic.deliver` encoded by hand (the
//! generic parser allocates a flag list per method), and unit tests check them against
//! amq-protocol.

use crate::error::{AmqpError, AmqpResult};
use amq_protocol::frame::{gen_frame, AMQPFrame, WriteContext};
use amq_protocol::protocol::basic::{parse_properties, AMQPProperties};
use amq_protocol::protocol::{parse_class, AMQPClass};
use bytes::{Buf, Bytes, BytesMut};

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;
/// Envelope bytes around a payload: type, channel, size, and the end octet.
pub const FRAME_OVERHEAD: usize = 8;
/// The frame size every peer must accept before tune (AMQP's frame-min-size).
pub const FRAME_MIN_SIZE: u32 = 8192;

/// The most `decode` reserves ahead for a frame whose bytes have not arrived.
const READ_AHEAD_MAX: usize = 64 * 1024;

/// The protocol header a client must open with.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

/// A content header: the raw property bytes are kept so that a message is delivered with
/// exactly the bytes it was published with (field-table key order, types, duplicates).
#[derive(Debug, Clone)]
pub struct ContentHeader {
    pub class_id: u16,
    pub body_size: u64,
    pub properties: AMQPProperties,
    /// Property flags and property list, as received.
    pub raw_properties: Bytes,
}

/// One decoded frame.
#[derive(Debug)]
pub enum Frame {
    Method(u16, Box<AMQPClass>),
    Header(u16, Box<ContentHeader>),
    Body(u16, Bytes),
    Heartbeat(u16),
}

/// Methods a client may send, by (class, method). An unknown pair is 503 COMMAND_INVALID; a
/// known pair whose fields do not decode is 501 FRAME_ERROR.
fn known_method(class: u16, method: u16) -> bool {
    matches!(
        (class, method),
        (10, 11 | 21 | 31 | 40 | 50 | 51 | 60 | 61 | 70 | 71)
            | (20, 10 | 20 | 21 | 40 | 41)
            | (30, 10)
            | (40, 10 | 20 | 30 | 40)
            | (50, 10 | 20 | 30 | 40 | 50)
            | (60, 10 | 20 | 30 | 40 | 70 | 80 | 90 | 100 | 110 | 120)
            | (85, 10)
            | (90, 10 | 20 | 30)
    )
}

/// Decode one frame from the front of `buf`, or `Ok(None)` if more bytes are needed.
/// `frame_max` is the negotiated maximum frame size (0 = no limit).
pub fn decode(buf: &mut BytesMut, frame_max: u32) -> AmqpResult<Option<Frame>> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    if frame_max != 0 && size + FRAME_OVERHEAD > frame_max as usize {
        return Err(AmqpError::frame_error(format!(
            "type {kind}, all octets = <<>>: {{frame_too_large,{size},{}}}",
            frame_max as usize - FRAME_OVERHEAD
        )));
    }
    if buf.len() < size + FRAME_OVERHEAD {
        // Room for the rest of the frame, but never more than READ_AHEAD_MAX on the word of a
        // size field: the buffer grows with the bytes that actually arrive. (Found by the
        // frame_decoder fuzz target: a 7-byte header made it reserve 1.8 GB.)
        buf.reserve((size + FRAME_OVERHEAD - buf.len()).min(READ_AHEAD_MAX));
        return Ok(None);
    }
    if buf[7 + size] != FRAME_END {
        return Err(AmqpError::frame_error(format!(
            "type {kind}, all octets = {}: {{invalid_frame_end_marker,{}}}",
            erlang_binary(&buf[7..7 + size]),
            buf[7 + size]
        )));
    }
    buf.advance(7);
    let payload = buf.split_to(size).freeze();
    buf.advance(1);
    let frame = match kind {
        FRAME_METHOD => Frame::Method(channel, Box::new(decode_method(&payload)?)),
        FRAME_HEADER => Frame::Header(channel, Box::new(decode_header(channel, payload)?)),
        FRAME_BODY => Frame::Body(channel, payload),
        FRAME_HEARTBEAT => Frame::Heartbeat(channel),
        other => {
            return Err(AmqpError::frame_error(format!(
                "type {other}, all octets = {}: unknown_frame",
                erlang_binary(&payload)
            )));
        }
    };
    Ok(Some(frame))
}

/// Octets as Erlang prints a binary, `<<0,20,0,10>>`, as RabbitMQ quotes them in frame errors
/// (shortened: a reply text is at most 255 bytes).
fn erlang_binary(octets: &[u8]) -> String {
    let shown: Vec<String> = octets.iter().take(32).map(|b| b.to_string()).collect();
    let more = if octets.len() > 32 { ",..." } else { "" };
    format!("<<{}{more}>>", shown.join(","))
}

fn decode_method(payload: &[u8]) -> AmqpResult<AMQPClass> {
    if payload.len() < 4 {
        return Err(AmqpError::frame_error("method frame too short"));
    }
    let class = u16::from_be_bytes([payload[0], payload[1]]);
    let method = u16::from_be_bytes([payload[2], payload[3]]);
    if !known_method(class, method) {
        return Err(
            AmqpError::command_invalid(format!("unknown method {class}/{method}"))
                .on(class, method),
        );
    }
    if (class, method) == (60, 10) && payload.len() >= 8 {
        // amq-protocol drops basic.qos prefetch_size; RabbitMQ refuses anything but 0.
        let size = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        if size != 0 {
            return Err(
                AmqpError::not_implemented(format!("prefetch_size!=0 ({size})")).on(60, 10),
            );
        }
    }
    if let Some(m) = decode_hot(class, method, &payload[4..]) {
        return Ok(m);
    }
    match parse_class(payload) {
        Ok((&[], m)) => Ok(m),
        _ => Err(AmqpError::frame_error(format!(
            "cannot decode method fields of {class}/{method}"
        ))
        .on(class, method)),
    }
}

/// `basic.publish` and `basic.ack` decoded without amq-protocol's generic parser. `None`
/// for any other method or anything unusual (the generic parser then decides, errors
/// included).
fn decode_hot(class: u16, method: u16, args: &[u8]) -> Option<AMQPClass> {
    use amq_protocol::protocol::basic::{AMQPMethod, Ack, Publish};
    match (class, method) {
        (60, 40) => {
            // reserved-1, exchange, routing-key, bits.
            let (rest, ex) = read_short_str(args.get(2..)?)?;
            let (rest, rk) = read_short_str(rest)?;
            let [bits] = rest else { return None };
            Some(AMQPClass::Basic(AMQPMethod::Publish(Publish {
                exchange: ex.into(),
                routing_key: rk.into(),
                mandatory: bits & 1 != 0,
                immediate: bits & 2 != 0,
            })))
        }
        (60, 80) => {
            let (tag, bits) = (args.get(..8)?, args.get(8..)?);
            let [bits] = bits else { return None };
            Some(AMQPClass::Basic(AMQPMethod::Ack(Ack {
                delivery_tag: u64::from_be_bytes(tag.try_into().ok()?),
                multiple: bits & 1 != 0,
            })))
        }
        _ => None,
    }
}

/// A short string (length octet, UTF-8 bytes) and what follows it.
fn read_short_str(b: &[u8]) -> Option<(&[u8], &str)> {
    let (&n, rest) = b.split_first()?;
    let s = rest.get(..n as usize)?;
    Some((&rest[n as usize..], std::str::from_utf8(s).ok()?))
}

fn decode_header(channel: u16, payload: Bytes) -> AmqpResult<ContentHeader> {
    if payload.len() < 14 {
        return Err(AmqpError::frame_error(format!(
            "content header too short on channel {channel}"
        )));
    }
    let class_id = u16::from_be_bytes([payload[0], payload[1]]);
    let body_size = u64::from_be_bytes(payload[4..12].try_into().expect("8 bytes"));
    let raw_properties = payload.slice(12..);
    let properties = match parse_properties(&raw_properties[..]) {
        Ok((&[], p)) => p,
        _ => {
            return Err(AmqpError::frame_error(format!(
                "cannot decode content header properties on channel {channel}"
            )))
        }
    };
    Ok(ContentHeader {
        class_id,
        body_size,
        properties,
        raw_properties,
    })
}

/// Bytes waiting to be written: small frames are packed into one buffer; large bodies are
/// kept as shared slices so that they are never copied.
#[derive(Default)]
pub struct OutBuf {
    /// Chunks ready to write, in order.
    pub chunks: Vec<Bytes>,
    /// The small-frame buffer being filled.
    cur: Vec<u8>,
}

/// Bodies at least this large are written from the message's own buffer.
const ZERO_COPY_MIN: usize = 16 * 1024;

impl OutBuf {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.cur.is_empty()
    }

    /// Everything buffered, leaving this empty.
    pub fn take(&mut self) -> Vec<Bytes> {
        self.seal();
        std::mem::take(&mut self.chunks)
    }

    fn seal(&mut self) {
        if !self.cur.is_empty() {
            // Sized like the batch just sealed (at most 8 KiB): a busy connection reallocates
            // rarely, an idle one holds next to nothing.
            let hint = self.cur.len().min(8192);
            let cur = std::mem::replace(&mut self.cur, Vec::with_capacity(hint));
            self.chunks.push(Bytes::from(cur));
        }
    }

    /// Encode any method frame with amq-protocol.
    pub fn method(&mut self, channel: u16, method: AMQPClass) {
        let frame = AMQPFrame::Method(channel, method);
        let result = gen_frame(&frame)(WriteContext::from(Vec::with_capacity(64)));
        match result {
            Ok(ctx) => self.cur.extend_from_slice(&ctx.write),
            // Only a value that cannot be represented (a >255-byte short string) gets here.
            Err(e) => tracing::error!(error = %e, "cannot encode a method frame"),
        }
    }

    pub fn heartbeat(&mut self) {
        self.cur
            .extend_from_slice(&[FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
    }

    /// A content header and the body frames for `body`, split by `frame_max`.
    pub fn content(&mut self, channel: u16, raw_properties: &[u8], body: &Bytes, frame_max: u32) {
        let ch = channel.to_be_bytes();
        let size = (12 + raw_properties.len()) as u32;
        self.cur.push(FRAME_HEADER);
        self.cur.extend_from_slice(&ch);
        self.cur.extend_from_slice(&size.to_be_bytes());
        self.cur.extend_from_slice(&60u16.to_be_bytes());
        self.cur.extend_from_slice(&0u16.to_be_bytes());
        self.cur
            .extend_from_slice(&(body.len() as u64).to_be_bytes());
        self.cur.extend_from_slice(raw_properties);
        self.cur.push(FRAME_END);
        let max_chunk = if frame_max == 0 {
            usize::MAX
        } else {
            frame_max as usize - FRAME_OVERHEAD
        };
        let mut offset = 0;
        while offset < body.len() {
            let n = (body.len() - offset).min(max_chunk);
            self.cur.push(FRAME_BODY);
            self.cur.extend_from_slice(&ch);
            self.cur.extend_from_slice(&(n as u32).to_be_bytes());
            if n >= ZERO_COPY_MIN {
                self.seal();
                self.chunks.push(body.slice(offset..offset + n));
            } else {
                self.cur.extend_from_slice(&body[offset..offset + n]);
            }
            self.cur.push(FRAME_END);
            offset += n;
        }
    }

    /// basic.deliver, encoded by hand because it is written once per delivered message.
    pub fn deliver(
        &mut self,
        channel: u16,
        consumer_tag: &str,
        delivery_tag: u64,
        redelivered: bool,
        exchange: &str,
        routing_key: &str,
    ) {
        let size = 4 + 1 + consumer_tag.len() + 8 + 1 + 1 + exchange.len() + 1 + routing_key.len();
        self.cur.push(FRAME_METHOD);
        self.cur.extend_from_slice(&channel.to_be_bytes());
        self.cur.extend_from_slice(&(size as u32).to_be_bytes());
        self.cur.extend_from_slice(&[0, 60, 0, 60]);
        short_str(&mut self.cur, consumer_tag);
        self.cur.extend_from_slice(&delivery_tag.to_be_bytes());
        self.cur.push(redelivered as u8);
        short_str(&mut self.cur, exchange);
        short_str(&mut self.cur, routing_key);
        self.cur.push(FRAME_END);
    }
}

fn short_str(buf: &mut Vec<u8>, s: &str) {
    // Names are validated to 255 bytes where they enter the broker.
    let b = &s.as_bytes()[..s.len().min(255)];
    buf.push(b.len() as u8);
    buf.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::basic;

    fn flat(out: &mut OutBuf) -> Vec<u8> {
        out.take().iter().flat_map(|c| c.iter().copied()).collect()
    }

    /// The hand-written decoders give what amq-protocol gives, and leave to it what they
    /// do not understand.
    #[test]
    fn hot_methods_decode_as_amq_protocol_does() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for (ex, rk) in [
            ("", ""),
            ("amq.topic", "a.b.c"),
            ("x", &"k".repeat(255)[..]),
        ] {
            for bits in 0u8..4 {
                let mut p = vec![0, 60, 0, 40, 0, 0, ex.len() as u8];
                p.extend_from_slice(ex.as_bytes());
                p.push(rk.len() as u8);
                p.extend_from_slice(rk.as_bytes());
                p.push(bits);
                cases.push(p);
            }
        }
        for tag in [0u64, 1, 0x0102_0304_0506_0708, u64::MAX] {
            for bits in 0u8..2 {
                let mut p = vec![0, 60, 0, 80];
                p.extend_from_slice(&tag.to_be_bytes());
                p.push(bits);
                cases.push(p);
            }
        }
        // Truncated, overlong and non-UTF-8 variants fall through to the generic parser.
        let mut odd = Vec::new();
        for c in &cases {
            odd.push(c[..c.len() - 1].to_vec());
            let mut longer = c.clone();
            longer.push(0);
            odd.push(longer);
        }
        odd.push(vec![0, 60, 0, 40, 0, 0, 1, 0xff, 0, 0]);
        for p in &cases {
            let hot = decode_hot(60, u16::from_be_bytes([p[2], p[3]]), &p[4..]);
            let generic = match parse_class(&p[..]) {
                Ok((&[], m)) => m,
                other => panic!("amq-protocol refused {p:?}: {other:?}"),
            };
            assert_eq!(format!("{hot:?}"), format!("Some({generic:?})"), "{p:?}");
        }
        for p in &odd {
            let hot = decode_hot(60, u16::from_be_bytes([p[2], p[3]]), &p[4..]);
            assert!(hot.is_none(), "{p:?} decoded as {hot:?}");
        }
    }

    #[test]
    fn hand_encoded_deliver_matches_amq_protocol() {
        let mut a = OutBuf::default();
        a.deliver(7, "ctag", 42, true, "ex", "rk");
        let mut b = OutBuf::default();
        b.method(
            7,
            AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: "ctag".into(),
                delivery_tag: 42,
                redelivered: true,
                exchange: "ex".into(),
                routing_key: "rk".into(),
            })),
        );
        assert_eq!(flat(&mut a), flat(&mut b));
    }

    #[test]
    fn decode_round_trip_and_split_body() {
        let mut out = OutBuf::default();
        let body = Bytes::from(vec![7u8; 50_000]);
        out.content(3, &[0, 0], &body, 20_000);
        let mut buf = BytesMut::from(&flat(&mut out)[..]);
        let Frame::Header(3, h) = decode(&mut buf, 20_000).unwrap().unwrap() else {
            panic!()
        };
        assert_eq!(h.body_size, 50_000);
        let mut total = 0;
        while let Some(f) = decode(&mut buf, 20_000).unwrap() {
            let Frame::Body(3, b) = f else { panic!() };
            assert!(b.len() <= 20_000 - 8);
            total += b.len();
        }
        assert_eq!(total, 50_000);
    }

    #[test]
    fn oversized_frame_refused_on_header() {
        let mut buf = BytesMut::from(&[3u8, 0, 1, 0, 1, 0, 0][..]);
        let e = decode(&mut buf, 4096).unwrap_err();
        assert_eq!(e.code as u16, 501);
    }

    /// Regression (frame_decoder fuzz target): a frame header announcing a huge payload must
    /// not reserve it before the bytes arrive.
    #[test]
    fn an_announced_size_is_not_reserved_ahead() {
        for frame_max in [0, 131_072] {
            let mut buf = BytesMut::from(&[3u8, 0, 1, 0x7F, 0xFF, 0xFF, 0xF0][..]);
            let size = if frame_max == 0 {
                0x7FFF_FFF0usize
            } else {
                131_000
            };
            buf[3..7].copy_from_slice(&(size as u32).to_be_bytes());
            assert!(decode(&mut buf, frame_max).unwrap().is_none());
            assert!(buf.capacity() <= 7 + READ_AHEAD_MAX, "{}", buf.capacity());
        }
        // The artifact the fuzzer found, replayed: every decode step stays bounded.
        let found = include_bytes!("../fuzz/regressions/frame_decoder-oom-996b0594.bin");
        let mut buf = BytesMut::from(&found[1..]);
        while let Ok(Some(_)) = decode(&mut buf, 0) {}
        assert!(buf.capacity() <= found.len() + READ_AHEAD_MAX);
    }

    #[test]
    fn bad_frame_end_is_frame_error() {
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 0, 0xCD][..]);
        assert_eq!(decode(&mut buf, 0).unwrap_err().code as u16, 501);
    }

    #[test]
    fn unknown_method_is_command_invalid() {
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 4, 0, 60, 0, 99, 0xCE][..]);
        assert_eq!(decode(&mut buf, 0).unwrap_err().code as u16, 503);
    }
}
