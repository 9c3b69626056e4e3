//! AMQP errors and the one rule that decides what they close.
//!
//! A handler returns `Err(AmqpError)`; the connection task alone turns it into a
//! `channel.close` (soft: 403, 404, 405, 406) or a `connection.close` (hard: 320, 402,
//! 501-541, and anything on channel 0). The failing method's class and method ids travel with
//! the error so that the close names it, as RabbitMQ's does.

use std::fmt;

/// The reply codes warren sends (AMQP 0-9-1 constants, as RabbitMQ uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ReplyCode {
    ConnectionForced = 320,
    InvalidPath = 402,
    AccessRefused = 403,
    NotFound = 404,
    ResourceLocked = 405,
    PreconditionFailed = 406,
    FrameError = 501,
    SyntaxError = 502,
    CommandInvalid = 503,
    ChannelError = 504,
    UnexpectedFrame = 505,
    ResourceError = 506,
    NotAllowed = 530,
    NotImplemented = 540,
    InternalError = 541,
}

impl ReplyCode {
    /// The name RabbitMQ puts at the front of the reply text.
    pub fn name(self) -> &'static str {
        match self {
            ReplyCode::ConnectionForced => "CONNECTION_FORCED",
            ReplyCode::InvalidPath => "INVALID_PATH",
            ReplyCode::AccessRefused => "ACCESS_REFUSED",
            ReplyCode::NotFound => "NOT_FOUND",
            ReplyCode::ResourceLocked => "RESOURCE_LOCKED",
            ReplyCode::PreconditionFailed => "PRECONDITION_FAILED",
            ReplyCode::FrameError => "FRAME_ERROR",
            ReplyCode::SyntaxError => "SYNTAX_ERROR",
            ReplyCode::CommandInvalid => "COMMAND_INVALID",
            ReplyCode::ChannelError => "CHANNEL_ERROR",
            ReplyCode::UnexpectedFrame => "UNEXPECTED_FRAME",
            ReplyCode::ResourceError => "RESOURCE_ERROR",
            ReplyCode::NotAllowed => "NOT_ALLOWED",
            ReplyCode::NotImplemented => "NOT_IMPLEMENTED",
            ReplyCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// Soft errors close the channel; all others close the connection.
    pub fn is_soft(self) -> bool {
        matches!(
            self,
            ReplyCode::AccessRefused
                | ReplyCode::NotFound
                | ReplyCode::ResourceLocked
                | ReplyCode::PreconditionFailed
        )
    }
}

/// An AMQP-level failure: what the peer is told, and which method caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpError {
    pub code: ReplyCode,
    /// The full reply text, `"NOT_FOUND - no queue 'q' in vhost '/'"`.
    pub text: String,
    pub class_id: u16,
    pub method_id: u16,
}

impl AmqpError {
    pub fn new(code: ReplyCode, detail: impl fmt::Display) -> AmqpError {
        let mut text = format!("{} - {}", code.name(), detail);
        // A reply text is a short string: as RabbitMQ, a longer one is cut to 252 bytes (on
        // a character boundary) followed by "...".
        if text.len() > 255 {
            let mut end = 252;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("...");
        }
        AmqpError {
            code,
            text,
            class_id: 0,
            method_id: 0,
        }
    }

    /// Attach the failing method, unless one is already set.
    pub fn on(mut self, class_id: u16, method_id: u16) -> AmqpError {
        if self.class_id == 0 && self.method_id == 0 {
            self.class_id = class_id;
            self.method_id = method_id;
        }
        self
    }

    pub fn access_refused(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::AccessRefused, detail)
    }
    pub fn not_found(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::NotFound, detail)
    }
    pub fn resource_locked(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::ResourceLocked, detail)
    }
    pub fn precondition(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::PreconditionFailed, detail)
    }
    pub fn frame_error(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::FrameError, detail)
    }
    pub fn syntax(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::SyntaxError, detail)
    }
    pub fn command_invalid(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::CommandInvalid, detail)
    }
    pub fn channel_error(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::ChannelError, detail)
    }
    pub fn unexpected_frame(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::UnexpectedFrame, detail)
    }
    pub fn not_allowed(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::NotAllowed, detail)
    }
    pub fn not_implemented(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::NotImplemented, detail)
    }
    pub fn internal(detail: impl fmt::Display) -> AmqpError {
        AmqpError::new(ReplyCode::InternalError, detail)
    }

    pub fn is_soft(&self) -> bool {
        self.code.is_soft()
    }
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text, self.code as u16)
    }
}

impl std::error::Error for AmqpError {}

/// Failures outside the protocol: startup, storage, I/O.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Store(#[from] sled::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<BrokerError> for AmqpError {
    fn from(e: BrokerError) -> AmqpError {
        AmqpError::internal(e)
    }
}

pub type AmqpResult<T> = Result<T, AmqpError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reply_texts_are_cut_as_rabbitmq_does() {
        let e = AmqpError::new(ReplyCode::ResourceLocked, "x".repeat(300));
        assert_eq!(e.text.len(), 255);
        assert_eq!(&e.text[240..], "xxxxxxxxxxxx...");
        // Byte 252 falls inside a two-byte character: the cut moves before it.
        let e = AmqpError::new(ReplyCode::ResourceLocked, format!("x{}", "é".repeat(200)));
        assert_eq!(e.text.len(), 254);
        assert!(e.text.ends_with("é..."));
        let short = AmqpError::new(ReplyCode::NotFound, "no queue 'q' in vhost '/'");
        assert_eq!(short.text, "NOT_FOUND - no queue 'q' in vhost '/'");
    }
}
