//! Expiring messages on time: a queue whose head message has an expiry asks to be woken then,
//! so expired messages leave (and are dead-lettered) even when nobody touches the queue, as
//! RabbitMQ does. One thread serves every queue of the process.

use super::Queue;
use crate::timer::Timer;
use std::sync::Weak;
use std::time::Instant;

static EXPIRY: Timer = Timer::new("warren-expiry");

/// Wake `queue` at `at` to drop (or dead-letter) its expired head messages.
pub(super) fn schedule(at: Instant, queue: Weak<Queue>) {
    EXPIRY.schedule(at, move || {
        if let Some(q) = queue.upgrade() {
            q.expire();
        }
    });
}
