//! Publishing and getting messages over HTTP, as RabbitMQ's management API does it:
//! `POST /api/exchanges/{vhost}/{name}/publish` answers `{"routed": bool}` (once a persistent
//! message is on disk), `POST /api/queues/{vhost}/{name}/get` takes up to `count` messages and
//! acks, requeues or rejects them as `ackmode` says.

use super::topology::body;
use super::{Api, ApiError, Caller};
use crate::access::{Perm, Resource};
use crate::message::Message;
use crate::queue::Returned;
use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, ShortString};
use axum::extract::{Path, State};
use axum::{Extension, Json};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};

fn allowed(
    api: &Api,
    caller: &Caller,
    vhost: &str,
    perm: Perm,
    kind: Resource,
    name: &str,
) -> Result<(), ApiError> {
    api.broker
        .access
        .check(&caller.name, vhost, perm, kind, name)
        .map_err(|_| ApiError::not_authorised("Access refused."))
}

/// An integer sent as a JSON number or, by rabbitmqadmin v1, as a string.
pub fn int_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text_of(v: Option<&Value>) -> Option<ShortString> {
    match v? {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        _ => None,
    }
}

/// AMQP properties from the API's JSON names.
fn properties(p: &Map<String, Value>) -> Result<BasicProperties, ApiError> {
    let mut props = BasicProperties::default();
    for (k, v) in p {
        let bad = || ApiError::bad_request(format!("invalid property {k}: {v}"));
        props = match k.as_str() {
            "content_type" => props.with_content_type(text_of(Some(v)).ok_or_else(bad)?),
            "content_encoding" => props.with_content_encoding(text_of(Some(v)).ok_or_else(bad)?),
            "headers" => match crate::definitions::field_value(v) {
                AMQPValue::FieldTable(t) => props.with_headers(t),
                _ => return Err(bad()),
            },
            "delivery_mode" => props.with_delivery_mode(
                int_of(Some(v))
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(bad)?,
            ),
            "priority" => props.with_priority(
                int_of(Some(v))
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(bad)?,
            ),
            "correlation_id" => props.with_correlation_id(text_of(Some(v)).ok_or_else(bad)?),
            "reply_to" => props.with_reply_to(text_of(Some(v)).ok_or_else(bad)?),
            "expiration" => props.with_expiration(text_of(Some(v)).ok_or_else(bad)?),
            "message_id" => props.with_message_id(text_of(Some(v)).ok_or_else(bad)?),
            "timestamp" => props.with_timestamp(
                int_of(Some(v))
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(bad)?,
            ),
            "type" => props.with_type(text_of(Some(v)).ok_or_else(bad)?),
            "user_id" => props.with_user_id(text_of(Some(v)).ok_or_else(bad)?),
            "app_id" => props.with_app_id(text_of(Some(v)).ok_or_else(bad)?),
            "cluster_id" => props.with_cluster_id(text_of(Some(v)).ok_or_else(bad)?),
            _ => return Err(ApiError::bad_request(format!("unknown property {k}"))),
        };
    }
    Ok(props)
}

/// Properties as the API shows them; none at all is `[]`, as RabbitMQ writes it.
fn properties_json(p: &BasicProperties) -> Value {
    let mut m = Map::new();
    let s = |v: &ShortString| Value::from(v.as_str());
    if let Some(v) = p.content_type() {
        m.insert("content_type".into(), s(v));
    }
    if let Some(v) = p.content_encoding() {
        m.insert("content_encoding".into(), s(v));
    }
    if let Some(v) = p.headers() {
        m.insert("headers".into(), crate::field::table_json(v));
    }
    if let Some(v) = p.delivery_mode() {
        m.insert("delivery_mode".into(), (*v).into());
    }
    if let Some(v) = p.priority() {
        m.insert("priority".into(), (*v).into());
    }
    if let Some(v) = p.correlation_id() {
        m.insert("correlation_id".into(), s(v));
    }
    if let Some(v) = p.reply_to() {
        m.insert("reply_to".into(), s(v));
    }
    if let Some(v) = p.expiration() {
        m.insert("expiration".into(), s(v));
    }
    if let Some(v) = p.message_id() {
        m.insert("message_id".into(), s(v));
    }
    if let Some(v) = p.timestamp() {
        m.insert("timestamp".into(), (*v).into());
    }
    if let Some(v) = p.kind() {
        m.insert("type".into(), s(v));
    }
    if let Some(v) = p.user_id() {
        m.insert("user_id".into(), s(v));
    }
    if let Some(v) = p.app_id() {
        m.insert("app_id".into(), s(v));
    }
    if let Some(v) = p.cluster_id() {
        m.insert("cluster_id".into(), s(v));
    }
    if m.is_empty() {
        json!([])
    } else {
        Value::Object(m)
    }
}

pub async fn publish(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    let req: Map<String, Value> = body(&raw)?;
    let name = if name == "amq.default" {
        String::new()
    } else {
        name
    };
    allowed(
        &api,
        &caller,
        &vhost,
        Perm::Write,
        Resource::Exchange,
        &name,
    )?;
    let x = vh.exchange(&name).ok_or_else(ApiError::not_found)?;
    let routing_key = req.get("routing_key").and_then(Value::as_str).unwrap_or("");
    let payload = req.get("payload").and_then(Value::as_str).unwrap_or("");
    let body = match req
        .get("payload_encoding")
        .and_then(Value::as_str)
        .unwrap_or("string")
    {
        "string" => Bytes::copy_from_slice(payload.as_bytes()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map(Bytes::from)
            .map_err(|_| ApiError::bad_request("not_base64"))?,
        other => {
            return Err(ApiError::bad_request(format!(
                "unsupported payload_encoding {other}"
            )))
        }
    };
    let props = match req.get("properties") {
        Some(Value::Object(p)) => properties(p)?,
        Some(Value::Array(a)) if a.is_empty() => BasicProperties::default(),
        None | Some(Value::Null) => BasicProperties::default(),
        Some(_) => return Err(ApiError::bad_request("properties must be an object")),
    };
    if let Some(uid) = props.user_id() {
        if uid.as_str() != caller.name {
            return Err(ApiError::bad_request(format!(
                "user_id property set to '{uid}' but authenticated user was '{}'",
                caller.name
            )));
        }
    }
    let msg = Message::with_properties(name.clone(), routing_key.to_string(), props, body);
    let routed = vh.publish(&x, msg).map_err(super::topology::refused)?;
    if let Some(ticket) = routed.ticket {
        // Answer once the message is on disk, as a confirm would.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        vh.store().syncer().wait(ticket, tx, 0, 1);
        let _ = rx.recv().await;
    }
    Ok(Json(json!({"routed": !routed.unroutable()})))
}

pub async fn get(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    let req: Map<String, Value> = body(&raw)?;
    allowed(&api, &caller, &vhost, Perm::Read, Resource::Queue, &name)?;
    let q = vh.queue(&name).ok_or_else(ApiError::not_found)?;
    if q.exclusive_owner.is_some() {
        return Err(ApiError::bad_request(format!(
            "cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost}'"
        )));
    }
    let count = int_of(req.get("count")).unwrap_or(1).max(0) as usize;
    let truncate = int_of(req.get("truncate")).map(|t| t.max(0) as usize);
    let (ack, requeue) = match req.get("ackmode").and_then(Value::as_str) {
        Some("ack_requeue_true") => (true, true),
        Some("ack_requeue_false") => (true, false),
        Some("reject_requeue_true") => (false, true),
        Some("reject_requeue_false") => (false, false),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown ackmode {}",
                other.unwrap_or("(none)")
            )))
        }
    };
    let base64_only = match req
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("auto")
    {
        "auto" => false,
        "base64" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "unsupported encoding {other}"
            )))
        }
    };
    let mut taken = Vec::new();
    let mut out = Vec::new();
    while taken.len() < count {
        let Some((entry, remaining)) = q.get(false) else {
            break;
        };
        q.stats.get.inc();
        if entry.redelivered {
            q.stats.redeliver.inc();
        }
        let m = entry.wire().clone();
        let full = &m.body[..];
        let shown = &full[..truncate.map_or(full.len(), |t| t.min(full.len()))];
        let (payload, encoding) = match std::str::from_utf8(shown) {
            Ok(s) if !base64_only => (s.to_string(), "string"),
            _ => (
                base64::engine::general_purpose::STANDARD.encode(shown),
                "base64",
            ),
        };
        out.push(json!({
            "payload_bytes": full.len(),
            "redelivered": entry.redelivered,
            "exchange": m.exchange,
            "routing_key": m.routing_key,
            "message_count": remaining,
            "properties": properties_json(&m.properties),
            "payload": payload,
            "payload_encoding": encoding,
        }));
        taken.push(entry);
    }
    if !taken.is_empty() {
        match (ack, requeue) {
            (_, true) => q.requeue(None, taken, Returned::Failed),
            (true, false) => {
                q.stats.ack.add(taken.len() as u64);
                q.settle(None, &taken, false)
            }
            (false, false) => q.settle(None, &taken, true),
        }
    }
    Ok(Json(Value::Array(out)))
}
