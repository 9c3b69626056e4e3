//! The queue lock, and what happens to messages that must leave a queue without being
//! delivered: expiry, length limits and dead-lettering (republished once the lock is released).

use super::dead_letter::Reason;
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
        if let Some(at) = st.ready.head_expiry() {
            if st.wake_at.is_none_or(|w| w > at) {
                st.wake_at = Some(at);
                expiry::schedule(at, self.queue.me.clone());
            }
        }
        let dead = std::mem::take(&mut st.dead);
        drop(st);
        if !dead.is_empty() {
            self.queue.republish_dead(dead);
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

    /// The expiry timer's call: drop (or dead-letter) expired head messages.
    pub(super) fn expire(&self) {
        let mut st = self.lock();
        st.wake_at = None;
        self.drop_expired(&mut st);
    }

    /// Republish messages that died here to the dead-letter exchange (if it exists).
    pub(super) fn republish_dead(&self, dead: Vec<(Arc<Message>, Reason)>) {
        let (Some(target), Some(vhost)) = (&self.dead_letter, self.vhost_ref.upgrade()) else {
            return;
        };
        vhost.dead_letter(&self.name, target, dead);
    }

    /// A message died: keep it for the dead-letter exchange, if the queue has one.
    pub(super) fn died(&self, st: &mut State, msg: Arc<Message>, reason: Reason) {
        if self.dead_letter.is_some() {
            st.dead.push((msg, reason));
        }
    }

    /// Over `x-max-length` or `x-max-length-bytes` with `extra` more bytes in one more
    /// message (0, 0: as it is).
    pub(super) fn over_limit(&self, st: &State, messages: u64, bytes: u64) -> bool {
        self.max_length
            .is_some_and(|m| st.ready.len() as u64 + messages > m)
            || self.max_bytes.is_some_and(|m| st.ready.bytes() + bytes > m)
    }

    /// drop-head: remove the oldest ready messages until the queue is within its limits.
    pub(super) fn enforce_limits(&self, st: &mut State) {
        while !st.ready.is_empty() && self.over_limit(st, 0, 0) {
            self.remove_head(st, Reason::Maxlen);
        }
    }

    /// Drop expired messages at the head.
    pub(super) fn drop_expired(&self, st: &mut State) {
        // No clock read on the hot path of a queue without TTLs.
        if st.ready.head_expiry().is_none() {
            return;
        }
        let now = Instant::now();
        while st.ready.head_expired(now) {
            self.remove_head(st, Reason::Expired);
        }
    }

    /// The head message dies for `reason`: read back and kept for the dead-letter exchange if
    /// the queue has one, otherwise dropped unread.
    fn remove_head(&self, st: &mut State, reason: Reason) {
        if self.dead_letter.is_none() {
            if let Some(gone) = st.ready.drop_front() {
                self.forget([gone]);
            }
            return;
        }
        match st.ready.pop_front(&|id, home| self.load(id, home)) {
            Some(Ok(e)) => {
                self.forget([e.gone()]);
                self.died(st, e.msg, reason);
            }
            Some(Err(gone)) => self.forget([gone]),
            None => {}
        }
    }
}
