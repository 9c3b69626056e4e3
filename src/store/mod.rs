//! Everything that touches sled: durable exchanges, queues and bindings, persistent messages
//! of durable queues, and the group commit that makes them durable before a confirm.
//!
//! Trees: `exchanges` and `queues` (key: vhost, name), `bindings` (key: vhost, source, dest
//! kind, dest, routing key, arguments), `messages` (key: vhost, queue, then the message id in
//! big-endian so a queue's messages iterate in order) and `delivered` (same keys: messages
//! handed to a consumer, which come back redelivered after a restart). Consumer acks remove
//! keys without a sync: after a crash an acked message may come back (at-least-once); a
//! confirmed one never goes missing.

pub mod encoding;
mod recover;
mod sync;

pub use recover::{Recovered, RecoveredBinding, RecoveredExchange, RecoveredQueue};

use crate::error::BrokerError;
use crate::message::Message;
use crate::queue::Budget;
use encoding::{flag, key, push_part, table_bytes};
use std::path::Path;
use std::sync::Arc;
use sync::Syncer;

/// The on-disk store of one broker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    exchanges: sled::Tree,
    queues: sled::Tree,
    bindings: sled::Tree,
    messages: sled::Tree,
    delivered: sled::Tree,
    syncer: Arc<Syncer>,
    /// Message bodies held in queues' RAM across the broker; beyond it, persistent bodies
    /// stay on disk only.
    budget: Arc<Budget>,
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

/// Where a binding leads, as stored.
pub enum DestKind {
    Queue,
    Exchange,
}

pub type StoreResult<T> = Result<T, sled::Error>;

impl Store {
    /// Open (or create) the store under `data_dir` and start its sync thread.
    pub fn open(data_dir: &Path, memory_budget: u64) -> Result<Store, BrokerError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("store");
        let db = sled::Config::new()
            .path(&path)
            // sled's default page cache is 1 GiB; the broker keeps its own index in memory
            // and bounds message bodies with its memory budget.
            .cache_capacity(32 * 1024 * 1024)
            .open()?;
        let dir = std::fs::File::open(&path)?;
        let syncer = Syncer::new();
        let thread = {
            let (s, db) = (syncer.clone(), db.clone());
            std::thread::Builder::new()
                .name("warren-sync".into())
                .spawn(move || s.run(db, dir))?
        };
        Ok(Store {
            exchanges: db.open_tree("exchanges")?,
            queues: db.open_tree("queues")?,
            bindings: db.open_tree("bindings")?,
            messages: db.open_tree("messages")?,
            delivered: db.open_tree("delivered")?,
            db,
            syncer,
            budget: Budget::new(memory_budget),
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    pub fn syncer(&self) -> &Arc<Syncer> {
        &self.syncer
    }

    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Flush outstanding writes and stop the sync thread (on shutdown).
    pub fn close(&self) -> Result<(), BrokerError> {
        self.syncer.stop();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
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
        Ok(())
    }

    pub fn delete_exchange(&self, vhost: &str, name: &str) -> StoreResult<()> {
        self.exchanges
            .remove(key(&[vhost.as_bytes(), name.as_bytes()]))?;
        self.delete_bindings_from(vhost, name)?;
        Ok(())
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
        Ok(())
    }

    /// Remove a queue and all its messages.
    pub fn delete_queue(&self, vhost: &str, name: &str) -> StoreResult<()> {
        self.queues
            .remove(key(&[vhost.as_bytes(), name.as_bytes()]))?;
        self.purge(vhost, name)
    }

    /// Remove all messages of a queue.
    pub fn purge(&self, vhost: &str, name: &str) -> StoreResult<()> {
        let prefix = key(&[vhost.as_bytes(), name.as_bytes()]);
        for tree in [&self.messages, &self.delivered] {
            let mut batch = sled::Batch::default();
            for k in tree.scan_prefix(&prefix).keys() {
                batch.remove(k?);
            }
            tree.apply_batch(batch)?;
        }
        Ok(())
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
        Ok(())
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
        self.bindings
            .remove(Self::binding_key(vhost, source, kind, dest, rk, args))?;
        Ok(())
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

    /// Write a persistent message; returns the ticket to wait on before confirming it.
    pub fn put_message(&self, prefix: &[u8], id: u64, msg: &Message) -> StoreResult<u64> {
        let mut v = Vec::with_capacity(
            16 + msg.exchange.len()
                + msg.routing_key.len()
                + msg.raw_properties.len()
                + msg.body.len(),
        );
        push_part(&mut v, msg.exchange.as_bytes());
        push_part(&mut v, msg.routing_key.as_bytes());
        push_part(&mut v, &msg.raw_properties);
        push_part(&mut v, &msg.body);
        self.messages.insert(Self::message_key(prefix, id), v)?;
        Ok(self.syncer.ticket())
    }

    /// Read one stored message back (a paged-out body reaching the head of its queue).
    pub fn get_message(&self, prefix: &[u8], id: u64) -> StoreResult<Option<Arc<Message>>> {
        let Some(v) = self.messages.get(Self::message_key(prefix, id))? else {
            return Ok(None);
        };
        Ok(decode_message(&v)
            .and_then(|(x, rk, props, body)| Message::from_stored(x, rk, props, body)))
    }

    /// The message was handed to a consumer: after a restart it comes back redelivered.
    pub fn mark_delivered(&self, prefix: &[u8], id: u64) -> StoreResult<()> {
        self.delivered.insert(Self::message_key(prefix, id), &[])?;
        Ok(())
    }

    /// The message is settled (acked, rejected, expired): forget it.
    pub fn remove_message(&self, prefix: &[u8], id: u64) -> StoreResult<()> {
        let k = Self::message_key(prefix, id);
        self.messages.remove(&k)?;
        self.delivered.remove(&k)?;
        Ok(())
    }
}

/// A stored message: exchange, routing key, raw properties and body, sharing one buffer.
/// The body size of a stored message, without copying it.
pub(crate) fn stored_body_len(v: &[u8]) -> Option<usize> {
    encoding::parts(v)
        .filter(|p| p.len() == 4)
        .map(|p| p[3].len())
}

pub(crate) fn decode_message(v: &[u8]) -> Option<(String, String, bytes::Bytes, bytes::Bytes)> {
    let v = bytes::Bytes::copy_from_slice(v);
    let p = encoding::parts(&v)?;
    if p.len() != 4 {
        return None;
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some((text(p[0]), text(p[1]), v.slice_ref(p[2]), v.slice_ref(p[3])))
}
