//! Rebuilding a vhost from the store at startup.

use super::VHost;
use crate::exchange::{Binding, Dest, Exchange, ExchangeKind};
use crate::message::Message;
use crate::policy::{choose, Kind};
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
        e.apply_policy(choose(self.policies_read().iter(), Kind::Exchange, &x.name));
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
            self.me.clone(),
        );
        let mut n = 0;
        let mut unreadable = Vec::new();
        let corrupt = self.store().recover_messages(&self.name, &q.name, |m| {
            // Bodies stay on disk once the memory budget is spent.
            let fits = self
                .store()
                .budget()
                .fits((m.body_len + Message::OVERHEAD) as u64);
            if !fits {
                // A priority queue puts it back in its lane, so it needs the priority.
                let priority = if queue.features.max_priority > 0 {
                    m.priority()
                } else {
                    None
                };
                queue.restore_paged(m.id, m.body_len, m.redelivered, priority);
                n += 1;
            } else if let Some(msg) = m.load() {
                queue.restore(m.id, msg, m.redelivered);
                n += 1;
            } else {
                unreadable.push(m.id);
            }
        })?;
        // A body that is gone belongs to a message settled before a crash whose record's
        // removal had not reached the disk yet, or one that was never confirmed.
        let prefix = crate::store::Store::queue_prefix(&self.name, &q.name);
        for id in &unreadable {
            self.store().remove_message(&prefix, *id)?;
        }
        // After its messages are back, so that a policy's length limit applies to them as in
        // RabbitMQ.
        if let Some(p) = choose(self.policies_read().iter(), Kind::Queue, &q.name) {
            queue.apply_policy(Some(p));
        }
        let corrupt = corrupt + unreadable.len();
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
