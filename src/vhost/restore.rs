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
    pub fn restore_queue(&self, q: crate::store::RecoveredQueue) -> usize {
        let queue = Queue::new(
            q.name.clone(),
            self.name.clone(),
            true,
            None,
            q.auto_delete,
            q.arguments,
            Some(&self.store),
        );
        let mut restored = Vec::with_capacity(q.messages.len());
        for m in q.messages {
            let Some(msg) =
                Message::from_stored(m.exchange, m.routing_key, m.raw_properties, m.body)
            else {
                tracing::warn!(
                    queue = q.name,
                    id = m.id,
                    "skipping a message with unreadable properties"
                );
                continue;
            };
            restored.push((m.id, msg, m.redelivered));
        }
        let n = restored.len();
        queue.restore(restored.into_iter());
        self.queues.insert(q.name, queue);
        n
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
