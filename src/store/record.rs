//! The sled value of a message: exchange, routing key, raw properties, then the body inline
//! or a reference to it in a body segment.

use super::bodies::BodyRef;
use super::encoding::{self, key};

/// Where a stored message's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredBody<'a> {
    Inline(&'a [u8]),
    External(BodyRef),
}

/// A message value as stored in sled: exchange, routing key, raw properties, then either the
/// body or an empty part and a [`BodyRef`].
#[derive(Debug, Clone, Copy)]
pub struct StoredRecord<'a> {
    pub exchange: &'a [u8],
    pub routing_key: &'a [u8],
    pub properties: &'a [u8],
    pub body: StoredBody<'a>,
}

impl<'a> StoredRecord<'a> {
    pub fn parse(v: &'a [u8]) -> Option<StoredRecord<'a>> {
        let p = encoding::parts(v)?;
        let body = match p.len() {
            4 => StoredBody::Inline(p[3]),
            5 if p[3].is_empty() => StoredBody::External(BodyRef::decode(p[4])?),
            _ => return None,
        };
        Some(StoredRecord {
            exchange: p[0],
            routing_key: p[1],
            properties: p[2],
            body,
        })
    }

    pub fn body_len(&self) -> usize {
        match self.body {
            StoredBody::Inline(b) => b.len(),
            StoredBody::External(r) => r.len as usize,
        }
    }

    /// The same record with its body at `r`.
    pub(super) fn with_body_ref(&self, r: BodyRef) -> Vec<u8> {
        key(&[
            self.exchange,
            self.routing_key,
            self.properties,
            b"",
            &r.encode(),
        ])
    }
}
