//! What the management API and Prometheus see of a live connection and its channels: fixed
//! facts set once the handshake is done, and counters the connection task keeps as it works.

use crate::stats::{IoStats, Level, MsgStats};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A connection, as others may look at it.
#[derive(Debug)]
pub struct ConnInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Milliseconds since the epoch.
    pub connected_at: u64,
    pub io: IoStats,
    /// Set when the handshake completes.
    pub opened: OnceLock<Opened>,
    /// The open channels, by number.
    pub channels: Mutex<Vec<Arc<ChannelInfo>>>,
    /// Set while a resource alarm keeps the connection from being read.
    pub blocked: AtomicBool,
}

/// What the handshake settled.
#[derive(Debug)]
pub struct Opened {
    pub user: String,
    pub vhost: String,
    pub client_properties: serde_json::Value,
    pub auth_mechanism: String,
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
    /// The TLS protocol version, for AMQPS connections.
    pub tls: Option<String>,
}

impl ConnInfo {
    pub fn new(id: u64, peer: SocketAddr, local: SocketAddr) -> ConnInfo {
        ConnInfo {
            id,
            peer,
            local,
            connected_at: crate::stats::now_ms(),
            io: IoStats::default(),
            opened: OnceLock::new(),
            channels: Mutex::new(Vec::new()),
            blocked: AtomicBool::new(false),
        }
    }

    /// RabbitMQ's name for a connection: `peer -> local`.
    pub fn name(&self) -> String {
        format!("{} -> {}", addr(&self.peer), addr(&self.local))
    }

    pub fn channels(&self) -> Vec<Arc<ChannelInfo>> {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn user(&self) -> &str {
        self.opened.get().map_or("", |o| o.user.as_str())
    }

    pub fn vhost(&self) -> &str {
        self.opened.get().map_or("", |o| o.vhost.as_str())
    }
}

/// An address as RabbitMQ writes it (IPv4-mapped IPv6 shown as IPv4).
pub fn addr(a: &SocketAddr) -> String {
    format!("{}:{}", a.ip().to_canonical(), a.port())
}

/// A channel, as others may look at it.
#[derive(Debug, Default)]
pub struct ChannelInfo {
    pub number: u16,
    pub stats: MsgStats,
    /// basic.qos prefetch for new consumers (global = false) and channel-wide (global = true).
    pub prefetch: Level,
    pub global_prefetch: Level,
    pub consumers: Level,
    pub unacked: Level,
    /// Confirm mode, and publishes not yet confirmed.
    pub confirm: AtomicBool,
    pub unconfirmed: Level,
    pub transactional: AtomicBool,
    pub uncommitted: Level,
    pub acks_uncommitted: Level,
    /// When the channel last did anything, in milliseconds since the epoch.
    pub last_active: AtomicU64,
    /// Counters by exchange published to and by queue consumed from, in the order the
    /// channel first used them (Prometheus' per-object channel metrics).
    pub exchanges: ObjectCounters,
    pub queues: ObjectCounters,
    /// Sizes of the bodies published on this channel.
    pub sizes: crate::stats::SizeHistogram,
}

/// Counters by the name of an exchange or a queue.
pub type ObjectCounters = Mutex<Vec<(String, Arc<MsgStats>)>>;

impl ChannelInfo {
    pub fn new(number: u16) -> ChannelInfo {
        ChannelInfo {
            number,
            last_active: AtomicU64::new(crate::stats::now_ms()),
            ..ChannelInfo::default()
        }
    }

    pub fn level(l: &Level) -> u32 {
        l.load(Ordering::Relaxed)
    }
}
