//! `warren-perf`: an AMQP 0-9-1 load generator in the spirit of RabbitMQ PerfTest and
//! lavinmqperf.
//!
//! It speaks the protocol itself over plain TCP (no client library) so that the tool stays
//! cheap next to the broker it measures:
//!
//! * every producer and every consumer is a connection of its own with one channel;
//! * producers encode one complete publish (method, content header and body frames) once and,
//!   per message, only patch the 16 bytes of timestamp and sequence in the body; they write
//!   batches of up to 64 publishes (or about 256 KiB) with one `write()`, within the confirm
//!   window (`-c`) and the rate limit (`-r`), while a reader task takes the confirms;
//! * consumers parse the frames by hand from a large read buffer: `basic.deliver`, content
//!   header, body; the first 8 body bytes carry the send time, which gives the end-to-end
//!   latency; acknowledgements are coalesced into one `basic.ack multiple=true` per read.
//!
//! Body layout (at least 16 bytes): `[0..8]` send time in ns since this process's epoch,
//! `[8..10]` a tag of this run (so that messages left over by another process are not taken
//! for latency samples), `[10..12]` the producer id, `[12..16]` the producer's sequence number,
//! all big-endian.
//!
//! Example: `warren-perf --uri amqp://guest:guest@127.0.0.1:5672/%2f -x1 -y1 -s16 -z10`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io;
use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use amq_protocol::frame::{gen_frame, AMQPFrame, WriteContext};
use amq_protocol::protocol::{
    basic, channel, confirm, connection, exchange, parse_class, queue, AMQPClass,
};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

#[derive(Parser, Debug, Clone)]
#[command(
    name = "warren-perf",
    version,
    about = "AMQP 0-9-1 load generator (PerfTest-like) speaking the protocol over plain TCP"
)]
struct Args {
    /// Broker URI: amqp://user:password@host:port/vhost (percent-encoded)
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    uri: String,
    /// Number of producers (one connection each)
    #[arg(short = 'x', long, default_value_t = 1)]
    producers: usize,
    /// Number of consumers (one connection each)
    #[arg(short = 'y', long, default_value_t = 1)]
    consumers: usize,
    /// Message body size in bytes (at least 16 are sent)
    #[arg(short = 's', long, default_value_t = 16)]
    size: usize,
    /// Seconds to run (0: until --count is reached or Ctrl-C)
    #[arg(short = 'z', long, default_value_t = 0)]
    time: u64,
    /// Messages to publish per producer (0: unlimited); with --consume-only, the consumers
    /// stop after producers x count messages
    #[arg(short = 'C', long, default_value_t = 0)]
    count: u64,
    /// Publish persistent messages (delivery_mode 2)
    #[arg(long)]
    persistent: bool,
    /// Declare durable queues (and exchange). Queues and exchanges that exist already are
    /// used as they are (they are declared passively first)
    #[arg(long)]
    durable: bool,
    /// Publisher confirms with at most N unconfirmed publishes per producer (0: no confirms)
    #[arg(short = 'c', long, default_value_t = 0)]
    confirm: u64,
    /// Prefetch (basic.qos) per consumer (0: none)
    #[arg(short = 'q', long, default_value_t = 0)]
    prefetch: u16,
    /// Acknowledge every N deliveries with basic.ack multiple=true (0: consume with no-ack)
    #[arg(short = 'a', long, default_value_t = 0)]
    ack: u64,
    /// Publishes per second per producer (0: as fast as possible)
    #[arg(short = 'r', long, default_value_t = 0)]
    rate: u64,
    /// Only publish (no consumers)
    #[arg(long, conflicts_with = "consume_only")]
    publish_only: bool,
    /// Only consume (no producers)
    #[arg(long)]
    consume_only: bool,
    /// Queue name (with --queues N or --fanout N: NAME-0 .. NAME-{N-1})
    #[arg(short = 'u', long, default_value = "perf-test")]
    queue: String,
    /// Spread producers and consumers round-robin over N queues
    #[arg(long, default_value_t = 1, conflicts_with = "fanout")]
    queues: usize,
    /// Publish to a fanout exchange NAME-fanout bound to N queues; consumers spread over them
    #[arg(long, default_value_t = 0)]
    fanout: usize,
    /// Purge the queues at start
    #[arg(long)]
    purge: bool,
    /// Also print the summary as one JSON line
    #[arg(long)]
    json: bool,
}

/// Where the producers publish and the consumers consume, derived from the arguments.
struct Plan {
    queues: Vec<String>,
    /// The fanout exchange, if any ("" is the default exchange).
    exchange: String,
    producers: usize,
    consumers: usize,
    size: usize,
    ack_every: u64,
}

impl Plan {
    fn new(a: &Args) -> Result<Plan, String> {
        let n = if a.fanout > 0 { a.fanout } else { a.queues };
        if n == 0 {
            return Err("--queues must be at least 1".into());
        }
        let queues = if n == 1 && a.fanout == 0 {
            vec![a.queue.clone()]
        } else {
            (0..n).map(|i| format!("{}-{i}", a.queue)).collect()
        };
        let exchange = if a.fanout > 0 {
            format!("{}-fanout", a.queue)
        } else {
            String::new()
        };
        let producers = if a.consume_only { 0 } else { a.producers };
        let consumers = if a.publish_only { 0 } else { a.consumers };
        if producers == 0 && consumers == 0 {
            return Err("nothing to do: no producers and no consumers".into());
        }
        let mut ack_every = a.ack;
        if a.prefetch > 0 && ack_every > u64::from(a.prefetch) {
            // With fewer unacked deliveries allowed than the ack interval, nothing would ever be
            // acknowledged and the consumer would stall.
            eprintln!(
                "warren-perf: -a {} exceeds the prefetch {}; acknowledging every {} instead",
                ack_every, a.prefetch, a.prefetch
            );
            ack_every = u64::from(a.prefetch);
        }
        Ok(Plan {
            queues,
            exchange,
            producers,
            consumers,
            size: a.size.max(16),
            ack_every,
        })
    }

    fn fanout(&self) -> bool {
        !self.exchange.is_empty()
    }

    /// (exchange, routing key, index of the queue it reaches when it reaches only one).
    fn producer_route(&self, i: usize) -> (String, String, Option<usize>) {
        if self.fanout() {
            (self.exchange.clone(), String::new(), None)
        } else {
            let q = i % self.queues.len();
            (String::new(), self.queues[q].clone(), Some(q))
        }
    }

    fn consumer_queue(&self, j: usize) -> usize {
        j % self.queues.len()
    }

    /// Indexes of the queues that have at least one consumer.
    fn consumed_queues(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.consumers)
            .map(|j| self.consumer_queue(j))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

// ---------------------------------------------------------------------------------------------
// URI
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Uri {
    user: String,
    password: String,
    host: String,
    port: u16,
    vhost: String,
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

fn parse_uri(s: &str) -> Result<Uri, String> {
    let rest = s
        .strip_prefix("amqp://")
        .ok_or_else(|| format!("unsupported URI {s:?}: only amqp:// (no TLS) is supported"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (percent_decode(u)?, percent_decode(p)?),
            None => (percent_decode(ui)?, "guest".to_string()),
        },
        None => ("guest".to_string(), "guest".to_string()),
    };
    // host, [v6 host], host:port or [v6 host]:port
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("bad IPv6 address in {s:?}"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() => p.parse().map_err(|_| format!("bad port in {s:?}"))?,
        _ => 5672,
    };
    let host = match percent_decode(&host)? {
        h if h.is_empty() => "localhost".to_string(),
        h => h,
    };
    let vhost = match path {
        None => "/".to_string(),
        Some(p) => percent_decode(p)?,
    };
    Ok(Uri {
        user,
        password,
        host,
        port,
        vhost,
    })
}

// ---------------------------------------------------------------------------------------------
// Clock, histogram, shared state
// ---------------------------------------------------------------------------------------------

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process-wide epoch; what the producers put in the message bodies.
fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Log-linear histogram of nanosecond values: 128 linear sub-buckets per power of two, so a
/// reported percentile is within 0.8% of the true value. Fixed size (58 KiB); merging only
/// walks the range of buckets in use.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    lo: usize,
    hi: usize,
}

const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            lo: BUCKETS,
            hi: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            v as usize
        } else {
            let shift = 63 - v.leading_zeros() - SUB_BITS;
            ((shift as usize + 1) << SUB_BITS) + ((v >> shift) as usize & (SUB - 1))
        }
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        if i < SUB {
            i as u64
        } else {
            let shift = (i >> SUB_BITS) - 1;
            let low = ((SUB + (i & (SUB - 1))) as u64) << shift;
            low + ((1u64 << shift) >> 1)
        }
    }

    fn record(&mut self, v: u64) {
        let i = Self::index(v);
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(v);
        self.lo = self.lo.min(i);
        self.hi = self.hi.max(i);
    }

    fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        for i in other.lo..=other.hi {
            self.counts[i] += other.counts[i];
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.lo = self.lo.min(other.lo);
        self.hi = self.hi.max(other.hi);
    }

    fn clear(&mut self) {
        if self.total > 0 {
            self.counts[self.lo..=self.hi].fill(0);
        }
        self.total = 0;
        self.max = 0;
        self.lo = BUCKETS;
        self.hi = 0;
    }

    /// Value at quantile `q` (0..=1), in ns; None when empty.
    fn percentile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for i in self.lo..=self.hi {
            seen += self.counts[i];
            if seen >= rank {
                return Some(Self::value(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Moves the samples into `shared` (used by the tasks every 100 ms and at their end).
    fn flush_into(&mut self, shared: &Mutex<Histogram>) {
        if self.total > 0 {
            lock(shared).merge(self);
            self.clear();
        }
    }
}

/// A one-shot stop signal that tasks can check cheaply or await.
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    notify: Notify,
}

impl Stop {
    fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        loop {
            // A Notified future receives notify_waiters() from its creation on, so checking the
            // flag after creating it cannot miss a trigger.
            let notified = self.notify.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// State shared by the monitor (main) and every producer and consumer task.
struct Shared {
    /// Producers stop publishing.
    stop_publish: Stop,
    /// Everybody closes their connection.
    stop_all: Stop,
    published: AtomicU64,
    confirmed: AtomicU64,
    nacked: AtomicU64,
    consumed: AtomicU64,
    /// write() calls made by producers.
    writes: AtomicU64,
    /// Publishes per queue, for the producers that reach exactly one queue.
    published_to: Vec<AtomicU64>,
    last_publish_ns: AtomicU64,
    last_confirm_ns: AtomicU64,
    last_consume_ns: AtomicU64,
    /// When the last producer got its connection.close-ok: without confirms, the moment the
    /// broker had taken every publish.
    close_ok_ns: AtomicU64,
    producers_running: AtomicUsize,
    latency: Mutex<Histogram>,
    confirm_latency: Mutex<Histogram>,
    fatal: Mutex<Option<String>>,
    run_tag: u16,
}

impl Shared {
    /// Records the first fatal error and stops everything.
    fn fail(&self, msg: String) {
        {
            let mut f = lock(&self.fatal);
            if f.is_none() {
                *f = Some(msg);
            }
        }
        self.stop_publish.trigger();
        self.stop_all.trigger();
    }
}

// ---------------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------------

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_END: u8 = 0xCE;
const READ_BUFFER: usize = 256 * 1024;

struct Frame {
    kind: u8,
    channel: u16,
    payload: Range<usize>,
}

/// Buffered frame reader: frames are parsed in place in one large buffer, so a read() brings
/// in as many deliveries or confirms as the socket holds.
struct FrameReader {
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
    fn next_buffered(&mut self) -> Result<Option<Frame>, String> {
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

    fn payload(&self, f: &Frame) -> &[u8] {
        &self.buf[f.payload.clone()]
    }

    /// Reads more bytes from the socket; Ok(false) at end of stream. Cancel-safe.
    async fn fill(&mut self) -> io::Result<bool> {
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

    async fn read_frame(&mut self) -> Result<Frame, String> {
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

fn encode_method(channel: u16, method: AMQPClass) -> Result<Vec<u8>, String> {
    let frame = AMQPFrame::Method(channel, method);
    let result = gen_frame(&frame)(WriteContext::from(Vec::with_capacity(128)));
    result
        .map(|ctx| ctx.write)
        .map_err(|e| format!("cannot encode a method frame (name too long?): {e}"))
}

fn be_u16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(p.get(at..at + 2)?.try_into().ok()?))
}

fn be_u64(p: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(p.get(at..at + 8)?.try_into().ok()?))
}

/// (class id, method id) of a method frame payload.
fn method_id(p: &[u8]) -> (u16, u16) {
    (be_u16(p, 0).unwrap_or(0), be_u16(p, 2).unwrap_or(0))
}

/// The reply code and "404 NOT_FOUND - no queue 'x' (class 60, method 20)" from the payload
/// of a connection.close or channel.close.
fn describe_close(p: &[u8]) -> (u16, String) {
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
fn ack_frame(tag: u64, multiple: bool) -> [u8; 21] {
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

fn close_frame() -> Result<Vec<u8>, String> {
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
struct Failure {
    code: u16,
    channel: bool,
    msg: String,
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
struct Conn {
    rd: FrameReader,
    wr: OwnedWriteHalf,
    frame_max: u32,
    who: String,
}

impl Conn {
    async fn open(uri: &Uri, who: String) -> Result<Conn, String> {
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

    async fn open_channel(&mut self) -> Result<(), Failure> {
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
    async fn call(&mut self, method: AMQPClass) -> Result<AMQPClass, Failure> {
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
    async fn close(mut self) {
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

// ---------------------------------------------------------------------------------------------
// Setup: exchange, queues, bindings
// ---------------------------------------------------------------------------------------------

/// Declares the fanout exchange, the queues and the bindings (passively first, so that a run
/// without --durable can use queues a --durable run left behind), purging if asked.
async fn declare_topology(uri: &Uri, plan: &Plan, args: &Args) -> Result<(), String> {
    let mut c = Conn::open(uri, "setup".into()).await?;
    let who = c.who.clone();
    let err = |f: Failure| format!("{who}: {}", f.msg);
    if plan.fanout() {
        let declare = |passive| {
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: plan.exchange.as_str().into(),
                kind: "fanout".into(),
                passive,
                durable: args.durable,
                auto_delete: false,
                internal: false,
                nowait: false,
                arguments: FieldTable::default(),
            }))
        };
        declare_passive_first(&mut c, declare).await.map_err(err)?;
    }
    for name in &plan.queues {
        let declare = |passive| {
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: name.as_str().into(),
                passive,
                durable: args.durable,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: FieldTable::default(),
            }))
        };
        declare_passive_first(&mut c, declare).await.map_err(err)?;
        if plan.fanout() {
            c.call(AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                queue: name.as_str().into(),
                exchange: plan.exchange.as_str().into(),
                routing_key: "".into(),
                nowait: false,
                arguments: FieldTable::default(),
            })))
            .await
            .map_err(err)?;
        }
        if args.purge {
            c.call(AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge {
                queue: name.as_str().into(),
                nowait: false,
            })))
            .await
            .map_err(err)?;
        }
    }
    c.close().await;
    Ok(())
}

async fn declare_passive_first(
    c: &mut Conn,
    declare: impl Fn(bool) -> AMQPClass,
) -> Result<(), Failure> {
    match c.call(declare(true)).await {
        Ok(_) => Ok(()),
        Err(f) if f.channel && f.code == 404 => {
            c.open_channel().await?;
            c.call(declare(false)).await.map(|_| ())
        }
        Err(f) => Err(f),
    }
}

// ---------------------------------------------------------------------------------------------
// Producers
// ---------------------------------------------------------------------------------------------

/// How long a producer waits for connection.close-ok at the end.
const CLOSE_WAIT_PRODUCER: Duration = Duration::from_secs(60);

/// One complete publish (method, header and body frames) and where its body starts.
struct Template {
    bytes: Vec<u8>,
    body_offset: usize,
}

fn publish_template(
    exchange: &str,
    routing_key: &str,
    size: usize,
    persistent: bool,
    frame_max: u32,
) -> Result<Template, String> {
    let mut out = encode_method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            mandatory: false,
            immediate: false,
        })),
    )?;
    // Content header: class 60, weight 0, body size, property flags (+ delivery-mode).
    let props: &[u8] = if persistent {
        &[0x10, 0x00, 2]
    } else {
        &[0, 0]
    };
    out.push(FRAME_HEADER);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&((12 + props.len()) as u32).to_be_bytes());
    out.extend_from_slice(&60u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(size as u64).to_be_bytes());
    out.extend_from_slice(props);
    out.push(FRAME_END);
    // Body frames of at most frame_max bytes each (frame_max is at least 4096, so the 16
    // patched bytes are always in the first one).
    let chunk = (frame_max as usize).saturating_sub(8).max(16);
    let mut body_offset = 0;
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk);
        out.push(FRAME_BODY);
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(n as u32).to_be_bytes());
        if body_offset == 0 {
            body_offset = out.len();
        }
        out.resize(out.len() + n, 0);
        out.push(FRAME_END);
        left -= n;
    }
    Ok(Template {
        bytes: out,
        body_offset,
    })
}

/// Send times of the unconfirmed publishes, indexed by delivery tag modulo a power of two of
/// at least twice the confirm window. (Confirms arriving far out of order could in theory
/// overwrite a slot; that only skews a latency sample.)
struct SendTimes {
    slots: Vec<AtomicU64>,
    mask: u64,
}

impl SendTimes {
    fn new(window: u64) -> SendTimes {
        let n = (window.saturating_mul(2))
            .clamp(1024, 1 << 22)
            .next_power_of_two();
        SendTimes {
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: n - 1,
        }
    }

    fn set(&self, tag: u64, ns: u64) {
        self.slots[(tag & self.mask) as usize].store(ns, Ordering::Relaxed);
    }

    fn get(&self, tag: u64) -> u64 {
        self.slots[(tag & self.mask) as usize].load(Ordering::Relaxed)
    }
}

/// Which delivery tags have been confirmed: everything up to `below`, plus the tags above it
/// confirmed singly (out of order).
#[derive(Default)]
struct ConfirmTracker {
    below: u64,
    above: BTreeSet<u64>,
}

impl ConfirmTracker {
    /// Applies an ack or nack; calls `f` for every newly confirmed tag and returns how many.
    fn confirm(&mut self, tag: u64, multiple: bool, mut f: impl FnMut(u64)) -> u64 {
        let mut n = 0;
        if multiple {
            if tag <= self.below {
                return 0;
            }
            for t in self.below + 1..=tag {
                if self.above.is_empty() || !self.above.remove(&t) {
                    f(t);
                    n += 1;
                }
            }
            self.below = tag;
        } else {
            if tag <= self.below || !self.above.insert(tag) {
                return 0;
            }
            f(tag);
            n = 1;
        }
        while self.above.remove(&(self.below + 1)) {
            self.below += 1;
        }
        n
    }
}

/// Per-producer state shared between its writer and its confirm reader.
struct ProducerLink {
    /// Confirms received (acks and nacks), for the window.
    confirmed: AtomicU64,
    window_freed: Notify,
    times: Option<SendTimes>,
    /// Set once connection.close is sent: end of stream is then expected.
    closing: AtomicBool,
}

struct Producer {
    id: usize,
    conn: Conn,
    template: Template,
    queue: Option<usize>,
}

async fn setup_producer(
    uri: Uri,
    id: usize,
    plan: Arc<Plan>,
    args: Arc<Args>,
) -> Result<Producer, String> {
    let mut conn = Conn::open(&uri, format!("producer {id}")).await?;
    if args.confirm > 0 {
        conn.call(AMQPClass::Confirm(confirm::AMQPMethod::Select(
            confirm::Select { nowait: false },
        )))
        .await
        .map_err(|f| format!("{}: confirm.select: {}", conn.who, f.msg))?;
    }
    let (exchange, routing_key, queue) = plan.producer_route(id);
    let template = publish_template(
        &exchange,
        &routing_key,
        plan.size,
        args.persistent,
        conn.frame_max,
    )?;
    Ok(Producer {
        id,
        conn,
        template,
        queue,
    })
}

async fn run_producer(p: Producer, args: Arc<Args>, sh: Arc<Shared>) {
    let Producer {
        id,
        conn,
        template,
        queue,
    } = p;
    let Conn {
        rd, mut wr, who, ..
    } = conn;
    let link = Arc::new(ProducerLink {
        confirmed: AtomicU64::new(0),
        window_freed: Notify::new(),
        times: (args.confirm > 0).then(|| SendTimes::new(args.confirm)),
        closing: AtomicBool::new(false),
    });
    let reader = tokio::spawn({
        let (link, sh, who) = (link.clone(), sh.clone(), who.clone());
        async move {
            if let Err(e) = confirm_reader(rd, &who, &link, &sh).await {
                sh.fail(format!("{who}: {e}"));
            }
        }
    });

    let result = publish_loop(id, &mut wr, &template, queue, &args, &sh, &link).await;
    sh.producers_running.fetch_sub(1, Ordering::SeqCst);
    let interrupted = match result {
        Ok(complete) => !complete,
        Err(e) => {
            sh.fail(format!("{who}: {e}"));
            true
        }
    };
    // The monitor decides when everything is confirmed (or given up on).
    sh.stop_all.wait().await;
    if !interrupted {
        // Without confirms, close-ok is the only sign that the broker has taken every publish:
        // one that is still in its socket buffer when we drop the connection is lost. So wait
        // long for it (a Ctrl-C during the wait exits).
        link.closing.store(true, Ordering::SeqCst);
        if let Ok(bytes) = close_frame() {
            if wr.write_all(&bytes).await.is_ok() {
                let _ = tokio::time::timeout(CLOSE_WAIT_PRODUCER, reader).await;
                return;
            }
        }
    }
    reader.abort();
}

/// Publishes until the count is reached or the monitor says stop. Ok(false) when a write was
/// abandoned half way (the stream is then unusable for a polite close).
async fn publish_loop(
    id: usize,
    wr: &mut OwnedWriteHalf,
    template: &Template,
    queue: Option<usize>,
    args: &Args,
    sh: &Shared,
    link: &ProducerLink,
) -> Result<bool, String> {
    let msg_len = template.bytes.len();
    let batch_max = (READ_BUFFER / msg_len).clamp(1, 64);
    let mut batch = Vec::with_capacity(batch_max * msg_len);
    for _ in 0..batch_max {
        batch.extend_from_slice(&template.bytes);
    }
    let window = args.confirm;
    let rate = args.rate;
    let start = Instant::now();
    let mut sent: u64 = 0;
    'publish: loop {
        if sh.stop_publish.is_set() {
            break;
        }
        let mut n = batch_max as u64;
        if args.count > 0 {
            if sent >= args.count {
                break;
            }
            n = n.min(args.count - sent);
        }
        if rate > 0 {
            // Message k (from 0) is due at k / rate seconds after the start.
            let elapsed = start.elapsed().as_nanos();
            let due = (elapsed * u128::from(rate) / 1_000_000_000) as u64 + 1;
            if due <= sent {
                let at = Duration::from_nanos(
                    (u128::from(sent) * 1_000_000_000 / u128::from(rate)) as u64,
                );
                tokio::select! {
                    _ = tokio::time::sleep_until((start + at).into()) => {}
                    _ = sh.stop_publish.wait() => {}
                }
                continue;
            }
            n = n.min(due - sent);
        }
        if window > 0 {
            loop {
                let outstanding = sent - link.confirmed.load(Ordering::Acquire);
                if outstanding < window {
                    n = n.min(window - outstanding);
                    break;
                }
                // notify_one keeps a permit when nobody waits, so no wake-up is lost.
                tokio::select! {
                    _ = link.window_freed.notified() => {}
                    _ = sh.stop_publish.wait() => break 'publish,
                }
            }
        }
        let now = now_ns();
        let mut stamp = [0u8; 16];
        stamp[..8].copy_from_slice(&now.to_be_bytes());
        stamp[8..10].copy_from_slice(&sh.run_tag.to_be_bytes());
        stamp[10..12].copy_from_slice(&(id as u16).to_be_bytes());
        for k in 0..n {
            let seq = sent + k + 1; // also the delivery tag under confirms
            stamp[12..16].copy_from_slice(&(seq as u32).to_be_bytes());
            let at = k as usize * msg_len + template.body_offset;
            batch[at..at + 16].copy_from_slice(&stamp);
            if let Some(times) = &link.times {
                times.set(seq, now);
            }
        }
        let bytes = &batch[..n as usize * msg_len];
        tokio::select! {
            r = wr.write_all(bytes) => r.map_err(|e| format!("write error: {e}"))?,
            // Only when the broker stopped reading (flow control) at the very end.
            _ = sh.stop_all.wait() => return Ok(false),
        }
        sent += n;
        sh.published.fetch_add(n, Ordering::Relaxed);
        sh.writes.fetch_add(1, Ordering::Relaxed);
        sh.last_publish_ns.fetch_max(now_ns(), Ordering::Relaxed);
        if let Some(q) = queue {
            sh.published_to[q].fetch_add(n, Ordering::Relaxed);
        }
    }
    Ok(true)
}

/// Reads the producer's connection: confirms, and errors from the broker.
async fn confirm_reader(
    mut rd: FrameReader,
    who: &str,
    link: &ProducerLink,
    sh: &Shared,
) -> Result<(), String> {
    let mut tracker = ConfirmTracker::default();
    let mut hist = Histogram::new();
    let mut last_flush = Instant::now();
    loop {
        let now = now_ns();
        let (mut acked, mut nacked) = (0, 0);
        while let Some(f) = rd.next_buffered()? {
            if f.kind != FRAME_METHOD {
                continue;
            }
            let p = rd.payload(&f);
            match method_id(p) {
                (60, 80) | (60, 120) => {
                    let tag = be_u64(p, 4).ok_or("short basic.ack")?;
                    let multiple = p.get(12).is_some_and(|b| b & 1 != 0);
                    let n = tracker.confirm(tag, multiple, |t| {
                        if let Some(times) = &link.times {
                            hist.record(now.saturating_sub(times.get(t)));
                        }
                    });
                    if method_id(p).1 == 80 {
                        acked += n;
                    } else {
                        nacked += n;
                    }
                }
                (10, 51) => {
                    sh.close_ok_ns.fetch_max(now_ns(), Ordering::Relaxed);
                    hist.flush_into(&sh.confirm_latency);
                    return Ok(());
                }
                (10, 60) => {
                    let len = p.get(4).copied().unwrap_or(0) as usize;
                    let reason = p.get(5..5 + len).unwrap_or_default();
                    eprintln!(
                        "warren-perf: {who}: connection.blocked by the broker: {}",
                        String::from_utf8_lossy(reason)
                    );
                }
                (10, 61) => eprintln!("warren-perf: {who}: connection.unblocked by the broker"),
                (10, 50) => {
                    return Err(format!(
                        "the broker closed the connection: {}",
                        describe_close(p).1
                    ))
                }
                (20, 40) => {
                    return Err(format!(
                        "the broker closed the channel: {}",
                        describe_close(p).1
                    ))
                }
                _ => {}
            }
        }
        if acked + nacked > 0 {
            link.confirmed.fetch_add(acked + nacked, Ordering::Release);
            link.window_freed.notify_one();
            sh.confirmed.fetch_add(acked, Ordering::Relaxed);
            sh.nacked.fetch_add(nacked, Ordering::Relaxed);
            sh.last_confirm_ns.fetch_max(now, Ordering::Relaxed);
        }
        if last_flush.elapsed() >= Duration::from_millis(100) {
            hist.flush_into(&sh.confirm_latency);
            last_flush = Instant::now();
        }
        let more = rd.fill().await;
        if link.closing.load(Ordering::SeqCst) && !matches!(more, Ok(true)) {
            hist.flush_into(&sh.confirm_latency);
            return Ok(());
        }
        match more {
            Ok(true) => {}
            Ok(false) => return Err("the broker closed the TCP connection".into()),
            Err(e) => return Err(format!("read error: {e}")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Consumers
// ---------------------------------------------------------------------------------------------

async fn setup_consumer(
    uri: Uri,
    id: usize,
    plan: Arc<Plan>,
    args: Arc<Args>,
) -> Result<Conn, String> {
    let mut conn = Conn::open(&uri, format!("consumer {id}")).await?;
    let who = conn.who.clone();
    if args.prefetch > 0 {
        conn.call(AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: args.prefetch,
            global: false,
        })))
        .await
        .map_err(|f| format!("{who}: basic.qos: {}", f.msg))?;
    }
    let queue = &plan.queues[plan.consumer_queue(id)];
    conn.call(AMQPClass::Basic(basic::AMQPMethod::Consume(
        basic::Consume {
            queue: queue.as_str().into(),
            consumer_tag: "".into(),
            no_local: false,
            no_ack: plan.ack_every == 0,
            exclusive: false,
            nowait: false,
            arguments: FieldTable::default(),
        },
    )))
    .await
    .map_err(|f| format!("{who}: basic.consume on {queue:?}: {}", f.msg))?;
    Ok(conn)
}

async fn run_consumer(conn: Conn, plan: Arc<Plan>, sh: Arc<Shared>) {
    let Conn {
        mut rd,
        mut wr,
        who,
        ..
    } = conn;
    match consume_loop(&mut rd, &mut wr, &plan, &sh).await {
        Ok(last_unacked) => {
            // Acknowledge what was received so it is not requeued, then close politely.
            if let Some(tag) = last_unacked {
                let _ = wr.write_all(&ack_frame(tag, true)).await;
            }
            let Ok(bytes) = close_frame() else { return };
            if wr.write_all(&bytes).await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Ok(f) = rd.read_frame().await {
                        if f.kind == FRAME_METHOD && method_id(rd.payload(&f)) == (10, 51) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        Err(e) => sh.fail(format!("{who}: {e}")),
    }
}

/// Consumes until told to stop; returns the last delivery tag not yet acknowledged, if any.
async fn consume_loop(
    rd: &mut FrameReader,
    wr: &mut OwnedWriteHalf,
    plan: &Plan,
    sh: &Shared,
) -> Result<Option<u64>, String> {
    let ack_every = plan.ack_every;
    let mut hist = Histogram::new();
    let mut last_flush = Instant::now();
    let mut now = now_ns();
    // The message being received.
    let (mut tag, mut body_size, mut body_seen) = (0u64, 0u64, 0u64);
    let (mut last_tag, mut acked_tag, mut ack_due, mut since_ack) = (0u64, 0u64, 0u64, 0u64);
    let mut received = 0u64;
    loop {
        while let Some(f) = rd.next_buffered()? {
            let p = rd.payload(&f);
            let complete = match f.kind {
                FRAME_METHOD => match method_id(p) {
                    (60, 60) => {
                        // basic.deliver: consumer-tag (shortstr), then the delivery tag.
                        let len = *p.get(4).ok_or("short basic.deliver")? as usize;
                        tag = be_u64(p, 5 + len).ok_or("short basic.deliver")?;
                        false
                    }
                    (60, 30) => {
                        return Err("the broker cancelled the consumer (queue deleted?)".into())
                    }
                    (10, 50) => {
                        return Err(format!(
                            "the broker closed the connection: {}",
                            describe_close(p).1
                        ))
                    }
                    (20, 40) => {
                        return Err(format!(
                            "the broker closed the channel: {}",
                            describe_close(p).1
                        ))
                    }
                    _ => false,
                },
                FRAME_HEADER => {
                    body_size = be_u64(p, 4).ok_or("short content header")?;
                    body_seen = 0;
                    body_size == 0
                }
                FRAME_BODY => {
                    if body_seen == 0 && p.len() >= 16 {
                        let sent = be_u64(p, 0).unwrap_or(0);
                        let run = be_u16(p, 8).unwrap_or(0);
                        if run == sh.run_tag && sent <= now {
                            hist.record(now - sent);
                        }
                    }
                    body_seen += p.len() as u64;
                    body_seen >= body_size
                }
                _ => false, // heartbeats
            };
            if complete {
                received += 1;
                last_tag = tag;
                if ack_every > 0 {
                    since_ack += 1;
                    if since_ack >= ack_every {
                        ack_due = tag;
                        since_ack = 0;
                    }
                }
            }
        }
        // Everything buffered is handled: one ack for all that is due, then read again.
        if ack_due > acked_tag {
            wr.write_all(&ack_frame(ack_due, true))
                .await
                .map_err(|e| format!("write error: {e}"))?;
            acked_tag = ack_due;
        }
        if received > 0 {
            sh.consumed.fetch_add(received, Ordering::Relaxed);
            sh.last_consume_ns.fetch_max(now, Ordering::Relaxed);
            received = 0;
        }
        if last_flush.elapsed() >= Duration::from_millis(100) {
            hist.flush_into(&sh.latency);
            last_flush = Instant::now();
        }
        tokio::select! {
            biased;
            _ = sh.stop_all.wait() => break,
            r = rd.fill() => match r {
                Ok(true) => now = now_ns(),
                Ok(false) => return Err("the broker closed the TCP connection".into()),
                Err(e) => return Err(format!("read error: {e}")),
            },
        }
    }
    hist.flush_into(&sh.latency);
    Ok((ack_every > 0 && last_tag > acked_tag).then_some(last_tag))
}

// ---------------------------------------------------------------------------------------------
// Monitor and report
// ---------------------------------------------------------------------------------------------

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn rate(n: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        n as f64 * 1e9 / ns as f64
    }
}

/// p50/p95/p99/max in ms, or None without samples.
fn summary_of(h: &Histogram) -> Option<[f64; 4]> {
    Some([
        ms(h.percentile(0.50)?),
        ms(h.percentile(0.95)?),
        ms(h.percentile(0.99)?),
        ms(h.max),
    ])
}

fn json_latency(s: Option<[f64; 4]>) -> String {
    match s {
        Some([p50, p95, p99, max]) => {
            format!("{{\"p50\":{p50:.3},\"p95\":{p95:.3},\"p99\":{p99:.3},\"max\":{max:.3}}}")
        }
        None => "null".into(),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let uri = parse_uri(&args.uri)?;
    let plan = Arc::new(Plan::new(&args)?);
    let args = Arc::new(args);
    let run_tag = {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        ((t ^ (t >> 16) ^ std::process::id()) as u16) | 1
    };
    let sh = Arc::new(Shared {
        stop_publish: Stop::default(),
        stop_all: Stop::default(),
        published: AtomicU64::new(0),
        confirmed: AtomicU64::new(0),
        nacked: AtomicU64::new(0),
        consumed: AtomicU64::new(0),
        writes: AtomicU64::new(0),
        published_to: plan.queues.iter().map(|_| AtomicU64::new(0)).collect(),
        last_publish_ns: AtomicU64::new(0),
        last_confirm_ns: AtomicU64::new(0),
        last_consume_ns: AtomicU64::new(0),
        close_ok_ns: AtomicU64::new(0),
        producers_running: AtomicUsize::new(plan.producers),
        latency: Mutex::new(Histogram::new()),
        confirm_latency: Mutex::new(Histogram::new()),
        fatal: Mutex::new(None),
        run_tag,
    });

    declare_topology(&uri, &plan, &args).await?;

    // Connect everybody (concurrently), consumers first so that they see the first message.
    let consumer_setups: Vec<JoinHandle<Result<Conn, String>>> = (0..plan.consumers)
        .map(|j| tokio::spawn(setup_consumer(uri.clone(), j, plan.clone(), args.clone())))
        .collect();
    let mut consumers = Vec::new();
    for h in consumer_setups {
        consumers.push(h.await.map_err(|e| format!("consumer setup: {e}"))??);
    }
    let producer_setups: Vec<JoinHandle<Result<Producer, String>>> = (0..plan.producers)
        .map(|i| tokio::spawn(setup_producer(uri.clone(), i, plan.clone(), args.clone())))
        .collect();
    let mut producers = Vec::new();
    for h in producer_setups {
        producers.push(h.await.map_err(|e| format!("producer setup: {e}"))??);
    }

    eprintln!(
        "warren-perf: {} producer(s), {} consumer(s), {} queue(s){}, body {} B, {}:{} vhost {:?}",
        plan.producers,
        plan.consumers,
        plan.queues.len(),
        if plan.fanout() {
            format!(" behind fanout exchange {:?}", plan.exchange)
        } else {
            String::new()
        },
        plan.size,
        uri.host,
        uri.port,
        uri.vhost
    );

    let start_ns = now_ns();
    let start = Instant::now();
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    for c in consumers {
        tasks.push(tokio::spawn(run_consumer(c, plan.clone(), sh.clone())));
    }
    for p in producers {
        tasks.push(tokio::spawn(run_producer(p, args.clone(), sh.clone())));
    }

    // Ctrl-C: stop at once (a second one exits without a summary).
    let interrupted = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let (interrupted, sh) = (interrupted.clone(), sh.clone());
        async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if interrupted.swap(true, Ordering::SeqCst) || sh.stop_all.is_set() {
                    std::process::exit(130);
                }
                sh.stop_publish.trigger();
            }
        }
    });

    let consumed_queues = plan.consumed_queues();
    let expected_consumed = || -> u64 {
        if plan.fanout() {
            sh.published.load(Ordering::Relaxed) * consumed_queues.len() as u64
        } else {
            consumed_queues
                .iter()
                .map(|&q| sh.published_to[q].load(Ordering::Relaxed))
                .sum()
        }
    };
    // Consumers without producers here: stop after producers x count messages, if given.
    let consume_target = (plan.producers == 0 && args.count > 0).then(|| {
        let per = if plan.fanout() {
            consumed_queues.len() as u64
        } else {
            1
        };
        args.producers as u64 * args.count * per
    });

    let mut total_latency = Histogram::new();
    let mut total_confirm = Histogram::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut next_report = 1u64;
    let (mut last_pub, mut last_conf, mut last_cons) = (0u64, 0u64, 0u64);
    let mut progress = (0u64, 0u64);
    let mut last_progress = Instant::now();
    let mut draining = false;
    let mut stalled: Option<String> = None;
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        let published = sh.published.load(Ordering::Relaxed);
        let confirmed = sh.confirmed.load(Ordering::Relaxed) + sh.nacked.load(Ordering::Relaxed);
        let consumed = sh.consumed.load(Ordering::Relaxed);

        if elapsed.as_secs() >= next_report {
            let interval = {
                let mut shared = lock(&sh.latency);
                let h = shared.clone();
                shared.clear();
                h
            };
            let confirm_interval = {
                let mut shared = lock(&sh.confirm_latency);
                let h = shared.clone();
                shared.clear();
                h
            };
            total_latency.merge(&interval);
            total_confirm.merge(&confirm_interval);
            let mut line = format!("t={next_report}s");
            if plan.producers > 0 {
                let _ = write!(line, " published={}/s", published - last_pub);
            }
            if args.confirm > 0 && plan.producers > 0 {
                let _ = write!(line, " confirmed={}/s", confirmed - last_conf);
            }
            if plan.consumers > 0 {
                let _ = write!(line, " consumed={}/s", consumed - last_cons);
            }
            if let (Some(p50), Some(p99)) = (interval.percentile(0.5), interval.percentile(0.99)) {
                let _ = write!(line, " latency p50={:.2}ms p99={:.2}ms", ms(p50), ms(p99));
            } else if let (Some(p50), Some(p99)) = (
                confirm_interval.percentile(0.5),
                confirm_interval.percentile(0.99),
            ) {
                let _ = write!(
                    line,
                    " confirm-latency p50={:.2}ms p99={:.2}ms",
                    ms(p50),
                    ms(p99)
                );
            }
            println!("{line}");
            (last_pub, last_conf, last_cons) = (published, confirmed, consumed);
            next_report = elapsed.as_secs() + 1;
        }

        if lock(&sh.fatal).is_some() || interrupted.load(Ordering::SeqCst) {
            break;
        }
        if (confirmed, consumed) != progress {
            progress = (confirmed, consumed);
            last_progress = Instant::now();
        }
        let time_over = args.time > 0 && elapsed >= Duration::from_secs(args.time);

        if plan.producers == 0 {
            // Consuming only.
            if time_over {
                break;
            }
            if let Some(target) = consume_target {
                if consumed >= target {
                    break;
                }
                if consumed > 0 && last_progress.elapsed() >= Duration::from_secs(5) {
                    stalled = Some(format!(
                        "no delivery for 5 s: consumed {consumed} of {target} messages"
                    ));
                    break;
                }
            }
            continue;
        }
        if time_over {
            sh.stop_publish.trigger();
        }
        if !draining {
            if sh.producers_running.load(Ordering::SeqCst) > 0 {
                continue;
            }
            draining = true;
            last_progress = Instant::now();
        }
        // Producers are done: wait for the confirms and for the consumers to catch up.
        let confirms_done = args.confirm == 0 || confirmed >= published;
        let expected = expected_consumed();
        let consumers_done = plan.consumers == 0 || consumed >= expected;
        if confirms_done && consumers_done {
            break;
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            let mut what = Vec::new();
            if !confirms_done {
                what.push(format!("{confirmed} of {published} publishes confirmed"));
            }
            if !consumers_done {
                what.push(format!("{consumed} of {expected} messages consumed"));
            }
            stalled = Some(format!("no progress for 5 s: {}", what.join(", ")));
            break;
        }
    }
    let end = start.elapsed();

    sh.stop_publish.trigger();
    sh.stop_all.trigger();
    let closing = Instant::now();
    let mut told = false;
    for mut t in tasks {
        loop {
            match tokio::time::timeout(Duration::from_secs(1), &mut t).await {
                Ok(_) => break,
                Err(_) if closing.elapsed() > CLOSE_WAIT_PRODUCER + Duration::from_secs(5) => {
                    t.abort();
                    break;
                }
                Err(_) if !told => {
                    eprintln!(
                        "warren-perf: waiting for the broker to take the last publishes \
                         (connection.close-ok); Ctrl-C to give up"
                    );
                    told = true;
                }
                Err(_) => {}
            }
        }
    }
    let close_wait = closing.elapsed();
    if told {
        eprintln!(
            "warren-perf: connections closed after {:.2} s",
            close_wait.as_secs_f64()
        );
    }
    total_latency.merge(&lock(&sh.latency));
    total_confirm.merge(&lock(&sh.confirm_latency));

    if let Some(msg) = lock(&sh.fatal).take() {
        return Err(msg);
    }
    if let Some(msg) = &stalled {
        eprintln!("warren-perf: warning: {msg}");
    }

    // Summary
    let published = sh.published.load(Ordering::Relaxed);
    let confirmed = sh.confirmed.load(Ordering::Relaxed);
    let nacked = sh.nacked.load(Ordering::Relaxed);
    let consumed = sh.consumed.load(Ordering::Relaxed);
    let writes = sh.writes.load(Ordering::Relaxed);
    let span = |last: &AtomicU64| last.load(Ordering::Relaxed).saturating_sub(start_ns);
    let publish_rate = rate(published, span(&sh.last_publish_ns));
    let confirm_rate = rate(confirmed + nacked, span(&sh.last_confirm_ns));
    let consume_rate = rate(consumed, span(&sh.last_consume_ns));
    let latency = summary_of(&total_latency);
    let confirm_latency = summary_of(&total_confirm);
    let per_write = if writes > 0 {
        published as f64 / writes as f64
    } else {
        0.0
    };

    println!("summary: ran {:.2} s", end.as_secs_f64());
    if plan.producers > 0 {
        println!(
            "  published  {published:>12} msgs  avg {publish_rate:>10.0} msgs/s over {:.2} s",
            span(&sh.last_publish_ns) as f64 / 1e9
        );
    }
    // Publishing without confirms and without consumers here ("publish 1M, then drain"): how
    // fast the broker actually took the messages, up to the close-ok after the last one.
    let close_ok = span(&sh.close_ok_ns);
    let taken_rate = (args.confirm == 0 && plan.producers > 0 && plan.consumers == 0)
        .then(|| rate(published, close_ok))
        .filter(|_| close_ok > 0);
    if let Some(taken_rate) = taken_rate {
        println!(
            "  taken      {published:>12} msgs  avg {taken_rate:>10.0} msgs/s over {:.2} s \
             (until connection.close-ok)",
            close_ok as f64 / 1e9
        );
    }
    if args.confirm > 0 && plan.producers > 0 {
        println!(
            "  confirmed  {confirmed:>12} msgs  avg {confirm_rate:>10.0} msgs/s  (nacked {nacked})"
        );
    }
    if plan.consumers > 0 {
        println!(
            "  consumed   {consumed:>12} msgs  avg {consume_rate:>10.0} msgs/s over {:.2} s",
            span(&sh.last_consume_ns) as f64 / 1e9
        );
    }
    let show = |name: &str, s: Option<[f64; 4]>| match s {
        Some([p50, p95, p99, max]) => {
            println!("  {name}  p50={p50:.3} ms  p95={p95:.3} ms  p99={p99:.3} ms  max={max:.3} ms")
        }
        None => println!("  {name}  n/a"),
    };
    if plan.consumers > 0 {
        show("end-to-end latency", latency);
    }
    if args.confirm > 0 && plan.producers > 0 {
        show("confirm latency   ", confirm_latency);
    }
    if plan.producers > 0 {
        println!("  producer writes: {writes} write() calls, {per_write:.1} publishes/write");
    }
    if args.json {
        println!(
            "{{\"publish_rate\":{publish_rate:.1},\"consume_rate\":{consume_rate:.1},\
             \"confirm_rate\":{confirm_rate:.1},\"taken_rate\":{},\"latency_ms\":{},\"confirm_latency_ms\":{},\
             \"published\":{published},\"confirmed\":{confirmed},\"nacked\":{nacked},\
             \"consumed\":{consumed},\"writes\":{writes},\"publishes_per_write\":{per_write:.2},\
             \"duration_s\":{:.3}}}",
            taken_rate.map_or("null".into(), |r| format!("{r:.1}")),
            json_latency(latency),
            json_latency(confirm_latency),
            end.as_secs_f64()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    EPOCH.get_or_init(Instant::now);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren-perf: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(args));
    // Tasks stuck on a broker that stopped reading must not hold the exit.
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("warren-perf: error: {msg}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri() {
        let u = parse_uri("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(
            u,
            Uri {
                user: "guest".into(),
                password: "guest".into(),
                host: "127.0.0.1".into(),
                port: 5672,
                vhost: "/".into(),
            }
        );
        let u = parse_uri("amqp://a%40b:p%3Aw@[::1]:5800/v%2Fh").unwrap();
        assert_eq!((u.user.as_str(), u.password.as_str()), ("a@b", "p:w"));
        assert_eq!(
            (u.host.as_str(), u.port, u.vhost.as_str()),
            ("::1", 5800, "v/h")
        );
        let u = parse_uri("amqp://localhost").unwrap();
        assert_eq!((u.port, u.vhost.as_str()), (5672, "/"));
        assert!(parse_uri("amqps://x").is_err());
    }

    #[test]
    fn histogram() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.percentile(0.5).unwrap() as f64;
        assert!((p50 / 50_000_000.0 - 1.0).abs() < 0.01, "{p50}");
        assert_eq!(h.max, 100_000_000);
        assert_eq!(Histogram::index(u64::MAX), BUCKETS - 1);
        for v in [0u64, 1, 127, 128, 255, 256, 1 << 40] {
            let i = Histogram::index(v);
            assert!(Histogram::value(i).abs_diff(v) <= v / 128 + 1, "{v}");
        }
    }

    #[test]
    fn confirms() {
        let mut t = ConfirmTracker::default();
        let mut seen = Vec::new();
        assert_eq!(t.confirm(2, false, |x| seen.push(x)), 1);
        assert_eq!(t.confirm(4, true, |x| seen.push(x)), 3);
        assert_eq!(seen, vec![2, 1, 3, 4]);
        assert_eq!(t.confirm(3, false, |_| {}), 0);
        assert_eq!(t.confirm(5, false, |_| {}), 1);
        assert_eq!(t.below, 5);
    }
}
