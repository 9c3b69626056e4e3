//! The JSON of queues, exchanges, bindings, connections, channels and consumers, with the
//! field names RabbitMQ's management API uses (recorded from 3.10.8). Fields that only mean
//! something inside the Erlang VM (reductions, garbage collection) are left out.

use crate::broker::{node_name, Broker};
use crate::connection::info::{ChannelInfo, ConnInfo};
use crate::exchange::{Binding, Dest, Exchange};
use crate::field::table_json;
use crate::queue::{ConsumerView, Queue};
use crate::stats::{with_rate, EXCHANGE_KEYS, QUEUE_KEYS};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// An ISO 8601 time as RabbitMQ writes `idle_since`.
pub fn iso_time(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// A queue, as `GET /api/queues` lists it.
pub fn queue(q: &Queue, node: &str) -> Value {
    let s = q.snapshot();
    let mut m = Map::new();
    m.insert("arguments".into(), table_json(&q.arguments));
    m.insert("auto_delete".into(), q.auto_delete.into());
    let consumers = s.consumers.len();
    let utilisation = if consumers > 0 { 1.0 } else { 0.0 };
    m.insert("consumer_capacity".into(), json!(utilisation));
    m.insert("consumer_utilisation".into(), json!(utilisation));
    m.insert("consumers".into(), consumers.into());
    m.insert("durable".into(), q.durable.into());
    let (policy, definition) = crate::mgmt::policy_of_queue(q);
    m.insert("effective_policy_definition".into(), definition);
    m.insert("exclusive".into(), q.exclusive_owner.is_some().into());
    let exclusive_tag = s
        .consumers
        .iter()
        .find(|c| c.exclusive)
        .map(|c| c.tag.to_string());
    m.insert("exclusive_consumer_tag".into(), json!(exclusive_tag));
    m.insert(
        "memory".into(),
        (s.ready_bytes + s.unacked_bytes + 64 * (s.ready + s.unacked) as u64).into(),
    );
    let bytes = s.ready_bytes + s.unacked_bytes;
    m.insert("message_bytes".into(), bytes.into());
    m.insert("message_bytes_ready".into(), s.ready_bytes.into());
    m.insert(
        "message_bytes_unacknowledged".into(),
        s.unacked_bytes.into(),
    );
    m.insert("message_stats".into(), q.stats.json(QUEUE_KEYS, false));
    let total = (s.ready + s.unacked) as u64;
    with_rate(&mut m, "messages", total, q.depth[0].rate());
    with_rate(&mut m, "messages_ready", s.ready as u64, q.depth[1].rate());
    with_rate(
        &mut m,
        "messages_unacknowledged",
        s.unacked as u64,
        q.depth[2].rate(),
    );
    m.insert("name".into(), q.name.clone().into());
    m.insert("node".into(), node.into());
    m.insert("operator_policy".into(), Value::Null);
    m.insert("policy".into(), json!(policy));
    m.insert(
        "single_active_consumer_tag".into(),
        json!(s.active_tag.as_deref()),
    );
    m.insert("state".into(), "running".into());
    m.insert("type".into(), q.type_name().into());
    m.insert("vhost".into(), q.vhost.clone().into());
    Value::Object(m)
}

/// An exchange. The default exchange is named "" as RabbitMQ lists it.
pub fn exchange(vhost: &str, x: &Exchange) -> Value {
    let (policy, _) = crate::mgmt::policy_of_exchange(vhost, x);
    let mut v = json!({
        "arguments": table_json(&x.arguments),
        "auto_delete": x.auto_delete,
        "durable": x.durable,
        "internal": x.internal,
        "message_stats": x.stats.json(EXCHANGE_KEYS, false),
        "name": x.name,
        "type": x.kind.as_str(),
        "user_who_performed_action": if x.name.is_empty() || x.name.starts_with("amq.") { "rmq-internal" } else { "" },
        "vhost": vhost,
    });
    if let Some(p) = policy {
        v["policy"] = p.into();
    }
    v
}

/// RabbitMQ's `properties_key`: the routing key, then `~` and a hash of the arguments when
/// there are any ("~" alone for an empty key with arguments).
pub fn properties_key(b: &Binding) -> String {
    let key = if b.routing_key.is_empty() {
        "~".to_string()
    } else {
        b.routing_key.replace('%', "%25").replace('~', "%7E")
    };
    if b.arguments.inner().is_empty() {
        if b.routing_key.is_empty() {
            return "~".into();
        }
        return key;
    }
    let text = table_json(&b.arguments).to_string();
    let mut h: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        h = (h ^ byte as u32).wrapping_mul(0x0100_0193);
    }
    let tag = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        h.to_be_bytes(),
    );
    if b.routing_key.is_empty() {
        format!("~{tag}")
    } else {
        format!("{key}~{tag}")
    }
}

pub fn binding(vhost: &str, source: &str, b: &Binding) -> Value {
    let (dest, kind) = match &b.dest {
        Dest::Queue(q) => (q.as_str(), "queue"),
        Dest::Exchange(x) => (x.as_str(), "exchange"),
    };
    json!({
        "source": source,
        "vhost": vhost,
        "destination": dest,
        "destination_type": kind,
        "routing_key": b.routing_key,
        "arguments": table_json(&b.arguments),
        "properties_key": properties_key(b),
    })
}

/// The binding every queue has from the default exchange.
pub fn default_binding(vhost: &str, queue: &str) -> Value {
    json!({
        "source": "",
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": queue,
        "arguments": {},
        "properties_key": queue,
    })
}

/// Every binding of a vhost: the default exchange's first, then by source exchange.
pub fn bindings(vh: &crate::vhost::VHost) -> Vec<Value> {
    let mut out: Vec<Value> = vh
        .queues()
        .iter()
        .map(|q| default_binding(&vh.name, &q.name))
        .collect();
    for x in vh.exchanges() {
        for b in x.bindings() {
            out.push(binding(&vh.name, &x.name, &b));
        }
    }
    out
}

fn tls_fields(m: &mut Map<String, Value>, tls: Option<&str>) {
    m.insert("ssl".into(), tls.is_some().into());
    m.insert("ssl_protocol".into(), json!(tls));
    for k in ["ssl_cipher", "ssl_hash", "ssl_key_exchange"] {
        m.insert(k.into(), Value::Null);
    }
    for k in [
        "peer_cert_issuer",
        "peer_cert_subject",
        "peer_cert_validity",
    ] {
        m.insert(k.into(), Value::Null);
    }
}

/// A connection, as `GET /api/connections` lists it.
pub fn connection(c: &ConnInfo, node: &str) -> Value {
    let mut m = Map::new();
    let o = c.opened.get();
    m.insert(
        "auth_mechanism".into(),
        o.map_or("", |o| o.auth_mechanism.as_str()).into(),
    );
    m.insert("channel_max".into(), o.map_or(0, |o| o.channel_max).into());
    m.insert("channels".into(), c.channels().len().into());
    m.insert(
        "client_properties".into(),
        o.map_or(json!({}), |o| o.client_properties.clone()),
    );
    m.insert("connected_at".into(), c.connected_at.into());
    m.insert("frame_max".into(), o.map_or(0, |o| o.frame_max).into());
    m.insert(
        "host".into(),
        c.local.ip().to_canonical().to_string().into(),
    );
    m.insert("name".into(), c.name().into());
    m.insert("node".into(), node.into());
    m.insert(
        "peer_host".into(),
        c.peer.ip().to_canonical().to_string().into(),
    );
    m.insert("peer_port".into(), c.peer.port().into());
    m.insert("port".into(), c.local.port().into());
    m.insert("protocol".into(), "AMQP 0-9-1".into());
    let io = &c.io;
    m.insert("recv_cnt".into(), io.recv_cnt.get().into());
    with_rate(&mut m, "recv_oct", io.recv_oct.get(), io.recv_oct.rate());
    m.insert("send_cnt".into(), io.send_cnt.get().into());
    with_rate(&mut m, "send_oct", io.send_oct.get(), io.send_oct.rate());
    m.insert("send_pend".into(), 0.into());
    tls_fields(&mut m, o.and_then(|o| o.tls.as_deref()));
    let state = if c.blocked.load(Ordering::Relaxed) {
        "blocked"
    } else {
        "running"
    };
    m.insert("state".into(), state.into());
    m.insert("timeout".into(), o.map_or(0, |o| o.heartbeat).into());
    m.insert("type".into(), "network".into());
    m.insert("user".into(), c.user().into());
    m.insert("user_who_performed_action".into(), c.user().into());
    m.insert("vhost".into(), c.vhost().into());
    Value::Object(m)
}

/// RabbitMQ's channel name: `<connection name> (<number>)`.
pub fn channel_name(c: &ConnInfo, number: u16) -> String {
    format!("{} ({number})", c.name())
}

/// A channel, as `GET /api/channels` lists it.
pub fn channel(c: &ConnInfo, ch: &ChannelInfo, node: &str) -> Value {
    let level = ChannelInfo::level;
    let transactional = ch.transactional.load(Ordering::Relaxed);
    let confirm = ch.confirm.load(Ordering::Relaxed);
    let idle = ch.last_active.load(Ordering::Relaxed);
    json!({
        "acks_uncommitted": level(&ch.acks_uncommitted),
        "confirm": confirm,
        "connection_details": {
            "name": c.name(),
            "peer_host": c.peer.ip().to_canonical().to_string(),
            "peer_port": c.peer.port(),
        },
        "consumer_count": level(&ch.consumers),
        "global_prefetch_count": level(&ch.global_prefetch),
        "idle_since": iso_time(idle),
        "message_stats": ch.stats.json(crate::stats::CHANNEL_KEYS, false),
        "messages_unacknowledged": level(&ch.unacked),
        "messages_uncommitted": level(&ch.uncommitted),
        "messages_unconfirmed": level(&ch.unconfirmed),
        "name": channel_name(c, ch.number),
        "node": node,
        "number": ch.number,
        "pending_raft_commands": 0,
        "prefetch_count": level(&ch.prefetch),
        "state": "running",
        "transactional": transactional,
        "user": c.user(),
        "user_who_performed_action": c.user(),
        "vhost": c.vhost(),
    })
}

/// A consumer, with its channel's details.
pub fn consumer(broker: &Broker, vhost: &str, queue: &str, c: &ConsumerView, node: &str) -> Value {
    let conn = broker.connections.get(&c.conn).map(|h| h.info.clone());
    let channel_details = match &conn {
        Some(info) => json!({
            "connection_name": info.name(),
            "name": channel_name(info, c.channel),
            "node": node,
            "number": c.channel,
            "peer_host": info.peer.ip().to_canonical().to_string(),
            "peer_port": info.peer.port(),
            "user": info.user(),
        }),
        None => json!({}),
    };
    json!({
        "arguments": table_json(&c.arguments),
        "ack_required": c.ack_required,
        "active": c.active,
        "activity_status": if c.active { "up" } else { "waiting" },
        "channel_details": channel_details,
        "consumer_tag": c.tag.as_ref(),
        "consumer_timeout": broker.config.amqp.consumer_timeout,
        "exclusive": c.exclusive,
        "prefetch_count": c.prefetch,
        "queue": {"name": queue, "vhost": vhost},
    })
}

/// A queue with its consumers, as `GET /api/queues/{vhost}/{name}` shows it.
pub fn queue_detail(broker: &Broker, q: &Arc<Queue>) -> Value {
    let node = node_name();
    let mut v = queue(q, &node);
    let consumers: Vec<Value> = q
        .snapshot()
        .consumers
        .iter()
        .map(|c| consumer(broker, &q.vhost, &q.name, c, &node))
        .collect();
    v["consumer_details"] = Value::Array(consumers);
    v["incoming"] = json!([]);
    v["deliveries"] = json!([]);
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_times_are_utc_with_milliseconds() {
        assert_eq!(super::iso_time(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(
            super::iso_time(1_795_238_742_150),
            "2026-11-21T05:25:42.150+00:00"
        );
    }
}
