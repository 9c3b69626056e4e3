//! Write-behind for message records: publishes, first deliveries and settlements are
//! collected in memory and applied to sled in batches by the sync thread, just before its
//! flush. A message settled before its batch is applied (published, delivered and acked
//! within one group commit) never touches sled at all: its put and its removal cancel out,
//! and its confirm needs no disk sync, as in RabbitMQ, where a message consumed and acked
//! before it reaches the disk is confirmed without being written.
//!
//! Reads (a paged-out body reaching the head of its queue) look at the pending puts first,
//! then at the batch being applied, then at sled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A record waiting to be written.
struct Put {
    value: Arc<[u8]>,
    /// Delivered to a consumer before being written: write the delivered mark too.
    delivered: bool,
}

/// A change to a record already handed to sled (or being handed to it).
enum Op {
    Delivered(Vec<u8>),
    Remove(Vec<u8>),
    /// A held message of a delayed exchange was released or dropped.
    RemoveDelayed(Vec<u8>),
}

#[derive(Default)]
struct Pending {
    puts: HashMap<Vec<u8>, Put>,
    /// How many of `puts` were delivered to a consumer (their acks may cancel them soon).
    delivered_puts: usize,
    ops: Vec<Op>,
    /// The puts of the batch being applied, readable until sled has them.
    applying: Option<Arc<HashMap<Vec<u8>, Put>>>,
}

/// What one round takes from the journal.
pub struct Batch {
    puts: Arc<HashMap<Vec<u8>, Put>>,
    ops: Vec<Op>,
    /// Every ticket up to this one is in this batch, an earlier one, or cancelled.
    pub target: u64,
}

#[derive(Default)]
pub struct Journal {
    pending: Mutex<Pending>,
    /// Tickets handed out, one per put (see [`super::sync::Syncer`]).
    issued: AtomicU64,
    /// Puts, ops and cancellations so far: the sync thread waits for this to stop moving
    /// before it takes a batch when publishers are pipelining.
    activity: AtomicU64,
    /// Puts, and puts cancelled before being written, so far.
    puts_total: AtomicU64,
    cancelled_total: AtomicU64,
    /// A batch was written to sled and not yet flushed and synced.
    dirty: AtomicBool,
    /// Held while a batch is applied, so batches reach sled in order.
    apply: Mutex<()>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("issued", &self.issued)
            .finish()
    }
}

/// Values of puts that were cancelled, whose segment space the caller gives back.
pub type Cancelled = Vec<Arc<[u8]>>;

impl Journal {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Acquire)
    }

    pub fn activity(&self) -> u64 {
        self.activity.load(Ordering::Relaxed)
    }

    /// Queue a record for writing; returns the ticket that covers it.
    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) -> u64 {
        let mut p = self.lock();
        p.puts.insert(
            key,
            Put {
                value: value.into(),
                delivered: false,
            },
        );
        self.activity.fetch_add(1, Ordering::Relaxed);
        self.puts_total.fetch_add(1, Ordering::Relaxed);
        self.issued.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// (puts, cancelled puts) so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.puts_total.load(Ordering::Relaxed),
            self.cancelled_total.load(Ordering::Relaxed),
        )
    }

    /// Pending puts already delivered to a consumer.
    pub fn delivered_puts(&self) -> usize {
        self.lock().delivered_puts
    }

    /// The pending value of `key`, if it has not reached sled yet.
    pub fn get(&self, key: &[u8]) -> Option<Arc<[u8]>> {
        let p = self.lock();
        p.puts
            .get(key)
            .or_else(|| p.applying.as_ref().and_then(|a| a.get(key)))
            .map(|put| put.value.clone())
    }

    pub fn delivered(&self, key: Vec<u8>) {
        let mut p = self.lock();
        match p.puts.get_mut(&key) {
            Some(put) if !put.delivered => {
                put.delivered = true;
                p.delivered_puts += 1;
            }
            Some(_) => {}
            None => p.ops.push(Op::Delivered(key)),
        }
        self.activity.fetch_add(1, Ordering::Relaxed);
    }

    /// Settle `key`. Returns the value of a put that never reached sled (now cancelled).
    pub fn remove(&self, key: Vec<u8>) -> Option<Arc<[u8]>> {
        let mut p = self.lock();
        self.activity.fetch_add(1, Ordering::Relaxed);
        match p.puts.remove(&key) {
            Some(put) => {
                if put.delivered {
                    p.delivered_puts -= 1;
                }
                self.cancelled_total.fetch_add(1, Ordering::Relaxed);
                Some(put.value)
            }
            None => {
                p.ops.push(Op::Remove(key));
                None
            }
        }
    }

    /// Forget a delayed message (after the queue records of its release, if any: ops are
    /// applied after the puts of their batch).
    pub fn remove_delayed(&self, key: Vec<u8>) {
        self.lock().ops.push(Op::RemoveDelayed(key));
        self.activity.fetch_add(1, Ordering::Relaxed);
    }

    /// A ticket for a record written to sled directly: the next round flushes and syncs.
    pub fn written(&self) -> u64 {
        self.dirty.store(true, Ordering::Release);
        self.issued.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Whether anything waits to be applied.
    pub fn has_work(&self) -> bool {
        let p = self.lock();
        !p.puts.is_empty() || !p.ops.is_empty()
    }

    /// Apply everything pending with `write`, in order with other batches. Returns the
    /// ticket the batch covers.
    pub fn apply(
        &self,
        write: impl FnOnce(&Batch) -> Result<(), sled::Error>,
    ) -> Result<u64, sled::Error> {
        let _order = self.apply.lock().unwrap_or_else(|p| p.into_inner());
        let batch = {
            let mut p = self.lock();
            let puts = Arc::new(std::mem::take(&mut p.puts));
            p.delivered_puts = 0;
            p.applying = Some(puts.clone());
            Batch {
                puts,
                ops: std::mem::take(&mut p.ops),
                target: self.issued(),
            }
        };
        let empty = batch.puts.is_empty() && batch.ops.is_empty();
        let result = if empty { Ok(()) } else { write(&batch) };
        if !empty && result.is_ok() {
            self.dirty.store(true, Ordering::Release);
        }
        self.lock().applying = None;
        result.map(|()| batch.target)
    }

    /// Whether a batch was written since the last call (the caller flushes and syncs).
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// Cancel every pending put and op under `prefix` (a queue being purged or deleted),
    /// holding off batches while `then` clears what sled already has.
    pub fn purge<T>(&self, prefix: &[u8], then: impl FnOnce(Cancelled) -> T) -> T {
        let _order = self.apply.lock().unwrap_or_else(|p| p.into_inner());
        let cancelled = {
            let mut p = self.lock();
            let keys: Vec<Vec<u8>> = p
                .puts
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect();
            let puts: Vec<Put> = keys.iter().filter_map(|k| p.puts.remove(k)).collect();
            p.delivered_puts -= puts.iter().filter(|put| put.delivered).count();
            let values = puts.into_iter().map(|put| put.value).collect();
            p.ops.retain(|op| match op {
                Op::Delivered(k) | Op::Remove(k) => !k.starts_with(prefix),
                Op::RemoveDelayed(_) => true,
            });
            values
        };
        then(cancelled)
    }
}

/// One change of a batch, in the order to apply it.
pub enum Change<'a> {
    Put {
        key: &'a [u8],
        value: &'a [u8],
        delivered: bool,
    },
    Delivered(&'a [u8]),
    Remove(&'a [u8]),
    RemoveDelayed(&'a [u8]),
}

impl Batch {
    /// The changes: puts first (no op of this batch refers to them: a delivery marks the
    /// put, a removal cancels it), then the ops in the order they were made.
    pub fn changes(&self) -> impl Iterator<Item = Change<'_>> {
        let puts = self.puts.iter().map(|(k, p)| Change::Put {
            key: k,
            value: &p.value,
            delivered: p.delivered,
        });
        puts.chain(self.ops.iter().map(|op| match op {
            Op::Delivered(k) => Change::Delivered(k),
            Op::Remove(k) => Change::Remove(k),
            Op::RemoveDelayed(k) => Change::RemoveDelayed(k),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_settled_before_its_batch_never_reaches_sled() {
        let j = Journal::default();
        let t1 = j.put(b"q1".to_vec(), b"v1".to_vec());
        let t2 = j.put(b"q2".to_vec(), b"v2".to_vec());
        j.delivered(b"q1".to_vec());
        assert_eq!(j.remove(b"q1".to_vec()).as_deref(), Some(&b"v1"[..]));
        let mut seen = Vec::new();
        let target = j
            .apply(|b| {
                seen = keys(b);
                Ok(())
            })
            .unwrap();
        assert_eq!((t1, t2, target), (1, 2, 2));
        assert_eq!(seen, vec!["put q2"]);
        assert!(j.take_dirty());
        // Now q2 is in sled: its removal is an op for the next batch.
        assert!(j.remove(b"q2".to_vec()).is_none());
        j.apply(|b| {
            assert_eq!(keys(b), vec!["remove q2"]);
            Ok(())
        })
        .unwrap();
    }

    fn keys(b: &Batch) -> Vec<String> {
        b.changes()
            .map(|c| match c {
                Change::Put { key, delivered, .. } => {
                    format!(
                        "put{} {}",
                        if delivered { "+d" } else { "" },
                        String::from_utf8_lossy(key)
                    )
                }
                Change::Delivered(k) => format!("delivered {}", String::from_utf8_lossy(k)),
                Change::Remove(k) => format!("remove {}", String::from_utf8_lossy(k)),
                Change::RemoveDelayed(k) => format!("unhold {}", String::from_utf8_lossy(k)),
            })
            .collect()
    }

    #[test]
    fn pending_values_are_readable_until_applied() {
        let j = Journal::default();
        j.put(b"k".to_vec(), b"v".to_vec());
        assert_eq!(j.get(b"k").as_deref(), Some(&b"v"[..]));
        j.apply(|_| {
            assert_eq!(j.get(b"k").as_deref(), Some(&b"v"[..]));
            Ok(())
        })
        .unwrap();
        assert!(j.get(b"k").is_none());
    }

    #[test]
    fn an_empty_round_writes_nothing() {
        let j = Journal::default();
        j.put(b"k".to_vec(), b"v".to_vec());
        j.remove(b"k".to_vec());
        j.apply(|_| panic!("nothing to write")).unwrap();
        assert!(!j.take_dirty());
    }

    #[test]
    fn purge_cancels_a_queues_pending_work_only() {
        let j = Journal::default();
        j.put(b"a1".to_vec(), b"x".to_vec());
        j.put(b"b1".to_vec(), b"y".to_vec());
        j.delivered(b"a0".to_vec());
        let n = j.purge(b"a", |c| c.len());
        assert_eq!(n, 1);
        j.delivered(b"b0".to_vec());
        j.delivered(b"b1".to_vec());
        j.apply(|b| {
            assert_eq!(keys(b), vec!["put+d b1", "delivered b0"]);
            Ok(())
        })
        .unwrap();
    }
}
