//! Reading the store back at startup.

use super::encoding::{parts, table_from};
use super::Store;
use amq_protocol::types::FieldTable;
use bytes::Bytes;
use std::collections::BTreeMap;

pub struct RecoveredExchange {
    pub vhost: String,
    pub name: String,
    pub kind: String,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

pub struct RecoveredMessage {
    pub id: u64,
    pub exchange: String,
    pub routing_key: String,
    pub raw_properties: Bytes,
    pub body: Bytes,
    pub redelivered: bool,
}

pub struct RecoveredQueue {
    pub vhost: String,
    pub name: String,
    pub auto_delete: bool,
    pub arguments: FieldTable,
    /// In publication order.
    pub messages: Vec<RecoveredMessage>,
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
    /// Everything durable, as it was last written.
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
        let mut by_prefix: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for kv in self.queues.iter() {
            let (k, v) = kv?;
            match (parts(&k), parts(&v)) {
                (Some(kp), Some(v)) if kp.len() == 2 && v.len() == 2 => {
                    let Some(arguments) = table_from(v[1]) else {
                        r.corrupt += 1;
                        continue;
                    };
                    by_prefix.insert(k.to_vec(), r.queues.len());
                    r.queues.push(RecoveredQueue {
                        vhost: text(kp[0]),
                        name: text(kp[1]),
                        auto_delete: v[0] == b"1",
                        arguments,
                        messages: Vec::new(),
                    });
                }
                _ => r.corrupt += 1,
            }
        }
        for kv in self.messages.iter() {
            let (k, v) = kv?;
            if k.len() < 8 {
                r.corrupt += 1;
                continue;
            }
            let (prefix, id) = k.split_at(k.len() - 8);
            let id = u64::from_be_bytes(id.try_into().expect("8 bytes"));
            let Some(&qi) = by_prefix.get(prefix) else {
                // Left behind by a queue deleted before a crash: drop it now.
                let _ = self.messages.remove(&k);
                continue;
            };
            let Some((exchange, routing_key, raw_properties, body)) = super::decode_message(&v)
            else {
                r.corrupt += 1;
                continue;
            };
            let redelivered = self.delivered.contains_key(&k)?;
            r.queues[qi].messages.push(RecoveredMessage {
                id,
                exchange,
                routing_key,
                raw_properties,
                body,
                redelivered,
            });
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
