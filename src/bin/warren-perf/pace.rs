//! How many publishes a producer may send next: the count (`-C`), the rate (`-r`) and the
//! confirm window (`-c`), shared by both clients.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::stats::Shared;
use crate::Args;

pub(crate) struct Pacer {
    batch_max: u64,
    count: u64,
    rate: u64,
    window: u64,
    start: Instant,
}

impl Pacer {
    /// Starts the clock of the rate limit.
    pub(crate) fn new(args: &Args, batch_max: usize) -> Pacer {
        Pacer {
            batch_max: batch_max as u64,
            count: args.count,
            rate: args.rate,
            window: args.confirm,
            start: Instant::now(),
        }
    }

    /// The size of the next batch (1..=batch_max) once `sent` publishes are out and
    /// `confirmed` of them confirmed (acks and nacks, signalled on `freed` with notify_one),
    /// or None when the producer is done or told to stop.
    pub(crate) async fn next(
        &self,
        sent: u64,
        confirmed: &AtomicU64,
        freed: &Notify,
        sh: &Shared,
    ) -> Option<u64> {
        loop {
            if sh.stop_publish.is_set() {
                return None;
            }
            let mut n = self.batch_max;
            if self.count > 0 {
                if sent >= self.count {
                    return None;
                }
                n = n.min(self.count - sent);
            }
            if self.rate > 0 {
                // Message k (from 0) is due at k / rate seconds after the start.
                let elapsed = self.start.elapsed().as_nanos();
                let due = (elapsed * u128::from(self.rate) / 1_000_000_000) as u64 + 1;
                if due <= sent {
                    let at = Duration::from_nanos(
                        (u128::from(sent) * 1_000_000_000 / u128::from(self.rate)) as u64,
                    );
                    tokio::select! {
                        _ = tokio::time::sleep_until((self.start + at).into()) => {}
                        _ = sh.stop_publish.wait() => {}
                    }
                    continue;
                }
                n = n.min(due - sent);
            }
            if self.window > 0 {
                loop {
                    let outstanding = sent - confirmed.load(Ordering::Acquire);
                    if outstanding < self.window {
                        n = n.min(self.window - outstanding);
                        break;
                    }
                    // notify_one keeps a permit when nobody waits, so no wake-up is lost.
                    tokio::select! {
                        _ = freed.notified() => {}
                        _ = sh.stop_publish.wait() => return None,
                    }
                }
            }
            return Some(n);
        }
    }
}
