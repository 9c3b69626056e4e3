//! A channel: its content assembler, unacked deliveries, consumers, qos, confirm and tx modes.
//! One handler file per AMQP class; the connection task owns every channel, so nothing here
//! locks.

pub mod assembler;
mod basic;
mod counts;
mod exchange;
mod queue;
mod reply_to;
mod timeout;
mod tx;
pub use tx::COMMIT_SEQ;

use crate::broker::Broker;
use crate::codec::{ContentHeader, OutBuf};
use crate::connection::info::ChannelInfo;
use crate::connection::{ClientCaps, ConnEvent};
use crate::error::{AmqpError, AmqpResult};
use crate::queue::{ChannelLimit, Consumer, ConsumerKey, Entry, Queue, Returned, IN_FLIGHT_MAX};
use crate::vhost::VHost;
use amq_protocol::protocol::{access, basic as b, channel as ch, AMQPClass};
use assembler::Assembler;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// What a channel handler may touch beyond its own channel.
pub struct Ctx<'a> {
    pub broker: &'a Arc<Broker>,
    pub vhost: &'a Arc<VHost>,
    pub conn_id: u64,
    pub user: &'a str,
    pub out: &'a mut OutBuf,
    /// This connection's event sender, given to consumers created here.
    pub events: &'a UnboundedSender<ConnEvent>,
    pub frame_max: u32,
    pub caps: ClientCaps,
    pub exclusive_queues: &'a mut Vec<Arc<Queue>>,
}

impl Ctx<'_> {
    /// Check the user's permission on a resource of this vhost (403 as RabbitMQ words it).
    pub fn permit(
        &self,
        perm: crate::access::Perm,
        kind: crate::access::Resource,
        name: &str,
    ) -> AmqpResult<()> {
        self.broker
            .access
            .check(self.user, &self.vhost.name, perm, kind, name)
    }
}

/// Deliveries of one queue to one consumer (None: basic.get), settled together.
type Group<T> = (Arc<Queue>, Option<Arc<str>>, T);

/// A delivery the client has not settled yet.
#[derive(Debug)]
struct Unacked {
    tag: u64,
    queue: Arc<Queue>,
    entry: Entry,
    /// None for basic.get.
    consumer: Option<Arc<str>>,
    /// When it times out (consumer timeout), if ever.
    deadline: Option<timeout::Deadline>,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Open,
    /// channel.close sent; everything but close/close-ok is discarded.
    Closing,
    Closed,
}

/// A consumer as its channel sees it.
#[derive(Debug)]
struct ChannelConsumer {
    queue: Arc<Queue>,
    /// The consumer timeout of its deliveries.
    timeout: Option<timeout::Limit>,
    /// This channel's counters for the queue.
    counts: Arc<crate::stats::MsgStats>,
}

pub struct Channel {
    id: u16,
    state: State,
    /// The exchange this channel last had write permission on.
    write_allowed: Option<String>,
    assembler: Assembler,
    next_delivery_tag: u64,
    /// Ordered by delivery tag, for `multiple` acks.
    unacked: BTreeMap<u64, Unacked>,
    consumers: HashMap<Arc<str>, ChannelConsumer>,
    /// basic.qos global=false: the prefetch given to consumers created from now on.
    consumer_prefetch: u32,
    /// basic.qos global=true.
    limit: Arc<ChannelLimit>,
    /// Deliveries queued to this connection for this channel's consumers and not yet
    /// written (see `Consumer::in_flight`).
    in_flight: Arc<AtomicU32>,
    /// The last queue declared here, for methods that name the queue "".
    last_queue: Option<String>,
    /// Confirm mode: the sequence number of the last publish, and the highest not yet acked.
    confirm: Option<tx::Confirms>,
    tx: Option<tx::TxBuffer>,
    /// The direct reply-to consumer, if this channel has one.
    reply: Option<reply_to::ReplyConsumer>,
    /// Delivery tags requeued when their consumer timed out and was cancelled: a late ack,
    /// nack or reject of one of them is ignored.
    stale: BTreeSet<u64>,
    /// No unacked delivery times out before this (a lower bound).
    next_deadline: Option<Instant>,
    /// What the management API sees of this channel.
    info: Arc<ChannelInfo>,
    /// Counters by exchange and by queue.
    counts: counts::ObjectCounts,
}

impl Channel {
    pub fn new(id: u16) -> Channel {
        Channel {
            id,
            state: State::Open,
            assembler: Assembler::default(),
            next_delivery_tag: 1,
            unacked: BTreeMap::new(),
            consumers: HashMap::new(),
            consumer_prefetch: 0,
            limit: Arc::new(ChannelLimit::default()),
            in_flight: Arc::new(AtomicU32::new(0)),
            last_queue: None,
            write_allowed: None,
            confirm: None,
            tx: None,
            reply: None,
            stale: BTreeSet::new(),
            next_deadline: None,
            info: Arc::new(ChannelInfo::new(id)),
            counts: Default::default(),
        }
    }

    pub fn info(&self) -> &Arc<ChannelInfo> {
        &self.info
    }

    /// Copy the levels the management API shows into `info` (after each method).
    pub fn refresh_info(&self) {
        let i = &self.info;
        let set = |l: &crate::stats::Level, v: usize| l.store(v as u32, Ordering::Relaxed);
        set(&i.unacked, self.unacked.len());
        set(
            &i.consumers,
            self.consumers.len() + usize::from(self.reply.is_some()),
        );
        set(&i.prefetch, self.consumer_prefetch as usize);
        i.global_prefetch.store(
            self.limit.prefetch.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        i.confirm.store(self.confirm.is_some(), Ordering::Relaxed);
        set(
            &i.unconfirmed,
            self.confirm.as_ref().map_or(0, |c| c.pending()),
        );
        i.transactional.store(self.tx.is_some(), Ordering::Relaxed);
        let (publishes, settles) = self.tx.as_ref().map_or((0, 0), |t| {
            (t.publishes.len(), t.settles.iter().map(|s| s.0.len()).sum())
        });
        set(&i.uncommitted, publishes);
        set(&i.acks_uncommitted, settles);
        i.last_active
            .store(crate::stats::now_ms(), Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn is_open(&self) -> bool {
        self.state == State::Open
    }

    pub fn on_method(&mut self, ctx: &mut Ctx, m: AMQPClass) -> AmqpResult<()> {
        if self.state == State::Closing {
            match m {
                AMQPClass::Channel(ch::AMQPMethod::CloseOk(_)) => self.state = State::Closed,
                // The client closed too (the closes crossed): answer it, and still wait for
                // the close-ok of ours, as RabbitMQ does.
                AMQPClass::Channel(ch::AMQPMethod::Close(_)) => {
                    ctx.out.method(
                        self.id,
                        AMQPClass::Channel(ch::AMQPMethod::CloseOk(ch::CloseOk {})),
                    );
                }
                _ => {}
            }
            return Ok(());
        }
        if self.assembler.in_content() {
            return Err(self.assembler.interrupted());
        }
        match m {
            AMQPClass::Channel(ch::AMQPMethod::Close(_)) => {
                self.release(ctx.vhost, ctx.conn_id);
                ctx.out.method(
                    self.id,
                    AMQPClass::Channel(ch::AMQPMethod::CloseOk(ch::CloseOk {})),
                );
                self.state = State::Closed;
                Ok(())
            }
            AMQPClass::Channel(ch::AMQPMethod::CloseOk(_)) => Ok(()),
            AMQPClass::Channel(ch::AMQPMethod::Flow(f)) => {
                if !f.active {
                    return Err(AmqpError::not_implemented("active=false"));
                }
                ctx.out.method(
                    self.id,
                    AMQPClass::Channel(ch::AMQPMethod::FlowOk(ch::FlowOk { active: true })),
                );
                Ok(())
            }
            AMQPClass::Channel(ch::AMQPMethod::FlowOk(_)) => Ok(()),
            AMQPClass::Channel(ch::AMQPMethod::Open(_)) => {
                Err(AmqpError::channel_error("second 'channel.open' seen"))
            }
            AMQPClass::Access(access::AMQPMethod::Request(_)) => {
                ctx.out.method(
                    self.id,
                    AMQPClass::Access(access::AMQPMethod::RequestOk(access::RequestOk {})),
                );
                Ok(())
            }
            AMQPClass::Exchange(m) => self.on_exchange(ctx, m),
            AMQPClass::Queue(m) => self.on_queue(ctx, m),
            AMQPClass::Basic(m) => self.on_basic(ctx, m),
            AMQPClass::Tx(m) => self.on_tx(ctx, m),
            AMQPClass::Confirm(m) => self.on_confirm(ctx, m),
            other => Err(AmqpError::command_invalid(format!(
                "unexpected method {}/{}",
                other.get_amqp_class_id(),
                other.get_amqp_method_id()
            ))),
        }
    }

    pub fn on_header(&mut self, ctx: &mut Ctx, h: ContentHeader) -> AmqpResult<()> {
        if self.state != State::Open {
            return Ok(());
        }
        let max = ctx.broker.config.amqp.max_message_size;
        if let Some(done) = self.assembler.header(h, max)? {
            self.publish(ctx, done)?;
        }
        Ok(())
    }

    pub fn on_body(&mut self, ctx: &mut Ctx, body: Bytes) -> AmqpResult<()> {
        if self.state != State::Open {
            return Ok(());
        }
        if let Some(done) = self.assembler.body(body)? {
            self.publish(ctx, done)?;
        }
        Ok(())
    }

    /// A soft error: release what the channel holds and send channel.close.
    pub fn start_close(&mut self, ctx: &mut Ctx, e: &AmqpError) {
        tracing::debug!(channel = self.id, error = %e, "closing channel");
        self.release(ctx.vhost, ctx.conn_id);
        self.assembler = Assembler::default();
        ctx.out.method(
            self.id,
            AMQPClass::Channel(ch::AMQPMethod::Close(ch::Close {
                reply_code: e.code as u16,
                reply_text: e.text.as_str().into(),
                class_id: e.class_id,
                method_id: e.method_id,
            })),
        );
        self.state = State::Closing;
    }

    fn key(&self, conn: u64, tag: &Arc<str>) -> ConsumerKey {
        ConsumerKey {
            conn,
            channel: self.id,
            tag: tag.clone(),
        }
    }

    /// Cancel every consumer and requeue every unacked delivery (channel or connection close).
    pub fn release(&mut self, vhost: &VHost, conn: u64) {
        let consumers: Vec<(Arc<str>, ChannelConsumer)> = self.consumers.drain().collect();
        let mut kept = Vec::new();
        for (tag, c) in consumers {
            let key = self.key(conn, &tag);
            // Not dispatched yet: a consumer taking over (single active consumer) gets the
            // requeued deliveries first.
            if c.queue.remove_consumer(&key, false) == crate::queue::AfterCancel::AutoDelete {
                let (_, others) = vhost.delete_queue(&c.queue);
                notify_cancelled(others);
            } else if !kept.iter().any(|q| Arc::ptr_eq(q, &c.queue)) {
                kept.push(c.queue);
            }
        }
        let unacked = std::mem::take(&mut self.unacked);
        self.requeue_all(conn, unacked.into_values(), Returned::Failed);
        for q in kept {
            q.kick();
        }
        self.confirm = None;
        self.counts.clear_confirms();
        self.tx = None;
        self.stop_replies(vhost);
        self.stale.clear();
        self.next_deadline = None;
    }

    /// Requeue deliveries, one call per (queue, consumer).
    fn requeue_all(&mut self, conn: u64, items: impl Iterator<Item = Unacked>, how: Returned) {
        let (groups, from_consumers) = group(items);
        self.limit.release(from_consumers);
        for (q, tag, entries) in groups {
            let key = tag.map(|t| self.key(conn, &t));
            q.requeue(key.as_ref(), entries, how);
        }
    }

    /// Write a delivery for one of this channel's consumers. Gives the entry back if the
    /// consumer is no longer here. `now` starts its consumer timeout.
    #[allow(clippy::too_many_arguments)]
    pub fn deliver(
        &mut self,
        out: &mut OutBuf,
        frame_max: u32,
        tag: &Arc<str>,
        queue: &Arc<Queue>,
        entry: Entry,
        no_ack: bool,
        now: Instant,
    ) -> Result<(), Entry> {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == IN_FLIGHT_MAX {
            // The cap had stopped dispatch to this channel's consumers: resume it.
            // Kicking sends to this very connection's unbounded event queue: no deadlock.
            for c in self.consumers.values() {
                c.queue.kick();
            }
        }
        let (limit, counts) = match self.consumers.get(tag) {
            Some(c) if self.state == State::Open => (c.timeout, &c.counts),
            _ => return Err(entry),
        };
        counts::ObjectCounts::delivered(counts, no_ack, entry.redelivered);
        for stats in [&self.info.stats, &queue.stats] {
            if no_ack {
                stats.deliver_no_ack.inc();
            } else {
                stats.deliver.inc();
            }
            if entry.redelivered {
                stats.redeliver.inc();
            }
        }
        let dtag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        let m = entry.wire();
        out.deliver(
            self.id,
            tag,
            dtag,
            entry.redelivered,
            &m.exchange,
            &m.routing_key,
        );
        out.content(self.id, &m.raw_properties, &m.body, frame_max);
        if !no_ack {
            self.track(Unacked {
                tag: dtag,
                queue: queue.clone(),
                entry,
                consumer: Some(tag.clone()),
                deadline: limit.and_then(|l| l.deadline(now)),
            });
            self.info
                .unacked
                .store(self.unacked.len() as u32, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The queue under a consumer was deleted.
    pub fn consumer_gone(&mut self, out: &mut OutBuf, tag: &Arc<str>, notify: bool) {
        if self.consumers.remove(tag).is_some() && notify && self.state == State::Open {
            out.method(
                self.id,
                AMQPClass::Basic(b::AMQPMethod::Cancel(b::Cancel {
                    consumer_tag: tag.as_ref().into(),
                    nowait: true,
                })),
            );
        }
    }

    /// A publish (or a tx.commit) waiting for the disk is durable now.
    pub fn confirm_synced(&mut self, seq: u64, out: &mut OutBuf) {
        if seq == tx::COMMIT_SEQ {
            if self.state == State::Open {
                self.commit_ok(out);
            }
            return;
        }
        if let Some(c) = &mut self.confirm {
            c.synced(seq);
        }
    }

    /// Confirms owed to the publisher, written once per batch of input.
    pub fn flush_confirms(&mut self, out: &mut OutBuf) {
        if let Some(c) = &mut self.confirm {
            let before = c.confirmed();
            c.flush(self.id, out);
            self.info.stats.confirm.add(c.confirmed() - before);
            self.info
                .unconfirmed
                .store(c.pending() as u32, Ordering::Relaxed);
            self.counts.confirmed(before, c.confirmed());
        }
    }
}

/// Deliveries grouped by (queue, consumer), and how many came from consumers (rather than
/// basic.get), which count against the channel-wide prefetch.
fn group(items: impl Iterator<Item = Unacked>) -> (Vec<Group<Vec<Entry>>>, u32) {
    let mut groups: Vec<Group<Vec<Entry>>> = Vec::new();
    let mut from_consumers = 0;
    for u in items {
        if u.consumer.is_some() {
            from_consumers += 1;
        }
        match groups
            .iter_mut()
            .find(|(q, c, _)| Arc::ptr_eq(q, &u.queue) && *c == u.consumer)
        {
            Some(g) => g.2.push(u.entry),
            None => groups.push((u.queue, u.consumer, vec![u.entry])),
        }
    }
    (groups, from_consumers)
}

/// Tell consumers of a deleted queue (on any connection) that they are cancelled.
pub fn notify_cancelled(consumers: Vec<Consumer>) {
    for c in consumers {
        let _ = c.tx.send(ConnEvent::Cancelled {
            channel: c.key.channel,
            consumer_tag: c.key.tag,
        });
    }
}

/// A server-generated name: `prefix` followed by 22 URL-safe base64 characters, as RabbitMQ's
/// `amq.gen-…` and `amq.ctag-…`.
pub fn generated_name(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::from(prefix);
    let seed = N.fetch_add(1, Ordering::Relaxed);
    for round in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(seed);
        h.write_u64(round);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let mut v = h.finish();
        for _ in 0..11 {
            s.push(ALPHABET[(v & 63) as usize] as char);
            v >>= 6;
        }
    }
    s
}
