//! Direct reply-to, as RabbitMQ has it: a channel consuming (no-ack) from the pseudo-queue
//! `amq.rabbitmq.reply-to` gets a generated name, `amq.rabbitmq.reply-to.<node>.<key>`, which
//! its requests carry in `reply_to`. A publish to the default exchange with that name as the
//! routing key goes straight to the channel's connection: no queue, nothing buffered.
//!
//! `<node>` is fixed for the life of the process and `<key>` is 128 random bits from the
//! operating system, so a name cannot be guessed and says nothing about the connection or
//! channel it belongs to. As RabbitMQ 4.2+, a publish to a well-formed name counts as routed
//! whether or not the requester is still there (no basic.return for a mandatory publish; the
//! reply is dropped); a name this broker cannot have generated is unroutable.

use super::VHost;
use crate::connection::ConnEvent;
use crate::message::Message;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc::UnboundedSender;

/// The pseudo-queue a requester consumes from, and the `reply_to` value it publishes with.
pub const REPLY_QUEUE: &str = "amq.rabbitmq.reply-to";
/// What every generated name starts with.
const REPLY_PREFIX: &str = "amq.rabbitmq.reply-to.";

/// Where replies to one generated name go.
#[derive(Debug)]
pub struct ReplyTarget {
    pub tx: UnboundedSender<ConnEvent>,
    pub channel: u16,
}

/// A generated reply name (or one posing as such).
pub fn is_reply_name(name: &str) -> bool {
    name.starts_with(REPLY_PREFIX)
}

/// A name this broker could have generated: a publish to it counts as routed, as RabbitMQ
/// counts a name whose encoded channel process belongs to a cluster node.
pub fn reply_name_is_well_formed(name: &str) -> bool {
    name.strip_prefix(REPLY_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(node, key)| node == node_tag() && key.len() == 22)
}

impl VHost {
    /// Give a channel a fresh reply name and route replies to it.
    pub fn register_reply(&self, tx: UnboundedSender<ConnEvent>, channel: u16) -> Arc<str> {
        loop {
            let name: Arc<str> = format!("{REPLY_PREFIX}{}.{}", node_tag(), random_text(16)).into();
            if let dashmap::Entry::Vacant(v) = self.replies.entry(name.clone()) {
                v.insert(ReplyTarget { tx, channel });
                return name;
            }
        }
    }

    /// The channel stopped consuming replies (cancel, channel or connection closed).
    pub fn unregister_reply(&self, name: &str) {
        self.replies.remove(name);
    }

    /// Whether a requester currently consumes under this generated name.
    pub fn reply_exists(&self, name: &str) -> bool {
        self.replies.contains_key(name)
    }

    /// Hand a message published to the default exchange to the requesters its routing key
    /// (and its `CC`/`BCC` keys, in `extra`) name. Returns how many names count as routed.
    pub(super) fn publish_replies(&self, msg: &Arc<Message>, extra: &[String]) -> usize {
        let mut seen: Vec<&str> = Vec::new();
        let keys =
            std::iter::once(msg.routing_key.as_str()).chain(extra.iter().map(|s| s.as_str()));
        for key in keys {
            if !is_reply_name(key) || seen.contains(&key) {
                continue;
            }
            seen.push(key);
            if !reply_name_is_well_formed(key) {
                continue;
            }
            if let Some(t) = self.replies.get(key) {
                let _ = t.tx.send(ConnEvent::Reply {
                    channel: t.channel,
                    name: t.key().clone(),
                    msg: msg.clone(),
                });
            }
        }
        seen.iter().filter(|k| reply_name_is_well_formed(k)).count()
    }
}

/// This process's part of every reply name.
fn node_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| random_text(8))
}

/// Fill `bytes` from the operating system's random source.
pub fn random_bytes(bytes: &mut [u8]) {
    use std::io::Read;
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(bytes));
    if read.is_err() {
        // No /dev/urandom (a restricted sandbox): fall back to the randomly keyed hasher that
        // also names queues and consumers.
        let fallback = crate::channel::generated_name("");
        for (b, c) in bytes.iter_mut().zip(fallback.bytes().cycle()) {
            *b = c;
        }
    }
}

/// `n` random bytes from the operating system, as URL-safe base64 without padding.
fn random_text(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = vec![0u8; n];
    random_bytes(&mut bytes);
    let mut out = String::with_capacity(n * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | ((*b as u32) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_random_and_recognised() {
        assert_eq!(random_text(16).len(), 22);
        assert_eq!(random_text(8).len(), 11);
        assert_ne!(random_text(16), random_text(16));
        let good = format!("{REPLY_PREFIX}{}.{}", node_tag(), random_text(16));
        assert!(is_reply_name(&good) && reply_name_is_well_formed(&good));
        let other_node = format!("{REPLY_PREFIX}{}.{}", random_text(8), random_text(16));
        assert!(is_reply_name(&other_node) && !reply_name_is_well_formed(&other_node));
        assert!(!reply_name_is_well_formed(&format!(
            "{REPLY_PREFIX}{}",
            node_tag()
        )));
        assert!(!is_reply_name(REPLY_QUEUE));
    }
}
