//! Group commit: one thread makes written data durable for every waiting publisher at once.
//!
//! What sled 0.34.7 guarantees (read in its source, `pagecache/iobuf.rs` and
//! `pagecache/blob_io.rs`): `Db::flush` writes the log buffers with `pwrite` and then, on
//! Linux, calls `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` on the written range. That
//! pushes the data pages to the device but neither commits file metadata nor flushes the
//! device's write cache, so it survives a process kill but not a power loss. Large values
//! go to separate blob files written with `write_all` and never synced at all. Only sled's
//! periodic flusher thread calls `sync_all`, on its own schedule. So after `flush` we call
//! `syncfs(2)` on the data directory: one system call that commits every file of the store
//! (log, blobs, directory entries) and flushes the device cache. A confirm is sent only after
//! both succeeded.

use super::journal::Journal;
use super::Store;
use crate::connection::ConnEvent;
use crate::error::ReplyCode;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// How often the journal is applied when no publisher waits (acks and unconfirmed
/// persistent publishes).
const APPLY_INTERVAL: Duration = Duration::from_millis(50);
/// While publishers pipeline, a round waits until the journal has been still this long...
const LINGER_STEP: Duration = Duration::from_micros(50);
/// ...and, while consumers ack what they are given before it is written, until the messages
/// already delivered are acked, but never longer than this.
const MAX_LINGER: Duration = Duration::from_millis(2);
/// Every this many rounds, one waits for acks even if the last ones did not pay off: a probe
/// of whether consumers now ack fast enough to cancel writes.
const PROBE_EVERY: u64 = 8;

/// A publisher waiting for its data to be durable.
struct Waiter {
    ticket: u64,
    tx: UnboundedSender<ConnEvent>,
    channel: u16,
    /// The confirm sequence number to acknowledge.
    seq: u64,
}

#[derive(Default)]
struct State {
    waiters: Vec<Waiter>,
    /// The sync thread is waiting for work (a new waiter must wake it).
    idle: bool,
    stop: bool,
}

/// Shared between the store handle and the sync thread.
pub struct Syncer {
    /// How many flush+sync rounds have run (for tests and metrics).
    pub rounds: AtomicU64,
    state: Mutex<State>,
    wake: Condvar,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("rounds", &self.rounds)
            .finish()
    }
}

impl Syncer {
    pub fn new() -> Arc<Syncer> {
        Arc::new(Syncer {
            rounds: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send `ConnEvent::Synced { channel, seq }` to `tx` once `ticket` is durable (or
    /// settled by consumers before it had to be).
    pub fn wait(&self, ticket: u64, tx: UnboundedSender<ConnEvent>, channel: u16, seq: u64) {
        let mut st = self.lock();
        st.waiters.push(Waiter {
            ticket,
            tx,
            channel,
            seq,
        });
        if st.idle {
            st.idle = false;
            self.wake.notify_one();
        }
    }

    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_all();
    }

    /// The sync thread's loop: wait for waiters, apply the journal, flush and sync once
    /// for all of them.
    pub(super) fn run(&self, store: &Store) {
        let mut pipelined = false;
        // Whether waiting for consumers' acks paid off: most puts were cancelled.
        let mut acks_cancel = false;
        let mut totals = store.journal.totals();
        let mut round = 0u64;
        loop {
            let stopping = {
                let mut st = self.lock();
                let mut waited = false;
                while st.waiters.is_empty() && !st.stop && !(waited && store.journal.has_work()) {
                    st.idle = true;
                    st = self
                        .wake
                        .wait_timeout(st, APPLY_INTERVAL)
                        .map(|r| r.0)
                        .unwrap_or_else(|p| p.into_inner().0);
                    st.idle = false;
                    waited = true;
                }
                st.stop && st.waiters.is_empty()
            };
            round += 1;
            if pipelined {
                linger(
                    &store.journal,
                    acks_cancel || round.is_multiple_of(PROBE_EVERY),
                );
            }
            let result = self.round(store);
            let now = store.journal.totals();
            let (puts, cancelled) = (now.0 - totals.0, now.1 - totals.1);
            totals = now;
            acks_cancel = puts > 0 && cancelled * 2 >= puts;
            let target = match &result {
                Ok(t) => *t,
                Err(_) => store.journal.issued(),
            };
            let ready: Vec<Waiter> = {
                let mut st = self.lock();
                let (ready, rest) = std::mem::take(&mut st.waiters)
                    .into_iter()
                    .partition(|w| w.ticket <= target);
                st.waiters = rest;
                ready
            };
            pipelined = ready.len() > 1;
            match result {
                Ok(_) => notify(ready),
                Err(e) => {
                    // Never retry and then ack: the publishers' connections are closed, so
                    // their unconfirmed messages are republished by the clients.
                    tracing::error!(error = %e, "store sync failed");
                    for w in ready {
                        let _ = w.tx.send(ConnEvent::Close {
                            code: ReplyCode::InternalError,
                            text: format!("INTERNAL_ERROR - store sync failed: {e}"),
                        });
                    }
                }
            }
            if stopping {
                return;
            }
        }
    }

    /// Apply the journal, then flush and sync if that (or a compaction) wrote anything.
    /// Returns the ticket now durable.
    fn round(&self, store: &Store) -> Result<u64, String> {
        let target = store.apply_journal().map_err(|e| e.to_string())?;
        if store.journal.take_dirty() {
            store.db.flush().map_err(|e| e.to_string())?;
            syncfs(&store.dir)?;
            self.rounds.fetch_add(1, Ordering::Relaxed);
        }
        Ok(target)
    }
}

/// Wait while the journal keeps moving (publishers pipelining, consumers acking), so one
/// round covers a whole confirm window; with `for_acks`, also while delivered messages are
/// pending, so that those acked meanwhile are never written.
fn linger(journal: &Journal, for_acks: bool) {
    let start = Instant::now();
    let mut seen = journal.activity();
    loop {
        std::thread::sleep(LINGER_STEP);
        let now = journal.activity();
        if start.elapsed() >= MAX_LINGER {
            return;
        }
        if now == seen && !(for_acks && journal.delivered_puts() > 0) {
            return;
        }
        seen = now;
    }
}

/// One `Synced` event per channel: the highest sequence number covers the lower ones (a
/// channel's tickets grow with its sequence numbers). Commits are sent as they are.
fn notify(ready: Vec<Waiter>) {
    let mut latest: Vec<Waiter> = Vec::new();
    for w in ready {
        if w.seq == crate::channel::COMMIT_SEQ {
            let _ = w.tx.send(ConnEvent::Synced {
                channel: w.channel,
                seq: w.seq,
            });
            continue;
        }
        match latest
            .iter_mut()
            .find(|l| l.channel == w.channel && l.tx.same_channel(&w.tx))
        {
            Some(l) => l.seq = l.seq.max(w.seq),
            None => latest.push(w),
        }
    }
    for w in latest {
        let _ = w.tx.send(ConnEvent::Synced {
            channel: w.channel,
            seq: w.seq,
        });
    }
}

/// Commit every file of the filesystem holding `dir` (see the module comment for why).
#[cfg(target_os = "linux")]
pub(super) fn syncfs(dir: &File) -> Result<(), String> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: syncfs only reads the file descriptor, which `dir` keeps open for the call.
    let ret = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn syncfs(dir: &File) -> Result<(), String> {
    dir.sync_all().map_err(|e| e.to_string())
}
