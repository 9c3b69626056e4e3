//! Republishing messages that died in a queue to its dead-letter exchange.

use super::VHost;
use crate::message::Message;
use std::sync::Arc;

impl VHost {
    /// Republish messages that died in `queue` to its dead-letter exchange (see
    /// [`crate::queue::dead_letter`]). A missing exchange drops them, as RabbitMQ does; so
    /// does a cycle with no rejection in it. Nothing here is confirmed to anyone.
    pub fn dead_letter(
        &self,
        queue: &str,
        target: &crate::queue::dead_letter::Target,
        dead: Vec<(Arc<Message>, crate::queue::dead_letter::Reason)>,
    ) {
        use crate::queue::dead_letter::{dead_message, is_cycle, Reason};
        let Some(x) = self.exchange(&target.exchange) else {
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (msg, reason) in dead {
            let (msg, keys) = dead_message(&msg, queue, reason, target, now);
            let route = self.route(&x, &keys, &msg);
            if let Some(delay) = super::delayed::hold_for(&msg) {
                for held_by in &route.held_by {
                    if let Err(e) = self.hold(held_by, &msg, delay) {
                        tracing::error!(exchange = held_by.name, error = %e, "cannot hold a dead-lettered message");
                    }
                }
            }
            for q in route.queues {
                if reason != Reason::Rejected && is_cycle(&msg, &q.name) {
                    tracing::warn!(
                        queue = q.name,
                        "dead-letter cycle without a rejection: message dropped"
                    );
                    continue;
                }
                if let Err(e) = q.publish(msg.clone()) {
                    tracing::error!(queue = q.name, error = %e, "cannot store a dead-lettered message");
                }
            }
        }
    }
}
