//! A timer thread: jobs run at their instant, in order, one at a time, off the async
//! runtime (a job may write to the store). Queue expiry and delayed-message release each have
//! one; a job holds only weak references, so a deleted queue or vhost is not kept alive.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

type Job = Box<dyn FnOnce() + Send>;

struct Wake {
    at: Instant,
    seq: u64,
    job: Job,
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
struct Inner {
    heap: Mutex<(BinaryHeap<Reverse<Wake>>, u64)>,
    wake: Condvar,
}

/// A named timer thread, started on first use.
pub struct Timer {
    name: &'static str,
    inner: OnceLock<&'static Inner>,
}

impl Timer {
    pub const fn new(name: &'static str) -> Timer {
        Timer {
            name,
            inner: OnceLock::new(),
        }
    }

    fn inner(&self) -> &'static Inner {
        self.inner.get_or_init(|| {
            let t: &'static Inner = Box::leak(Box::default());
            let spawned = std::thread::Builder::new()
                .name(self.name.into())
                .spawn(move || run(t));
            if let Err(e) = spawned {
                tracing::error!(thread = self.name, error = %e, "cannot start a timer thread");
            }
            t
        })
    }

    /// Run `job` at `at` (at once if it has passed); jobs due at the same instant run in the
    /// order they were scheduled.
    pub fn schedule(&self, at: Instant, job: impl FnOnce() + Send + 'static) {
        let t = self.inner();
        let mut h = t.heap.lock().unwrap_or_else(|p| p.into_inner());
        h.1 += 1;
        let seq = h.1;
        h.0.push(Reverse(Wake {
            at,
            seq,
            job: Box::new(job),
        }));
        t.wake.notify_one();
    }
}

fn run(t: &'static Inner) {
    let mut h = t.heap.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        match h.0.peek() {
            None => h = t.wake.wait(h).unwrap_or_else(|p| p.into_inner()),
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
                (w.job)();
                h = t.heap.lock().unwrap_or_else(|p| p.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn jobs_run_in_due_order() {
        static T: Timer = Timer::new("warren-timer-test");
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        for (i, ms) in [(1, 60u64), (2, 20), (3, 40), (4, 0)] {
            let tx = tx.clone();
            T.schedule(now + Duration::from_millis(ms), move || {
                let _ = tx.send(i);
            });
        }
        let got: Vec<i32> = (0..4)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, vec![4, 2, 3, 1]);
    }
}
