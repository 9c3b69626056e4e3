//! A queue: ready messages in order, the consumers attached to it, and dispatch.
//!
//! State sits behind a std `Mutex` held only for short, non-async sections: a publisher (or an
//! acking consumer) takes it, changes the queue, and runs [`Queue::dispatch`] on the spot, so a
//! message reaches a consumer's connection without any task hop. Lock order: a queue lock is
//! never held while taking another queue's lock or an exchange's lock.

mod consumer;
pub mod dead_letter;
mod expiry;
mod limits;
mod ready;

pub use consumer::{ChannelLimit, Consumer, ConsumerKey, IN_FLIGHT_MAX};
use dead_letter::Reason;
pub use ready::Budget;
use ready::{Gone, Home, ReadyList};

use crate::connection::ConnEvent;
use crate::message::Message;
use crate::store::Store;
use amq_protocol::types::FieldTable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A message in a queue. `id` orders messages: requeued ones go back where they were.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    pub msg: Arc<Message>,
    pub redelivered: bool,
    /// From the message's `expiration` or the queue's `x-message-ttl`, whichever is sooner.
    /// Expired messages are dropped when they reach the head, as RabbitMQ does.
    pub expires_at: Option<Instant>,
    /// Written to the store: removed from it once settled.
    pub persisted: bool,
}

impl Entry {
    /// What the store must forget once this entry is settled.
    fn gone(&self) -> Gone {
        let home = if self.persisted {
            Home::Stored
        } else {
            Home::Memory
        };
        (self.id, home)
    }
}

/// One queue.
#[derive(Debug)]
pub struct Queue {
    pub name: String,
    pub vhost: String,
    pub durable: bool,
    /// The connection that owns an exclusive queue.
    pub exclusive_owner: Option<u64>,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    /// Set once deleted, so late acks and publishes through stale handles are ignored.
    deleted: AtomicBool,
    /// `x-message-ttl` in milliseconds.
    message_ttl: Option<u64>,
    /// `x-max-length`, `x-max-length-bytes` and what happens beyond them (`x-overflow`).
    max_length: Option<u64>,
    max_bytes: Option<u64>,
    overflow: Overflow,
    /// `x-dead-letter-exchange` and `x-dead-letter-routing-key`.
    dead_letter: Option<dead_letter::Target>,
    /// The vhost, to republish dead messages through.
    vhost_ref: Weak<crate::vhost::VHost>,
    /// This queue, for the expiry timer.
    me: Weak<Queue>,
    /// Where messages are persisted and paged out.
    store: Option<Store>,
    /// Names this queue's pages of transient messages in the store.
    serial: u64,
    /// The key prefix of the queue's messages in the store: set for durable, non-exclusive
    /// queues, whose persistent messages are written there.
    prefix: Option<Vec<u8>>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    ready: ReadyList,
    next_id: u64,
    consumers: Vec<Consumer>,
    /// Round-robin position in `consumers`.
    next_consumer: usize,
    /// Delivered to a consumer or basic.get, not yet settled.
    unacked: usize,
    /// An auto-delete queue is deleted when its last consumer goes, once it has had one.
    had_consumer: bool,
    /// Messages that died under the lock, republished once it is released.
    dead: Vec<(Arc<Message>, Reason)>,
    /// When the expiry timer will wake this queue.
    wake_at: Option<Instant>,
}

/// `x-overflow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

/// What happened to a publish.
#[derive(Debug, Default)]
pub struct Published {
    /// Set when the message was written to disk: wait on it before confirming.
    pub ticket: Option<u64>,
    /// The queue was full (`x-overflow` reject-publish): a confirm becomes a nack.
    pub rejected: bool,
}

/// What removing a consumer left behind.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterCancel {
    Keep,
    /// Auto-delete queue with no consumers left: the caller deletes it from its vhost.
    AutoDelete,
}

impl Queue {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        vhost: String,
        durable: bool,
        exclusive_owner: Option<u64>,
        auto_delete: bool,
        arguments: FieldTable,
        store: Option<&Store>,
        vhost_ref: Weak<crate::vhost::VHost>,
    ) -> Arc<Queue> {
        let prefix = (store.is_some() && durable && exclusive_owner.is_none())
            .then(|| Store::queue_prefix(&vhost, &name));
        let serial = store.map_or(0, Store::queue_serial);
        let budget = store.map_or_else(|| Budget::new(u64::MAX), |s| s.budget().clone());
        let transient =
            store.map_or_else(|| Budget::new(u64::MAX), |s| s.transient_budget().clone());
        let arg = |k: &str| arguments.inner().get(k);
        let uint = |k: &str| {
            arg(k)
                .and_then(crate::field::as_i64)
                .and_then(|v| u64::try_from(v).ok())
        };
        let text = |k: &str| arg(k).and_then(crate::field::as_text);
        let message_ttl = uint("x-message-ttl");
        let overflow = match text("x-overflow").as_deref() {
            Some("reject-publish") => Overflow::RejectPublish,
            Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
            _ => Overflow::DropHead,
        };
        let dead_letter = text("x-dead-letter-exchange").map(|exchange| dead_letter::Target {
            exchange,
            routing_key: text("x-dead-letter-routing-key"),
        });
        let (max_length, max_bytes) = (uint("x-max-length"), uint("x-max-length-bytes"));
        Arc::new_cyclic(|me| Queue {
            me: me.clone(),
            message_ttl,
            max_length,
            max_bytes,
            overflow,
            dead_letter,
            vhost_ref,
            store: store.cloned(),
            serial,
            prefix,
            name,
            vhost,
            durable,
            exclusive_owner,
            auto_delete,
            arguments,
            deleted: AtomicBool::new(false),
            state: Mutex::new(State {
                ready: ReadyList::new(budget, transient),
                next_id: 0,
                consumers: Vec::new(),
                next_consumer: 0,
                unacked: 0,
                had_consumer: false,
                dead: Vec::new(),
                wake_at: None,
            }),
        })
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// (ready messages, consumers)
    pub fn counts(&self) -> (u32, u32) {
        let mut st = self.lock();
        self.drop_expired(&mut st);
        (st.ready.len() as u32, st.consumers.len() as u32)
    }

    /// Whether this queue writes persistent messages to the store.
    pub fn is_persistent(&self) -> bool {
        self.prefix.is_some()
    }

    /// Enqueue a message and hand it on if a consumer has credit. Returns the store ticket to
    /// wait on before confirming, when the message was written to disk.
    pub fn publish(self: &Arc<Self>, msg: Arc<Message>) -> Result<Published, sled::Error> {
        if self.is_deleted() {
            return Ok(Published::default());
        }
        let ttl = match (msg.ttl_ms(), self.message_ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // A TTL of 0 is settled right after dispatch below, not by the head check.
        let expires_at = ttl
            .filter(|ms| *ms > 0)
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut st = self.lock();
        if self.overflow != Overflow::DropHead && self.over_limit(&st, 1, msg.size() as u64) {
            if self.overflow == Overflow::RejectPublishDlx {
                self.died(&mut st, msg, Reason::Maxlen);
            }
            return Ok(Published {
                ticket: None,
                rejected: true,
            });
        }
        let id = st.next_id;
        st.next_id += 1;
        let mut ticket = None;
        if let (Some(store), Some(prefix)) = (&self.store, &self.prefix) {
            if msg.is_persistent() && ttl != Some(0) {
                ticket = Some(store.put_message(prefix, id, &msg)?);
            }
        }
        let persisted = ticket.is_some();
        let kept = (ttl == Some(0) && self.dead_letter.is_some()).then(|| msg.clone());
        let entry = Entry {
            id,
            msg,
            redelivered: false,
            expires_at,
            persisted,
        };
        st.ready.push_back(entry, |e| self.page_out(e));
        self.dispatch(&mut st);
        if ttl == Some(0) {
            // TTL 0: delivered now to a consumer that can take it, or never.
            if let Some(gone) = st.ready.pop_back_if(id) {
                self.forget([gone]);
                if let Some(msg) = kept {
                    self.died(&mut st, msg, Reason::Expired);
                }
            }
        }
        if self.overflow == Overflow::DropHead {
            self.enforce_limits(&mut st);
        }
        Ok(Published {
            ticket,
            rejected: false,
        })
    }

    /// Put back a message read from the store at startup (called in id order).
    pub fn restore(&self, id: u64, msg: Arc<Message>, redelivered: bool) {
        let mut st = self.lock();
        st.next_id = st.next_id.max(id + 1);
        st.ready.push_recovered(id, msg, redelivered);
    }

    /// A recovered message whose body stays on disk until it is delivered.
    pub fn restore_paged(&self, id: u64, size: usize, redelivered: bool) {
        let mut st = self.lock();
        st.next_id = st.next_id.max(id + 1);
        st.ready.push_paged(id, size as u32, redelivered);
    }

    /// Write a transient message out to the store (the memory budget is spent).
    fn page_out(&self, e: &Entry) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        match store.page_out(self.serial, e.id, &e.msg) {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(queue = self.name, error = %err, "cannot page a message out");
                false
            }
        }
    }

    /// Settled messages leave the store (lazily: no sync; at-least-once after a crash).
    fn forget(&self, gone: impl IntoIterator<Item = Gone>) {
        let Some(store) = &self.store else { return };
        for (id, home) in gone {
            let result = match (home, &self.prefix) {
                (Home::Stored, Some(prefix)) => store.remove_message(prefix, id),
                (Home::Paged, _) => store.drop_paged(self.serial, id),
                _ => Ok(()),
            };
            if let Err(err) = result {
                tracing::error!(queue = self.name, error = %err, "cannot remove a settled message");
            }
        }
    }

    /// Read a paged-out message back.
    fn load(&self, id: u64, home: Home) -> Option<Arc<Message>> {
        let store = self.store.as_ref()?;
        let read = match (home, &self.prefix) {
            (Home::Stored, Some(prefix)) => store.get_message(prefix, id),
            (Home::Paged, _) => store.page_in(self.serial, id),
            _ => return None,
        };
        match read {
            Ok(Some(m)) => Some(m),
            Ok(None) => {
                tracing::error!(
                    queue = self.name,
                    id,
                    "a paged-out message is missing from the store"
                );
                None
            }
            Err(e) => {
                tracing::error!(queue = self.name, id, error = %e, "cannot read a paged-out message");
                None
            }
        }
    }

    /// The head entry, its body in hand; unreadable paged-out messages are dropped.
    fn pop_ready(&self, st: &mut State) -> Option<Entry> {
        loop {
            match st.ready.pop_front(&|id, home| self.load(id, home))? {
                Ok(e) => return Some(e),
                Err(gone) => self.forget([gone]),
            }
        }
    }

    /// How many queued bodies are paged out to the store.
    pub fn paged_out(&self) -> usize {
        self.lock().ready.paged_out()
    }

    /// First delivery of a stored message: remember it, so a restart redelivers it flagged.
    fn mark_delivered(&self, e: &Entry) {
        if let (Some(store), Some(prefix), true, false) =
            (&self.store, &self.prefix, e.persisted, e.redelivered)
        {
            if let Err(err) = store.mark_delivered(prefix, e.id) {
                tracing::warn!(queue = self.name, error = %err, "cannot mark a delivery");
            }
        }
    }

    /// Hand ready messages to consumers with credit: highest priority first, round-robin
    /// among equals. Runs under the queue lock; sending to a connection never blocks.
    fn dispatch(self: &Arc<Self>, st: &mut State) {
        if st.consumers.is_empty() {
            return;
        }
        self.drop_expired(st);
        while !st.ready.is_empty() && !st.consumers.is_empty() {
            let Some(idx) = pick_consumer(st) else { break };
            let Some(entry) = self.pop_ready(st) else {
                break;
            };
            self.mark_delivered(&entry);
            if st.consumers[idx].no_ack {
                self.forget([entry.gone()]);
            }
            let c = &mut st.consumers[idx];
            let event = ConnEvent::Deliver {
                channel: c.key.channel,
                consumer_tag: c.key.tag.clone(),
                queue: self.clone(),
                entry,
                no_ack: c.no_ack,
            };
            match c.tx.send(event) {
                Ok(()) => {
                    c.sent();
                    if !c.no_ack {
                        c.take_credit();
                        st.unacked += 1;
                    }
                    st.next_consumer = (idx + 1) % st.consumers.len();
                }
                Err(tokio::sync::mpsc::error::SendError(ev)) => {
                    // The connection is gone; its cleanup will cancel the consumer. Keep the
                    // message and stop using this consumer.
                    if let ConnEvent::Deliver { entry, .. } = ev {
                        st.ready.push_front(entry);
                    }
                    st.consumers.remove(idx);
                    st.next_consumer = 0;
                }
            }
        }
    }

    /// Attach a consumer. Fails with the reply RabbitMQ gives for exclusivity conflicts.
    pub fn add_consumer(self: &Arc<Self>, c: Consumer) -> Result<(), crate::error::AmqpError> {
        let mut st = self.lock();
        if st.consumers.iter().any(|x| x.exclusive) || (c.exclusive && !st.consumers.is_empty()) {
            return Err(crate::error::AmqpError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.name, self.vhost
            )));
        }
        st.consumers.push(c);
        st.had_consumer = true;
        self.dispatch(&mut st);
        Ok(())
    }

    /// Detach a consumer (basic.cancel, channel or connection close).
    pub fn remove_consumer(&self, key: &ConsumerKey) -> AfterCancel {
        let mut st = self.lock();
        st.consumers.retain(|c| &c.key != key);
        st.next_consumer = 0;
        if self.auto_delete && st.had_consumer && st.consumers.is_empty() {
            AfterCancel::AutoDelete
        } else {
            AfterCancel::Keep
        }
    }

    /// `count` deliveries to `consumer` (None for basic.get) were acked or rejected without
    /// requeue: give back credit and dispatch.
    /// With `rejected`, they were rejected or nacked without requeue: they die (and go to the
    /// dead-letter exchange, if the queue has one).
    pub fn settle(
        self: &Arc<Self>,
        consumer: Option<&ConsumerKey>,
        entries: &[Entry],
        rejected: bool,
    ) {
        self.forget(entries.iter().map(Entry::gone));
        let count = entries.len();
        let mut st = self.lock();
        if rejected {
            for e in entries {
                self.died(&mut st, e.msg.clone(), Reason::Rejected);
            }
        }
        st.unacked = st.unacked.saturating_sub(count);
        if let Some(key) = consumer {
            if let Some(c) = st.consumers.iter_mut().find(|c| &c.key == key) {
                c.return_credit(count as u32);
            }
        }
        self.dispatch(&mut st);
    }

    /// Put unsettled deliveries back in their original places, marked redelivered.
    pub fn requeue(self: &Arc<Self>, consumer: Option<&ConsumerKey>, mut entries: Vec<Entry>) {
        if self.is_deleted() {
            return;
        }
        let mut st = self.lock();
        let count = entries.len();
        st.unacked = st.unacked.saturating_sub(count);
        if let Some(key) = consumer {
            if let Some(c) = st.consumers.iter_mut().find(|c| &c.key == key) {
                c.return_credit(count as u32);
            }
        }
        entries.sort_by_key(|e| e.id);
        for mut e in entries.into_iter().rev() {
            e.redelivered = true;
            st.ready.insert_sorted(e);
        }
        self.dispatch(&mut st);
    }

    /// Credit on a shared (global) channel limit came back: try again.
    pub fn kick(self: &Arc<Self>) {
        let mut st = self.lock();
        self.dispatch(&mut st);
    }

    /// basic.get: the head message and how many remain.
    pub fn get(&self, no_ack: bool) -> Option<(Entry, u32)> {
        let mut st = self.lock();
        self.drop_expired(&mut st);
        let e = self.pop_ready(&mut st)?;
        self.mark_delivered(&e);
        if no_ack {
            self.forget([e.gone()]);
        } else {
            st.unacked += 1;
        }
        Some((e, st.ready.len() as u32))
    }

    /// Drop all ready messages; returns how many.
    pub fn purge(&self) -> u32 {
        let mut st = self.lock();
        let gone = st.ready.drain();
        let n = gone.len() as u32;
        self.forget(gone);
        n
    }

    /// Mark deleted and detach everything. Returns the message count and the consumers, whom
    /// the caller notifies with basic.cancel.
    pub fn delete(&self) -> (u32, Vec<Consumer>) {
        self.deleted.store(true, Ordering::Release);
        let mut st = self.lock();
        let gone = st.ready.drain();
        let n = gone.len() as u32;
        // Stored messages went with the queue's records; pages of transient ones go here.
        self.forget(gone.into_iter().filter(|g| g.1 == Home::Paged));
        (n, std::mem::take(&mut st.consumers))
    }
}

/// The next consumer to receive: among consumers with credit, the highest priority; among
/// those, the first at or after the round-robin position.
fn pick_consumer(st: &State) -> Option<usize> {
    let n = st.consumers.len();
    let mut best: Option<(i32, usize)> = None;
    for i in 0..n {
        let idx = (st.next_consumer + i) % n;
        let c = &st.consumers[idx];
        if !c.has_credit() {
            continue;
        }
        match best {
            Some((p, _)) if p >= c.priority => {}
            _ => best = Some((c.priority, idx)),
        }
    }
    best.map(|(_, idx)| idx)
}
