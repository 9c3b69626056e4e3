//! The ready list of a queue, with paging: a message that would take the broker over its
//! memory budget keeps only a small slot in RAM (id, flags); the message itself is in the
//! store (persistent ones already are, transient ones are written out) and is read back when
//! it reaches the head and is delivered.
//!
//! Messages wait in lanes, highest first: a plain queue has one lane (one `VecDeque`, the hot
//! path), a priority queue one per priority. Expiry bookkeeping is in [`super::ready_ttl`];
//! it costs nothing for messages without an expiry.

pub use super::budget::Budget;
use super::Entry;
use crate::message::Message;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

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
pub(super) struct Slot {
    pub(super) id: u64,
    msg: Option<Arc<Message>>,
    /// Bytes charged to the budget while `msg` is held (kept small: a slot is what a paged-out
    /// message costs in RAM).
    charged: u32,
    /// Body bytes, for `x-max-length-bytes`.
    size: u32,
    pub(super) expires_at: Option<Instant>,
    redelivered: bool,
    home: Home,
    lane: u8,
    acquired: u16,
    failed: u16,
}

/// What leaves the list without being delivered: the store needs (id, home) to forget it.
pub(super) type Gone = (u64, Home);

/// How a paged-out message is read back.
pub(super) type Load<'a> = &'a dyn Fn(u64, Home) -> Option<Arc<Message>>;

#[derive(Debug)]
pub(super) struct ReadyList {
    /// Lane 0: the only lane of a plain queue.
    pub(super) slots: VecDeque<Slot>,
    /// Lanes 1.. of a priority queue (`upper[i]` is lane `i + 1`).
    pub(super) upper: Vec<VecDeque<Slot>>,
    /// Slots in `upper`.
    pub(super) upper_len: usize,
    /// The highest upper lane that may hold slots (0: none).
    top: usize,
    /// Charged for persistent messages held in RAM (they can be dropped and read back).
    budget: Arc<Budget>,
    /// Charged for transient messages held in RAM; beyond it they are paged out.
    transient: Arc<Budget>,
    /// Body bytes of every slot.
    bytes: u64,
    /// Expiry bookkeeping.
    pub(super) ttl: super::ready_ttl::Expiries,
}

impl ReadyList {
    /// A list with `lanes` lanes (1 for a queue without priorities).
    pub(super) fn new(budget: Arc<Budget>, transient: Arc<Budget>, lanes: usize) -> ReadyList {
        ReadyList {
            slots: VecDeque::new(),
            upper: (1..lanes.max(1)).map(|_| VecDeque::new()).collect(),
            upper_len: 0,
            top: 0,
            budget,
            transient,
            bytes: 0,
            ttl: Default::default(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len() + self.upper_len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Body bytes of the ready messages.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(super) fn lanes(&self) -> usize {
        self.upper.len() + 1
    }

    pub(super) fn lane(&self, l: usize) -> &VecDeque<Slot> {
        if l == 0 {
            &self.slots
        } else {
            &self.upper[l - 1]
        }
    }

    pub(super) fn lane_mut(&mut self, l: usize) -> &mut VecDeque<Slot> {
        if l == 0 {
            &mut self.slots
        } else {
            &mut self.upper[l - 1]
        }
    }

    /// The lane the next message comes from.
    fn front_lane(&mut self) -> Option<usize> {
        if self.upper_len > 0 {
            while self.top > 0 && self.upper[self.top - 1].is_empty() {
                self.top -= 1;
            }
            if self.top > 0 {
                return Some(self.top);
            }
        }
        (!self.slots.is_empty()).then_some(0)
    }

    /// A lane for `lane`, clamped to the lanes this list has.
    fn clamp(&self, lane: u8) -> usize {
        (lane as usize).min(self.upper.len())
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

    fn slot(e: &Entry, home: Home, msg: Option<Arc<Message>>, charged: u32) -> Slot {
        Slot {
            id: e.id,
            home,
            size: e.msg.size() as u32,
            msg,
            charged,
            redelivered: e.redelivered,
            expires_at: e.expires_at,
            lane: e.lane,
            acquired: e.acquired,
            failed: e.failed,
        }
    }

    /// A slot holding the message in memory, charged to the budget even beyond it.
    fn held(&self, e: Entry) -> Slot {
        let charged = e.msg.footprint() as u32;
        let home = Self::home(&e);
        self.budget_for(home).add(charged as u64);
        let msg = e.msg.clone();
        Self::slot(&e, home, Some(msg), charged)
    }

    /// Append a slot to the back of its lane.
    fn put_back(&mut self, mut s: Slot) {
        let l = self.clamp(s.lane);
        s.lane = l as u8;
        self.bytes += s.size as u64;
        if let Some(exp) = s.expires_at {
            let back = self.lane(l).back().map(|b| b.expires_at);
            self.ttl.pushed_back(exp, back);
        }
        if l > 0 {
            self.upper_len += 1;
            self.top = self.top.max(l);
        }
        self.lane_mut(l).push_back(s);
    }

    /// Insert a slot at `pos` of its lane.
    fn put_at(&mut self, mut s: Slot, pos: usize) {
        let l = self.clamp(s.lane);
        s.lane = l as u8;
        self.bytes += s.size as u64;
        if l > 0 {
            self.upper_len += 1;
            self.top = self.top.max(l);
        }
        let lane = self.lane_mut(l);
        lane.insert(pos, s);
        let lane = self.lane(l);
        let (pred, succ) = (
            pos.checked_sub(1).and_then(|p| lane.get(p)),
            lane.get(pos + 1),
        );
        let now_at = &lane[pos];
        if now_at.expires_at.is_some() || succ.is_some_and(|x| x.expires_at.is_some()) {
            let (exp, p, n) = (
                now_at.expires_at,
                pred.map(|p| p.expires_at),
                succ.map(|n| n.expires_at),
            );
            self.ttl.inserted(exp, p, n);
        }
    }

    /// Account for a slot leaving the list; returns what the store must forget.
    pub(super) fn left(&mut self, s: &Slot) -> Gone {
        self.bytes = self.bytes.saturating_sub(s.size as u64);
        if s.charged > 0 {
            self.budget_for(s.home).release(s.charged as u64);
        }
        if s.lane > 0 {
            self.upper_len -= 1;
        }
        if s.expires_at.is_some() {
            self.ttl.removed();
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
            Self::slot(&e, home, Some(e.msg.clone()), charge as u32)
        } else if e.persisted {
            Self::slot(&e, Home::Stored, None, 0)
        } else if page_out(&e) {
            Self::slot(&e, Home::Paged, None, 0)
        } else {
            self.held(e)
        };
        self.put_back(s);
    }

    /// Append a message whose body is in hand (a requeued one) without paging it.
    pub(super) fn push_back_held(&mut self, e: Entry) {
        let s = self.held(e);
        self.put_back(s);
    }

    /// Append a message recovered from the store, keeping it in memory while it fits.
    pub(super) fn push_recovered(
        &mut self,
        id: u64,
        msg: Arc<Message>,
        redelivered: bool,
        lane: u8,
    ) {
        let e = Entry {
            redelivered,
            persisted: true,
            lane,
            ..Entry::new(id, msg, None)
        };
        self.push_back(e, |_| false);
    }

    /// Append a recovered message that stays on disk.
    pub(super) fn push_paged(&mut self, id: u64, size: u32, redelivered: bool, lane: u8) {
        self.put_back(Slot {
            id,
            msg: None,
            charged: 0,
            size,
            redelivered,
            expires_at: None,
            home: Home::Stored,
            lane,
            acquired: 0,
            failed: 0,
        });
    }

    /// Put a requeued entry back at its place by id in its lane (its body is in hand, so it
    /// stays).
    pub(super) fn insert_sorted(&mut self, e: Entry) {
        let s = self.held(e);
        let lane = self.lane(self.clamp(s.lane));
        let pos = match lane.front() {
            Some(f) if f.id < s.id => lane.partition_point(|x| x.id < s.id),
            _ => 0,
        };
        self.put_at(s, pos);
    }

    /// Put an entry just taken from the head back (its consumer went away).
    pub(super) fn push_front(&mut self, e: Entry) {
        let s = self.held(e);
        self.put_at(s, 0);
    }

    /// Take the head, reading its body back from the store if it was paged out. `Err` when it
    /// could not be read (the caller logs and forgets it).
    pub(super) fn pop_front(&mut self, load: Load<'_>) -> Option<Result<Entry, Gone>> {
        let l = self.front_lane()?;
        let lane = self.lane_mut(l);
        let s = lane.pop_front()?;
        // A drained deep queue gives its index memory back.
        if lane.capacity() > 4096 && lane.len() * 4 < lane.capacity() {
            let keep = lane.len() * 2;
            lane.shrink_to(keep);
        }
        Some(self.take_slot(s, load))
    }

    /// A slot that left the list, as an entry with its body (read back if paged out).
    pub(super) fn take_slot(&mut self, s: Slot, load: Load<'_>) -> Result<Entry, Gone> {
        let gone = self.left(&s);
        let msg = match s.msg {
            Some(m) => m,
            None => match load(s.id, s.home) {
                Some(m) => m,
                None => return Err(gone),
            },
        };
        Ok(Entry {
            id: s.id,
            msg,
            redelivered: s.redelivered,
            expires_at: s.expires_at,
            // Paged in: the page is gone, the message is only in hand now.
            persisted: s.home == Home::Stored,
            lane: s.lane,
            acquired: s.acquired,
            failed: s.failed,
            shown: None,
        })
    }

    /// Drop the head without reading it back.
    pub(super) fn drop_front(&mut self) -> Option<Gone> {
        let l = self.front_lane()?;
        let s = self.lane_mut(l).pop_front()?;
        Some(self.left(&s))
    }

    /// Remove the newest message of `lane` if it is `id` (a TTL-0 message nobody took).
    pub(super) fn pop_back_if(&mut self, id: u64, lane: u8) -> Option<Gone> {
        let l = self.clamp(lane);
        if self.lane(l).back().is_some_and(|s| s.id == id) {
            let s = self.lane_mut(l).pop_back()?;
            return Some(self.left(&s));
        }
        None
    }

    /// Remove everything.
    pub(super) fn drain(&mut self) -> Vec<Gone> {
        let mut slots: Vec<Slot> = self.slots.drain(..).collect();
        for lane in &mut self.upper {
            slots.extend(lane.drain(..));
        }
        slots.iter().map(|s| self.left(s)).collect()
    }

    /// How many bodies are paged out (for tests and metrics).
    pub(super) fn paged_out(&self) -> usize {
        (0..self.lanes())
            .map(|l| self.lane(l).iter().filter(|s| s.msg.is_none()).count())
            .sum()
    }
}
