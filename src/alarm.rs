//! Memory and disk alarms, as RabbitMQ has them: when the broker's resident memory passes its
//! high watermark, or free disk space under the data directory falls below its limit, the
//! connections that publish are blocked (their sockets are no longer read, and clients that
//! announced the `connection.blocked` capability are told so) until every alarm has cleared.
//! Connections that only consume are never blocked, so queues keep draining.

use crate::config::ResourceConfig;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How often memory and disk are measured (RabbitMQ checks memory every 500 ms, disk less
/// often).
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The alarms in effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alarm {
    pub memory: bool,
    pub disk: bool,
}

impl Alarm {
    pub fn any(&self) -> bool {
        self.memory || self.disk
    }

    /// The reason `connection.blocked` carries, in RabbitMQ's words.
    pub fn reason(&self) -> String {
        let what: Vec<&str> = [(self.memory, "low on memory"), (self.disk, "low on disk")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, w)| *w)
            .collect();
        what.join(" & ")
    }
}

/// How the memory high watermark was given: a fraction of the machine's memory, or bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Watermark {
    Relative(f64),
    Absolute(u64),
}

/// The limits, the current alarms, and the channel connections watch them on.
#[derive(Debug)]
pub struct Alarms {
    state: watch::Sender<Alarm>,
    memory_limit: AtomicU64,
    /// What `memory_limit` was computed from, for `status`.
    watermark: std::sync::Mutex<Watermark>,
    disk_free_limit: AtomicU64,
    data_dir: PathBuf,
    recheck: Notify,
}

impl Alarms {
    pub fn new(cfg: &ResourceConfig, data_dir: PathBuf) -> Arc<Alarms> {
        Arc::new(Alarms {
            state: watch::channel(Alarm::default()).0,
            memory_limit: AtomicU64::new(cfg.memory_limit()),
            watermark: std::sync::Mutex::new(match cfg.memory_high_watermark_absolute {
                0 => Watermark::Relative(cfg.memory_high_watermark),
                n => Watermark::Absolute(n),
            }),
            disk_free_limit: AtomicU64::new(cfg.disk_free_limit),
            data_dir,
            recheck: Notify::new(),
        })
    }

    /// Follow the alarms (a connection task does).
    pub fn subscribe(&self) -> watch::Receiver<Alarm> {
        self.state.subscribe()
    }

    pub fn current(&self) -> Alarm {
        *self.state.borrow()
    }

    pub fn memory_limit(&self) -> u64 {
        self.memory_limit.load(Ordering::Relaxed)
    }

    pub fn disk_free_limit(&self) -> u64 {
        self.disk_free_limit.load(Ordering::Relaxed)
    }

    /// Change the memory high watermark at run time (`rabbitmqctl
    /// set_vm_memory_high_watermark absolute N`); takes effect at once.
    pub fn set_memory_limit(&self, bytes: u64) {
        self.set_watermark(Watermark::Absolute(bytes));
    }

    /// The memory high watermark as it was given (configuration or the last change).
    pub fn watermark(&self) -> Watermark {
        *self.watermark.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Change the memory high watermark at run time (`rabbitmqctl
    /// set_vm_memory_high_watermark`); returns the limit in bytes, in effect at once.
    pub fn set_watermark(&self, w: Watermark) -> u64 {
        let bytes = match w {
            Watermark::Absolute(n) => n,
            Watermark::Relative(f) => {
                let total = crate::memory::total_bytes();
                (total as f64 * f) as u64
            }
        };
        *self.watermark.lock().unwrap_or_else(|p| p.into_inner()) = w;
        self.memory_limit.store(bytes, Ordering::Relaxed);
        self.recheck.notify_one();
        bytes
    }

    /// Change the free disk limit at run time (`rabbitmqctl set_disk_free_limit N`).
    pub fn set_disk_free_limit(&self, bytes: u64) {
        self.disk_free_limit.store(bytes, Ordering::Relaxed);
        self.recheck.notify_one();
    }

    /// Measure and update the alarms until `stop` changes.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            self.check();
            tokio::select! {
                _ = tokio::time::sleep(CHECK_INTERVAL) => {}
                _ = self.recheck.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Bytes free where the data directory is, when known.
    pub fn disk_free(&self) -> Option<u64> {
        free_disk(&self.data_dir)
    }

    /// One measurement.
    pub fn check(&self) {
        let used = crate::memory::rss_kib() * 1024;
        let mem_limit = self.memory_limit();
        // Free space unknown (no statvfs): no disk alarm.
        let free = free_disk(&self.data_dir).unwrap_or(u64::MAX);
        let disk_limit = self.disk_free_limit();
        let now = Alarm {
            memory: used > mem_limit,
            disk: free < disk_limit,
        };
        self.state.send_if_modified(|old| {
            if *old == now {
                return false;
            }
            if now.memory != old.memory {
                if now.memory {
                    tracing::warn!("memory resource limit alarm set: {used} bytes used, limit {mem_limit} bytes; blocking publishers");
                } else {
                    tracing::info!("memory resource limit alarm cleared: {used} bytes used, limit {mem_limit} bytes");
                }
            }
            if now.disk != old.disk {
                if now.disk {
                    tracing::warn!("disk resource limit alarm set: {free} bytes free, limit {disk_limit} bytes; blocking publishers");
                } else {
                    tracing::info!("disk resource limit alarm cleared: {free} bytes free, limit {disk_limit} bytes");
                }
            }
            *old = now;
            true
        });
    }
}

/// Bytes available to unprivileged users on the file system holding `dir` (or its nearest
/// existing ancestor).
fn free_disk(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let mut dir = dir;
    while !dir.exists() {
        dir = dir.parent()?;
    }
    let path = if dir.as_os_str().is_empty() {
        std::ffi::CString::new(".").ok()?
    } else {
        std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?
    };
    // SAFETY: statvfs reads the NUL-terminated path and writes only into `st`, a plain struct
    // of integers that it fully initialises on success (zeroed before, read only after 0).
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `path` outlives the call.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_rabbitmqs() {
        let a = |memory, disk| Alarm { memory, disk };
        assert_eq!(a(true, false).reason(), "low on memory");
        assert_eq!(a(false, true).reason(), "low on disk");
        assert_eq!(a(true, true).reason(), "low on memory & low on disk");
        assert!(!a(false, false).any());
    }

    #[test]
    fn free_disk_is_measured_under_a_missing_directory() {
        let free = free_disk(std::path::Path::new("/tmp/warren-no-such-dir/x")).unwrap();
        assert!(free > 0);
    }
}
