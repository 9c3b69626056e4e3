//! The ready list of a queue, with paging: a message that would take the broker over its
//! memory budget keeps only a small slot in RAM (id, flags); the message itself is in the
//! store (persistent ones already are, transient ones are written out) and is read back when
//! it reaches the head and is delivered.

use super::Entry;
use crate::message::Message;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Bytes of message bodies held in ready lists across the broker, against a limit.
#[derive(Debug)]
pub struct Budget {
    pub limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Whether `n` more bytes fit (a check only; nothing is taken).
    pub fn fits(&self, n: u64) -> bool {
        self.used() + n <= self.limit
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    /// Take `n` bytes if they fit.
    fn try_add(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                (u + n <= self.limit).then_some(u + n)
            })
            .is_ok()
    }

    fn release(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// Where a queued message's full copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Home {
    /// Only in memory (transient, or a queue that does not persist).
    Memory,
    /// In the store's `messages` tree (persistent, in a durable queue), maybe also in memory.
    Stored,
    /// Pushed out of memory to the store's `paged` tree (transient).
    Paged,
}

/// A message waiting in a queue. `msg` is None while it is paged out.
#[derive(Debug)]
struct Slot {
    id: u64,
    msg: Option<Arc<Message>>,
    /// Bytes charged to the budget while `msg` is held (kept small: a slot is what a paged-out
    /// message costs in RAM).
    charged: u32,
    /// Body bytes, for `x-max-length-bytes`.
    size: u32,
    redelivered: bool,
    expires_at: Option<Instant>,
    home: Home,
}

/// What leaves the list without being delivered: the store needs (id, home) to forget it.
pub(super) type Gone = (u64, Home);

/// How a paged-out message is read back.
pub(super) type Load<'a> = &'a dyn Fn(u64, Home) -> Option<Arc<Message>>;

#[derive(Debug)]
pub(super) struct ReadyList {
    slots: VecDeque<Slot>,
    /// Charged for persistent messages held in RAM (they can be dropped and read back).
    budget: Arc<Budget>,
    /// Charged for transient messages held in RAM; beyond it they are paged out.
    transient: Arc<Budget>,
    /// Body bytes of every slot.
    bytes: u64,
}

impl ReadyList {
    pub(super) fn new(budget: Arc<Budget>, transient: Arc<Budget>) -> ReadyList {
        ReadyList {
            slots: VecDeque::new(),
            budget,
            transient,
            bytes: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Body bytes of the ready messages.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    fn home(e: &Entry) -> Home {
        if e.persisted {
            Home::Stored
        } else {
            Home::Memory
        }
    }

    /// The budget a message held in RAM with this home is charged to.
    fn budget_for(&self, home: Home) -> &Budget {
        match home {
            Home::Stored => &self.budget,
            Home::Memory | Home::Paged => &self.transient,
        }
    }

    /// A slot holding the message in memory, charged to the budget even beyond it.
    fn held(&self, e: Entry) -> Slot {
        let charged = e.msg.footprint() as u32;
        let home = Self::home(&e);
        self.budget_for(home).add(charged as u64);
        Slot {
            id: e.id,
            home,
            size: e.msg.size() as u32,
            msg: Some(e.msg),
            charged,
            redelivered: e.redelivered,
            expires_at: e.expires_at,
        }
    }

    fn paged(e: &Entry, home: Home) -> Slot {
        Slot {
            id: e.id,
            msg: None,
            charged: 0,
            size: e.msg.size() as u32,
            redelivered: e.redelivered,
            expires_at: e.expires_at,
            home,
        }
    }

    fn put_back(&mut self, s: Slot) {
        self.bytes += s.size as u64;
        self.slots.push_back(s);
    }

    /// Account for a slot leaving the list; returns what the store must forget.
    fn left(&mut self, s: &Slot) -> Gone {
        self.bytes = self.bytes.saturating_sub(s.size as u64);
        if s.charged > 0 {
            self.budget_for(s.home).release(s.charged as u64);
        }
        (s.id, s.home)
    }

    /// Append a new message. Beyond the budget a persistent one keeps only its slot (its
    /// record is in the store already), and a transient one is handed to `page_out`, which
    /// writes it to the store and says whether it did.
    pub(super) fn push_back(&mut self, e: Entry, page_out: impl FnOnce(&Entry) -> bool) {
        let charge = e.msg.footprint() as u64;
        let home = Self::home(&e);
        let s = if self.budget_for(home).try_add(charge) {
            Slot {
                id: e.id,
                home,
                size: e.msg.size() as u32,
                msg: Some(e.msg),
                charged: charge as u32,
                redelivered: e.redelivered,
                expires_at: e.expires_at,
            }
        } else if e.persisted {
            Self::paged(&e, Home::Stored)
        } else if page_out(&e) {
            Self::paged(&e, Home::Paged)
        } else {
            self.held(e)
        };
        self.put_back(s);
    }

    /// Append a message recovered from the store, keeping it in memory while it fits.
    pub(super) fn push_recovered(&mut self, id: u64, msg: Arc<Message>, redelivered: bool) {
        let e = Entry {
            id,
            msg,
            redelivered,
            expires_at: None,
            persisted: true,
        };
        self.push_back(e, |_| false);
    }

    /// Append a recovered message that stays on disk.
    pub(super) fn push_paged(&mut self, id: u64, size: u32, redelivered: bool) {
        self.put_back(Slot {
            id,
            msg: None,
            charged: 0,
            size,
            redelivered,
            expires_at: None,
            home: Home::Stored,
        });
    }

    /// Put a requeued entry back at its place by id (its body is in hand, so it stays).
    pub(super) fn insert_sorted(&mut self, e: Entry) {
        let s = self.held(e);
        self.bytes += s.size as u64;
        match self.slots.front() {
            Some(f) if f.id < s.id => {
                let pos = self.slots.partition_point(|x| x.id < s.id);
                self.slots.insert(pos, s);
            }
            _ => self.slots.push_front(s),
        }
    }

    /// Take the head, reading its body back from the store if it was paged out. `Err` when it
    /// could not be read (the caller logs and forgets it).
    pub(super) fn pop_front(&mut self, load: Load<'_>) -> Option<Result<Entry, Gone>> {
        let s = self.slots.pop_front()?;
        // A drained deep queue gives its index memory back.
        if self.slots.capacity() > 4096 && self.slots.len() * 4 < self.slots.capacity() {
            self.slots.shrink_to(self.slots.len() * 2);
        }
        let gone = self.left(&s);
        let msg = match s.msg {
            Some(m) => m,
            None => match load(s.id, s.home) {
                Some(m) => m,
                None => return Some(Err(gone)),
            },
        };
        Some(Ok(Entry {
            id: s.id,
            msg,
            redelivered: s.redelivered,
            expires_at: s.expires_at,
            // Paged in: the page is gone, the message is only in hand now.
            persisted: s.home == Home::Stored,
        }))
    }

    /// Drop the head without reading it back.
    pub(super) fn drop_front(&mut self) -> Option<Gone> {
        let s = self.slots.pop_front()?;
        Some(self.left(&s))
    }

    /// When the head message expires, if it does.
    pub(super) fn head_expiry(&self) -> Option<Instant> {
        self.slots.front().and_then(|s| s.expires_at)
    }

    /// Whether the head has expired by `now`.
    pub(super) fn head_expired(&self, now: Instant) -> bool {
        self.slots
            .front()
            .is_some_and(|s| s.expires_at.is_some_and(|t| t <= now))
    }

    /// Put an entry just taken from the head back (its consumer went away).
    pub(super) fn push_front(&mut self, e: Entry) {
        let s = self.held(e);
        self.bytes += s.size as u64;
        self.slots.push_front(s);
    }

    /// Remove the newest message if it is `id` (a TTL-0 message nobody took).
    pub(super) fn pop_back_if(&mut self, id: u64) -> Option<Gone> {
        if self.slots.back().is_some_and(|s| s.id == id) {
            let s = self.slots.pop_back()?;
            return Some(self.left(&s));
        }
        None
    }

    /// Remove everything.
    pub(super) fn drain(&mut self) -> Vec<Gone> {
        let slots: Vec<Slot> = self.slots.drain(..).collect();
        slots.iter().map(|s| self.left(s)).collect()
    }

    /// How many bodies are paged out (for tests and metrics).
    pub(super) fn paged_out(&self) -> usize {
        self.slots.iter().filter(|s| s.msg.is_none()).count()
    }
}
