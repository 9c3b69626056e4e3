//! Crash safety: warren runs as a child process and is killed with SIGKILL at random moments
//! while a publisher streams persistent messages with confirms and a consumer acks some of
//! them. After each restart every confirmed message must be there or have been handed to the
//! consumer (lost = 0), none may be corrupt, none unexpected. The consumer exercises the
//! journal's shortcut: a message acked before its group commit is confirmed unwritten.
//!
//! `WARREN_CRASH_CYCLES` sets the number of kill/restart cycles (3 by default, as run in CI;
//! the README gives the long run).

mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Child;

const QUEUE: &str = "crash-test";

/// A small deterministic generator, seeded from the clock (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Message `id`: its id, a checksum of the payload, and a payload whose size depends on the id
/// (every 97th is 300 KiB, to cross frame and storage thresholds).
fn message(id: u64) -> Vec<u8> {
    let len = if id.is_multiple_of(97) {
        300 * 1024
    } else {
        (id * 131 % 2048) as usize
    };
    let payload: Vec<u8> = (0..len).map(|i| (id as usize + i) as u8).collect();
    let mut body = id.to_be_bytes().to_vec();
    body.extend_from_slice(&fnv(&payload).to_be_bytes());
    body.extend_from_slice(&payload);
    body
}

/// The id of an intact message, or None if it is corrupt.
fn check(body: &[u8]) -> Option<u64> {
    let id = u64::from_be_bytes(body.get(..8)?.try_into().ok()?);
    let sum = u64::from_be_bytes(body.get(8..16)?.try_into().ok()?);
    (fnv(&body[16..]) == sum && body == message(id).as_slice()).then_some(id)
}

async fn start(dir: &std::path::Path) -> (Child, String) {
    let w = spawn_warren(dir, &[]).await;
    (
        w.child,
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", w.port),
    )
}

/// Publish from `next_id` on until the broker dies; confirmed ids go to `confirmed`.
async fn publish_until_killed(
    url: String,
    next_id: Arc<Mutex<u64>>,
    confirmed: Arc<Mutex<HashSet<u64>>>,
) {
    let Ok(conn) = Connection::connect(&url, ConnectionProperties::default()).await else {
        return;
    };
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    if ch
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .is_err()
    {
        return;
    }
    let mut window = VecDeque::new();
    loop {
        let id = {
            let mut n = next_id.lock().unwrap();
            *n += 1;
            *n
        };
        let props = BasicProperties::default().with_delivery_mode(2);
        let Ok(confirm) = ch
            .basic_publish(
                "".into(),
                QUEUE.into(),
                BasicPublishOptions::default(),
                &message(id),
                props,
            )
            .await
        else {
            return;
        };
        window.push_back((id, confirm));
        if window.len() >= 64 {
            let (id, c) = window.pop_front().unwrap();
            match c.await {
                Ok(c) if c.is_ack() => {
                    confirmed.lock().unwrap().insert(id);
                }
                _ => return,
            }
        }
    }
}

/// Consume and ack from the queue until the broker dies; ids received go to `consumed`
/// before they are acked. Every other cycle the consumer is slow: it acks only every 40th
/// delivery (multiple), so with a prefetch of 50 it holds deliveries back and a backlog builds.
async fn consume_until_killed(url: String, slow: bool, consumed: Arc<Mutex<HashSet<u64>>>) {
    let Ok(conn) = Connection::connect(&url, ConnectionProperties::default()).await else {
        return;
    };
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    if ch.basic_qos(50, BasicQosOptions::default()).await.is_err() {
        return;
    }
    let Ok(consumer) = ch
        .basic_consume(
            QUEUE.into(),
            "crash-consumer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
    else {
        return;
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    consumer.set_delegate(move |d: lapin::message::DeliveryResult| {
        let _ = tx.send(d);
        async {}
    });
    let mut n = 0u64;
    while let Some(Ok(Some(d))) = rx.recv().await {
        if let Some(id) = check(&d.data) {
            consumed.lock().unwrap().insert(id);
        }
        n += 1;
        if slow && !n.is_multiple_of(40) {
            continue;
        }
        let opts = BasicAckOptions { multiple: slow };
        if d.acker.ack(opts).await.is_err() {
            return;
        }
    }
}

/// Every message in the queue, acked as it is read.
async fn drain(url: &str) -> Vec<Vec<u8>> {
    let conn = within(
        10,
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut out = Vec::new();
    while let Some(m) = within(10, ch.basic_get(QUEUE.into(), BasicGetOptions::default()))
        .await
        .unwrap()
    {
        out.push(m.delivery.data.clone());
        m.delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
    }
    let _ = conn.close(200, "bye".into()).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_messages_survive_kill_9() {
    let cycles: usize = std::env::var("WARREN_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let dir = TempDir::new();
    let next_id = Arc::new(Mutex::new(0u64));
    let mut seen: HashSet<u64> = HashSet::new();
    let (mut child, mut url) = start(&dir.path).await;
    {
        let conn = Connection::connect(&url, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(QUEUE.into(), opts, FieldTable::default())
            .await
            .unwrap();
    }
    let mut total_confirmed = 0;
    for cycle in 0..cycles {
        let confirmed = Arc::new(Mutex::new(HashSet::new()));
        let consumed = Arc::new(Mutex::new(HashSet::new()));
        let publisher = tokio::spawn(publish_until_killed(
            url.clone(),
            next_id.clone(),
            confirmed.clone(),
        ));
        let consumer = tokio::spawn(consume_until_killed(
            url.clone(),
            cycle % 2 == 1,
            consumed.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(100 + rng.next() % 900)).await;
        child.kill().await.expect("SIGKILL");
        within(30, publisher).await.unwrap();
        // Its delegate may never hear of the dead connection: stop it, keep what it saw.
        consumer.abort();
        let _ = consumer.await;
        seen.extend(consumed.lock().unwrap().iter());

        (child, url) = start(&dir.path).await;
        let published = *next_id.lock().unwrap();
        for body in drain(&url).await {
            let id = check(&body)
                .unwrap_or_else(|| panic!("seed {seed}: corrupt message in cycle {cycle}"));
            assert!(
                id >= 1 && id <= published,
                "seed {seed}: unexpected message {id}"
            );
            seen.insert(id);
        }
        let confirmed = confirmed.lock().unwrap();
        let lost: Vec<&u64> = confirmed.iter().filter(|id| !seen.contains(id)).collect();
        assert!(
            lost.is_empty(),
            "seed {seed}: cycle {cycle} lost {} confirmed messages, e.g. {:?}",
            lost.len(),
            lost.iter().take(5).collect::<Vec<_>>()
        );
        total_confirmed += confirmed.len();
    }
    assert!(
        total_confirmed > 0,
        "nothing was confirmed: the test proved nothing"
    );
    eprintln!("crash test: {cycles} cycles, {total_confirmed} confirmed, 0 lost, seed {seed}");
    // A clean stop at the end.
    let pid = child.id().unwrap() as i32;
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let status = within(15, child.wait()).await.unwrap();
    assert!(status.success(), "SIGTERM exit: {status:?}");
}

/// A durable exchange, queue and binding exist once their `-ok` has arrived: killed right
/// after, warren has them on restart (RabbitMQ's Mnesia write survives `kill -9` too), and
/// so does an unbinding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declarations_survive_kill_9_right_after_their_ok() {
    let dir = TempDir::new();
    let (mut child, url) = start(&dir.path).await;
    let none = FieldTable::default;
    let ch = channel(&url).await;
    let durable_x = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let durable_q = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    ch.exchange_declare(
        "orders".into(),
        lapin::ExchangeKind::Topic,
        durable_x,
        none(),
    )
    .await
    .unwrap();
    ch.queue_declare("stock".into(), durable_q, none())
        .await
        .unwrap();
    let bind = |rk: &'static str| {
        ch.queue_bind(
            "stock".into(),
            "orders".into(),
            rk.into(),
            QueueBindOptions::default(),
            none(),
        )
    };
    bind("order.#").await.unwrap();
    child.kill().await.expect("SIGKILL");

    let (mut child, url) = start(&dir.path).await;
    let ch = channel(&url).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare("stock".into(), passive, none())
        .await
        .expect("the queue is there");
    assert!(routed(&ch).await, "the exchange and the binding are there");
    ch.queue_unbind("stock".into(), "orders".into(), "order.#".into(), none())
        .await
        .unwrap();
    child.kill().await.expect("SIGKILL");

    let (_child, url) = start(&dir.path).await;
    let ch = channel(&url).await;
    assert!(!routed(&ch).await, "the unbinding holds");
}

async fn channel(url: &str) -> lapin::Channel {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    std::mem::forget(conn); // the connection lives as long as the test's broker
    ch
}

/// Whether a mandatory message to `orders` with key `order.paid` is routed (not returned).
async fn routed(ch: &lapin::Channel) -> bool {
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = ch
        .basic_publish(
            "orders".into(),
            "order.paid".into(),
            mandatory,
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    match confirm {
        lapin::Confirmation::Ack(returned) => returned.is_none(),
        other => panic!("{other:?}"),
    }
}
