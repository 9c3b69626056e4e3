//! A published message. One `Arc<Message>` is shared by every queue it is routed to; the body
//! is a `Bytes` that is never copied in memory after it is assembled.

use amq_protocol::protocol::basic::AMQPProperties;
use bytes::Bytes;
use std::sync::Arc;

/// What a publisher sent, as it will be delivered.
#[derive(Debug)]
pub struct Message {
    /// The exchange it was published to ("" for the default exchange).
    pub exchange: String,
    pub routing_key: String,
    /// Decoded properties, for routing (headers), persistence (delivery_mode) and checks.
    pub properties: AMQPProperties,
    /// The property bytes exactly as published, which is what consumers receive.
    pub raw_properties: Bytes,
    pub body: Bytes,
}

impl Message {
    pub fn new(
        exchange: String,
        routing_key: String,
        properties: AMQPProperties,
        raw_properties: Bytes,
        body: Bytes,
    ) -> Arc<Message> {
        Arc::new(Message {
            exchange,
            routing_key,
            properties,
            raw_properties,
            body,
        })
    }

    /// A message read back from the store: the properties are decoded from their raw bytes.
    pub fn from_stored(
        exchange: String,
        routing_key: String,
        raw_properties: Bytes,
        body: Bytes,
    ) -> Option<Arc<Message>> {
        match amq_protocol::protocol::basic::parse_properties(&raw_properties[..]) {
            Ok((&[], properties)) => Some(Message::new(
                exchange,
                routing_key,
                properties,
                raw_properties,
                body,
            )),
            _ => None,
        }
    }

    /// The same message without the header `name` (its properties re-encoded).
    pub fn without_header(&self, name: &str) -> Arc<Message> {
        let mut properties = self.properties.clone();
        if let Some(h) = properties.headers() {
            let mut kept = amq_protocol::types::FieldTable::default();
            for (k, v) in h.inner().iter().filter(|(k, _)| k.as_str() != name) {
                kept.insert(k.clone(), v.clone());
            }
            properties = properties.with_headers(kept);
        }
        Message::with_properties(
            self.exchange.clone(),
            self.routing_key.clone(),
            properties,
            self.body.clone(),
        )
    }

    /// A message made by the broker (properties encoded here).
    pub fn with_properties(
        exchange: String,
        routing_key: String,
        properties: AMQPProperties,
        body: Bytes,
    ) -> Arc<Message> {
        let raw = amq_protocol::protocol::basic::gen_properties(&properties)(Vec::new().into())
            .map(|c| Bytes::from(c.write))
            .unwrap_or_default();
        Message::new(exchange, routing_key, properties, raw, body)
    }

    /// delivery_mode 2.
    pub fn is_persistent(&self) -> bool {
        self.properties.delivery_mode() == &Some(2)
    }

    /// The `expiration` property in milliseconds (validated when published).
    pub fn ttl_ms(&self) -> Option<u64> {
        self.properties
            .expiration()
            .as_ref()
            .and_then(|e| e.as_str().parse().ok())
    }

    /// Bytes this message holds in memory (for queue statistics).
    pub fn size(&self) -> usize {
        self.body.len()
    }

    /// What a queued message costs in memory beyond its body, properties and names: the
    /// struct, its decoded properties and allocation headers (an estimate, for the budget).
    pub const OVERHEAD: usize = std::mem::size_of::<Message>() + 64;

    /// What this message is charged against the memory budget.
    pub fn footprint(&self) -> usize {
        Self::OVERHEAD
            + self.body.len()
            + self.raw_properties.len()
            + self.exchange.len()
            + self.routing_key.len()
    }
}
