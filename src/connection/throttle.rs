//! Resource alarms at the connection: blocking publishers (see `crate::alarm`).

use super::Conn;
use crate::alarm::Alarm;
use amq_protocol::protocol::{connection as c, AMQPClass};
use std::time::Instant;

impl Conn {
    /// Block or unblock this connection for the alarms in effect, as RabbitMQ does: during an
    /// alarm, a connection that publishes is no longer read (the publish that found the alarm
    /// is accepted) and is told with `connection.blocked`; once every alarm has cleared it is
    /// read again and told with `connection.unblocked`. Connections that only consume are
    /// never blocked.
    pub(super) fn throttle(&mut self, alarm: Alarm) {
        if alarm.any() {
            if self.published && !self.blocked && self.closing.is_none() {
                self.blocked = true;
                if self.caps.connection_blocked {
                    self.out.method(
                        0,
                        AMQPClass::Connection(c::AMQPMethod::Blocked(c::Blocked {
                            reason: alarm.reason().into(),
                        })),
                    );
                }
            }
        } else {
            self.published = false;
            if self.blocked {
                self.blocked = false;
                // Heartbeats were not read while blocked.
                self.last_read = Instant::now();
                if self.caps.connection_blocked {
                    self.out.method(
                        0,
                        AMQPClass::Connection(c::AMQPMethod::Unblocked(c::Unblocked {})),
                    );
                }
            }
        }
    }
}
