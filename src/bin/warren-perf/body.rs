//! The message body both clients send: `[0..8]` send time in ns since this process's epoch,
//! `[8..10]` the run tag, `[10..12]` the producer id, `[12..16]` the producer's sequence
//! number, all big-endian; the rest is zeros.

/// The 16 stamped bytes of one publish.
#[inline]
pub(crate) fn stamp(now: u64, run_tag: u16, producer: usize, seq: u64) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&now.to_be_bytes());
    s[8..10].copy_from_slice(&run_tag.to_be_bytes());
    s[10..12].copy_from_slice(&(producer as u16).to_be_bytes());
    s[12..16].copy_from_slice(&(seq as u32).to_be_bytes());
    s
}

/// The end-to-end latency of a message whose body (or first body frame) is `body`, received
/// at `now`: None for a body of another run (left over in the queue) or from the future.
#[inline]
pub(crate) fn latency(body: &[u8], run_tag: u16, now: u64) -> Option<u64> {
    let head: &[u8; 16] = body.get(..16)?.try_into().ok()?;
    let mut sent = [0u8; 8];
    sent.copy_from_slice(&head[..8]);
    let sent = u64::from_be_bytes(sent);
    let run = u16::from_be_bytes([head[8], head[9]]);
    (run == run_tag && sent <= now).then(|| now - sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_and_latency() {
        let s = stamp(1_000, 7, 3, 9);
        assert_eq!(&s[10..16], &[0, 3, 0, 0, 0, 9]);
        assert_eq!(latency(&s, 7, 1_500), Some(500));
        assert_eq!(latency(&s, 8, 1_500), None);
        assert_eq!(latency(&s, 7, 999), None);
        assert_eq!(latency(&s[..15], 7, 1_500), None);
    }
}
