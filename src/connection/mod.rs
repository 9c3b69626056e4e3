//! One task per socket. It owns the connection's channels (no locks on channel state), reads
//! frames, runs commands, takes deliveries from queues, and batches everything it writes:
//! frames go into one buffer that is handed to the writer task once there is no more
//! immediate work, so many frames share one `write()`.

mod handshake;
pub mod info;
mod lifecycle;
mod limits;
mod throttle;
mod writer;

use crate::broker::Broker;
use crate::channel::{Channel, Ctx};
use crate::codec::{self, Frame, OutBuf};
use crate::error::{AmqpError, ReplyCode};
use crate::queue::{Entry, Queue};
use crate::vhost::VHost;
use amq_protocol::protocol::{channel as ch, connection as c, AMQPClass};
use bytes::BytesMut;
pub use lifecycle::{serve, serve_stream};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// What other parts of the broker send to a connection task.
#[derive(Debug)]
pub enum ConnEvent {
    /// A queue hands a message to one of this connection's consumers.
    Deliver {
        channel: u16,
        consumer_tag: Arc<str>,
        queue: Arc<Queue>,
        entry: Entry,
        no_ack: bool,
    },
    /// The queue under this consumer was deleted: send basic.cancel if the client wants it.
    Cancelled {
        channel: u16,
        consumer_tag: Arc<str>,
    },
    /// Data a publisher waits on is durable: confirm publish `seq` on `channel`.
    Synced { channel: u16, seq: u64 },
    /// A reply published to the direct reply-to name `name` of a consumer on `channel`.
    Reply {
        channel: u16,
        name: Arc<str>,
        msg: Arc<crate::message::Message>,
    },
    /// Close the connection (broker shutdown, management action).
    Close { code: ReplyCode, text: String },
}

/// Capabilities the client announced in start-ok.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientCaps {
    pub consumer_cancel_notify: bool,
    pub authentication_failure_close: bool,
    pub connection_blocked: bool,
}

/// Values agreed in tune/tune-ok.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Negotiated {
    pub channel_max: u16,
    /// 0 until tune-ok.
    pub frame_max: u32,
    pub heartbeat: u16,
}

/// The socket halves and the read buffer, during the handshake.
pub(crate) struct Io {
    read: Reader,
    write: Writer,
    inbuf: BytesMut,
}

/// Connection state owned by the connection task.
pub(crate) struct Conn {
    broker: Arc<Broker>,
    id: u64,
    peer: SocketAddr,
    user: String,
    client_name: String,
    caps: ClientCaps,
    tuned: Negotiated,
    vhost: Option<Arc<VHost>>,
    channels: HashMap<u16, Channel>,
    out: OutBuf,
    events: mpsc::UnboundedSender<ConnEvent>,
    /// Exclusive queues declared here, deleted when the connection ends.
    exclusive_queues: Vec<Arc<Queue>>,
    /// Set once connection.close was sent: only close/close-ok are processed from then on.
    closing: Option<Instant>,
    /// The connection is finished: write what is buffered and end.
    done: bool,
    last_read: Instant,
    /// Bytes the last read returned (a busy connection gets a large read buffer).
    last_read_size: usize,
    last_write: Instant,
    /// The input just processed had content (a publish): during an alarm, that blocks it.
    published: bool,
    /// Blocked by a resource alarm: its socket is not read until every alarm clears.
    blocked: bool,
    /// Set for AMQPS clients.
    tls: Option<TlsPeer>,
    /// How many channels are open, for per-user channel limits.
    channel_gauge: Arc<std::sync::atomic::AtomicUsize>,
    /// What the management API sees of this connection.
    info: Arc<info::ConnInfo>,
    /// From start-ok, kept for `info` until the handshake is done.
    client_properties: serde_json::Value,
    auth_mechanism: String,
}

/// Read buffer of a connection that sends little.
const IDLE_READ_BUFFER: usize = 4096;
/// Read buffer of a connection whose reads fill the small one.
const BUSY_READ_BUFFER: usize = 64 * 1024;

/// The reading side of a client's stream (a TCP socket, or TLS over one).
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The writing side.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// What TLS established about a client, for the handshake.
#[derive(Debug, Clone, Default)]
pub struct TlsPeer {
    /// The common name of the client's verified certificate: the user SASL EXTERNAL logs in.
    pub cert_user: Option<String>,
    /// The protocol version agreed ("tlsv1.3").
    pub protocol: String,
}

impl Conn {
    async fn run(
        &mut self,
        read: &mut Reader,
        mut inbuf: BytesMut,
        events_rx: &mut mpsc::UnboundedReceiver<ConnEvent>,
        wtx: &mpsc::Sender<Vec<bytes::Bytes>>,
    ) {
        let hb = self.tuned.heartbeat as u64;
        // One tick a second drives heartbeats (sent after hb/2 s of silence) and the
        // close-ok deadline.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::new();
        let mut alarm = self.broker.alarms.subscribe();
        // Frames already buffered during the handshake.
        self.process_input(&mut inbuf);
        self.throttle(*alarm.borrow());
        loop {
            if !self.out.is_empty() {
                self.last_write = Instant::now();
                let chunks = self.out.take();
                self.info.io.send_cnt.inc();
                self.info
                    .io
                    .send_oct
                    .add(chunks.iter().map(|c| c.len() as u64).sum());
                if wtx.send(chunks).await.is_err() {
                    return;
                }
            }
            if self.done {
                return;
            }
            tokio::select! {
                res = read.read_buf(&mut inbuf), if !self.blocked => match res {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        self.info.io.recv_cnt.inc();
                        self.info.io.recv_oct.add(n as u64);
                        self.last_read = Instant::now();
                        self.last_read_size = n;
                        self.process_input(&mut inbuf);
                        self.throttle(*alarm.borrow());
                    }
                },
                Ok(()) = alarm.changed() => {
                    self.throttle(*alarm.borrow_and_update());
                }
                n = events_rx.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        return;
                    }
                    // One clock read per batch starts the consumer timeouts of its deliveries.
                    let now = Instant::now();
                    for ev in batch.drain(..) {
                        self.on_event(ev, now);
                    }
                    self.flush_confirms();
                }
                _ = tick.tick() => {
                    if let Some(since) = self.closing {
                        if since.elapsed() > Duration::from_secs(3) {
                            return;
                        }
                    }
                    self.check_timeouts();
                    if hb > 0 {
                        // A blocked connection is not read: its heartbeats are not missed.
                        if !self.blocked && self.last_read.elapsed() > Duration::from_secs(hb * 2) {
                            tracing::warn!(peer = %self.peer, "missed heartbeats from client, timeout: {hb}s");
                            return;
                        }
                        if self.last_write.elapsed() >= Duration::from_millis(hb * 500) {
                            self.out.heartbeat();
                        }
                    }
                }
            }
        }
    }

    fn process_input(&mut self, inbuf: &mut BytesMut) {
        let frame_max = self.tuned.frame_max;
        while !self.done {
            match codec::decode(inbuf, frame_max) {
                Ok(Some(frame)) => self.on_frame(frame),
                Ok(None) => break,
                Err(e) => {
                    // The stream cannot be resynchronised after a framing error.
                    self.close_connection(e);
                    inbuf.clear();
                    self.done = true;
                    break;
                }
            }
        }
        self.flush_confirms();
        // A connection whose last read filled a small buffer gets a large one; an idle one
        // keeps a small one (10,000 idle connections must fit in a few hundred MiB).
        if inbuf.capacity() - inbuf.len() < IDLE_READ_BUFFER / 2 {
            inbuf.reserve(if self.last_read_size >= IDLE_READ_BUFFER / 2 {
                BUSY_READ_BUFFER
            } else {
                IDLE_READ_BUFFER
            });
        }
    }

    /// Write the confirms owed on every channel: one `basic.ack` per channel per batch of
    /// input or events, however many publishes or syncs the batch completed.
    fn flush_confirms(&mut self) {
        for chan in self.channels.values_mut() {
            chan.flush_confirms(&mut self.out);
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        if self.closing.is_some() {
            // Once closing, only close and close-ok matter. Every connection.close gets its
            // close-ok (a client may send several); the socket closes on close-ok, when the
            // client closes it, or after a grace period.
            if let Frame::Method(0, m) = &frame {
                match **m {
                    AMQPClass::Connection(c::AMQPMethod::CloseOk(_)) => self.done = true,
                    AMQPClass::Connection(c::AMQPMethod::Close(_)) => {
                        self.out.method(
                            0,
                            AMQPClass::Connection(c::AMQPMethod::CloseOk(c::CloseOk {})),
                        );
                    }
                    _ => {}
                }
            }
            return;
        }
        let result = match frame {
            Frame::Heartbeat(0) => Ok(()),
            Frame::Heartbeat(_) => Err(AmqpError::unexpected_frame("type 8, all octets = <<>>")),
            Frame::Method(0, m) => self.on_connection_method(*m),
            Frame::Method(n, m) => self.on_channel_method(n, *m),
            Frame::Header(0, _) | Frame::Body(0, _) => {
                Err(AmqpError::unexpected_frame("content frame on channel 0"))
            }
            Frame::Header(n, h) => {
                self.published = true;
                self.with_channel(n, (0, 0), |chan, ctx| chan.on_header(ctx, *h))
            }
            Frame::Body(n, b) => self.with_channel(n, (0, 0), |chan, ctx| chan.on_body(ctx, b)),
        };
        if let Err(e) = result {
            self.close_connection(e);
        }
    }

    fn on_connection_method(&mut self, m: AMQPClass) -> Result<(), AmqpError> {
        match m {
            AMQPClass::Connection(c::AMQPMethod::Close(_)) => {
                self.out.method(
                    0,
                    AMQPClass::Connection(c::AMQPMethod::CloseOk(c::CloseOk {})),
                );
                // The client closes the socket once it has read close-ok; closing it first
                // makes some clients (lapin) see an I/O error instead of a clean close.
                self.closing = Some(Instant::now());
                self.release_channels();
                Ok(())
            }
            AMQPClass::Connection(c::AMQPMethod::CloseOk(_)) => {
                self.done = true;
                Ok(())
            }
            AMQPClass::Connection(c::AMQPMethod::UpdateSecret(_)) => {
                self.out.method(
                    0,
                    AMQPClass::Connection(c::AMQPMethod::UpdateSecretOk(c::UpdateSecretOk {})),
                );
                Ok(())
            }
            AMQPClass::Connection(c::AMQPMethod::Blocked(_) | c::AMQPMethod::Unblocked(_)) => {
                Ok(())
            }
            other => Err(AmqpError::channel_error(format!(
                "unexpected method on channel 0: {}",
                method_name(&other)
            ))
            .on(other.get_amqp_class_id(), other.get_amqp_method_id())),
        }
    }

    fn on_channel_method(&mut self, n: u16, m: AMQPClass) -> Result<(), AmqpError> {
        let (class_id, method_id) = (m.get_amqp_class_id(), m.get_amqp_method_id());
        match m {
            AMQPClass::Channel(ch::AMQPMethod::Open(_)) => {
                if self.channels.contains_key(&n) {
                    return Err(AmqpError::channel_error("second 'channel.open' seen").on(20, 10));
                }
                let max = self.tuned.channel_max;
                if n > max || self.channels.len() >= max as usize {
                    return Err(AmqpError::not_allowed(format!(
                        "number of channels opened ({}) has reached the negotiated channel_max ({max})",
                        self.channels.len()
                    )));
                }
                self.check_user_channel_limit()?;
                self.channels.insert(n, Channel::new(n));
                self.broker.churn.channel_created.inc();
                self.count_channels();
                self.out
                    .method(n, AMQPClass::Channel(ch::AMQPMethod::OpenOk(ch::OpenOk {})));
                Ok(())
            }
            AMQPClass::Connection(_) => Err(AmqpError::command_invalid(format!(
                "connection method {} on channel {n}",
                method_name(&m)
            ))
            .on(class_id, method_id)),
            m => self.with_channel(n, (class_id, method_id), |chan, ctx| chan.on_method(ctx, m)),
        }
    }

    /// Run `f` on an open channel and apply the error rule: soft errors close the channel,
    /// hard ones are returned to close the connection. `method` is the (class, method) of the
    /// frame being handled, named in the close unless the handler named another.
    fn with_channel(
        &mut self,
        n: u16,
        method: (u16, u16),
        f: impl FnOnce(&mut Channel, &mut Ctx) -> Result<(), AmqpError>,
    ) -> Result<(), AmqpError> {
        let Some(vhost) = self.vhost.clone() else {
            return Err(AmqpError::channel_error("connection not open").on(method.0, method.1));
        };
        let Some(chan) = self.channels.get_mut(&n) else {
            return Err(AmqpError::channel_error("expected 'channel.open'").on(method.0, method.1));
        };
        let mut ctx = Ctx {
            broker: &self.broker,
            vhost: &vhost,
            conn_id: self.id,
            user: &self.user,
            out: &mut self.out,
            events: &self.events,
            frame_max: self.tuned.frame_max,
            caps: self.caps,
            exclusive_queues: &mut self.exclusive_queues,
        };
        match f(chan, &mut ctx).map_err(|e| e.on(method.0, method.1)) {
            Ok(()) => {
                // Not for content frames and basic.publish: once per message would cost more
                // than the publish itself. What a publish changes is kept up to date where it
                // changes (confirms, tx), once per batch.
                if method != (60, 40) && method != (0, 0) {
                    chan.refresh_info();
                }
                if chan.is_closed() {
                    vhost.retire_channel(chan.info());
                    self.broker.churn.channel_closed.inc();
                    self.channels.remove(&n);
                    self.count_channels();
                }
                Ok(())
            }
            Err(e) if e.is_soft() => {
                chan.start_close(&mut ctx, &e);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Consumer timeouts: deliveries left unacked past their deadline.
    fn check_timeouts(&mut self) {
        if self.closing.is_some() {
            return;
        }
        let now = Instant::now();
        let due: Vec<u16> = self
            .channels
            .iter()
            .filter(|(_, c)| c.timeout_due(now))
            .map(|(n, _)| *n)
            .collect();
        for n in due {
            if let Err(e) = self.with_channel(n, (0, 0), |chan, ctx| {
                let r = chan.check_timeouts(ctx, now);
                chan.refresh_info();
                r
            }) {
                self.close_connection(e);
            }
        }
    }

    fn on_event(&mut self, ev: ConnEvent, now: Instant) {
        match ev {
            ConnEvent::Deliver {
                channel,
                consumer_tag,
                queue,
                entry,
                no_ack,
            } => {
                let frame_max = self.tuned.frame_max;
                let delivered = match self.channels.get_mut(&channel) {
                    Some(chan) => chan.deliver(
                        &mut self.out,
                        frame_max,
                        &consumer_tag,
                        &queue,
                        entry,
                        no_ack,
                        now,
                    ),
                    None => Err(entry),
                };
                if let Err(entry) = delivered {
                    // The consumer or its channel went away while this was in flight.
                    if !no_ack {
                        let key = crate::queue::ConsumerKey {
                            conn: self.id,
                            channel,
                            tag: consumer_tag,
                        };
                        queue.requeue(Some(&key), vec![entry], crate::queue::Returned::Undelivered);
                    }
                }
            }
            ConnEvent::Cancelled {
                channel,
                consumer_tag,
            } => {
                let notify = self.caps.consumer_cancel_notify;
                if let Some(chan) = self.channels.get_mut(&channel) {
                    chan.consumer_gone(&mut self.out, &consumer_tag, notify);
                }
            }
            ConnEvent::Reply { channel, name, msg } => {
                if let Some(chan) = self.channels.get_mut(&channel) {
                    chan.deliver_reply(&mut self.out, self.tuned.frame_max, &name, &msg);
                }
            }
            ConnEvent::Synced { channel, seq } => {
                if let Some(chan) = self.channels.get_mut(&channel) {
                    chan.confirm_synced(seq, &mut self.out);
                }
                // The ack itself is written once for the whole batch (flush_confirms).
            }
            ConnEvent::Close { code, text } => {
                let e = AmqpError {
                    code,
                    text,
                    class_id: 0,
                    method_id: 0,
                };
                self.close_connection(e);
            }
        }
    }

    fn send_connection_close(&mut self, e: &AmqpError) {
        self.out.method(
            0,
            AMQPClass::Connection(c::AMQPMethod::Close(c::Close {
                reply_code: e.code as u16,
                reply_text: e.text.as_str().into(),
                class_id: e.class_id,
                method_id: e.method_id,
            })),
        );
    }

    /// Send connection.close and wait (up to a deadline) for close-ok.
    fn close_connection(&mut self, e: AmqpError) {
        if self.closing.is_some() {
            return;
        }
        tracing::info!(peer = %self.peer, error = %e, "closing connection");
        self.send_connection_close(&e);
        self.closing = Some(Instant::now());
        self.release_channels();
    }
}

fn method_name(m: &AMQPClass) -> String {
    format!("{}/{}", m.get_amqp_class_id(), m.get_amqp_method_id())
}
