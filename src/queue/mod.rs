//! A queue: ready messages in order, the consumers attached to it, and dispatch.
//!
//! State sits behind a std `Mutex` held only for short, non-async sections: a publisher (or an
//! acking consumer) takes it, changes the queue, and runs [`Queue::dispatch`] on the spot, so a
//! message reaches a consumer's connection without any task hop. Lock order: a queue lock is
//! never held while taking another queue's lock or an exchange's lock.

mod budget;
mod consumer;
pub mod dead_letter;
mod effective;
mod expiry;
pub mod features;
mod limits;
mod ready;
mod ready_ttl;
mod settle;
mod single;
mod storage;
mod view;

pub use consumer::{ChannelLimit, Consumer, ConsumerKey, IN_FLIGHT_MAX};
use dead_letter::Reason;
use effective::{Limits, Overflow, Own};
pub use features::{Features, QueueKind};
pub use ready::Budget;
use ready::{Gone, Home, ReadyList};
pub use settle::Returned;
pub use view::{ConsumerView, Levels, Snapshot};

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
    /// An expired message is never delivered; it leaves on time wherever it is.
    pub expires_at: Option<Instant>,
    /// Written to the store: removed from it once settled.
    pub persisted: bool,
    /// The lane (priority) it waits in.
    pub lane: u8,
    /// Times it came back to the queue, and how many of those were failed deliveries
    /// (`x-acquired-count`, `x-delivery-count`).
    pub acquired: u16,
    pub failed: u16,
    /// The message as delivered when it differs from `msg` (redelivery headers added).
    pub shown: Option<Arc<Message>>,
}

impl Entry {
    pub(crate) fn new(id: u64, msg: Arc<Message>, expires_at: Option<Instant>) -> Entry {
        Entry {
            id,
            msg,
            redelivered: false,
            expires_at,
            persisted: false,
            lane: 0,
            acquired: 0,
            failed: 0,
            shown: None,
        }
    }

    /// What the client receives.
    pub fn wire(&self) -> &Arc<Message> {
        self.shown.as_ref().unwrap_or(&self.msg)
    }

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
    /// Type, priorities, single active consumer, delivery limit, queue TTL.
    pub features: Features,
    /// Set once deleted, so late acks and publishes through stale handles are ignored.
    deleted: AtomicBool,
    /// The limits its own arguments set (TTLs, length limits, overflow, dead-lettering,
    /// delivery limit), which a policy combines with into `State::limits`.
    own: Own,
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
    /// Message counters for the management API.
    pub stats: crate::stats::MsgStats,
    /// Messages that died here, by reason, for Prometheus.
    pub deaths: crate::stats::DeathStats,
    /// Depth rates (messages, ready, unacked) for the management API.
    pub depth: [crate::stats::Gauge; 3],
}

#[derive(Debug)]
struct State {
    ready: ReadyList,
    next_id: u64,
    /// In registration order.
    consumers: Vec<Consumer>,
    /// Round-robin position in `consumers`.
    next_consumer: usize,
    /// Single active consumer: the one that receives.
    active: Option<usize>,
    /// Delivered to a consumer or basic.get, not yet settled, and their body bytes.
    unacked: usize,
    unacked_bytes: u64,
    /// An auto-delete queue is deleted when its last consumer goes, once it has had one.
    had_consumer: bool,
    /// Messages that died under the lock, republished once it is released.
    dead: Vec<(Arc<Message>, Reason)>,
    /// When the expiry timer will wake this queue.
    wake_at: Option<Instant>,
    /// `x-expires`: when the queue expires if it stays unused, and when the wake pending for
    /// it is due.
    unused_until: Option<Instant>,
    unused_wake: Option<Instant>,
    /// The limits in force: the queue's arguments with its policy's settings. Here, under
    /// the lock every publish takes anyway, so that a policy can change them at any time.
    limits: Limits,
    /// The policy applied, if any.
    policy: Option<Arc<crate::policy::Policy>>,
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
        mut arguments: FieldTable,
        store: Option<&Store>,
        vhost_ref: Weak<crate::vhost::VHost>,
    ) -> Arc<Queue> {
        // As RabbitMQ 3.13+: a queue declared without a type is a classic one, and says so.
        if !arguments.inner().contains_key("x-queue-type") {
            arguments.insert(
                "x-queue-type".into(),
                amq_protocol::types::AMQPValue::LongString("classic".into()),
            );
        }
        let features = Features::from_args(&arguments);
        let prefix = (store.is_some() && durable && exclusive_owner.is_none())
            .then(|| Store::queue_prefix(&vhost, &name));
        let serial = store.map_or(0, Store::queue_serial);
        let budget = store.map_or_else(|| Budget::new(u64::MAX), |s| s.budget().clone());
        let transient =
            store.map_or_else(|| Budget::new(u64::MAX), |s| s.transient_budget().clone());
        let own = Own::from_args(&arguments);
        let limits = Limits::resolve(&own, features.kind, None);
        let lanes = features.lanes;
        let q = Arc::new_cyclic(|me| Queue {
            me: me.clone(),
            own,
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
            features,
            deleted: AtomicBool::new(false),
            stats: Default::default(),
            deaths: Default::default(),
            depth: Default::default(),
            state: Mutex::new(State {
                ready: ReadyList::new(budget, transient, lanes),
                next_id: 0,
                consumers: Vec::new(),
                next_consumer: 0,
                active: None,
                unacked: 0,
                unacked_bytes: 0,
                had_consumer: false,
                dead: Vec::new(),
                wake_at: None,
                unused_until: None,
                unused_wake: None,
                limits,
                policy: None,
            }),
        });
        // The queue TTL runs from creation (and from each restart, as in RabbitMQ).
        q.touch();
        q
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn kind(&self) -> QueueKind {
        self.features.kind
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
        self.stats.publish.inc();
        let own_ttl = msg.ttl_ms();
        let lane = match self.features.max_priority {
            0 => 0,
            _ => self.features.lane(*msg.properties.priority()),
        };
        let mut st = self.lock();
        let ttl = match (own_ttl, st.limits.message_ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // A TTL of 0 is settled right after dispatch below, not by the head check.
        let expires_at = ttl
            .filter(|ms| *ms > 0)
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let overflow = st.limits.overflow;
        if overflow != Overflow::DropHead && self.over_limit(&st, 1, msg.size() as u64) {
            if overflow == Overflow::RejectPublishDlx {
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
            // A quorum queue keeps every message, whatever its delivery mode.
            let keep = msg.is_persistent() || self.features.kind == QueueKind::Quorum;
            if keep && ttl != Some(0) {
                ticket = Some(store.put_message(prefix, id, &msg)?);
            }
        }
        let persisted = ticket.is_some();
        let kept = (ttl == Some(0) && st.limits.dead_letter.is_some()).then(|| msg.clone());
        let entry = Entry {
            persisted,
            lane,
            ..Entry::new(id, msg, expires_at)
        };
        st.ready.push_back(entry, |e| self.page_out(e));
        self.dispatch(&mut st);
        if ttl == Some(0) {
            // TTL 0: delivered now to a consumer that can take it, or never.
            if let Some(gone) = st.ready.pop_back_if(id, lane) {
                match kept {
                    Some(msg) => {
                        self.forget([gone]);
                        self.died(&mut st, msg, Reason::Expired);
                    }
                    None => self.dropped(gone, Reason::Expired),
                }
            }
        }
        if overflow == Overflow::DropHead {
            self.enforce_limits(&mut st);
        }
        Ok(Published {
            ticket,
            rejected: false,
        })
    }

    /// The lane a recovered message goes back to.
    fn recovered_lane(&self, priority: Option<u8>) -> u8 {
        match self.features.max_priority {
            0 => 0,
            _ => self.features.lane(priority),
        }
    }

    /// Put back a message read from the store at startup (called in id order).
    pub fn restore(&self, id: u64, msg: Arc<Message>, redelivered: bool) {
        let lane = self.recovered_lane(*msg.properties.priority());
        let mut st = self.lock();
        st.next_id = st.next_id.max(id + 1);
        st.ready.push_recovered(id, msg, redelivered, lane);
    }

    /// A recovered message whose body stays on disk until it is delivered.
    pub fn restore_paged(&self, id: u64, size: usize, redelivered: bool, priority: Option<u8>) {
        let lane = self.recovered_lane(priority);
        let mut st = self.lock();
        st.next_id = st.next_id.max(id + 1);
        st.ready.push_paged(id, size as u32, redelivered, lane);
    }

    /// Hand ready messages to consumers with credit: highest priority first, round-robin
    /// among equals (or only to the single active consumer). Runs under the queue lock;
    /// sending to a connection never blocks.
    fn dispatch(self: &Arc<Self>, st: &mut State) {
        if st.consumers.is_empty() {
            return;
        }
        self.drop_expired(st);
        let mut now = None;
        while !st.ready.is_empty() && !st.consumers.is_empty() {
            let picked = if self.features.single_active {
                self.pick_active(st)
            } else {
                pick_consumer(st)
            };
            let Some(idx) = picked else { break };
            let Some(mut entry) = self.pop_live(st, &mut now) else {
                break;
            };
            self.mark_delivered(&entry);
            self.decorate(&mut entry);
            if st.consumers[idx].no_ack {
                self.forget([entry.gone()]);
            }
            let c = &mut st.consumers[idx];
            let size = entry.msg.size() as u64;
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
                        st.unacked_bytes += size;
                    }
                    st.next_consumer = (idx + 1) % st.consumers.len();
                }
                Err(tokio::sync::mpsc::error::SendError(ev)) => {
                    // The connection is gone; its cleanup will cancel the consumer. Keep the
                    // message and stop using this consumer.
                    if let ConnEvent::Deliver { mut entry, .. } = ev {
                        entry.shown = None;
                        st.ready.push_front(entry);
                    }
                    self.detach(st, idx);
                }
            }
        }
    }

    /// Attach a consumer. Fails with the reply RabbitMQ gives for exclusivity conflicts.
    pub fn add_consumer(self: &Arc<Self>, c: Consumer) -> Result<(), crate::error::AmqpError> {
        let mut st = self.lock();
        // Quorum queues have no exclusive consumers: the flag is ignored.
        let in_use = match (self.features.kind, self.features.single_active) {
            (QueueKind::Quorum, _) => false,
            (QueueKind::Classic, true) => c.exclusive,
            (QueueKind::Classic, false) => {
                st.consumers.iter().any(|x| x.exclusive)
                    || (c.exclusive && !st.consumers.is_empty())
            }
        };
        if in_use {
            return Err(crate::error::AmqpError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.name, self.vhost
            )));
        }
        st.consumers.push(c);
        st.had_consumer = true;
        if self.features.single_active && st.active.is_none() {
            st.active = Some(st.consumers.len() - 1);
        }
        self.dispatch(&mut st);
        Ok(())
    }

    /// Detach a consumer (basic.cancel, channel or connection close). With `dispatch`, a
    /// consumer that takes over (single active consumer) gets messages now; without, the
    /// caller requeues first and kicks the queue after.
    pub fn remove_consumer(self: &Arc<Self>, key: &ConsumerKey, dispatch: bool) -> AfterCancel {
        let mut st = self.lock();
        if let Some(idx) = st.consumers.iter().position(|c| &c.key == key) {
            self.detach(&mut st, idx);
        }
        if st.consumers.is_empty() {
            // Unused from now on: the queue TTL starts again.
            self.touch_locked(&mut st);
        }
        if self.auto_delete && st.had_consumer && st.consumers.is_empty() {
            return AfterCancel::AutoDelete;
        }
        if dispatch {
            self.dispatch(&mut st);
        }
        AfterCancel::Keep
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
        st.active = None;
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
