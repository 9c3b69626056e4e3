//! Message expiry anywhere in a queue, without a per-message cost for messages that have no
//! expiry and without a clock read for queues that hold none.
//!
//! A message with an expiry is "in order" when everything before it in its lane has an
//! expiry no later than its own: it expires at the head, after all of those did, and the head
//! check finds it on time. Any other one is "buried" (behind a message that never expires or
//! expires later, e.g. a short per-message TTL behind a long one), and `buried` is a lower
//! bound of when the first of those expires. The queue's timer wakes at the earliest head
//! expiry or at `buried`; a buried expiry due makes it sweep the whole list, which drops
//! every expired message and computes `buried` afresh. Sweeps are spaced so that they take
//! at most about 5% of the time. Whatever a sweep has not reached yet is still never
//! delivered: the queue checks each message's expiry as it takes it.

use super::ready::{Gone, Load, ReadyList, Slot};
use super::Entry;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(super) struct Expiries {
    /// Slots with an expiry.
    count: usize,
    /// Lower bound of the expiries of buried slots.
    buried: Option<Instant>,
    /// No sweep before this.
    sweep_after: Option<Instant>,
}

fn earlier(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Expiries {
    fn bury(&mut self, at: Instant) {
        self.buried = earlier(self.buried, at);
    }

    /// A slot expiring at `exp` was appended behind `back` (`Some(None)`: a slot that never
    /// expires).
    pub(super) fn pushed_back(&mut self, exp: Instant, back: Option<Option<Instant>>) {
        self.count += 1;
        if let Some(b) = back {
            if b.is_none_or(|b| b > exp) {
                self.bury(exp);
            }
        }
    }

    /// A slot (`exp`) was inserted between `pred` and `succ` (each `None` when absent).
    pub(super) fn inserted(
        &mut self,
        exp: Option<Instant>,
        pred: Option<Option<Instant>>,
        succ: Option<Option<Instant>>,
    ) {
        if let Some(e) = exp {
            self.count += 1;
            if pred.is_some_and(|p| p.is_none_or(|p| p > e)) {
                self.bury(e);
            }
        }
        // The next slot may be behind a later expiry now.
        if let Some(Some(n)) = succ {
            if exp.is_none_or(|e| e > n) {
                self.bury(n);
            }
        }
    }

    pub(super) fn removed(&mut self) {
        self.count -= 1;
        if self.count == 0 {
            self.buried = None;
            self.sweep_after = None;
        }
    }
}

impl ReadyList {
    /// Whether any ready message has an expiry (no clock read needed otherwise).
    pub(super) fn has_ttl(&self) -> bool {
        self.ttl.count > 0
    }

    /// When the queue should next look for expired messages.
    pub(super) fn next_wake(&self) -> Option<Instant> {
        if self.ttl.count == 0 {
            return None;
        }
        let mut at = self.ttl.buried.map(|b| match self.ttl.sweep_after {
            Some(a) => a.max(b),
            None => b,
        });
        for l in 0..self.lanes() {
            if let Some(t) = self.lane(l).front().and_then(|s| s.expires_at) {
                at = earlier(at, t);
            }
        }
        at
    }

    /// Take a lane head that has expired by `now`, if any: read back (to be dead-lettered)
    /// with `load`, else only dropped.
    pub(super) fn pop_expired_head(
        &mut self,
        now: Instant,
        load: Option<Load<'_>>,
    ) -> Option<Result<Entry, Gone>> {
        let l = (0..self.lanes()).rev().find(|&l| {
            self.lane(l)
                .front()
                .is_some_and(|s| s.expires_at.is_some_and(|t| t <= now))
        })?;
        let s = self.lane_mut(l).pop_front()?;
        Some(match load {
            Some(load) => self.take_slot(s, load),
            None => Err(self.left(&s)),
        })
    }

    /// Whether a buried message may have expired and a sweep is allowed.
    pub(super) fn sweep_due(&self, now: Instant) -> bool {
        self.ttl.buried.is_some_and(|b| b <= now) && self.ttl.sweep_after.is_none_or(|a| a <= now)
    }

    /// Remove every message expired by `now`, wherever it is, and recompute `buried`.
    pub(super) fn sweep(
        &mut self,
        now: Instant,
        load: Option<Load<'_>>,
    ) -> Vec<Result<Entry, Gone>> {
        let mut dead: Vec<Slot> = Vec::new();
        let mut buried: Option<Instant> = None;
        for l in 0..self.lanes() {
            let lane = std::mem::take(self.lane_mut(l));
            let mut kept = std::collections::VecDeque::with_capacity(lane.len());
            // The latest expiry so far in the lane (None: nothing yet; Some(None): a slot
            // that never expires).
            let mut max: Option<Option<Instant>> = None;
            for s in lane {
                match s.expires_at {
                    Some(t) if t <= now => dead.push(s),
                    Some(t) => {
                        if max.is_some_and(|m| m.is_none_or(|m| m > t)) {
                            buried = earlier(buried, t);
                        }
                        max = Some(match max {
                            Some(Some(m)) => Some(m.max(t)),
                            Some(None) => None,
                            None => Some(t),
                        });
                        kept.push_back(s);
                    }
                    None => {
                        max = Some(None);
                        kept.push_back(s);
                    }
                }
            }
            *self.lane_mut(l) = kept;
        }
        self.ttl.buried = buried;
        // Space sweeps out: at most about 5% of the time goes to them.
        let spent = now.elapsed();
        self.ttl.sweep_after = Some(Instant::now() + (spent * 20).max(Duration::from_millis(1)));
        dead.into_iter()
            .map(|s| match load {
                Some(load) => self.take_slot(s, load),
                None => Err(self.left(&s)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Budget, Entry, ReadyList};
    use crate::message::Message;
    use std::time::{Duration, Instant};

    fn msg() -> std::sync::Arc<Message> {
        Message::with_properties(
            String::new(),
            String::new(),
            Default::default(),
            bytes::Bytes::from_static(b"x"),
        )
    }

    /// The wake ignoring sweep spacing: never later than the earliest expiry in the list.
    fn check(r: &ReadyList) {
        let mut min: Option<Instant> = None;
        for l in 0..r.lanes() {
            for s in r.lane(l) {
                if let Some(t) = s.expires_at {
                    min = super::earlier(min, t);
                }
            }
        }
        let mut wake = r.ttl.buried;
        for l in 0..r.lanes() {
            if let Some(t) = r.lane(l).front().and_then(|s| s.expires_at) {
                wake = super::earlier(wake, t);
            }
        }
        if let Some(m) = min {
            assert!(
                wake.is_some_and(|w| w <= m),
                "wake {wake:?} after expiry {m:?}"
            );
        }
    }

    #[test]
    fn the_wake_is_never_later_than_any_expiry() {
        let t0 = Instant::now();
        let mut seed = 7u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _round in 0..50 {
            let mut r = ReadyList::new(Budget::new(u64::MAX), Budget::new(u64::MAX), 3);
            let mut taken: Vec<Entry> = Vec::new();
            for id in 0..60u64 {
                match rnd(10) {
                    0..=5 => {
                        let exp = (rnd(3) > 0).then(|| t0 + Duration::from_millis(rnd(1000)));
                        let e = Entry {
                            lane: rnd(3) as u8,
                            ..Entry::new(id, msg(), exp)
                        };
                        r.push_back(e, |_| false);
                    }
                    6 | 7 => {
                        if let Some(Ok(e)) = r.pop_front(&|_, _| None) {
                            taken.push(e);
                        }
                    }
                    8 => {
                        if !taken.is_empty() {
                            let e = taken.swap_remove(rnd(taken.len() as u64) as usize);
                            r.insert_sorted(e);
                        }
                    }
                    _ => {
                        let now = t0 + Duration::from_millis(rnd(1000));
                        for d in r.sweep(now, None) {
                            assert!(d.is_err());
                        }
                        for l in 0..r.lanes() {
                            assert!(r
                                .lane(l)
                                .iter()
                                .all(|s| s.expires_at.is_none_or(|t| t > now)));
                        }
                    }
                }
                check(&r);
            }
            r.drain();
            assert!(!r.has_ttl());
        }
    }
}
