//! Persistent messages held by durable delayed exchanges, in the `delayed` tree.
//!
//! Key: the due time (milliseconds since the Unix epoch) and a sequence number, both
//! big-endian so that the tree iterates in due order, then the vhost and exchange names as
//! length-prefixed parts. Value: the message record as in `messages` (a large body lives in a
//! segment, tagged [`TAG_DELAYED`]). A record is written straight to sled and its ticket waits
//! for the next group commit; its removal (the message was released to its queues, or its
//! exchange deleted) goes through the journal, after the puts of the queues it reached.

use super::encoding::{key, parts};
use super::{Store, StoreResult, StoredBody, StoredRecord, TAG_DELAYED};
use crate::message::Message;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A held message found in the store at startup.
pub struct RecoveredDelayed {
    pub vhost: String,
    pub exchange: String,
    /// Milliseconds since the Unix epoch.
    pub due: u64,
    pub seq: u64,
    pub msg: Arc<Message>,
    /// Its key, to remove it once released.
    pub key: Vec<u8>,
}

impl Store {
    /// A sequence number ordering held messages due at the same time (shared by those kept
    /// in memory only).
    pub fn next_delayed_seq(&self) -> u64 {
        self.delayed_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Store a held message; returns its key and the ticket to wait on before confirming.
    pub fn put_delayed(
        &self,
        vhost: &str,
        exchange: &str,
        due: u64,
        seq: u64,
        msg: &Message,
    ) -> StoreResult<(Vec<u8>, u64)> {
        let mut k = Vec::with_capacity(24 + vhost.len() + exchange.len());
        k.extend_from_slice(&due.to_be_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        k.extend_from_slice(&key(&[vhost.as_bytes(), exchange.as_bytes()]));
        let v = self.encode_message(TAG_DELAYED, &k, msg)?;
        self.delayed.insert(&k, v)?;
        Ok((k, self.journal.written()))
    }

    /// Forget a held message (released or dropped). No sync: after a crash it may be released
    /// again (at-least-once), never lost.
    pub fn remove_delayed(&self, key: Vec<u8>) {
        self.journal.remove_delayed(key);
    }

    /// Every held message, in due order, handed to `f`; records that cannot be read are
    /// removed. Counts their body segments as live. Call before `finish_recovery`.
    pub fn recover_delayed(&self, mut f: impl FnMut(RecoveredDelayed)) -> StoreResult<usize> {
        let mut corrupt = 0;
        let mut next_seq = 0;
        for kv in self.delayed.iter() {
            let (k, v) = kv?;
            let record = StoredRecord::parse(&v);
            if let Some(StoredBody::External(r)) = record.map(|r| r.body) {
                self.bodies.note_live(r);
            }
            let names = k.get(16..).and_then(parts).filter(|p| p.len() == 2);
            let msg = self.decode_message(TAG_DELAYED, &k, &v);
            let (Some(names), Some(msg)) = (names, msg) else {
                corrupt += 1;
                self.remove_delayed(k.to_vec());
                continue;
            };
            let num =
                |r: std::ops::Range<usize>| u64::from_be_bytes(k[r].try_into().unwrap_or([0; 8]));
            let (due, seq) = (num(0..8), num(8..16));
            next_seq = next_seq.max(seq + 1);
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            f(RecoveredDelayed {
                vhost: text(names[0]),
                exchange: text(names[1]),
                due,
                seq,
                msg,
                key: k.to_vec(),
            });
        }
        self.delayed_seq.fetch_max(next_seq, Ordering::Relaxed);
        Ok(corrupt)
    }
}
