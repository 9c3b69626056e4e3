//! A virtual host: its exchanges and queues, the metadata operations on them, and the publish
//! entry point. Every metadata change goes through a method here, which is where the store
//! will log it.

mod args;
mod dead_letter;
mod delayed;
mod policies;
mod reply_to;
mod restore;
mod route;
pub mod stats;

pub(crate) use args::validate_consume_args;
pub use reply_to::{
    is_reply_name, random_bytes, reply_name_is_well_formed, ReplyTarget, REPLY_QUEUE,
};

use crate::error::{AmqpError, AmqpResult};
use crate::exchange::{Binding, Dest, Exchange, ExchangeKind};
use crate::policy::{choose, Kind};
use crate::queue::{Consumer, Queue};
use crate::store::{DestKind, Store};
use amq_protocol::types::FieldTable;
use args::{compare_args, validate_exchange_args, validate_queue_args, validate_queue_type};
use dashmap::DashMap;
pub use route::{Route, Routed};
use std::sync::Arc;

/// One virtual host.
#[derive(Debug)]
pub struct VHost {
    pub name: String,
    /// Durable entities and persistent messages are written here.
    store: Store,
    exchanges: DashMap<String, Arc<Exchange>>,
    queues: DashMap<String, Arc<Queue>>,
    /// Messages delayed exchanges hold.
    held: delayed::Held,
    /// This vhost, for its queues to dead-letter through.
    me: std::sync::Weak<VHost>,
    /// Direct reply-to consumers by their generated names.
    replies: DashMap<Arc<str>, ReplyTarget>,
    /// Statistics for the management API.
    pub metrics: stats::VhostMetrics,
    /// Policies, applied to the queues and exchanges they match (see `policies`).
    policies: std::sync::RwLock<Vec<Arc<crate::policy::Policy>>>,
}

/// Queue arguments RabbitMQ compares on redeclare; others are kept but not compared.
const COMPARED_QUEUE_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-type",
    "x-single-active-consumer",
    "x-delivery-limit",
];

impl VHost {
    pub fn new(name: &str, store: Store) -> Arc<VHost> {
        Arc::new_cyclic(|me| VHost::with_defaults(name, store, me.clone()))
    }

    fn with_defaults(name: &str, store: Store, me: std::sync::Weak<VHost>) -> VHost {
        let vh = VHost {
            name: name.to_string(),
            store,
            exchanges: DashMap::new(),
            queues: DashMap::new(),
            held: delayed::Held::default(),
            me,
            replies: DashMap::new(),
            metrics: Default::default(),
            policies: Default::default(),
        };
        let std = [
            ("", ExchangeKind::Direct),
            ("amq.direct", ExchangeKind::Direct),
            ("amq.fanout", ExchangeKind::Fanout),
            ("amq.topic", ExchangeKind::Topic),
            ("amq.headers", ExchangeKind::Headers),
            ("amq.match", ExchangeKind::Headers),
        ];
        for (n, k) in std {
            vh.exchanges.insert(
                n.to_string(),
                Arc::new(Exchange::new(
                    n,
                    k,
                    true,
                    false,
                    false,
                    FieldTable::default(),
                )),
            );
        }
        vh
    }

    pub fn exchange(&self, name: &str) -> Option<Arc<Exchange>> {
        self.exchanges.get(name).map(|e| e.clone())
    }

    /// How many queues the vhost has.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    pub fn queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.queues.get(name).map(|q| q.clone())
    }

    fn no_exchange(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no exchange '{name}' in vhost '{}'", self.name))
    }

    pub fn no_queue(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no queue '{name}' in vhost '{}'", self.name))
    }

    pub fn exchange_or_404(&self, name: &str) -> AmqpResult<Arc<Exchange>> {
        self.exchange(name).ok_or_else(|| self.no_exchange(name))
    }

    /// A queue usable by connection `conn`: 404 if missing, 405 if another connection owns it.
    pub fn queue_for(&self, name: &str, conn: u64) -> AmqpResult<Arc<Queue>> {
        let q = self.queue(name).ok_or_else(|| self.no_queue(name))?;
        check_exclusive(&q, conn)?;
        Ok(q)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn declare_exchange(
        &self,
        name: &str,
        kind: &str,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> AmqpResult<()> {
        if name.is_empty() {
            // Even a passive declare of the default exchange is refused, as RabbitMQ does.
            return Err(self.default_exchange_refused());
        }
        if passive {
            return self.exchange_or_404(name).map(|_| ());
        }
        // Held until the new exchange has its policy (see `policies`).
        let policies = self.policies_read();
        let Some(k) = ExchangeKind::parse(kind) else {
            return Err(AmqpError::precondition(format!(
                "unknown exchange type '{kind}'"
            )));
        };
        let entry = self.exchanges.entry(name.to_string());
        if let dashmap::Entry::Occupied(e) = &entry {
            let x = e.get();
            let what = |arg: &str, got: String, have: String| {
                AmqpError::precondition(format!(
                    "inequivalent arg '{arg}' for exchange '{name}' in vhost '{}': received '{got}' but current is '{have}'",
                    self.name
                ))
            };
            if x.kind != k {
                return Err(what("type", kind.into(), x.kind.as_str().into()));
            }
            if x.durable != durable {
                return Err(what("durable", durable.to_string(), x.durable.to_string()));
            }
            if x.auto_delete != auto_delete {
                return Err(what(
                    "auto_delete",
                    auto_delete.to_string(),
                    x.auto_delete.to_string(),
                ));
            }
            if x.internal != internal {
                return Err(what(
                    "internal",
                    internal.to_string(),
                    x.internal.to_string(),
                ));
            }
            compare_args(
                &x.arguments,
                &arguments,
                &["alternate-exchange"],
                "exchange",
                name,
                &self.name,
            )?;
            return Ok(());
        }
        // The reserved prefix only stops creating an exchange; redeclaring amq.direct with
        // its own type and flags is fine.
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "exchange name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        validate_exchange_args(k, &arguments, name, &self.name)?;
        if durable {
            stored(self.store.put_exchange(
                &self.name,
                name,
                kind,
                auto_delete,
                internal,
                &arguments,
            ))?;
        }
        let x = Exchange::new(name, k, durable, auto_delete, internal, arguments);
        x.apply_policy(choose(policies.iter(), Kind::Exchange, name));
        entry.or_insert(Arc::new(x));
        Ok(())
    }

    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> AmqpResult<()> {
        if name.is_empty() {
            return Err(self.default_exchange_refused());
        }
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "deletion of system exchange '{name}' in vhost '{}' not allowed",
                self.name
            )));
        }
        let x = self.exchange_or_404(name)?;
        if if_unused && (x.has_bindings() || self.is_bound_destination(name)) {
            return Err(AmqpError::precondition(format!(
                "exchange '{name}' in vhost '{}' in use",
                self.name
            )));
        }
        if let Some((_, x)) = self.exchanges.remove(name) {
            self.drop_held(name);
            if x.durable {
                stored(self.store.delete_exchange(&self.name, name))?;
            }
        }
        // Bindings towards it go too.
        self.unbind_everywhere(&Dest::Exchange(name.to_string()));
        Ok(())
    }

    fn is_bound_destination(&self, name: &str) -> bool {
        let d = Dest::Exchange(name.to_string());
        self.exchanges
            .iter()
            .any(|e| e.bindings().iter().any(|b| b.dest == d))
    }

    /// Remove every binding to `dest`, then auto-delete exchanges left without bindings.
    fn unbind_everywhere(&self, dest: &Dest) {
        let mut emptied = vec![];
        for e in self.exchanges.iter() {
            let gone = e.unbind_dest(dest);
            for b in &gone {
                self.forget_binding(&e, b);
            }
            if !gone.is_empty() && e.auto_delete && !e.has_bindings() {
                emptied.push(e.name.clone());
            }
        }
        for name in emptied {
            self.auto_delete_exchange(&name);
        }
    }

    fn auto_delete_exchange(&self, name: &str) {
        let removed = self
            .exchanges
            .remove_if(name, |_, e| e.auto_delete && !e.has_bindings());
        if let Some((_, x)) = removed {
            self.drop_held(name);
            if x.durable {
                if let Err(e) = self.store.delete_exchange(&self.name, name) {
                    tracing::error!(exchange = name, error = %e, "cannot delete from the store");
                }
            }
            self.unbind_everywhere(&Dest::Exchange(name.to_string()));
        }
    }

    /// A binding survives restarts when both its ends do.
    fn binding_is_durable(&self, x: &Exchange, dest: &Dest) -> bool {
        x.durable
            && match dest {
                Dest::Queue(q) => self.queue(q).is_some_and(|q| q.is_persistent()),
                Dest::Exchange(e) => self.exchange(e).is_some_and(|e| e.durable),
            }
    }

    fn binding_parts(b: &Binding) -> (DestKind, &str) {
        match &b.dest {
            Dest::Queue(q) => (DestKind::Queue, q.as_str()),
            Dest::Exchange(e) => (DestKind::Exchange, e.as_str()),
        }
    }

    /// Remove a binding from the store (a no-op for bindings that were never stored).
    fn forget_binding(&self, x: &Exchange, b: &Binding) {
        if !x.durable {
            return;
        }
        let (kind, dest) = Self::binding_parts(b);
        if let Err(e) = self.store.delete_binding(
            &self.name,
            &x.name,
            kind,
            dest,
            &b.routing_key,
            &b.arguments,
        ) {
            tracing::error!(exchange = x.name, error = %e, "cannot delete a binding from the store");
        }
    }

    /// queue.declare (non-passive). Returns the queue, created or existing.
    #[allow(clippy::too_many_arguments)]
    pub fn declare_queue(
        &self,
        name: &str,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        mut arguments: FieldTable,
        conn: u64,
    ) -> AmqpResult<Arc<Queue>> {
        let owner = exclusive.then_some(conn);
        // As RabbitMQ: an exclusive queue is never durable, whatever the declaration says.
        let durable = durable && !exclusive;
        // As RabbitMQ 3.13+: no type given is the default type, classic.
        if !arguments.inner().contains_key("x-queue-type") {
            arguments.insert(
                "x-queue-type".into(),
                amq_protocol::types::AMQPValue::LongString("classic".into()),
            );
        }
        self.metrics.queue_declared.inc();
        // Held until the new queue has its policy (see `policies`).
        let policies = self.policies_read();
        let entry = self.queues.entry(name.to_string());
        if let dashmap::Entry::Occupied(e) = &entry {
            let q = e.get();
            check_exclusive(q, conn)?;
            let what = |arg: &str, got: bool, have: bool| {
                AmqpError::precondition(format!(
                    "inequivalent arg '{arg}' for queue '{name}' in vhost '{}': received '{got}' but current is '{have}'",
                    self.name
                ))
            };
            if q.exclusive_owner.is_some() != exclusive {
                return Err(AmqpError::resource_locked(locked_text(name, &self.name)));
            }
            if q.durable != durable {
                return Err(what("durable", durable, q.durable));
            }
            if q.auto_delete != auto_delete {
                return Err(what("auto_delete", auto_delete, q.auto_delete));
            }
            compare_args(
                &q.arguments,
                &arguments,
                COMPARED_QUEUE_ARGS,
                "queue",
                name,
                &self.name,
            )?;
            return Ok(q.clone());
        }
        validate_queue_args(&arguments, name, &self.name)?;
        validate_queue_type(
            &arguments,
            name,
            &self.name,
            durable,
            exclusive,
            auto_delete,
        )?;
        let q = Queue::new(
            name.to_string(),
            self.name.clone(),
            durable,
            owner,
            auto_delete,
            arguments,
            Some(&self.store),
            self.me.clone(),
        );
        if let Some(p) = choose(policies.iter(), Kind::Queue, name) {
            q.apply_policy(Some(p));
        }
        if q.is_persistent() {
            stored(
                self.store
                    .put_queue(&self.name, name, auto_delete, &q.arguments),
            )?;
        }
        entry.or_insert(q.clone());
        self.metrics.queue_created.inc();
        // Every queue is bound to the default exchange under its own name; routing through
        // "" looks the queue up directly, so no binding entry is kept.
        Ok(q)
    }

    /// Remove a queue: bindings, consumers (returned, to be told with basic.cancel) and
    /// messages. Returns the number of ready messages it held.
    pub fn delete_queue(&self, q: &Arc<Queue>) -> (u32, Vec<Consumer>) {
        let removed = self.queues.remove_if(&q.name, |_, v| Arc::ptr_eq(v, q));
        if removed.is_none() {
            return (0, vec![]);
        }
        self.metrics.queue_deleted.inc();
        self.unbind_everywhere(&Dest::Queue(q.name.clone()));
        if q.is_persistent() {
            if let Err(e) = self.store.delete_queue(&self.name, &q.name) {
                tracing::error!(queue = q.name, error = %e, "cannot delete a queue from the store");
            }
        }
        let left = q.delete();
        self.retire_queue(q);
        left
    }

    /// queue.bind and exchange.bind.
    pub fn bind(
        &self,
        source: &str,
        dest: Dest,
        routing_key: &str,
        args: FieldTable,
    ) -> AmqpResult<()> {
        if source.is_empty() {
            return Err(self.default_exchange_refused());
        }
        let x = self.exchange_or_404(source)?;
        if x.routing == ExchangeKind::ConsistentHash {
            crate::exchange::chash::check_weight(routing_key).map_err(AmqpError::precondition)?;
        }
        if x.routing == ExchangeKind::Headers {
            args::validate_headers_binding(&args)?;
        }
        let b = Binding {
            dest,
            routing_key: routing_key.to_string(),
            arguments: args,
        };
        if self.binding_is_durable(&x, &b.dest) {
            let (kind, dest) = Self::binding_parts(&b);
            stored(self.store.put_binding(
                &self.name,
                source,
                kind,
                dest,
                &b.routing_key,
                &b.arguments,
            ))?;
        }
        x.bind(b);
        Ok(())
    }

    /// queue.unbind and exchange.unbind. Unbinding what is not bound succeeds, as in RabbitMQ.
    pub fn unbind(
        &self,
        source: &str,
        dest: Dest,
        routing_key: &str,
        args: FieldTable,
    ) -> AmqpResult<()> {
        if source.is_empty() {
            return Err(self.default_exchange_refused());
        }
        let x = self.exchange_or_404(source)?;
        let b = Binding {
            dest,
            routing_key: routing_key.to_string(),
            arguments: args,
        };
        if x.unbind(&b) {
            self.forget_binding(&x, &b);
            if x.auto_delete && !x.has_bindings() {
                self.auto_delete_exchange(source);
            }
        }
        Ok(())
    }

    fn default_exchange_refused(&self) -> AmqpError {
        AmqpError::access_refused("operation not permitted on the default exchange")
    }

    /// The store that group-commits this vhost's writes.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// A storage failure on a metadata or publish path closes the connection with 541.
fn stored<T>(r: Result<T, sled::Error>) -> AmqpResult<T> {
    r.map_err(|e| AmqpError::internal(format!("store failure: {e}")))
}

fn check_exclusive(q: &Queue, conn: u64) -> AmqpResult<()> {
    match q.exclusive_owner {
        Some(owner) if owner != conn => {
            Err(AmqpError::resource_locked(locked_text(&q.name, &q.vhost)))
        }
        _ => Ok(()),
    }
}

fn locked_text(name: &str, vhost: &str) -> String {
    format!(
        "cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
    )
}
