//! The queue lock, and what happens to messages that must leave a queue without being
//! delivered: expiry, length limits and dead-lettering (republished once the lock is released).

use super::dead_letter::{Reason, Target};
use super::ready::Load;
use super::{expiry, Queue, State};
use crate::message::Message;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

/// The queue lock. Messages that died while it was held are dead-lettered when it is
/// released, so that republishing them (which locks other queues, or this one) never happens
/// under it.
pub(super) struct Locked<'a> {
    queue: &'a Queue,
    st: Option<MutexGuard<'a, State>>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.st.as_ref().expect("held until drop")
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.st.as_mut().expect("held until drop")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let Some(mut st) = self.st.take() else { return };
        if let Some(at) = st.ready.next_wake() {
            if st.wake_at.is_none_or(|w| w > at) {
                st.wake_at = Some(at);
                expiry::schedule(at, self.queue.me.clone());
            }
        }
        let dead = std::mem::take(&mut st.dead);
        // Where they go is read under the lock: a policy may change it.
        let target = match dead.is_empty() {
            true => None,
            false => st.limits.dead_letter.clone(),
        };
        drop(st);
        if let Some(target) = target {
            self.queue.republish_dead(&target, dead);
        }
    }
}

impl Queue {
    pub(super) fn lock(&self) -> Locked<'_> {
        Locked {
            queue: self,
            st: Some(self.state.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// The expiry timer's call: drop (or dead-letter) expired messages, and delete the queue
    /// if it has been unused for its `x-expires`.
    pub(super) fn expire(self: &Arc<Self>) {
        let mut st = self.lock();
        st.wake_at = None;
        self.drop_expired(&mut st);
        let now = Instant::now();
        if st.ready.sweep_due(now) {
            let keep = st.limits.dead_letter.is_some();
            let load = |id, home| self.load(id, home);
            let dead = st.ready.sweep(now, keep.then_some(&load as Load<'_>));
            for d in dead {
                match d {
                    Ok(e) => {
                        self.forget([e.gone()]);
                        self.died(&mut st, e.msg, Reason::Expired);
                    }
                    Err(gone) => self.dropped(gone, Reason::Expired),
                }
            }
        }
        let unused = self.check_unused(&mut st, now);
        drop(st);
        if unused {
            if let Some(vhost) = self.vhost_ref.upgrade() {
                tracing::debug!(
                    queue = self.name,
                    "deleting a queue unused for its x-expires"
                );
                let (_, consumers) = vhost.delete_queue(self);
                crate::channel::notify_cancelled(consumers);
            }
        }
    }

    /// `x-expires`: whether the queue has been unused long enough to go. Keeps one wake
    /// pending for it while the queue has no consumers.
    fn check_unused(&self, st: &mut State, now: Instant) -> bool {
        let Some(until) = st.unused_until else {
            return false;
        };
        if st.unused_wake.is_some_and(|t| t > now) {
            return false;
        }
        st.unused_wake = None;
        if !st.consumers.is_empty() || self.is_deleted() {
            // In use: the wake is set again when the last consumer goes.
            return false;
        }
        if now < until {
            st.unused_wake = Some(until);
            expiry::schedule(until, self.me.clone());
            return false;
        }
        true
    }

    /// The queue was used (declared, basic.get, its last consumer left): its `x-expires`
    /// starts again.
    pub fn touch(&self) {
        let mut st = self.lock();
        self.touch_locked(&mut st);
    }

    pub(super) fn touch_locked(&self, st: &mut State) {
        let Some(ttl) = st.limits.expires else {
            return;
        };
        let until = Instant::now() + ttl;
        st.unused_until = Some(until);
        if st.unused_wake.is_none() {
            st.unused_wake = Some(until);
            expiry::schedule(until, self.me.clone());
        }
    }

    /// Republish messages that died here to the dead-letter exchange (if it exists).
    fn republish_dead(&self, target: &Target, dead: Vec<(Arc<Message>, Reason)>) {
        if let Some(vhost) = self.vhost_ref.upgrade() {
            vhost.dead_letter(&self.name, target, dead);
        }
    }

    /// A message died unread (no dead-letter exchange to give it to): the store forgets it.
    pub(super) fn dropped(&self, gone: super::ready::Gone, reason: Reason) {
        self.forget([gone]);
        self.deaths.inc(reason, false);
    }

    /// A message died: keep it for the dead-letter exchange, if the queue has one.
    pub(super) fn died(&self, st: &mut State, msg: Arc<Message>, reason: Reason) {
        self.deaths.inc(reason, st.limits.dead_letter.is_some());
        if st.limits.dead_letter.is_some() {
            st.dead.push((msg, reason));
        }
    }

    /// Over `x-max-length` or `x-max-length-bytes` with `extra` more bytes in one more
    /// message (0, 0: as it is).
    pub(super) fn over_limit(&self, st: &State, messages: u64, bytes: u64) -> bool {
        let limits = &st.limits;
        limits
            .max_length
            .is_some_and(|m| st.ready.len() as u64 + messages > m)
            || limits
                .max_bytes
                .is_some_and(|m| st.ready.bytes() + bytes > m)
    }

    /// drop-head: remove the oldest ready messages until the queue is within its limits.
    pub(super) fn enforce_limits(&self, st: &mut State) {
        while !st.ready.is_empty() && self.over_limit(st, 0, 0) {
            self.remove_head(st, Reason::Maxlen);
        }
    }

    /// Drop expired messages at the heads of the lanes.
    pub(super) fn drop_expired(&self, st: &mut State) {
        // No clock read on the hot path of a queue without TTLs.
        if !st.ready.has_ttl() {
            return;
        }
        let now = Instant::now();
        let keep = st.limits.dead_letter.is_some();
        let load = |id, home| self.load(id, home);
        while let Some(d) = st
            .ready
            .pop_expired_head(now, keep.then_some(&load as Load<'_>))
        {
            match d {
                Ok(e) => {
                    self.forget([e.gone()]);
                    self.died(st, e.msg, Reason::Expired);
                }
                Err(gone) => self.dropped(gone, Reason::Expired),
            }
        }
    }

    /// The head message dies for `reason`: read back and kept for the dead-letter exchange if
    /// the queue has one, otherwise dropped unread.
    fn remove_head(&self, st: &mut State, reason: Reason) {
        if st.limits.dead_letter.is_none() {
            if let Some(gone) = st.ready.drop_front() {
                self.dropped(gone, reason);
            }
            return;
        }
        match st.ready.pop_front(&|id, home| self.load(id, home)) {
            Some(Ok(e)) => {
                self.forget([e.gone()]);
                self.died(st, e.msg, reason);
            }
            Some(Err(gone)) => self.dropped(gone, reason),
            None => {}
        }
    }
}
