//! Expiring messages on time: a queue whose head message has an expiry asks to be woken then,
//! so expired messages leave (and are dead-lettered) even when nobody touches the queue, as
//! RabbitMQ does. One thread serves every queue of the process.

use super::Queue;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock, Weak};
use std::time::Instant;

struct Wake {
    at: Instant,
    seq: u64,
    queue: Weak<Queue>,
}

impl PartialEq for Wake {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Wake {}
impl PartialOrd for Wake {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Wake {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
struct Timer {
    heap: Mutex<(BinaryHeap<Reverse<Wake>>, u64)>,
    wake: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static Timer = Box::leak(Box::default());
        let spawned = std::thread::Builder::new()
            .name("warren-expiry".into())
            .spawn(move || run(t));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the expiry thread");
        }
        t
    })
}

/// Wake `queue` at `at` to drop (or dead-letter) its expired head messages.
pub(super) fn schedule(at: Instant, queue: Weak<Queue>) {
    let t = timer();
    let mut h = t.heap.lock().unwrap_or_else(|p| p.into_inner());
    h.1 += 1;
    let seq = h.1;
    h.0.push(Reverse(Wake { at, seq, queue }));
    t.wake.notify_one();
}

fn run(t: &'static Timer) {
    let mut h = t.heap.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        match h.0.peek() {
            None => {
                h = t.wake.wait(h).unwrap_or_else(|p| p.into_inner());
            }
            Some(Reverse(w)) if w.at > now => {
                let d = w.at - now;
                h = t
                    .wake
                    .wait_timeout(h, d)
                    .map(|r| r.0)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            Some(_) => {
                let Some(Reverse(w)) = h.0.pop() else {
                    continue;
                };
                drop(h);
                if let Some(q) = w.queue.upgrade() {
                    q.expire();
                }
                h = t.heap.lock().unwrap_or_else(|p| p.into_inner());
            }
        }
    }
}
