//! Reading the store back at startup.

use super::encoding::{parts, table_from};
use super::{Store, StoredBody, StoredRecord, TAG_MESSAGES};
use crate::message::Message;
use amq_protocol::types::FieldTable;
use std::sync::Arc;

/// A persistent message found in the store at startup.
pub struct StoredMessage<'a> {
    store: &'a Store,
    key: &'a [u8],
    value: &'a [u8],
    pub body_len: usize,
    pub id: u64,
    pub redelivered: bool,
}

impl StoredMessage<'_> {
    /// The whole message, its body read from its segment if it has one.
    pub fn load(&self) -> Option<Arc<Message>> {
        self.store
            .decode_message(TAG_MESSAGES, self.key, self.value)
    }

    /// The message's `priority` property, read without its body.
    pub fn priority(&self) -> Option<u8> {
        let record = StoredRecord::parse(self.value)?;
        match amq_protocol::protocol::basic::parse_properties(record.properties) {
            Ok((_, p)) => *p.priority(),
            Err(_) => None,
        }
    }
}

pub struct RecoveredExchange {
    pub vhost: String,
    pub name: String,
    pub kind: String,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

pub struct RecoveredQueue {
    pub vhost: String,
    pub name: String,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

pub struct RecoveredBinding {
    pub vhost: String,
    pub source: String,
    pub to_queue: bool,
    pub dest: String,
    pub routing_key: String,
    pub arguments: FieldTable,
}

#[derive(Default)]
pub struct Recovered {
    pub exchanges: Vec<RecoveredExchange>,
    pub queues: Vec<RecoveredQueue>,
    pub bindings: Vec<RecoveredBinding>,
    /// Records that could not be decoded (and were skipped).
    pub corrupt: usize,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Store {
    /// A queue's stored messages, in order, handed to `f` one at a time, so that recovery
    /// never holds more than the queue keeps and can leave bodies that will stay paged out
    /// unread. Counts the references to body segments on the way. Returns how many records
    /// could not be decoded.
    pub fn recover_messages(
        &self,
        vhost: &str,
        queue: &str,
        mut f: impl FnMut(StoredMessage<'_>),
    ) -> Result<usize, sled::Error> {
        let prefix = Store::queue_prefix(vhost, queue);
        let mut corrupt = 0;
        for kv in self.messages.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let (Ok(id), Some(record)) = (
                <[u8; 8]>::try_from(&k[prefix.len()..]),
                StoredRecord::parse(&v),
            ) else {
                corrupt += 1;
                continue;
            };
            if let StoredBody::External(r) = record.body {
                self.bodies.note_live(r);
            }
            let redelivered = self.delivered.contains_key(&k)?;
            f(StoredMessage {
                store: self,
                key: &k,
                value: &v,
                body_len: record.body_len(),
                id: u64::from_be_bytes(id),
                redelivered,
            });
        }
        Ok(corrupt)
    }

    /// Every durable entity (messages come separately, see `recover_messages`).
    pub fn recover(&self) -> Result<Recovered, sled::Error> {
        let mut r = Recovered::default();
        for kv in self.exchanges.iter() {
            let (k, v) = kv?;
            match (parts(&k), parts(&v)) {
                (Some(k), Some(v)) if k.len() == 2 && v.len() == 4 => {
                    let Some(arguments) = table_from(v[3]) else {
                        r.corrupt += 1;
                        continue;
                    };
                    r.exchanges.push(RecoveredExchange {
                        vhost: text(k[0]),
                        name: text(k[1]),
                        kind: text(v[0]),
                        auto_delete: v[1] == b"1",
                        internal: v[2] == b"1",
                        arguments,
                    });
                }
                _ => r.corrupt += 1,
            }
        }
        for kv in self.queues.iter() {
            let (k, v) = kv?;
            match (parts(&k), parts(&v)) {
                (Some(kp), Some(v)) if kp.len() == 2 && v.len() == 2 => {
                    let Some(arguments) = table_from(v[1]) else {
                        r.corrupt += 1;
                        continue;
                    };
                    r.queues.push(RecoveredQueue {
                        vhost: text(kp[0]),
                        name: text(kp[1]),
                        auto_delete: v[0] == b"1",
                        arguments,
                    });
                }
                _ => r.corrupt += 1,
            }
        }
        for k in self.bindings.iter().keys() {
            let k = k?;
            match parts(&k) {
                Some(p) if p.len() == 6 => {
                    let Some(arguments) = table_from(p[5]) else {
                        r.corrupt += 1;
                        continue;
                    };
                    r.bindings.push(RecoveredBinding {
                        vhost: text(p[0]),
                        source: text(p[1]),
                        to_queue: p[2] == b"q",
                        dest: text(p[3]),
                        routing_key: text(p[4]),
                        arguments,
                    });
                }
                _ => r.corrupt += 1,
            }
        }
        Ok(r)
    }
}
