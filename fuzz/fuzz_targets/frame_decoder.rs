//! The frame decoder on arbitrary bytes: it must return frames, ask for more, or refuse with
//! an AMQP error; never panic, hang, or allocate beyond what the bytes and frame_max allow.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks frame_max: before tune (8192), the default, or none.
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let frame_max = match pick % 3 {
        0 => warren::codec::FRAME_MIN_SIZE,
        1 => 131_072,
        _ => 0,
    };
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match warren::codec::decode(&mut buf, frame_max) {
            Ok(Some(_)) => assert!(buf.len() < before, "a frame consumed nothing"),
            Ok(None) => {
                assert_eq!(buf.len(), before, "asking for more consumed bytes");
                break;
            }
            Err(_) => break,
        }
    }
});
