//! Exchanges: a closed set of types behind one `match`. Routing is pure: given a message's
//! routing keys and properties it names destinations, and never touches a queue.
//!
//! `x-delayed-message` exchanges route with the type named by their `x-delayed-type`
//! argument ([`Exchange::routing`]); holding messages back until their `x-delay` has passed
//! is the vhost's business (see `vhost::delayed`).

pub mod chash;
mod direct;
mod fanout;
mod headers;
mod topic;

use crate::policy::Policy;
use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::types::{AMQPValue, FieldTable};
pub use chash::HashOn;
use std::sync::{Arc, RwLock};

/// The exchange types warren implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
    /// `x-consistent-hash` (the rabbitmq_consistent_hash_exchange plugin's type).
    ConsistentHash,
    /// `x-delayed-message` (the rabbitmq_delayed_message_exchange plugin's type).
    Delayed,
}

impl ExchangeKind {
    pub fn parse(s: &str) -> Option<ExchangeKind> {
        match s {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            "x-consistent-hash" => Some(ExchangeKind::ConsistentHash),
            "x-delayed-message" => Some(ExchangeKind::Delayed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
            ExchangeKind::ConsistentHash => "x-consistent-hash",
            ExchangeKind::Delayed => "x-delayed-message",
        }
    }
}

/// Where a binding leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dest {
    Queue(String),
    Exchange(String),
}

/// One binding from an exchange. Its identity is all three fields, as in RabbitMQ.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub dest: Dest,
    pub routing_key: String,
    pub arguments: FieldTable,
}

/// An exchange and its outgoing bindings.
#[derive(Debug)]
pub struct Exchange {
    pub name: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    /// Internal exchanges refuse direct publishes (403) but route from other exchanges.
    pub internal: bool,
    pub arguments: FieldTable,
    /// The type whose rules route messages: `kind`, or `x-delayed-type` for a delayed
    /// exchange.
    pub routing: ExchangeKind,
    /// Its own `alternate-exchange` argument (a policy's applies only without it).
    own_alternate: Option<String>,
    /// What a consistent-hash exchange hashes (`hash-header`, `hash-property`).
    pub hash_on: HashOn,
    /// A std lock: held only for a routing pass, a bind or a policy change, never across an
    /// await.
    bindings: RwLock<Bindings>,
    /// `publish_in` and `publish_out`, for the management API.
    pub stats: crate::stats::MsgStats,
}

/// The binding list plus the index its type routes with, and what a policy may change (read
/// in the same routing pass).
#[derive(Debug, Default)]
struct Bindings {
    all: Vec<Binding>,
    direct: direct::Index,
    fanout: fanout::Index,
    topic: topic::Trie,
    ring: chash::Ring,
    /// `alternate-exchange` in force: where messages that route nowhere from here go
    /// instead. The argument's, else the policy's.
    alternate: Option<String>,
    /// The policy applied, if any.
    policy: Option<Arc<Policy>>,
}

impl Exchange {
    pub fn new(
        name: &str,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Exchange {
        let arg = |k: &str| match arguments.inner().get(k) {
            Some(v @ (AMQPValue::LongString(_) | AMQPValue::ShortString(_))) => {
                crate::field::as_text(v)
            }
            _ => None,
        };
        // Arguments were validated when the exchange was declared.
        let routing = match kind {
            // Read as validation read it (a byte array counts as text there too).
            ExchangeKind::Delayed => arguments
                .inner()
                .get("x-delayed-type")
                .and_then(crate::field::as_text)
                .and_then(|t| ExchangeKind::parse(&t))
                .filter(|k| *k != ExchangeKind::Delayed)
                .unwrap_or(ExchangeKind::Direct),
            k => k,
        };
        let hash_on = match (arg("hash-header"), arg("hash-property")) {
            (Some(h), None) => HashOn::Header(h),
            (None, Some(p)) => HashOn::Property(p),
            _ => HashOn::RoutingKey,
        };
        let own_alternate = arg("alternate-exchange");
        Exchange {
            name: name.to_string(),
            kind,
            durable,
            auto_delete,
            internal,
            routing,
            hash_on,
            arguments,
            bindings: RwLock::new(Bindings {
                alternate: own_alternate.clone(),
                ..Bindings::default()
            }),
            own_alternate,
            stats: Default::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Bindings> {
        self.bindings.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Bindings> {
        self.bindings.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a binding; false if the same binding already exists.
    pub fn bind(&self, b: Binding) -> bool {
        let mut t = self.write();
        if t.all.contains(&b) {
            return false;
        }
        match self.routing {
            ExchangeKind::Direct => t.direct.insert(&b.routing_key, &b.dest),
            ExchangeKind::Fanout => t.fanout.insert(&b.dest),
            ExchangeKind::Topic => t.topic.insert(&b.routing_key, &b.dest),
            ExchangeKind::ConsistentHash => t.ring.insert(&b.routing_key, &b.dest),
            ExchangeKind::Headers | ExchangeKind::Delayed => {}
        }
        t.all.push(b);
        true
    }

    /// Remove a binding; false if there was none.
    pub fn unbind(&self, b: &Binding) -> bool {
        let mut t = self.write();
        let Some(pos) = t.all.iter().position(|x| x == b) else {
            return false;
        };
        t.all.remove(pos);
        self.unindex(&mut t, b);
        true
    }

    fn unindex(&self, t: &mut Bindings, b: &Binding) {
        if self.routing == ExchangeKind::ConsistentHash {
            t.ring.remove(&b.dest);
            return;
        }
        // The same (key, dest) may stay bound with other arguments.
        if t.all
            .iter()
            .any(|x| x.dest == b.dest && x.routing_key == b.routing_key)
        {
            return;
        }
        match self.routing {
            ExchangeKind::Direct => t.direct.remove(&b.routing_key, &b.dest),
            ExchangeKind::Fanout => {
                if !t.all.iter().any(|x| x.dest == b.dest) {
                    t.fanout.remove(&b.dest)
                }
            }
            ExchangeKind::Topic => t.topic.remove(&b.routing_key, &b.dest),
            ExchangeKind::Headers | ExchangeKind::ConsistentHash | ExchangeKind::Delayed => {}
        }
    }

    /// Remove every binding to `dest`; returns them.
    pub fn unbind_dest(&self, dest: &Dest) -> Vec<Binding> {
        let mut t = self.write();
        let gone: Vec<Binding> = t.all.iter().filter(|b| &b.dest == dest).cloned().collect();
        t.all.retain(|b| &b.dest != dest);
        for b in &gone {
            self.unindex(&mut t, b);
        }
        gone
    }

    pub fn has_bindings(&self) -> bool {
        !self.read().all.is_empty()
    }

    pub fn bindings(&self) -> Vec<Binding> {
        self.read().all.clone()
    }

    /// Apply `policy` (or none). Its `alternate-exchange` applies unless the exchange has its
    /// own.
    pub fn apply_policy(&self, policy: Option<Arc<Policy>>) {
        let from_policy = policy
            .as_ref()
            .and_then(|p| p.text("alternate-exchange"))
            .map(str::to_string);
        let mut t = self.write();
        t.alternate = self.own_alternate.clone().or(from_policy);
        t.policy = policy;
    }

    /// The policy applied to this exchange, if any.
    pub fn policy(&self) -> Option<Arc<Policy>> {
        self.read().policy.clone()
    }

    /// The applied policy's definition (`{}` without one).
    pub fn effective_policy_definition(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.policy()
                .map(|p| p.definition.clone())
                .unwrap_or_default(),
        )
    }

    /// The alternate exchange in force (the argument's, else the policy's).
    pub fn alternate(&self) -> Option<String> {
        self.read().alternate.clone()
    }

    /// As [`Exchange::route`]; when no destination matched, the alternate exchange (if any)
    /// is the one destination.
    pub fn route_or_alternate(&self, keys: &[String], props: &AMQPProperties, out: &mut Vec<Dest>) {
        let t = self.read();
        let before = out.len();
        self.route_locked(&t, keys, props, out);
        if out.len() == before {
            if let Some(ae) = &t.alternate {
                out.push(Dest::Exchange(ae.clone()));
            }
        }
    }

    /// Append the destinations a message with these routing keys (its routing key first, then
    /// those of its `CC` and `BCC` headers) and properties goes to (duplicates possible; the
    /// caller de-duplicates).
    pub fn route(&self, keys: &[String], props: &AMQPProperties, out: &mut Vec<Dest>) {
        self.route_locked(&self.read(), keys, props, out);
    }

    fn route_locked(
        &self,
        t: &Bindings,
        keys: &[String],
        props: &AMQPProperties,
        out: &mut Vec<Dest>,
    ) {
        match self.routing {
            ExchangeKind::Direct => keys.iter().for_each(|k| t.direct.route(k, out)),
            ExchangeKind::Fanout => t.fanout.route(out),
            ExchangeKind::Topic => keys.iter().for_each(|k| t.topic.route(k, out)),
            ExchangeKind::Headers => headers::route(&t.all, props.headers().as_ref(), out),
            ExchangeKind::ConsistentHash => t
                .ring
                .route(&chash::hash_value(&self.hash_on, keys, props), out),
            ExchangeKind::Delayed => {}
        }
    }
}
