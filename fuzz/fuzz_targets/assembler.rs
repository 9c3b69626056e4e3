//! Frames decoded from arbitrary bytes driven through per-channel content assemblers, as a
//! connection does: basic.publish, content header, body frames, interruptions. A completed
//! message always has exactly its announced size; nothing panics.
#![no_main]

use amq_protocol::protocol::{basic, AMQPClass};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use warren::channel::assembler::Assembler;
use warren::codec::Frame;

/// A small max_message_size so that the limit is reached too.
const MAX_SIZE: u64 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut channels: HashMap<u16, Assembler> = HashMap::new();
    while let Ok(Some(frame)) = warren::codec::decode(&mut buf, 131_072) {
        let result = match frame {
            Frame::Method(ch, m) => {
                let a = channels.entry(ch).or_default();
                match *m {
                    AMQPClass::Basic(basic::AMQPMethod::Publish(p)) if !a.in_content() => {
                        a.start(p);
                        Ok(None)
                    }
                    _ if a.in_content() => Err(a.interrupted()),
                    _ => Ok(None),
                }
            }
            Frame::Header(ch, h) => channels.entry(ch).or_default().header(*h, MAX_SIZE),
            Frame::Body(ch, b) => channels.entry(ch).or_default().body(b),
            Frame::Heartbeat(_) => Ok(None),
        };
        match result {
            Ok(Some(done)) => assert_eq!(done.body.len() as u64, done.header.body_size),
            Ok(None) => {}
            // The connection closes the channel: its assembler starts again.
            Err(_) => channels.clear(),
        }
    }
});
