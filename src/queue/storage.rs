//! The queue's side of the store: writing transient messages out, reading paged-out ones
//! back, forgetting settled ones, and taking live messages off the ready list.

use super::dead_letter::Reason;
use super::ready::{Gone, Home};
use super::{Entry, Queue, State};
use crate::message::Message;
use std::sync::Arc;
use std::time::Instant;

impl Queue {
    /// Write a transient message out to the store (the memory budget is spent).
    pub(super) fn page_out(&self, e: &Entry) -> bool {
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
    pub(super) fn forget(&self, gone: impl IntoIterator<Item = Gone>) {
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
    pub(super) fn load(&self, id: u64, home: Home) -> Option<Arc<Message>> {
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
    pub(super) fn pop_ready(&self, st: &mut State) -> Option<Entry> {
        loop {
            match st.ready.pop_front(&|id, home| self.load(id, home))? {
                Ok(e) => return Some(e),
                Err(gone) => self.forget([gone]),
            }
        }
    }

    /// The next message that has not expired: expired ones met on the way die (and are
    /// dead-lettered), wherever they were in the queue. The clock is read only for messages
    /// that have an expiry, once per call.
    pub(super) fn pop_live(&self, st: &mut State, now: &mut Option<Instant>) -> Option<Entry> {
        loop {
            let e = self.pop_ready(st)?;
            let Some(at) = e.expires_at else {
                return Some(e);
            };
            if at > *now.get_or_insert_with(Instant::now) {
                return Some(e);
            }
            self.forget([e.gone()]);
            self.died(st, e.msg, Reason::Expired);
        }
    }

    /// How many queued bodies are paged out to the store.
    pub fn paged_out(&self) -> usize {
        self.lock().ready.paged_out()
    }

    /// First delivery of a stored message: remember it, so a restart redelivers it flagged.
    pub(super) fn mark_delivered(&self, e: &Entry) {
        if let (Some(store), Some(prefix), true, false) =
            (&self.store, &self.prefix, e.persisted, e.redelivered)
        {
            if let Err(err) = store.mark_delivered(prefix, e.id) {
                tracing::warn!(queue = self.name, error = %err, "cannot mark a delivery");
            }
        }
    }
}
