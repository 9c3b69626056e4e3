//! Producers: the publish template, the publish loop and the confirm reader.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::protocol::{basic, confirm, AMQPClass};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use crate::body::stamp;
use crate::histogram::Histogram;
use crate::pace::Pacer;
use crate::plan::Plan;
use crate::stats::{now_ns, Shared};
use crate::uri::Uri;
use crate::wire::{
    be_u64, close_frame, describe_close, encode_method, method_id, Conn, FrameReader, FRAME_BODY,
    FRAME_END, FRAME_HEADER, FRAME_METHOD, READ_BUFFER,
};
use crate::Args;

// ---------------------------------------------------------------------------------------------
// Producers
// ---------------------------------------------------------------------------------------------

/// How long a producer waits for connection.close-ok at the end.
pub(crate) const CLOSE_WAIT_PRODUCER: Duration = Duration::from_secs(60);

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

pub(crate) struct Producer {
    id: usize,
    conn: Conn,
    template: Template,
    queue: Option<usize>,
}

pub(crate) async fn setup_producer(
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

pub(crate) async fn run_producer(p: Producer, args: Arc<Args>, sh: Arc<Shared>) {
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
    let pacer = Pacer::new(args, batch_max);
    let mut sent: u64 = 0;
    while let Some(n) = pacer
        .next(sent, &link.confirmed, &link.window_freed, sh)
        .await
    {
        let now = now_ns();
        for k in 0..n {
            let seq = sent + k + 1; // also the delivery tag under confirms
            let at = k as usize * msg_len + template.body_offset;
            batch[at..at + 16].copy_from_slice(&stamp(now, sh.run_tag, id, seq));
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

#[cfg(test)]
mod tests {
    use super::*;

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
