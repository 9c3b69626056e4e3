//! Routing a message through the exchange graph, as RabbitMQ does: each exchange reached
//! (first the one published to, then those bound to it, each once) names its destinations;
//! one that names none hands the message to its alternate exchange (`alternate-exchange`), if
//! that exists. A delayed exchange holds a message with a positive `x-delay` instead of
//! routing it (see [`super::delayed`]).

use super::{stored, VHost};
use crate::error::AmqpResult;
use crate::exchange::{Dest, Exchange, ExchangeKind};
use crate::message::Message;
use crate::queue::Queue;
use std::sync::Arc;

/// Where routing took a message.
#[derive(Debug, Default)]
pub struct Route {
    /// Each queue once, ordered by name.
    pub queues: Vec<Arc<Queue>>,
    /// Delayed exchanges that hold it until its `x-delay` has passed.
    pub held_by: Vec<Arc<Exchange>>,
}

/// How a publish was routed.
#[derive(Debug, Default)]
pub struct Routed {
    pub queues: usize,
    /// Delayed exchanges holding it for later.
    pub held: usize,
    /// A queue refused it (`x-overflow` reject-publish): the confirm is a nack.
    pub rejected: bool,
    /// Set when the message was written to disk: wait on it before confirming.
    pub ticket: Option<u64>,
}

impl Routed {
    /// Nothing took the message: a mandatory publish is returned. A message held by a delayed
    /// exchange is not (it is routed later, with no publisher to return it to).
    pub fn unroutable(&self) -> bool {
        self.queues == 0 && self.held == 0
    }
}

/// The extra routing keys of a message: those of its `CC` and `BCC` headers (sender-selected
/// distribution). Empty (and unallocated) for a message without headers.
fn extra_keys(msg: &Message) -> Vec<String> {
    let headers = msg.properties.headers().as_ref();
    let mut keys = crate::field::string_array(headers, "CC");
    keys.extend(crate::field::string_array(headers, "BCC"));
    keys
}

impl VHost {
    /// Route `msg`, published to `exchange` with routing keys `keys`. Allocates nothing
    /// beyond the result unless exchange bindings or alternates are followed.
    pub(crate) fn route(&self, exchange: &Arc<Exchange>, keys: &[String], msg: &Message) -> Route {
        let mut route = Route::default();
        // Computed when a delayed exchange is reached.
        let mut delay: Option<Option<u64>> = None;
        let mut next = Some(exchange.clone());
        let mut work: Vec<Arc<Exchange>> = Vec::new();
        let mut seen_x: Vec<Arc<Exchange>> = Vec::new();
        // Routes are short: linear de-duplication beats hashing here.
        let mut seen_q: Vec<String> = Vec::new();
        let mut dests = Vec::new();
        while let Some(x) = next.take().or_else(|| work.pop()) {
            if x.name.is_empty() {
                // The default exchange (only ever the first): each key names a queue.
                for k in keys {
                    if let Some(q) = self.queue(k) {
                        if !route.queues.iter().any(|r| Arc::ptr_eq(r, &q)) {
                            route.queues.push(q);
                        }
                    }
                }
                continue;
            } else if x.kind == ExchangeKind::Delayed
                && delay
                    .get_or_insert_with(|| super::delayed::hold_for(msg))
                    .is_some()
            {
                route.held_by.push(x);
                continue;
            } else {
                x.route_or_alternate(keys, &msg.properties, &mut dests);
            }
            for d in dests.drain(..) {
                match d {
                    Dest::Queue(name) => {
                        if !seen_q.contains(&name) {
                            if let Some(q) = self.queue(&name) {
                                route.queues.push(q);
                            }
                            seen_q.push(name);
                        }
                    }
                    Dest::Exchange(name) => {
                        let seen = name == exchange.name || seen_x.iter().any(|s| s.name == name);
                        if !seen {
                            if let Some(x) = self.exchange(&name) {
                                seen_x.push(x.clone());
                                work.push(x);
                            }
                        }
                    }
                }
            }
        }
        // Keep a stable order so that one publisher's messages land in the same order.
        route.queues.sort_by(|a, b| a.name.cmp(&b.name));
        route
    }

    /// Deliver an assembled message to the queues it routes to (and to the delayed exchanges
    /// that hold it). Sender-selected distribution as RabbitMQ has it: the routing keys in the
    /// `CC` and `BCC` headers (arrays of strings) route too, and `BCC` is removed before
    /// delivery (a held message keeps it until it is released).
    pub fn publish(&self, exchange: &Arc<Exchange>, mut msg: Arc<Message>) -> AmqpResult<Routed> {
        let extra = extra_keys(&msg);
        let all;
        let keys = if extra.is_empty() {
            std::slice::from_ref(&msg.routing_key)
        } else {
            all = [vec![msg.routing_key.clone()], extra].concat();
            &all[..]
        };
        let route = self.route(exchange, keys, &msg);
        let mut routed = Routed {
            queues: route.queues.len(),
            held: route.held_by.len(),
            ..Routed::default()
        };
        if !route.held_by.is_empty() {
            if let Some(delay) = super::delayed::hold_for(&msg) {
                for x in &route.held_by {
                    routed.ticket = self.hold(x, &msg, delay)?.or(routed.ticket);
                }
            }
        }
        let extra = keys[1..].to_vec();
        let headers = msg.properties.headers().as_ref();
        if headers.is_some_and(|h| h.inner().contains_key("BCC")) {
            msg = msg.without_header("BCC");
        }
        if exchange.name.is_empty() {
            // Direct reply-to: the routing key (or a CC/BCC key) names a waiting consumer.
            routed.queues += self.publish_replies(&msg, &extra);
        }
        exchange.stats.publish_in.inc();
        if routed.queues > 0 {
            exchange.stats.publish_out.inc();
        }
        for q in &route.queues {
            let p = stored(q.publish(msg.clone()))?;
            routed.ticket = p.ticket.or(routed.ticket);
            routed.rejected |= p.rejected;
        }
        Ok(routed)
    }
}
