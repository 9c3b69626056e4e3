//! Byte layouts of what warren keeps in sled. Keys are length-prefixed parts so that names
//! with any bytes sort and split unambiguously; a message key ends in the big-endian message
//! id so that a queue's messages iterate in order.

use amq_protocol::types::generation::gen_field_table;
use amq_protocol::types::parsing::parse_field_table;
use amq_protocol::types::FieldTable;

/// Append `part` with a u32 length prefix.
pub fn push_part(key: &mut Vec<u8>, part: &[u8]) {
    key.extend_from_slice(&(part.len() as u32).to_be_bytes());
    key.extend_from_slice(part);
}

/// A key made of length-prefixed parts.
pub fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for p in parts {
        push_part(&mut k, p);
    }
    k
}

/// Split a key (or value) made by [`key`] into its parts; None if it is malformed.
pub fn parts(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        out.push(bytes.get(4..4 + len)?);
        bytes = &bytes[4 + len..];
    }
    Some(out)
}

pub fn table_bytes(t: &FieldTable) -> Vec<u8> {
    gen_field_table(t)(Vec::new().into())
        .map(|c| c.write)
        .unwrap_or_default()
}

pub fn table_from(bytes: &[u8]) -> Option<FieldTable> {
    match parse_field_table(bytes) {
        Ok((&[], t)) => Some(t),
        _ => None,
    }
}

pub fn flag(b: bool) -> &'static [u8] {
    if b {
        b"1"
    } else {
        b"0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::AMQPValue;

    #[test]
    fn parts_round_trip() {
        let k = key(&[b"/", b"", b"a\0b"]);
        assert_eq!(parts(&k).unwrap(), vec![&b"/"[..], b"", b"a\0b"]);
        assert!(parts(&k[..k.len() - 1]).is_none());
    }

    #[test]
    fn tables_round_trip() {
        let mut t = FieldTable::default();
        t.insert("x-max-length".into(), AMQPValue::LongInt(10));
        assert_eq!(table_from(&table_bytes(&t)).unwrap(), t);
    }
}
