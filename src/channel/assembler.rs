//! The content assembler: basic.publish, then a content header, then body frames until the
//! announced size. Pure: it only checks the frame sequence and gathers the body.

use crate::codec::ContentHeader;
use crate::error::{AmqpError, AmqpResult};
use amq_protocol::protocol::basic::Publish;
use bytes::{Bytes, BytesMut};

/// A publish whose content is complete.
#[derive(Debug)]
pub struct Complete {
    pub publish: Publish,
    pub header: ContentHeader,
    pub body: Bytes,
}

/// One per channel, so the size of the idle state does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Default)]
pub enum Assembler {
    #[default]
    Idle,
    AwaitHeader(Publish),
    AwaitBody {
        publish: Publish,
        header: ContentHeader,
        /// The first frame is kept as is: a body in one frame is never copied.
        first: Option<Bytes>,
        rest: BytesMut,
        received: u64,
    },
}

/// The most reserved for a body ahead of its bytes arriving.
const RESERVE_MAX: usize = 1 << 20;

fn unexpected_content() -> AmqpError {
    AmqpError::unexpected_frame("expected method frame, got non method frame instead")
}

impl Assembler {
    pub fn in_content(&self) -> bool {
        !matches!(self, Assembler::Idle)
    }

    /// The error for a method frame that arrives where content was expected.
    pub fn interrupted(&self) -> AmqpError {
        let text = match self {
            Assembler::AwaitHeader(_) => {
                "expected content header for class 60, got non content header frame instead"
            }
            _ => "expected content body, got non content body frame instead",
        };
        AmqpError::unexpected_frame(text).on(60, 40)
    }

    pub fn start(&mut self, publish: Publish) {
        *self = Assembler::AwaitHeader(publish);
    }

    pub fn header(&mut self, header: ContentHeader, max_size: u64) -> AmqpResult<Option<Complete>> {
        let publish = match std::mem::take(self) {
            Assembler::AwaitHeader(p) => p,
            _ => return Err(unexpected_content()),
        };
        if header.class_id != 60 {
            return Err(AmqpError::unexpected_frame(format!(
                "expected content header for class 60, got one for class {} instead",
                header.class_id
            ))
            .on(60, 40));
        }
        if header.body_size > max_size {
            return Err(AmqpError::precondition(format!(
                "message size {} is larger than configured max size {max_size}",
                header.body_size
            ))
            .on(60, 40));
        }
        if header.body_size == 0 {
            return Ok(Some(Complete {
                publish,
                header,
                body: Bytes::new(),
            }));
        }
        *self = Assembler::AwaitBody {
            publish,
            header,
            first: None,
            rest: BytesMut::new(),
            received: 0,
        };
        Ok(None)
    }

    pub fn body(&mut self, chunk: Bytes) -> AmqpResult<Option<Complete>> {
        let Assembler::AwaitBody {
            header,
            first,
            rest,
            received,
            ..
        } = self
        else {
            return Err(unexpected_content());
        };
        *received += chunk.len() as u64;
        if *received > header.body_size {
            return Err(AmqpError::frame_error(format!(
                "body of {} bytes exceeds the announced size {}",
                received, header.body_size
            )));
        }
        match first {
            None if rest.is_empty() => *first = Some(chunk),
            _ => {
                if let Some(f) = first.take() {
                    // Not the announced size at once: a client announcing 128 MiB and sending
                    // two bytes must not cost 128 MiB. The buffer grows as the body arrives.
                    rest.reserve((header.body_size as usize).min(RESERVE_MAX));
                    rest.extend_from_slice(&f);
                }
                rest.extend_from_slice(&chunk);
            }
        }
        if *received < header.body_size {
            return Ok(None);
        }
        let Assembler::AwaitBody {
            publish,
            header,
            first,
            rest,
            ..
        } = std::mem::take(self)
        else {
            unreachable!("matched above")
        };
        let body = first.unwrap_or_else(|| rest.freeze());
        Ok(Some(Complete {
            publish,
            header,
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::basic::AMQPProperties;

    fn header(size: u64) -> ContentHeader {
        ContentHeader {
            class_id: 60,
            body_size: size,
            properties: AMQPProperties::default(),
            raw_properties: Bytes::from_static(&[0, 0]),
        }
    }

    #[test]
    fn assembles_multi_frame_body() {
        let mut a = Assembler::default();
        a.start(Publish::default());
        assert!(a.header(header(5), 100).unwrap().is_none());
        assert!(a.body(Bytes::from_static(b"he")).unwrap().is_none());
        let c = a.body(Bytes::from_static(b"llo")).unwrap().unwrap();
        assert_eq!(&c.body[..], b"hello");
        assert!(!a.in_content());
    }

    #[test]
    fn empty_body_completes_on_header() {
        let mut a = Assembler::default();
        a.start(Publish::default());
        assert!(a.header(header(0), 100).unwrap().is_some());
    }

    #[test]
    fn sequence_errors() {
        let mut a = Assembler::default();
        assert_eq!(a.body(Bytes::new()).unwrap_err().code as u16, 505);
        assert_eq!(a.header(header(1), 10).unwrap_err().code as u16, 505);
        a.start(Publish::default());
        assert_eq!(a.header(header(11), 10).unwrap_err().code as u16, 406);
        a.start(Publish::default());
        a.header(header(1), 10).unwrap();
        assert_eq!(
            a.body(Bytes::from_static(b"xx")).unwrap_err().code as u16,
            501
        );
    }
}
