//! Rebuilding a vhost from the store at startup.

use super::VHost;
use crate::exchange::{Binding, Dest, Exchange, ExchangeKind};
use crate::message::Message;
use crate::queue::Queue;
use std::sync::Arc;

/// Rebuilding from the store at startup: entities go straight into the registries, without
/// being written again.
impl VHost {
    pub fn restore_exchange(&self, x: crate::store::RecoveredExchange) {
        let Some(kind) = ExchangeKind::parse(&x.kind) else {
            tracing::warn!(
                exchange = x.name,
                kind = x.kind,
                "skipping an exchange of unknown type"
            );
            return;
        };
        let e = Exchange::new(&x.name, kind, true, x.auto_delete, x.internal, x.arguments);
        self.exchanges.insert(x.name, Arc::new(e));
    }

    /// Returns how many messages came back.
    pub fn restore_queue(&self, q: crate::store::RecoveredQueue) -> Result<usize, sled::Error> {
        let queue = Queue::new(
            q.name.clone(),
            self.name.clone(),
            true,
            None,
            q.auto_delete,
            q.arguments,
            Some(self.store()),
        );
        let mut n = 0;
        let mut unreadable = 0;
        let corrupt =
            self.store()
                .recover_messages(&self.name, &q.name, |id, stored, redelivered| {
                    let restored = if self.store().budget().fits(stored.len() as u64) {
                        crate::store::decode_message(stored)
                            .and_then(|(x, rk, props, body)| {
                                Message::from_stored(x, rk, props, body)
                            })
                            .map(|msg| queue.restore(id, msg, redelivered))
                    } else {
                        crate::store::stored_body_len(stored)
                            .map(|len| queue.restore_paged(id, len, redelivered))
                    };
                    match restored {
                        Some(()) => n += 1,
                        None => unreadable += 1,
                    }
                })?;
        let corrupt = corrupt + unreadable;
        if corrupt > 0 {
            tracing::warn!(queue = q.name, corrupt, "skipped undecodable messages");
        }
        self.queues.insert(q.name, queue);
        Ok(n)
    }

    pub fn restore_binding(&self, b: crate::store::RecoveredBinding) {
        let Some(x) = self.exchange(&b.source) else {
            return;
        };
        let dest = if b.to_queue {
            Dest::Queue(b.dest)
        } else {
            Dest::Exchange(b.dest)
        };
        x.bind(Binding {
            dest,
            routing_key: b.routing_key,
            arguments: b.arguments,
        });
    }
}
