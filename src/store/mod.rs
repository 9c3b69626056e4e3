//! Everything that touches sled: durable exchanges, queues and bindings, persistent messages
//! of durable queues, and the group commit that makes them durable before a confirm.
//!
//! Trees: `exchanges` and `queues` (key: vhost, name), `bindings` (key: vhost, source, dest
//! kind, dest, routing key, arguments), `messages` (key: vhost, queue, then the message id in
//! big-endian so a queue's messages iterate in order) and `delivered` (same keys: messages
//! handed to a consumer, which come back redelivered after a restart). Message records go
//! through a write-behind [`journal`] that the sync thread applies before each flush, so a
//! message acked before its group commit is never written. Consumer acks remove keys without
//! a sync: after a crash an acked message may come back (at-least-once); a confirmed one
//! never goes missing.
//!
//! `delayed` holds persistent messages that durable delayed exchanges hold back (see
//! [`delayed`]).
//!
//! `paged` holds transient messages that a queue pushed out of memory (key: the queue's
//! serial number, then the message id); it is emptied at every start. `meta` holds the store's
//! own counters. Bodies of [`bodies::BODY_THRESHOLD`] bytes or more live in segment files
//! (see [`bodies`]); the sled record then holds a reference instead of the body.

mod access;
pub mod bodies;
mod delayed;
pub mod encoding;
mod journal;
mod policies;
mod record;
mod recover;
mod sync;

pub use delayed::RecoveredDelayed;
pub use record::{StoredBody, StoredRecord};
pub use recover::{Recovered, RecoveredBinding, RecoveredExchange, RecoveredQueue, StoredMessage};

use crate::config::StorageConfig;
use crate::error::BrokerError;
use crate::message::Message;
use crate::queue::Budget;
pub use access::new_cluster_id;
use bodies::{Bodies, BodyRef, BODY_THRESHOLD};
use encoding::{flag, key, push_part, table_bytes};
use journal::{Change, Journal};
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use sync::Syncer;

/// Tags naming, in a body segment, the tree of the record that owns a body.
const TAG_MESSAGES: u8 = 1;
const TAG_PAGED: u8 = 2;
const TAG_DELAYED: u8 = 3;

/// The on-disk store of one broker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    exchanges: sled::Tree,
    queues: sled::Tree,
    bindings: sled::Tree,
    messages: sled::Tree,
    delivered: sled::Tree,
    paged: sled::Tree,
    delayed: sled::Tree,
    /// Orders delayed messages due at the same millisecond.
    delayed_seq: Arc<AtomicU64>,
    bodies: Arc<Bodies>,
    /// The store's directory, for `syncfs`.
    dir: Arc<File>,
    syncer: Arc<Syncer>,
    /// Message records on their way to sled.
    journal: Arc<Journal>,
    /// Persistent messages held in queues' RAM across the broker; beyond it, bodies stay on
    /// disk.
    budget: Arc<Budget>,
    /// Transient messages held in queues' RAM; beyond it, they are paged out.
    transient_budget: Arc<Budget>,
    /// Serial numbers of queues, naming their records in `paged`.
    serials: Arc<AtomicU64>,
    workers: Arc<std::sync::Mutex<Option<Workers>>>,
}

/// The store's background threads.
#[derive(Debug)]
struct Workers {
    sync: std::thread::JoinHandle<()>,
    compact: std::thread::JoinHandle<()>,
    stop_compaction: std::sync::mpsc::Sender<()>,
}

/// Where a binding leads, as stored.
pub enum DestKind {
    Queue,
    Exchange,
}

pub type StoreResult<T> = Result<T, sled::Error>;

/// How long opening waits for a previous owner of the store (a broker in this process that
/// is still shutting down, whose sled threads let go of the lock a little after it is
/// dropped, or an old process on its way out) to release its lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn open_db(path: &std::path::Path) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let res = sled::Config::new()
            .path(path)
            // sled's default page cache is 1 GiB; the broker keeps its own index in memory
            // and bounds message bodies with its memory budget.
            .cache_capacity(16 * 1024 * 1024)
            .open();
        match res {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50)); // the lock is polled
            }
            other => return other,
        }
    }
}

impl Store {
    /// Open (or create) the store under `data_dir` and start its sync and compaction threads.
    pub fn open(cfg: &StorageConfig) -> Result<Store, BrokerError> {
        std::fs::create_dir_all(&cfg.data_dir)?;
        let path = cfg.data_dir.join("store");
        let db = open_db(&path)?;
        // Pages of transient messages do not outlive the process that wrote them.
        db.drop_tree("paged")?;
        let dir = Arc::new(File::open(&path)?);
        let bodies = Arc::new(Bodies::open(
            &path.join("bodies"),
            cfg.segment_size,
            db.open_tree("meta")?,
        )?);
        let store = Store {
            exchanges: db.open_tree("exchanges")?,
            queues: db.open_tree("queues")?,
            bindings: db.open_tree("bindings")?,
            messages: db.open_tree("messages")?,
            delivered: db.open_tree("delivered")?,
            paged: db.open_tree("paged")?,
            delayed: db.open_tree("delayed")?,
            delayed_seq: Arc::new(AtomicU64::new(0)),
            bodies,
            dir,
            db,
            syncer: Syncer::new(),
            journal: Arc::default(),
            budget: Budget::new(cfg.memory_budget),
            transient_budget: Budget::new(cfg.transient_budget()),
            serials: Arc::new(AtomicU64::new(0)),
            workers: Arc::new(std::sync::Mutex::new(None)),
        };
        let sync = {
            let s = store.clone();
            std::thread::Builder::new()
                .name("warren-sync".into())
                .spawn(move || s.syncer.run(&s))?
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let compact = {
            let s = store.clone();
            std::thread::Builder::new()
                .name("warren-compact".into())
                .spawn(move || {
                    use std::sync::mpsc::RecvTimeoutError;
                    let tick = std::time::Duration::from_secs(1);
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                        while let Some(seg) = s.bodies.compaction_candidate() {
                            if let Err(e) = s.compact(seg) {
                                s.bodies.finish_compaction(seg);
                                tracing::error!(segment = seg, error = %e, "compaction failed");
                                break;
                            }
                        }
                    }
                })?
        };
        *store.workers.lock().unwrap_or_else(|p| p.into_inner()) = Some(Workers {
            sync,
            compact,
            stop_compaction: stop,
        });
        Ok(store)
    }

    pub fn syncer(&self) -> &Arc<Syncer> {
        &self.syncer
    }

    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    pub fn transient_budget(&self) -> &Arc<Budget> {
        &self.transient_budget
    }

    /// Stop the background threads and flush outstanding writes (on shutdown). A compaction
    /// under way finishes first; one cut short by a crash leaves both copies of a body on
    /// disk, never neither.
    pub fn close(&self) -> Result<(), BrokerError> {
        self.syncer.stop();
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(w) = workers {
            drop(w.stop_compaction);
            let _ = w.sync.join();
            let _ = w.compact.join();
        }
        self.db.flush()?;
        Ok(())
    }

    /// A serial number for a new queue, naming its pages of transient messages.
    pub fn queue_serial(&self) -> u64 {
        self.serials.fetch_add(1, Ordering::Relaxed)
    }

    /// (segment files, bytes) of message bodies on disk, for tests and metrics.
    pub fn body_usage(&self) -> (usize, u64) {
        self.bodies.usage()
    }

    /// Called once recovery has read every stored message: body segments nothing refers to
    /// are deleted, sparse ones compacted.
    pub fn finish_recovery(&self) {
        self.bodies.finish_recovery();
    }

    /// A durable exchange, queue or binding changed: it is on disk before the client hears
    /// `declare-ok`/`bind-ok`/`delete-ok`, as RabbitMQ's Mnesia write is, so a `kill -9`
    /// right after cannot undo it. sled would otherwise hold it in memory for up to half a
    /// second. Declarations are rare next to messages; the flush is one write and one sync.
    fn topology_written(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }

    pub fn put_exchange(
        &self,
        vhost: &str,
        name: &str,
        kind: &str,
        auto_delete: bool,
        internal: bool,
        args: &amq_protocol::types::FieldTable,
    ) -> StoreResult<()> {
        let value = key(&[
            kind.as_bytes(),
            flag(auto_delete),
            flag(internal),
            &table_bytes(args),
        ]);
        self.exchanges
            .insert(key(&[vhost.as_bytes(), name.as_bytes()]), value)?;
        self.topology_written()
    }

    pub fn delete_exchange(&self, vhost: &str, name: &str) -> StoreResult<()> {
        self.exchanges
            .remove(key(&[vhost.as_bytes(), name.as_bytes()]))?;
        self.delete_bindings_from(vhost, name)?;
        self.topology_written()
    }

    pub fn put_queue(
        &self,
        vhost: &str,
        name: &str,
        auto_delete: bool,
        args: &amq_protocol::types::FieldTable,
    ) -> StoreResult<()> {
        let value = key(&[flag(auto_delete), &table_bytes(args)]);
        self.queues
            .insert(key(&[vhost.as_bytes(), name.as_bytes()]), value)?;
        self.topology_written()
    }

    /// Remove a queue and all its messages.
    pub fn delete_queue(&self, vhost: &str, name: &str) -> StoreResult<()> {
        self.queues
            .remove(key(&[vhost.as_bytes(), name.as_bytes()]))?;
        self.purge(vhost, name)?;
        self.topology_written()
    }

    /// Remove all messages of a queue, pending ones included.
    pub fn purge(&self, vhost: &str, name: &str) -> StoreResult<()> {
        let prefix = key(&[vhost.as_bytes(), name.as_bytes()]);
        self.journal.purge(&prefix, |cancelled| {
            for v in cancelled {
                self.release(&v);
            }
            // One removal per key: the value removed is the one whose body is released,
            // even if compaction switched it to a new place since the scan.
            for k in self.messages.scan_prefix(&prefix).keys() {
                if let Some(v) = self.messages.remove(k?)? {
                    self.release(&v);
                }
            }
            let mut batch = sled::Batch::default();
            for k in self.delivered.scan_prefix(&prefix).keys() {
                batch.remove(k?);
            }
            self.delivered.apply_batch(batch)
        })
    }

    fn binding_key(
        vhost: &str,
        source: &str,
        kind: DestKind,
        dest: &str,
        rk: &str,
        args: &amq_protocol::types::FieldTable,
    ) -> Vec<u8> {
        let kind: &[u8] = match kind {
            DestKind::Queue => b"q",
            DestKind::Exchange => b"e",
        };
        key(&[
            vhost.as_bytes(),
            source.as_bytes(),
            kind,
            dest.as_bytes(),
            rk.as_bytes(),
            &table_bytes(args),
        ])
    }

    pub fn put_binding(
        &self,
        vhost: &str,
        source: &str,
        kind: DestKind,
        dest: &str,
        rk: &str,
        args: &amq_protocol::types::FieldTable,
    ) -> StoreResult<()> {
        self.bindings
            .insert(Self::binding_key(vhost, source, kind, dest, rk, args), &[])?;
        self.topology_written()
    }

    pub fn delete_binding(
        &self,
        vhost: &str,
        source: &str,
        kind: DestKind,
        dest: &str,
        rk: &str,
        args: &amq_protocol::types::FieldTable,
    ) -> StoreResult<()> {
        let removed = self
            .bindings
            .remove(Self::binding_key(vhost, source, kind, dest, rk, args))?;
        // Unbinding a transient queue from a durable exchange removes nothing: no flush.
        match removed {
            Some(_) => self.topology_written(),
            None => Ok(()),
        }
    }

    fn delete_bindings_from(&self, vhost: &str, source: &str) -> StoreResult<()> {
        let prefix = key(&[vhost.as_bytes(), source.as_bytes()]);
        let mut batch = sled::Batch::default();
        for k in self.bindings.scan_prefix(&prefix).keys() {
            batch.remove(k?);
        }
        self.bindings.apply_batch(batch)
    }

    /// The key prefix of a queue's messages.
    pub fn queue_prefix(vhost: &str, queue: &str) -> Vec<u8> {
        key(&[vhost.as_bytes(), queue.as_bytes()])
    }

    fn message_key(prefix: &[u8], id: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(prefix.len() + 8);
        k.extend_from_slice(prefix);
        k.extend_from_slice(&id.to_be_bytes());
        k
    }

    /// The sled value of a message: its body inline, or in a segment when it is large.
    fn encode_message(&self, tag: u8, k: &[u8], msg: &Message) -> StoreResult<Vec<u8>> {
        let external = if msg.body.len() >= BODY_THRESHOLD {
            Some(self.bodies.append(tag, k, &msg.body)?)
        } else {
            None
        };
        let body_len = match external {
            Some(_) => BodyRef::ENCODED_LEN,
            None => msg.body.len(),
        };
        let mut v = Vec::with_capacity(
            20 + msg.exchange.len() + msg.routing_key.len() + msg.raw_properties.len() + body_len,
        );
        push_part(&mut v, msg.exchange.as_bytes());
        push_part(&mut v, msg.routing_key.as_bytes());
        push_part(&mut v, &msg.raw_properties);
        match external {
            Some(r) => {
                push_part(&mut v, b"");
                push_part(&mut v, &r.encode());
            }
            None => push_part(&mut v, &msg.body),
        }
        Ok(v)
    }

    /// Decode a message value, reading its body from its segment if it has one.
    fn decode_message(&self, tag: u8, k: &[u8], v: &[u8]) -> Option<Arc<Message>> {
        let r = StoredRecord::parse(v)?;
        let body = match r.body {
            StoredBody::Inline(b) => bytes::Bytes::copy_from_slice(b),
            StoredBody::External(b) => self.bodies.read(b, tag, k)?,
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Message::from_stored(
            text(r.exchange),
            text(r.routing_key),
            bytes::Bytes::copy_from_slice(r.properties),
            body,
        )
    }

    /// Give back the segment space of a removed value.
    fn release(&self, v: &[u8]) {
        if let Some(StoredBody::External(r)) = StoredRecord::parse(v).map(|r| r.body) {
            self.bodies.release(r);
        }
    }

    /// Write a persistent message (through the journal); returns the ticket to wait on
    /// before confirming it.
    pub fn put_message(&self, prefix: &[u8], id: u64, msg: &Message) -> StoreResult<u64> {
        let k = Self::message_key(prefix, id);
        let v = self.encode_message(TAG_MESSAGES, &k, msg)?;
        Ok(self.journal.put(k, v))
    }

    /// Hand everything pending in the journal to sled; returns the ticket it covers.
    fn apply_journal(&self) -> StoreResult<u64> {
        self.journal.apply(|batch| {
            for change in batch.changes() {
                match change {
                    Change::Put {
                        key,
                        value,
                        delivered,
                    } => {
                        self.messages.insert(key, value)?;
                        if delivered {
                            self.delivered.insert(key, &[])?;
                        }
                    }
                    Change::Delivered(key) => {
                        self.delivered.insert(key, &[])?;
                    }
                    Change::Remove(key) => {
                        if let Some(v) = self.messages.remove(key)? {
                            self.release(&v);
                        }
                        self.delivered.remove(key)?;
                    }
                    Change::RemoveDelayed(key) => {
                        if let Some(v) = self.delayed.remove(key)? {
                            self.release(&v);
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// Read one stored message back (a paged-out body reaching the head of its queue).
    pub fn get_message(&self, prefix: &[u8], id: u64) -> StoreResult<Option<Arc<Message>>> {
        let k = Self::message_key(prefix, id);
        // Compaction may move the body between reading the record and reading the body:
        // then the record has changed, and reading it again finds the new place.
        if let Some(v) = self.journal.get(&k) {
            return Ok(self.decode_message(TAG_MESSAGES, &k, &v));
        }
        for _ in 0..3 {
            let Some(v) = self.messages.get(&k)? else {
                return Ok(None);
            };
            if let Some(m) = self.decode_message(TAG_MESSAGES, &k, &v) {
                return Ok(Some(m));
            }
            if self.messages.get(&k)?.as_deref() == Some(&v[..]) {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The message was handed to a consumer: after a restart it comes back redelivered.
    pub fn mark_delivered(&self, prefix: &[u8], id: u64) -> StoreResult<()> {
        self.journal.delivered(Self::message_key(prefix, id));
        Ok(())
    }

    /// The message is settled (acked, rejected, expired): forget it. A message that has
    /// not reached sled yet never will.
    pub fn remove_message(&self, prefix: &[u8], id: u64) -> StoreResult<()> {
        if let Some(v) = self.journal.remove(Self::message_key(prefix, id)) {
            self.release(&v);
        }
        Ok(())
    }

    fn paged_key(serial: u64, id: u64) -> [u8; 16] {
        let mut k = [0; 16];
        k[..8].copy_from_slice(&serial.to_be_bytes());
        k[8..].copy_from_slice(&id.to_be_bytes());
        k
    }

    /// Push a transient message out of memory (no sync: it does not survive a restart).
    pub fn page_out(&self, serial: u64, id: u64, msg: &Message) -> StoreResult<()> {
        let k = Self::paged_key(serial, id);
        let v = self.encode_message(TAG_PAGED, &k, msg)?;
        self.paged.insert(k, v)?;
        Ok(())
    }

    /// Take a paged-out transient message back into memory.
    pub fn page_in(&self, serial: u64, id: u64) -> StoreResult<Option<Arc<Message>>> {
        let k = Self::paged_key(serial, id);
        let Some(v) = self.paged.remove(k)? else {
            return Ok(None);
        };
        // Removed first, so compaction can no longer move it; released after the read.
        let m = self.decode_message(TAG_PAGED, &k, &v);
        self.release(&v);
        Ok(m)
    }

    /// Forget a paged-out transient message.
    pub fn drop_paged(&self, serial: u64, id: u64) -> StoreResult<()> {
        if let Some(v) = self.paged.remove(Self::paged_key(serial, id))? {
            self.release(&v);
        }
        Ok(())
    }

    /// Move the live bodies of a sparse segment to the active one, make the moves durable,
    /// then let the segment go (see [`bodies`]).
    fn compact(&self, seg: u64) -> StoreResult<()> {
        // Records still in the journal may own bodies in this segment: sled gets them first.
        self.apply_journal()?;
        let mut moved = 0usize;
        for rec in self.bodies.records(seg)? {
            let tree = match rec.tag {
                TAG_MESSAGES => &self.messages,
                TAG_PAGED => &self.paged,
                TAG_DELAYED => &self.delayed,
                _ => continue,
            };
            let Some(v) = tree.get(&rec.key)? else {
                continue;
            };
            let Some(stored) = StoredRecord::parse(&v) else {
                continue;
            };
            if stored.body != StoredBody::External(rec.body) {
                continue;
            }
            let Some(body) = self.bodies.read(rec.body, rec.tag, &rec.key) else {
                continue;
            };
            let new = self.bodies.append(rec.tag, &rec.key, &body)?;
            let nv = stored.with_body_ref(new);
            match tree.compare_and_swap(&rec.key, Some(&v), Some(nv))? {
                Ok(()) => {
                    self.bodies.release(rec.body);
                    moved += 1;
                }
                // Settled meanwhile: the copy is garbage.
                Err(_) => self.bodies.release(new),
            }
        }
        self.db.flush()?;
        sync::syncfs(&self.dir).map_err(|e| sled::Error::Io(std::io::Error::other(e)))?;
        self.bodies.finish_compaction(seg);
        tracing::debug!(segment = seg, moved, "compacted a body segment");
        Ok(())
    }
}
