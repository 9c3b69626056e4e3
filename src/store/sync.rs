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

use crate::connection::ConnEvent;
use crate::error::ReplyCode;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

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
    /// Highest ticket known durable.
    synced: u64,
    stop: bool,
}

/// Shared between the store handle and the sync thread.
pub struct Syncer {
    /// Tickets handed out: each write that must become durable takes the next one after it
    /// is applied to sled, so a flush that starts after reading `issued` covers it.
    issued: AtomicU64,
    /// How many flush+sync rounds have run (for tests and metrics).
    pub rounds: AtomicU64,
    state: Mutex<State>,
    wake: Condvar,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("issued", &self.issued)
            .finish()
    }
}

impl Syncer {
    pub fn new() -> Arc<Syncer> {
        Arc::new(Syncer {
            issued: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called after a write that must be durable before it is confirmed.
    pub fn ticket(&self) -> u64 {
        self.issued.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Send `ConnEvent::Synced { channel, seq }` to `tx` once `ticket` is durable.
    pub fn wait(&self, ticket: u64, tx: UnboundedSender<ConnEvent>, channel: u16, seq: u64) {
        let mut st = self.lock();
        st.waiters.push(Waiter {
            ticket,
            tx,
            channel,
            seq,
        });
        self.wake.notify_one();
    }

    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_all();
    }

    /// The sync thread's loop: wait for waiters, flush and sync once for all of them.
    pub fn run(&self, db: sled::Db, dir: &File) {
        loop {
            let target = {
                let mut st = self.lock();
                while st.waiters.is_empty() && !st.stop {
                    st = self
                        .wake
                        .wait_timeout(st, Duration::from_millis(500))
                        .map(|r| r.0)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                if st.stop && st.waiters.is_empty() {
                    return;
                }
                self.issued.load(Ordering::Acquire)
            };
            let result = db
                .flush()
                .map_err(|e| e.to_string())
                .and_then(|_| syncfs(dir));
            self.rounds.fetch_add(1, Ordering::Relaxed);
            let mut st = self.lock();
            let (ready, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut st.waiters)
                .into_iter()
                .partition(|w| w.ticket <= target);
            st.waiters = rest;
            match &result {
                Ok(()) => {
                    st.synced = st.synced.max(target);
                    drop(st);
                    for w in ready {
                        let _ = w.tx.send(ConnEvent::Synced {
                            channel: w.channel,
                            seq: w.seq,
                        });
                    }
                }
                Err(e) => {
                    // Never retry and then ack: the publishers' connections are closed, so
                    // their unconfirmed messages are republished by the clients.
                    drop(st);
                    tracing::error!(error = %e, "store sync failed");
                    for w in ready {
                        let _ = w.tx.send(ConnEvent::Close {
                            code: ReplyCode::InternalError,
                            text: format!("INTERNAL_ERROR - store sync failed: {e}"),
                        });
                    }
                }
            }
        }
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
