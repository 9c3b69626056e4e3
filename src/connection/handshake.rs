//! Connection negotiation: protocol header, start/start-ok (SASL PLAIN and AMQPLAIN),
//! tune/tune-ok, open/open-ok.

use super::{Conn, Io, Negotiated};
use crate::codec::{self, Frame, OutBuf, FRAME_MIN_SIZE, PROTOCOL_HEADER};
use crate::error::{AmqpError, AmqpResult};
use amq_protocol::protocol::{connection as c, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a handshake ended short of an open connection.
pub(super) enum Refused {
    /// Close the socket without a word (bad header, timeout, peer gone).
    Drop,
    /// Send connection.close with this error, then close.
    Close(AmqpError),
}

impl From<AmqpError> for Refused {
    fn from(e: AmqpError) -> Refused {
        Refused::Close(e)
    }
}

/// The nine capabilities RabbitMQ announces, and the rest of its server properties.
fn server_properties(cluster_name: &str) -> FieldTable {
    let mut caps = FieldTable::default();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        caps.insert(cap.into(), AMQPValue::Boolean(true));
    }
    let s = |v: &str| AMQPValue::LongString(v.into());
    let mut p = FieldTable::default();
    p.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    p.insert("cluster_name".into(), s(cluster_name));
    p.insert("copyright".into(), s("Copyright (c) the warren authors"));
    p.insert(
        "information".into(),
        s("warren: an AMQP 0-9-1 broker compatible with RabbitMQ"),
    );
    p.insert(
        "platform".into(),
        s(&format!("Rust / warren {}", env!("CARGO_PKG_VERSION"))),
    );
    // Clients (kombu, Celery, the Java client) switch features on "RabbitMQ" and its version;
    // warren answers as RabbitMQ 4.x does where versions differ, so it says 4.x.
    p.insert("product".into(), s("RabbitMQ"));
    p.insert("version".into(), s("4.1.0"));
    p
}

impl Conn {
    /// Run the handshake up to open-ok. On success the connection is ready for channels.
    pub(super) async fn handshake(&mut self, io: &mut Io) -> Result<(), Refused> {
        let timeout = Duration::from_secs(self.broker.config.amqp.handshake_timeout.max(1));
        match tokio::time::timeout(timeout, self.negotiate(io)).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(peer = %self.peer, "handshake timed out");
                Err(Refused::Drop)
            }
        }
    }

    async fn negotiate(&mut self, io: &mut Io) -> Result<(), Refused> {
        let mut header = [0u8; 8];
        if io.read.read_exact(&mut header).await.is_err() {
            return Err(Refused::Drop);
        }
        if &header != PROTOCOL_HEADER {
            let _ = io.write.write_all(PROTOCOL_HEADER).await;
            let _ = io.write.shutdown().await;
            return Err(Refused::Drop);
        }
        // A client whose certificate was verified may log in with EXTERNAL as its CN.
        let external = self.tls.as_ref().and_then(|t| t.cert_user.clone());
        self.out.method(
            0,
            AMQPClass::Connection(c::AMQPMethod::Start(c::Start {
                version_major: 0,
                version_minor: 9,
                server_properties: server_properties(&self.broker.cluster_name()),
                mechanisms: if external.is_some() {
                    "PLAIN AMQPLAIN EXTERNAL".into()
                } else {
                    "PLAIN AMQPLAIN".into()
                },
                locales: "en_US".into(),
            })),
        );
        io.flush(&mut self.out).await.map_err(|_| Refused::Drop)?;

        let start_ok = match self.next_handshake_method(io).await? {
            AMQPClass::Connection(c::AMQPMethod::StartOk(s)) => s,
            other => return Err(out_of_order(&other)),
        };
        self.read_client_properties(&start_ok.client_properties);
        self.client_properties = crate::field::table_json(&start_ok.client_properties);
        self.auth_mechanism = start_ok.mechanism.to_string();
        // None: the password is not asked for (EXTERNAL: the certificate vouches for the user).
        let (user, pass) = match (start_ok.mechanism.as_str(), &external) {
            ("EXTERNAL", Some(cert_user)) => (cert_user.clone(), None),
            (mechanism, _) => {
                let (user, pass) = decode_sasl(mechanism, &start_ok.response)?;
                (user, Some(pass))
            }
        };
        // An IPv4 client of a dual-stack listener shows up as ::ffff:127.0.0.1.
        let loopback = self.peer.ip().to_canonical().is_loopback();
        let ok = self.broker.authenticate(&user, pass.as_deref(), loopback);
        self.broker.auth_amqp.record(ok);
        if !ok {
            // Never the password: only who tried, from where, how.
            tracing::warn!(peer = %self.peer, user, mechanism = start_ok.mechanism.as_str(), "login refused");
            let text = if self.broker.authenticate(&user, pass.as_deref(), true) {
                format!(
                    "{} login refused: user '{user}' can only connect via localhost",
                    start_ok.mechanism
                )
            } else {
                format!(
                    "Login was refused using authentication mechanism {}. For details see the broker logfile.",
                    start_ok.mechanism
                )
            };
            if self.caps.authentication_failure_close {
                return Err(Refused::Close(AmqpError::access_refused(text)));
            }
            return Err(Refused::Drop);
        }
        self.user = user;

        let cfg = self.broker.config.amqp.clone();
        self.out.method(
            0,
            AMQPClass::Connection(c::AMQPMethod::Tune(c::Tune {
                channel_max: cfg.channel_max,
                frame_max: cfg.frame_max,
                heartbeat: cfg.heartbeat,
            })),
        );
        io.flush(&mut self.out).await.map_err(|_| Refused::Drop)?;

        let tune_ok = match self.next_handshake_method(io).await? {
            AMQPClass::Connection(c::AMQPMethod::TuneOk(t)) => t,
            other => return Err(out_of_order(&other)),
        };
        self.tuned = negotiate_tune(cfg.channel_max, cfg.frame_max, &tune_ok)?;

        let open = match self.next_handshake_method(io).await? {
            AMQPClass::Connection(c::AMQPMethod::Open(o)) => o,
            other => return Err(out_of_order(&other)),
        };
        let vhost_name = open.virtual_host.as_str().to_string();
        let Some(vhost) = self.broker.vhost(&vhost_name) else {
            return Err(Refused::Close(
                AmqpError::not_allowed(format!("vhost {vhost_name} not found")).on(10, 40),
            ));
        };
        if !self.broker.access.may_open(&self.user, &vhost_name) {
            tracing::warn!(peer = %self.peer, user = self.user, vhost = vhost_name, "vhost access refused");
            return Err(Refused::Close(
                AmqpError::not_allowed(format!(
                    "access to vhost '{vhost_name}' refused for user '{}'",
                    self.user
                ))
                .on(10, 40),
            ));
        }
        self.check_connection_limits(&vhost_name)
            .map_err(Refused::Close)?;
        self.vhost = Some(vhost);
        self.out.method(
            0,
            AMQPClass::Connection(c::AMQPMethod::OpenOk(c::OpenOk {})),
        );
        Ok(())
    }

    /// The next method on channel 0 during the handshake; heartbeats are skipped.
    async fn next_handshake_method(&mut self, io: &mut Io) -> Result<AMQPClass, Refused> {
        loop {
            let frame_max = if self.tuned.frame_max == 0 {
                FRAME_MIN_SIZE
            } else {
                self.tuned.frame_max
            };
            match codec::decode(&mut io.inbuf, frame_max) {
                Ok(Some(Frame::Heartbeat(_))) => continue,
                Ok(Some(Frame::Method(0, m))) => return Ok(*m),
                Ok(Some(_)) => {
                    return Err(Refused::Close(AmqpError::channel_error(
                        "expected a method on channel 0 during the handshake",
                    )))
                }
                Ok(None) => {}
                // Before tune there is no agreed frame size: an oversized frame just closes.
                Err(e) if self.tuned.frame_max == 0 => {
                    tracing::warn!(peer = %self.peer, error = %e, "bad frame during handshake");
                    return Err(Refused::Drop);
                }
                Err(e) => return Err(Refused::Close(e)),
            }
            match io.read.read_buf(&mut io.inbuf).await {
                Ok(0) | Err(_) => return Err(Refused::Drop),
                Ok(_) => {}
            }
        }
    }

    fn read_client_properties(&mut self, props: &FieldTable) {
        if let Some(AMQPValue::FieldTable(caps)) = props.inner().get("capabilities") {
            let flag = |k: &str| matches!(caps.inner().get(k), Some(AMQPValue::Boolean(true)));
            self.caps.consumer_cancel_notify = flag("consumer_cancel_notify");
            self.caps.authentication_failure_close = flag("authentication_failure_close");
            self.caps.connection_blocked = flag("connection.blocked");
        }
        if let Some(AMQPValue::LongString(name)) = props.inner().get("connection_name") {
            self.client_name = String::from_utf8_lossy(name.as_bytes()).into_owned();
        }
    }
}

fn out_of_order(m: &AMQPClass) -> Refused {
    Refused::Close(
        AmqpError::command_invalid(format!("unexpected method {m:?} during the handshake"))
            .on(m.get_amqp_class_id(), m.get_amqp_method_id()),
    )
}

/// The client's values must not exceed the server's; 0 ("no limit") counts as exceeding a
/// limited server value, as RabbitMQ decides.
fn negotiate_tune(
    server_channel_max: u16,
    server_frame_max: u32,
    t: &c::TuneOk,
) -> AmqpResult<Negotiated> {
    let fail = |field: &str, bound: &str, limit: u64, got: u64| {
        let (op, what) = if bound == "higher" {
            (">", "max")
        } else {
            ("<", "min")
        };
        AmqpError::not_allowed(format!("{field}={got} {op} {limit} {what} size")).on(10, 31)
    };
    if t.frame_max != 0 && t.frame_max < 4096 {
        return Err(fail("frame_max", "lower", 4096, t.frame_max as u64));
    }
    if server_frame_max != 0 && (t.frame_max == 0 || t.frame_max > server_frame_max) {
        return Err(fail(
            "frame_max",
            "higher",
            server_frame_max as u64,
            t.frame_max as u64,
        ));
    }
    let channel_max = if t.channel_max == 0 {
        server_channel_max
    } else {
        t.channel_max
    };
    if server_channel_max != 0 && channel_max > server_channel_max {
        return Err(fail(
            "channel_max",
            "higher",
            server_channel_max as u64,
            t.channel_max as u64,
        ));
    }
    Ok(Negotiated {
        channel_max,
        frame_max: t.frame_max,
        heartbeat: t.heartbeat,
    })
}

/// The user name and password from a PLAIN or AMQPLAIN response.
fn decode_sasl(mechanism: &str, response: &LongString) -> AmqpResult<(String, String)> {
    let bytes = response.as_bytes();
    let bad = || AmqpError::syntax(format!("{mechanism} response could not be decoded")).on(10, 11);
    match mechanism {
        "PLAIN" => {
            // [authzid] NUL authcid NUL passwd
            let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
            if parts.len() != 3 {
                return Err(bad());
            }
            let user = String::from_utf8(parts[1].to_vec()).map_err(|_| bad())?;
            let pass = String::from_utf8(parts[2].to_vec()).map_err(|_| bad())?;
            Ok((user, pass))
        }
        "AMQPLAIN" => {
            // A field table without its length prefix.
            let mut framed = (bytes.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(bytes);
            let table = match amq_protocol::types::parsing::parse_field_table(&framed[..]) {
                Ok((&[], t)) => t,
                _ => return Err(bad()),
            };
            let get = |k: &str| match table.inner().get(k) {
                Some(AMQPValue::LongString(s)) => String::from_utf8(s.as_bytes().to_vec()).ok(),
                Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_string()),
                _ => None,
            };
            match (get("LOGIN"), get("PASSWORD")) {
                (Some(u), Some(p)) => Ok((u, p)),
                _ => Err(bad()),
            }
        }
        other => Err(AmqpError::command_invalid(format!(
            "unknown authentication mechanism '{other}'"
        ))
        .on(10, 11)),
    }
}

/// Write what is buffered; used while the writer task does not exist yet.
impl Io {
    pub(super) async fn flush(&mut self, out: &mut OutBuf) -> std::io::Result<()> {
        for chunk in out.take() {
            self.write.write_all(&chunk).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_amqplain() {
        assert_eq!(
            decode_sasl("PLAIN", &LongString::from(&b"\0guest\0pw"[..])).unwrap(),
            ("guest".into(), "pw".into())
        );
        let creds = amq_protocol::auth::Credentials::new("u".into(), "p".into());
        let s = creds.sasl_auth_string(amq_protocol::auth::SASLMechanism::AMQPlain);
        assert_eq!(
            decode_sasl("AMQPLAIN", &s).unwrap(),
            ("u".into(), "p".into())
        );
        assert_eq!(
            decode_sasl("PLAIN", &LongString::from(&b"x"[..]))
                .unwrap_err()
                .code as u16,
            502
        );
        assert_eq!(
            decode_sasl("EXTERNAL", &LongString::from(&b""[..]))
                .unwrap_err()
                .code as u16,
            503
        );
    }

    #[test]
    fn tune_rules() {
        let ok = |ch, fm, hb| c::TuneOk {
            channel_max: ch,
            frame_max: fm,
            heartbeat: hb,
        };
        assert_eq!(
            negotiate_tune(2047, 131072, &ok(0, 131072, 60))
                .unwrap()
                .channel_max,
            2047
        );
        assert_eq!(
            negotiate_tune(2047, 131072, &ok(10, 4096, 0))
                .unwrap()
                .frame_max,
            4096
        );
        assert_eq!(
            negotiate_tune(2047, 131072, &ok(10, 0, 0))
                .unwrap_err()
                .code as u16,
            530
        );
        assert_eq!(
            negotiate_tune(2047, 131072, &ok(4000, 131072, 0))
                .unwrap_err()
                .code as u16,
            530
        );
        assert_eq!(
            negotiate_tune(2047, 131072, &ok(1, 1000, 0))
                .unwrap_err()
                .code as u16,
            530
        );
    }
}
