//! The clock, the state shared by the monitor and the tasks, and the helpers of the report.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use tokio::sync::Notify;

use crate::histogram::Histogram;

// ---------------------------------------------------------------------------------------------
// Clock, histogram, shared state
// ---------------------------------------------------------------------------------------------

pub(crate) static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process-wide epoch; what the producers put in the message bodies.
pub(crate) fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A one-shot stop signal that tasks can check cheaply or await.
#[derive(Default)]
pub(crate) struct Stop {
    flag: AtomicBool,
    notify: Notify,
}

impl Stop {
    pub(crate) fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait(&self) {
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
pub(crate) struct Shared {
    /// Producers stop publishing.
    pub(crate) stop_publish: Stop,
    /// Everybody closes their connection.
    pub(crate) stop_all: Stop,
    pub(crate) published: AtomicU64,
    pub(crate) confirmed: AtomicU64,
    pub(crate) nacked: AtomicU64,
    pub(crate) consumed: AtomicU64,
    /// write() calls made by producers.
    pub(crate) writes: AtomicU64,
    /// Publishes per queue, for the producers that reach exactly one queue.
    pub(crate) published_to: Vec<AtomicU64>,
    pub(crate) last_publish_ns: AtomicU64,
    pub(crate) last_confirm_ns: AtomicU64,
    pub(crate) last_consume_ns: AtomicU64,
    /// When the last producer got its connection.close-ok: without confirms, the moment the
    /// broker had taken every publish.
    pub(crate) close_ok_ns: AtomicU64,
    pub(crate) producers_running: AtomicUsize,
    pub(crate) latency: Mutex<Histogram>,
    pub(crate) confirm_latency: Mutex<Histogram>,
    pub(crate) fatal: Mutex<Option<String>>,
    pub(crate) run_tag: u16,
}

impl Shared {
    /// Records the first fatal error and stops everything.
    pub(crate) fn fail(&self, msg: String) {
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
// Monitor and report
// ---------------------------------------------------------------------------------------------

pub(crate) fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

pub(crate) fn rate(n: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        n as f64 * 1e9 / ns as f64
    }
}

/// p50/p95/p99/max in ms, or None without samples.
pub(crate) fn summary_of(h: &Histogram) -> Option<[f64; 4]> {
    Some([
        ms(h.percentile(0.50)?),
        ms(h.percentile(0.95)?),
        ms(h.percentile(0.99)?),
        ms(h.max),
    ])
}

pub(crate) fn json_latency(s: Option<[f64; 4]>) -> String {
    match s {
        Some([p50, p95, p99, max]) => {
            format!("{{\"p50\":{p50:.3},\"p95\":{p95:.3},\"p99\":{p99:.3},\"max\":{max:.3}}}")
        }
        None => "null".into(),
    }
}
