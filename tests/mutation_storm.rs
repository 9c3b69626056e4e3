//! A network "mutation storm": hundreds of connections send mutated handshakes and frame
//! streams (bytes flipped, frames cut short, sizes blown up, chunks repeated, noise inserted)
//! at a warren child process while a healthy publisher and consumer keep working. Nothing the
//! healthy pair confirmed is lost or reordered, the broker does not crash, and its memory
//! returns to the baseline once the storm is over.
//!
//! `WARREN_STORM_CONNECTIONS` (default 300) sets the storm's size; the seed is printed so a
//! failure can be replayed with `WARREN_STORM_SEED`.

mod common;
mod raw;
mod support;

use amq_protocol::frame::{AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{basic, channel, connection, AMQPClass};
use common::*;
use lapin::options::*;
use lapin::BasicProperties;
use raw::{declare, encode, header, method, start_ok};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// warren as a child process, logging each memory trim it asks for.
async fn start(dir: &std::path::Path) -> (Child, u16, Log) {
    let w = spawn_warren(dir, &[("WARREN_LOG", "info,warren::memory=debug")]).await;
    (w.child, w.port, w.log)
}

/// Wait until the broker has asked for two more memory trims than now: after the first,
/// each worker hands its freed pages back when it next goes idle, which it has done by the
/// second, so the resident size is settled.
async fn settled(log: &Log) {
    let trims = || {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("memory trim asked"))
            .count()
    };
    let target = trims() + 2;
    eventually(30, || async { (trims() >= target).then_some(()) }).await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A complete, valid client conversation: handshake, a channel, a queue, a publish, a
/// consume, closes.
fn valid_stream(n: u64) -> Vec<u8> {
    let body = format!("storm {n}").into_bytes();
    let frames = [
        start_ok("PLAIN", b"\0guest\0guest"),
        method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 2047,
                frame_max: 131072,
                heartbeat: 0,
            })),
        ),
        method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: "/".into(),
            })),
        ),
        method(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        ),
        method(1, declare(&format!("storm-{}", n % 7))),
        method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: format!("storm-{}", n % 7).as_str().into(),
                mandatory: n.is_multiple_of(2),
                immediate: false,
            })),
        ),
        header(1, 60, body.len() as u64),
        AMQPFrame::Body(1, body),
        method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
                queue: format!("storm-{}", n % 7).as_str().into(),
                no_ack: true,
            })),
        ),
        method(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: 200,
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            })),
        ),
        method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
                reply_code: 200,
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            })),
        ),
    ];
    let mut out = encode(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()));
    for f in &frames {
        out.extend(encode(f));
    }
    out
}

/// Damage `bytes` in one to eight ways; the protocol header is spared four times in five so
/// that most streams reach the frame decoder.
fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    let from = if rng.below(5) == 0 { 0 } else { 8 };
    for _ in 0..1 + rng.below(8) {
        if bytes.len() <= from + 1 {
            break;
        }
        let at = from + rng.below(bytes.len() - from);
        match rng.below(7) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = [0x00, 0xFF, 0xCE, 0x01, 0x08][rng.below(5)],
            2 => bytes.truncate(at),
            3 => {
                // A size field blown up: four bytes of 0xFF.
                for b in bytes.iter_mut().skip(at).take(4) {
                    *b = 0xFF;
                }
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                for _ in 0..1 + rng.below(50) {
                    bytes.splice(at..at, chunk.iter().copied());
                }
            }
            5 => {
                let noise: Vec<u8> = (0..1 + rng.below(32)).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, noise);
            }
            _ => {
                let end = (at + rng.below(32)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

/// One storm connection: write the stream, read whatever comes back for a moment, leave.
async fn hostile(port: u16, bytes: Vec<u8>) {
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return;
    };
    let _ = s.write_all(&bytes).await;
    let mut sink = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_storm_hurts_no_healthy_client() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return; // measures the broker process's memory: a child warren only
    }
    let seed = std::env::var("WARREN_STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let total: usize = std::env::var("WARREN_STORM_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    eprintln!("mutation storm: seed {seed}, {total} connections");
    let dir = TempDir::new();
    let (mut child, port, log) = start(&dir.path).await;
    let pid = child.id().expect("pid");
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");

    // The healthy pair.
    let conn = within(10, lapin::Connection::connect(&url, Default::default()))
        .await
        .expect("connect");
    let pch = open(&conn).await;
    within(5, pch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    let cconn = within(10, lapin::Connection::connect(&url, Default::default()))
        .await
        .expect("connect");
    let cch = open(&cconn).await;
    queue(&cch, "healthy").await;
    let mut inbox = consume(&cch, "healthy", "healthy", BasicConsumeOptions::default()).await;
    // Warm up, then take the baseline.
    for i in 0..200u32 {
        publish_confirmed(&pch, "", "healthy", &i.to_be_bytes()).await;
        let d = inbox.next().await;
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    settled(&log).await;
    let baseline = rss_kib(pid);

    let storm = tokio::spawn(async move {
        let mut rng = Rng(seed);
        let sem = Arc::new(tokio::sync::Semaphore::new(50));
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..total as u64 {
            let bytes = mutate(&mut rng, valid_stream(n));
            let permit = sem.clone().acquire_owned().await.unwrap();
            tasks.spawn(async move {
                hostile(port, bytes).await;
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    let mut sent = 200u32;
    while !storm.is_finished() {
        publish_confirmed(&pch, "", "healthy", &sent.to_be_bytes()).await;
        sent += 1;
    }
    storm.await.unwrap();
    // Every confirmed message arrives once, in order.
    for i in 200..sent {
        let d = inbox.next().await;
        assert_eq!(d.data, i.to_be_bytes(), "message {i} (seed {seed})");
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert_eq!(inbox.ready(), 0, "nothing extra (seed {seed})");
    assert!(
        child.try_wait().unwrap().is_none(),
        "warren exited (seed {seed})"
    );

    // A new client is served, and memory comes back to the baseline.
    let fresh = within(10, lapin::Connection::connect(&url, Default::default()))
        .await
        .expect("connect after the storm");
    let fch = open(&fresh).await;
    let props = BasicProperties::default();
    within(
        5,
        fch.basic_publish(
            "".into(),
            "healthy".into(),
            Default::default(),
            b"after",
            props,
        ),
    )
    .await
    .unwrap();
    assert_eq!(inbox.next().await.data, b"after");
    let limit = baseline + 24 * 1024;
    let settled = eventually(30, || async {
        let now = rss_kib(pid);
        (now <= limit).then_some(now)
    })
    .await;
    eprintln!(
        "mutation storm: {sent} healthy messages, RSS {baseline} KiB before, {settled} KiB after"
    );
    child.kill().await.unwrap();
}
