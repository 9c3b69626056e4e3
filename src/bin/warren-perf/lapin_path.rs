//! The lapin path (`--client lapin`): the same producers and consumers as the lean path, but
//! through the lapin client library, for comparing a real client with the hand-written one
//! (and for checking the lean path's numbers against a second implementation).
//!
//! * every producer and every consumer is a lapin `Connection` of its own with one channel;
//! * producers stamp the bodies exactly as the lean path does (`body::stamp`) and issue up to
//!   64 `basic_publish` calls at once (polled together, in order, so lapin's I/O loop can
//!   write them in one go), within the same count, rate and confirm window (`pace::Pacer`);
//!   with confirms, a task per producer awaits the `PublisherConfirm`s in publish order;
//! * consumers read the lapin `Consumer` stream, take every delivery that is ready, then send
//!   one `basic.ack multiple=true` for the ones due, as the lean path does per read.
//!
//! The topology (queues, fanout exchange, bindings, purge) is declared by `plan` on a lean
//! connection before the clients connect, as for the lean path.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_core::Stream;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    PublisherConfirm,
};
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::body::{latency, stamp};
use crate::histogram::Histogram;
use crate::pace::Pacer;
use crate::plan::Plan;
use crate::producer::CLOSE_WAIT_PRODUCER;
use crate::stats::{now_ns, Shared};
use crate::wire::READ_BUFFER;
use crate::Args;

/// At most this many deliveries are taken from the stream before acknowledging and counting.
const CONSUME_BATCH: u64 = 1024;

/// Connected clients, ready to run.
pub(crate) struct Ready {
    consumers: Vec<LapinConsumer>,
    producers: Vec<LapinProducer>,
}

struct LapinProducer {
    id: usize,
    who: String,
    conn: Connection,
    ch: Channel,
    exchange: ShortString,
    routing_key: ShortString,
    queue: Option<usize>,
}

struct LapinConsumer {
    who: String,
    conn: Connection,
    ch: Channel,
    consumer: Consumer,
}

pub(crate) async fn connect(uri: &str, who: &str) -> Result<(Connection, Channel), String> {
    let props =
        ConnectionProperties::default().with_connection_name(format!("warren-perf {who}").into());
    let conn = Connection::connect(uri, props)
        .await
        .map_err(|e| format!("{who}: cannot connect: {e}"))?;
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| format!("{who}: channel.open: {e}"))?;
    Ok((conn, ch))
}

/// Connects everybody (concurrently), consumers first so that they see the first message.
pub(crate) async fn setup(uri: &str, plan: &Arc<Plan>, args: &Arc<Args>) -> Result<Ready, String> {
    let consumer_setups: Vec<JoinHandle<Result<LapinConsumer, String>>> = (0..plan.consumers)
        .map(|j| {
            let (uri, plan, args) = (uri.to_string(), plan.clone(), args.clone());
            tokio::spawn(async move { setup_consumer(&uri, j, &plan, &args).await })
        })
        .collect();
    let mut consumers = Vec::new();
    for h in consumer_setups {
        consumers.push(h.await.map_err(|e| format!("consumer setup: {e}"))??);
    }
    let producer_setups: Vec<JoinHandle<Result<LapinProducer, String>>> = (0..plan.producers)
        .map(|i| {
            let (uri, plan, args) = (uri.to_string(), plan.clone(), args.clone());
            tokio::spawn(async move { setup_producer(&uri, i, &plan, &args).await })
        })
        .collect();
    let mut producers = Vec::new();
    for h in producer_setups {
        producers.push(h.await.map_err(|e| format!("producer setup: {e}"))??);
    }
    Ok(Ready {
        consumers,
        producers,
    })
}

/// Starts the consumers, then the producers.
pub(crate) fn spawn(
    ready: Ready,
    plan: &Arc<Plan>,
    args: &Arc<Args>,
    sh: &Arc<Shared>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for c in ready.consumers {
        tasks.push(tokio::spawn(run_consumer(c, plan.clone(), sh.clone())));
    }
    for p in ready.producers {
        tasks.push(tokio::spawn(run_producer(
            p,
            plan.clone(),
            args.clone(),
            sh.clone(),
        )));
    }
    tasks
}

// ---------------------------------------------------------------------------------------------
// Producers
// ---------------------------------------------------------------------------------------------

async fn setup_producer(
    uri: &str,
    id: usize,
    plan: &Plan,
    args: &Args,
) -> Result<LapinProducer, String> {
    let who = format!("producer {id}");
    let (conn, ch) = connect(uri, &who).await?;
    if args.confirm > 0 {
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("{who}: confirm.select: {e}"))?;
    }
    let (exchange, routing_key, queue) = plan.producer_route(id);
    Ok(LapinProducer {
        id,
        who,
        conn,
        ch,
        exchange: exchange.into(),
        routing_key: routing_key.into(),
        queue,
    })
}

/// The confirm window of one producer: confirms received (acks and nacks).
#[derive(Default)]
struct Window {
    confirmed: AtomicU64,
    freed: Notify,
}

type Pending = (PublisherConfirm, u64);

async fn run_producer(p: LapinProducer, plan: Arc<Plan>, args: Arc<Args>, sh: Arc<Shared>) {
    let window = Arc::new(Window::default());
    let (tx, rx) = mpsc::unbounded_channel::<Pending>();
    let confirms = (args.confirm > 0).then(|| {
        let (window, sh, who) = (window.clone(), sh.clone(), p.who.clone());
        tokio::spawn(async move { confirm_task(rx, &window, &sh, &who).await })
    });
    let result = publish_loop(&p, &plan, &args, &sh, &window, &tx).await;
    drop(tx);
    sh.producers_running.fetch_sub(1, Ordering::SeqCst);
    let interrupted = match result {
        Ok(complete) => !complete,
        Err(e) => {
            sh.fail(format!("{}: {e}", p.who));
            true
        }
    };
    // The monitor decides when everything is confirmed (or given up on).
    sh.stop_all.wait().await;
    if let Some(c) = confirms {
        let _ = c.await;
    }
    if !interrupted {
        // lapin sends connection.close after every publish it has queued; the close-ok says
        // the broker has taken them all (what the summary's "taken" rate is measured to).
        let close = p.conn.close(200, "OK".into());
        if let Ok(Ok(())) = tokio::time::timeout(CLOSE_WAIT_PRODUCER, close).await {
            sh.close_ok_ns.fetch_max(now_ns(), Ordering::Relaxed);
        }
    }
}

/// Publishes until the count is reached or the monitor says stop. Ok(false) when publishes
/// were abandoned half way (the broker stopped reading at the very end).
async fn publish_loop(
    p: &LapinProducer,
    plan: &Plan,
    args: &Args,
    sh: &Shared,
    window: &Window,
    confirms: &mpsc::UnboundedSender<Pending>,
) -> Result<bool, String> {
    // Batches as large as the lean path's (up to 64 publishes, about 256 KiB).
    let batch_max = (READ_BUFFER / (plan.size + 64)).clamp(1, 64);
    let mut bodies = vec![vec![0u8; plan.size]; batch_max];
    let props = if args.persistent {
        BasicProperties::default().with_delivery_mode(2)
    } else {
        BasicProperties::default()
    };
    let pacer = Pacer::new(args, batch_max);
    let mut sent: u64 = 0;
    while let Some(n) = pacer.next(sent, &window.confirmed, &window.freed, sh).await {
        let n = n as usize;
        let now = now_ns();
        for (k, body) in bodies[..n].iter_mut().enumerate() {
            body[..16].copy_from_slice(&stamp(now, sh.run_tag, p.id, sent + k as u64 + 1));
        }
        let mut publishes: Vec<_> = bodies[..n]
            .iter()
            .map(|body| {
                Some(Box::pin(p.ch.basic_publish(
                    p.exchange.clone(),
                    p.routing_key.clone(),
                    BasicPublishOptions::default(),
                    body,
                    props.clone(),
                )))
            })
            .collect();
        let results = tokio::select! {
            r = join_all(&mut publishes) => r,
            // Only when the broker stopped reading (flow control) at the very end.
            _ = sh.stop_all.wait() => return Ok(false),
        };
        for r in results {
            let confirm = r.map_err(|e| format!("basic.publish: {e}"))?;
            if args.confirm > 0 {
                let _ = confirms.send((confirm, now));
            }
        }
        sent += n as u64;
        sh.published.fetch_add(n as u64, Ordering::Relaxed);
        sh.last_publish_ns.fetch_max(now_ns(), Ordering::Relaxed);
        if let Some(q) = p.queue {
            sh.published_to[q].fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    Ok(true)
}

/// Polls the futures together, each first in slice order, until all are done.
async fn join_all<F: Future + Unpin>(futs: &mut [Option<F>]) -> Vec<F::Output> {
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (slot, o) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match Pin::new(f).poll(cx) {
                    Poll::Ready(r) => {
                        *o = Some(r);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Awaits the producer's confirms in publish order; the counts are handed over before any
/// wait, so the window opens as soon as possible.
async fn confirm_task(
    mut rx: mpsc::UnboundedReceiver<Pending>,
    window: &Window,
    sh: &Shared,
    who: &str,
) {
    let mut hist = Histogram::new();
    let mut last_flush = Instant::now();
    let mut counts = (0u64, 0u64);
    let hand_over = |counts: &mut (u64, u64)| {
        let (acked, nacked) = std::mem::take(counts);
        if acked + nacked > 0 {
            window
                .confirmed
                .fetch_add(acked + nacked, Ordering::Release);
            window.freed.notify_one();
            sh.confirmed.fetch_add(acked, Ordering::Relaxed);
            sh.nacked.fetch_add(nacked, Ordering::Relaxed);
            sh.last_confirm_ns.fetch_max(now_ns(), Ordering::Relaxed);
        }
    };
    loop {
        let next = match rx.try_recv() {
            Ok(next) => Some(next),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) => {
                hand_over(&mut counts);
                tokio::select! {
                    biased;
                    _ = sh.stop_all.wait() => None,
                    next = rx.recv() => next,
                }
            }
        };
        let Some((mut confirm, sent)) = next else {
            break;
        };
        let result = match poll_fn(|cx| Poll::Ready(Pin::new(&mut confirm).poll(cx))).await {
            Poll::Ready(r) => r,
            Poll::Pending => {
                hand_over(&mut counts);
                tokio::select! {
                    biased;
                    _ = sh.stop_all.wait() => break,
                    r = &mut confirm => r,
                }
            }
        };
        match result {
            Ok(Confirmation::Nack(_)) => counts.1 += 1,
            Ok(_) => counts.0 += 1,
            Err(e) => {
                if !sh.stop_all.is_set() {
                    sh.fail(format!("{who}: publisher confirm: {e}"));
                }
                break;
            }
        }
        hist.record(now_ns().saturating_sub(sent));
        if last_flush.elapsed() >= Duration::from_millis(100) {
            hist.flush_into(&sh.confirm_latency);
            last_flush = Instant::now();
        }
    }
    hand_over(&mut counts);
    hist.flush_into(&sh.confirm_latency);
}

// ---------------------------------------------------------------------------------------------
// Consumers
// ---------------------------------------------------------------------------------------------

async fn setup_consumer(
    uri: &str,
    id: usize,
    plan: &Plan,
    args: &Args,
) -> Result<LapinConsumer, String> {
    let who = format!("consumer {id}");
    let (conn, ch) = connect(uri, &who).await?;
    if args.prefetch > 0 {
        ch.basic_qos(args.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| format!("{who}: basic.qos: {e}"))?;
    }
    let queue = &plan.queues[plan.consumer_queue(id)];
    let options = BasicConsumeOptions {
        no_ack: plan.ack_every == 0,
        ..BasicConsumeOptions::default()
    };
    let consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            options,
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("{who}: basic.consume on {queue:?}: {e}"))?;
    Ok(LapinConsumer {
        who,
        conn,
        ch,
        consumer,
    })
}

async fn run_consumer(mut c: LapinConsumer, plan: Arc<Plan>, sh: Arc<Shared>) {
    match consume_loop(&mut c, &plan, &sh).await {
        Ok(last_unacked) => {
            // Acknowledge what was received so it is not requeued, then close politely.
            if let Some(tag) = last_unacked {
                let _ =
                    c.ch.basic_ack(tag, BasicAckOptions { multiple: true })
                        .await;
            }
            let close = c.conn.close(200, "OK".into());
            let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
        }
        Err(e) => sh.fail(format!("{}: {e}", c.who)),
    }
}

/// What a consumer has seen: the delivery tags for the acknowledgements and the latencies.
struct Seen {
    hist: Histogram,
    last_tag: u64,
    ack_due: u64,
    since_ack: u64,
    last_ns: u64,
}

/// Consumes until told to stop; returns the last delivery tag not yet acknowledged, if any.
async fn consume_loop(
    c: &mut LapinConsumer,
    plan: &Plan,
    sh: &Shared,
) -> Result<Option<u64>, String> {
    let ack_every = plan.ack_every;
    let mut seen = Seen {
        hist: Histogram::new(),
        last_tag: 0,
        ack_due: 0,
        since_ack: 0,
        last_ns: 0,
    };
    let mut acked_tag = 0u64;
    let mut last_flush = Instant::now();
    loop {
        // Every delivery that is ready (at least one), up to CONSUME_BATCH.
        let batch = poll_fn(|cx| {
            let mut got = 0u64;
            while got < CONSUME_BATCH {
                match Pin::new(&mut c.consumer).poll_next(cx) {
                    Poll::Ready(Some(Ok(d))) => {
                        let now = now_ns();
                        if let Some(ns) = latency(&d.data, sh.run_tag, now) {
                            seen.hist.record(ns);
                        }
                        got += 1;
                        seen.last_tag = d.delivery_tag;
                        seen.last_ns = now;
                        if ack_every > 0 {
                            seen.since_ack += 1;
                            if seen.since_ack >= ack_every {
                                seen.ack_due = d.delivery_tag;
                                seen.since_ack = 0;
                            }
                        }
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e.to_string())),
                    Poll::Ready(None) => {
                        return Poll::Ready(Err(
                            "the broker cancelled the consumer (queue deleted?)".to_string(),
                        ))
                    }
                    Poll::Pending => break,
                }
            }
            if got > 0 {
                Poll::Ready(Ok(got))
            } else {
                Poll::Pending
            }
        });
        let got = tokio::select! {
            biased;
            _ = sh.stop_all.wait() => break,
            r = batch => r?,
        };
        // One ack for all that is due.
        if seen.ack_due > acked_tag {
            c.ch.basic_ack(seen.ack_due, BasicAckOptions { multiple: true })
                .await
                .map_err(|e| format!("basic.ack: {e}"))?;
            acked_tag = seen.ack_due;
        }
        sh.consumed.fetch_add(got, Ordering::Relaxed);
        sh.last_consume_ns
            .fetch_max(seen.last_ns, Ordering::Relaxed);
        if last_flush.elapsed() >= Duration::from_millis(100) {
            seen.hist.flush_into(&sh.latency);
            last_flush = Instant::now();
        }
    }
    seen.hist.flush_into(&sh.latency);
    Ok((ack_every > 0 && seen.last_tag > acked_tag).then_some(seen.last_tag))
}
