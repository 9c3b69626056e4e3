//! The ready list of a queue, with paging: a persistent message whose body would take the
//! broker over its memory budget keeps only a small slot in RAM (id, size, flags); its body is
//! read back from the store when it reaches the head and is delivered.

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

/// A message waiting in a queue. `msg` is None while the body is paged out.
#[derive(Debug)]
struct Slot {
    id: u64,
    msg: Option<Arc<Message>>,
    /// Body bytes (kept small: a slot is what a paged-out message costs in RAM).
    size: u32,
    redelivered: bool,
    expires_at: Option<Instant>,
    persisted: bool,
}

/// What leaves the list without being delivered: the store needs (id, persisted) to forget it.
pub(super) type Gone = (u64, bool);

#[derive(Debug)]
pub(super) struct ReadyList {
    slots: VecDeque<Slot>,
    budget: Arc<Budget>,
}

impl ReadyList {
    pub(super) fn new(budget: Arc<Budget>) -> ReadyList {
        ReadyList {
            slots: VecDeque::new(),
            budget,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn slot(&self, e: Entry, page_out: bool) -> Slot {
        let size = e.msg.size() as u32;
        let msg = if page_out && !self.budget.try_add(size as u64) {
            None
        } else {
            if !page_out {
                self.budget.add(size as u64);
            }
            Some(e.msg)
        };
        Slot {
            id: e.id,
            msg,
            size,
            redelivered: e.redelivered,
            expires_at: e.expires_at,
            persisted: e.persisted,
        }
    }

    /// Append a new message; a persisted one is paged out if the budget is spent.
    pub(super) fn push_back(&mut self, e: Entry) {
        let page_out = e.persisted;
        let s = self.slot(e, page_out);
        self.slots.push_back(s);
    }

    /// Append a message recovered from the store, keeping its body only while it fits.
    pub(super) fn push_recovered(&mut self, id: u64, msg: Arc<Message>, redelivered: bool) {
        let e = Entry {
            id,
            msg,
            redelivered,
            expires_at: None,
            persisted: true,
        };
        let s = self.slot(e, true);
        self.slots.push_back(s);
    }

    /// Append a recovered message whose body stays on disk.
    pub(super) fn push_paged(&mut self, id: u64, size: u32, redelivered: bool) {
        let s = Slot {
            id,
            msg: None,
            size,
            redelivered,
            expires_at: None,
            persisted: true,
        };
        self.slots.push_back(s);
    }

    /// Put a requeued entry back at its place by id (its body is in hand, so it stays).
    pub(super) fn insert_sorted(&mut self, e: Entry) {
        let s = self.slot(e, false);
        match self.slots.front() {
            Some(f) if f.id < s.id => {
                let pos = self.slots.partition_point(|x| x.id < s.id);
                self.slots.insert(pos, s);
            }
            _ => self.slots.push_front(s),
        }
    }

    fn unslot(&self, s: Slot, load: &dyn Fn(u64) -> Option<Arc<Message>>) -> Result<Entry, Gone> {
        let msg = match s.msg {
            Some(m) => {
                self.budget.release(s.size as u64);
                m
            }
            None => load(s.id).ok_or((s.id, s.persisted))?,
        };
        Ok(Entry {
            id: s.id,
            msg,
            redelivered: s.redelivered,
            expires_at: s.expires_at,
            persisted: s.persisted,
        })
    }

    /// Take the head, reading its body back from the store if it was paged out. `Err` when it
    /// could not be read (the caller logs and forgets it).
    pub(super) fn pop_front(
        &mut self,
        load: &dyn Fn(u64) -> Option<Arc<Message>>,
    ) -> Option<Result<Entry, Gone>> {
        let s = self.slots.pop_front()?;
        Some(self.unslot(s, load))
    }

    /// Put an entry just taken from the head back (its consumer went away).
    pub(super) fn push_front(&mut self, e: Entry) {
        let s = self.slot(e, false);
        self.slots.push_front(s);
    }

    /// Remove the newest message if it is `id` (a TTL-0 message nobody took).
    pub(super) fn pop_back_if(&mut self, id: u64) -> Option<Gone> {
        if self.slots.back().is_some_and(|s| s.id == id) {
            let s = self.slots.pop_back()?;
            if s.msg.is_some() {
                self.budget.release(s.size as u64);
            }
            return Some((s.id, s.persisted));
        }
        None
    }

    /// Remove expired messages at the head.
    pub(super) fn drop_expired(&mut self, now: Instant) -> Vec<Gone> {
        let mut gone = Vec::new();
        while self
            .slots
            .front()
            .is_some_and(|s| s.expires_at.is_some_and(|t| t <= now))
        {
            if let Some(s) = self.slots.pop_front() {
                if s.msg.is_some() {
                    self.budget.release(s.size as u64);
                }
                gone.push((s.id, s.persisted));
            }
        }
        gone
    }

    /// Remove everything.
    pub(super) fn drain(&mut self) -> Vec<Gone> {
        let slots: Vec<Slot> = self.slots.drain(..).collect();
        slots
            .into_iter()
            .map(|s| {
                if s.msg.is_some() {
                    self.budget.release(s.size as u64);
                }
                (s.id, s.persisted)
            })
            .collect()
    }

    /// How many bodies are paged out (for tests and metrics).
    pub(super) fn paged_out(&self) -> usize {
        self.slots.iter().filter(|s| s.msg.is_none()).count()
    }
}
