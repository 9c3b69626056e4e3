//! Bounded memory and disk: beyond the memory budget, queued messages keep only a small slot
//! in RAM and are read back from the store when delivered (persistent ones are there already,
//! transient ones are written out); the segment files holding large bodies are deleted or
//! compacted once their messages are settled.

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use support::*;

const BUDGET: u64 = 64 * 1024;

fn paged_out(b: &TestBroker, queue: &str) -> usize {
    b.broker()
        .unwrap()
        .vhost("/")
        .unwrap()
        .queue(queue)
        .unwrap()
        .paged_out()
}

fn body(i: u32) -> Vec<u8> {
    let mut v = format!("message-{i}-").into_bytes();
    v.resize(1024, b'x');
    v
}

/// Declare the durable queue "deep" and publish `body(i)` with `props(i)` for each i in
/// `0..n`, pipelined, then wait for every confirm.
async fn fill(
    b: &TestBroker,
    n: u32,
    props: impl Fn(u32) -> BasicProperties,
) -> (lapin::Connection, Channel) {
    let (conn, ch) = confirm_channel(b).await;
    let opts = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(
        5,
        ch.queue_declare("deep".into(), opts, FieldTable::default()),
    )
    .await
    .unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let c = ch
            .basic_publish(
                "".into(),
                "deep".into(),
                BasicPublishOptions::default(),
                &body(i),
                props(i),
            )
            .await
            .unwrap();
        pending.push(c);
    }
    for c in pending {
        assert!(within(30, c).await.unwrap().is_ack());
    }
    (conn, ch)
}

#[tokio::test]
async fn deep_queue_pages_bodies_out_and_delivers_them_intact_in_order() {
    let b = TestBroker::start_with(|c| {
        c.storage.memory_budget = BUDGET;
        c.storage.transient_budget = BUDGET;
    })
    .await;
    let mut headers = FieldTable::default();
    headers.insert("k".into(), AMQPValue::LongInt(7));
    let persistent = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers);
    // Every tenth message is transient: it is paged out too, and delivered in its place.
    let props = |i: u32| {
        if i.is_multiple_of(10) {
            BasicProperties::default()
        } else {
            persistent.clone()
        }
    };
    let (_conn, ch) = fill(&b, 500, props).await;

    let paged = paged_out(&b, "deep");
    assert!(
        paged > 400,
        "only {paged} of 500 messages paged out with a 64 KiB budget"
    );
    let store = &b.broker().unwrap().store;
    for used in [store.budget().used(), store.transient_budget().used()] {
        assert!(
            used <= BUDGET,
            "{used} bytes held against a budget of {BUDGET}"
        );
    }

    for i in 0..500u32 {
        let m = get(&ch, "deep")
            .await
            .unwrap_or_else(|| panic!("message {i} missing"));
        assert_eq!(m.delivery.data, body(i), "message {i}");
        assert_eq!(m.delivery.properties, props(i));
        within(5, m.delivery.acker.ack(BasicAckOptions::default()))
            .await
            .unwrap();
    }
    assert!(get(&ch, "deep").await.is_none());
    assert_eq!(b.broker().unwrap().store.budget().used(), 0);
    assert_eq!(b.broker().unwrap().store.transient_budget().used(), 0);
}

#[tokio::test]
async fn recovery_of_a_deep_queue_stays_within_the_budget() {
    let b = TestBroker::start_with(|c| {
        c.storage.memory_budget = BUDGET;
        c.storage.transient_budget = BUDGET;
    })
    .await;
    drop(
        fill(&b, 300, |_| {
            BasicProperties::default().with_delivery_mode(2)
        })
        .await,
    );
    let b = b.restart().await;
    assert!(b.broker().unwrap().store.budget().used() <= BUDGET);
    assert!(paged_out(&b, "deep") > 200);
    let ch = open(&b.connect().await).await;
    let got = drain(&ch, "deep").await;
    assert_eq!(got, (0..300u32).map(body).collect::<Vec<_>>());
}

fn store(b: &TestBroker) -> &warren::store::Store {
    &b.broker().unwrap().store
}

/// Wait until the body segments are down to `files` files and `bytes` bytes.
async fn segments_at_most(b: &TestBroker, files: usize, bytes: u64) {
    let ok = || {
        let (f, n) = store(b).body_usage();
        f <= files && n <= bytes
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "body segments still at {:?}",
            store(b).body_usage()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await; // poll interval
    }
}

/// The two budgets are separate: persistent messages beyond theirs keep only a slot (they are
/// on disk anyway), while transient ones stay in RAM until theirs (by default a fifth of the
/// machine's memory, where RabbitMQ starts paging) is spent.
#[tokio::test]
async fn transient_messages_are_paged_only_beyond_their_own_budget() {
    let b = TestBroker::start_with(|c| {
        c.storage.memory_budget = BUDGET;
        c.storage.transient_budget = 64 * 1024 * 1024;
    })
    .await;
    let (_conn, ch) = fill(&b, 300, |_| BasicProperties::default()).await;
    assert_eq!(
        paged_out(&b, "deep"),
        0,
        "transient messages were paged out"
    );
    assert_eq!(store(&b).budget().used(), 0);
    assert!(store(&b).transient_budget().used() > BUDGET);
    let persistent = BasicProperties::default().with_delivery_mode(2);
    for i in 300..600u32 {
        publish_with(&ch, "", "deep", &body(i), persistent.clone()).await;
    }
    wait_ready(&ch, "deep", 600).await;
    assert!(
        paged_out(&b, "deep") > 200,
        "persistent ones beyond theirs were not"
    );
    assert_eq!(drain(&ch, "deep").await.len(), 600);
    assert_eq!(store(&b).transient_budget().used(), 0);
}

#[tokio::test]
async fn transient_messages_beyond_the_budget_are_paged_out_and_come_back_in_order() {
    let b = TestBroker::start_with(|c| {
        c.storage.memory_budget = BUDGET;
        c.storage.transient_budget = BUDGET;
        c.storage.segment_size = 64 * 1024;
    })
    .await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    queue(&ch, "slow").await;
    let mut headers = FieldTable::default();
    headers.insert("n".into(), AMQPValue::LongString("v".into()));
    let props = BasicProperties::default()
        .with_headers(headers)
        .with_message_id("m".into());
    // Small ones are paged out inline in sled, large ones through the body segments.
    let body = |i: u32| {
        let mut v = body(i);
        v.truncate(if i.is_multiple_of(2) { 100 } else { 1024 });
        v
    };
    for i in 0..1000u32 {
        publish_with(&ch, "", "slow", &body(i), props.clone()).await;
    }
    wait_ready(&ch, "slow", 1000).await;
    let paged = paged_out(&b, "slow");
    assert!(
        paged > 700,
        "only {paged} of 1000 transient messages paged out"
    );
    assert!(store(&b).transient_budget().used() <= BUDGET);
    assert!(
        store(&b).body_usage().0 > 2,
        "large bodies went to segments"
    );

    for i in 0..1000u32 {
        let m = get(&ch, "slow")
            .await
            .unwrap_or_else(|| panic!("message {i} missing"));
        assert_eq!(m.delivery.data, body(i), "message {i}");
        assert_eq!(m.delivery.properties, props);
        within(5, m.delivery.acker.ack(BasicAckOptions::default()))
            .await
            .unwrap();
    }
    assert!(get(&ch, "slow").await.is_none());
    assert_eq!(store(&b).transient_budget().used(), 0);
    // Every sealed segment goes with its last message; only the one being written stays.
    segments_at_most(&b, 1, u64::MAX).await;
}

#[tokio::test]
async fn deleting_a_queue_of_paged_messages_frees_their_space() {
    let b = TestBroker::start_with(|c| {
        c.storage.memory_budget = BUDGET;
        c.storage.transient_budget = BUDGET;
        c.storage.segment_size = 64 * 1024;
    })
    .await;
    let conn = b.connect().await;
    let ch = open(&conn).await;
    queue(&ch, "doomed").await;
    for i in 0..300u32 {
        publish(&ch, "", "doomed", &body(i)).await;
    }
    wait_ready(&ch, "doomed", 300).await;
    assert!(store(&b).body_usage().0 > 2);
    let n = within(
        5,
        ch.queue_delete("doomed".into(), QueueDeleteOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(n, 300);
    segments_at_most(&b, 1, u64::MAX).await;
    assert_eq!(store(&b).transient_budget().used(), 0);
}

/// Publishing and acking far more than the segment size through a durable queue leaves no
/// more than the segment being written on disk.
#[tokio::test]
async fn publish_ack_churn_does_not_grow_the_body_segments() {
    const SEGMENT: u64 = 256 * 1024;
    let b = TestBroker::start_with(|c| c.storage.segment_size = SEGMENT).await;
    let (_conn, ch) = confirm_channel(&b).await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(
        5,
        ch.queue_declare("churn".into(), durable, FieldTable::default()),
    )
    .await
    .unwrap();
    let body = vec![b'c'; 8 * 1024];
    let persistent = BasicProperties::default().with_delivery_mode(2);
    // 20 rounds of 100 x 8 KiB: 16 MiB through 256 KiB segments.
    for round in 0..20 {
        let mut pending = Vec::new();
        for _ in 0..100 {
            let c = ch
                .basic_publish(
                    "".into(),
                    "churn".into(),
                    BasicPublishOptions::default(),
                    &body,
                    persistent.clone(),
                )
                .await
                .unwrap();
            pending.push(c);
        }
        for c in pending {
            assert!(within(10, c).await.unwrap().is_ack());
        }
        assert_eq!(drain(&ch, "churn").await.len(), 100, "round {round}");
        segments_at_most(&b, 1, SEGMENT + 9 * 1024).await;
    }
}

/// Segments left mostly empty by long-lived messages are compacted: the survivors are moved,
/// the old files deleted, and the survivors come back intact after a restart.
#[tokio::test]
async fn sparse_segments_are_compacted_and_survivors_stay_intact() {
    const SEGMENT: u64 = 64 * 1024;
    let b = TestBroker::start_with(|c| c.storage.segment_size = SEGMENT).await;
    let (conn, ch) = fill(&b, 400, |_| {
        BasicProperties::default().with_delivery_mode(2)
    })
    .await;
    let before = store(&b).body_usage().0;
    assert!(before >= 6, "400 KiB in 64 KiB segments: {before}");
    // Ack all but every tenth message; those stay unacked and go back to the queue when
    // the channel closes.
    for i in 0..400u32 {
        let m = get(&ch, "deep").await.unwrap();
        assert_eq!(m.delivery.data, body(i));
        if !i.is_multiple_of(10) {
            within(5, m.delivery.acker.ack(BasicAckOptions::default()))
                .await
                .unwrap();
        }
    }
    within(5, ch.close(200, "bye".into())).await.unwrap();
    // 40 KiB are left alive in 400 KiB of segments: compaction moves them together.
    segments_at_most(&b, 3, 3 * SEGMENT).await;
    drop(conn);
    let b = b.restart().await;
    let ch = open(&b.connect().await).await;
    let got = drain(&ch, "deep").await;
    let expected: Vec<Vec<u8>> = (0..400u32)
        .filter(|i| i.is_multiple_of(10))
        .map(body)
        .collect();
    assert_eq!(got, expected);
}
