//! Consumers: basic.consume, then the delivery loop with coalesced acknowledgements.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::protocol::{basic, AMQPClass};
use amq_protocol::types::FieldTable;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

use crate::body::latency;
use crate::histogram::Histogram;
use crate::plan::Plan;
use crate::stats::{now_ns, Shared};
use crate::uri::Uri;
use crate::wire::{
    ack_frame, be_u64, close_frame, describe_close, method_id, Conn, FrameReader, FRAME_BODY,
    FRAME_HEADER, FRAME_METHOD,
};
use crate::Args;

// ---------------------------------------------------------------------------------------------
// Consumers
// ---------------------------------------------------------------------------------------------

pub(crate) async fn setup_consumer(
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

pub(crate) async fn run_consumer(conn: Conn, plan: Arc<Plan>, sh: Arc<Shared>) {
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
                    if body_seen == 0 {
                        if let Some(ns) = latency(p, sh.run_tag, now) {
                            hist.record(ns);
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
