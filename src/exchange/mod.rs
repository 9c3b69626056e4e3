//! Exchanges: a closed set of types behind one `match`. Routing is pure: given a routing key
//! and headers it names destinations, and never touches a queue.

mod direct;
mod fanout;
mod headers;
mod topic;

use amq_protocol::types::FieldTable;
use std::sync::RwLock;

/// The exchange types warren implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    pub fn parse(s: &str) -> Option<ExchangeKind> {
        match s {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
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
    /// A std lock: held only for a routing pass or a bind, never across an await.
    bindings: RwLock<Bindings>,
}

/// The binding list plus the index its type routes with.
#[derive(Debug, Default)]
struct Bindings {
    all: Vec<Binding>,
    direct: direct::Index,
    fanout: fanout::Index,
    topic: topic::Trie,
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
        Exchange {
            name: name.to_string(),
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
            bindings: RwLock::new(Bindings::default()),
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
        match self.kind {
            ExchangeKind::Direct => t.direct.insert(&b.routing_key, &b.dest),
            ExchangeKind::Fanout => t.fanout.insert(&b.dest),
            ExchangeKind::Topic => t.topic.insert(&b.routing_key, &b.dest),
            ExchangeKind::Headers => {}
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
        // The same (key, dest) may stay bound with other arguments.
        if t.all
            .iter()
            .any(|x| x.dest == b.dest && x.routing_key == b.routing_key)
        {
            return;
        }
        match self.kind {
            ExchangeKind::Direct => t.direct.remove(&b.routing_key, &b.dest),
            ExchangeKind::Fanout => {
                if !t.all.iter().any(|x| x.dest == b.dest) {
                    t.fanout.remove(&b.dest)
                }
            }
            ExchangeKind::Topic => t.topic.remove(&b.routing_key, &b.dest),
            ExchangeKind::Headers => {}
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

    /// Append the destinations a message with this key and headers goes to (duplicates
    /// possible; the caller de-duplicates).
    pub fn route(&self, routing_key: &str, headers: Option<&FieldTable>, out: &mut Vec<Dest>) {
        let t = self.read();
        match self.kind {
            ExchangeKind::Direct => t.direct.route(routing_key, out),
            ExchangeKind::Fanout => t.fanout.route(out),
            ExchangeKind::Topic => t.topic.route(routing_key, out),
            ExchangeKind::Headers => headers::route(&t.all, headers, out),
        }
    }
}
