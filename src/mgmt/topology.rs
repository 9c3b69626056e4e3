//! Queues and exchanges over HTTP: `PUT` declares (201 created, 204 already there with the
//! same properties, 400 with the AMQP reason otherwise), `DELETE` deletes (`if-empty`,
//! `if-unused`), `DELETE .../contents` purges. Booleans may come as JSON booleans or as the
//! strings rabbitmqadmin v1 sends.

use super::{Api, ApiError, Caller};
use crate::access::{Perm, Resource};
use crate::error::AmqpError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Extension;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// A JSON boolean, or "true"/"false" as rabbitmqadmin v1 sends them.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Text(#[serde(deserialize_with = "text_bool")] bool),
}

fn text_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(serde::de::Error::custom(format!("not a boolean: {other}"))),
    }
}

impl Flag {
    pub(super) fn get(f: Option<Flag>, default: bool) -> bool {
        match f {
            Some(Flag::Bool(b)) | Some(Flag::Text(b)) => b,
            None => default,
        }
    }
}

#[derive(Deserialize, Default)]
pub struct QueueIn {
    durable: Option<Flag>,
    auto_delete: Option<Flag>,
    #[serde(default)]
    arguments: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
pub struct ExchangeIn {
    #[serde(rename = "type")]
    kind: Option<String>,
    durable: Option<Flag>,
    auto_delete: Option<Flag>,
    internal: Option<Flag>,
    #[serde(default)]
    arguments: BTreeMap<String, serde_json::Value>,
}

/// The body, or the defaults when there is none (a PUT without a body declares with them).
pub(super) fn body<T: for<'de> Deserialize<'de> + Default>(raw: &[u8]) -> Result<T, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw)
        .map_err(|e| ApiError::bad_request(format!("failed to decode JSON: {e}")))
}

/// An AMQP refusal as the API reports it: 400 with the reason after the reply code's name.
pub(super) fn refused(e: AmqpError) -> ApiError {
    let reason = e.text.split_once(" - ").map_or(e.text.as_str(), |(_, r)| r);
    if e.code == crate::error::ReplyCode::NotFound {
        return ApiError::not_found();
    }
    ApiError::bad_request(reason)
}

pub(super) fn table(args: &BTreeMap<String, serde_json::Value>) -> amq_protocol::types::FieldTable {
    let mut t = amq_protocol::types::FieldTable::default();
    for (k, v) in args {
        t.insert(k.as_str().into(), crate::definitions::field_value(v));
    }
    t
}

pub(super) fn permitted(
    api: &Api,
    caller: &Caller,
    vhost: &str,
    kind: Resource,
    name: &str,
) -> Result<(), ApiError> {
    if caller.internal {
        return Ok(());
    }
    api.broker
        .access
        .check(&caller.name, vhost, Perm::Configure, kind, name)
        .map_err(|_| ApiError::not_authorised("Access refused."))
}

pub async fn put_queue(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    permitted(&api, &caller, &vhost, Resource::Queue, &name)?;
    let q: QueueIn = body(&raw)?;
    let existed = vh.queue(&name).is_some();
    vh.declare_queue(
        &name,
        Flag::get(q.durable, true),
        false,
        Flag::get(q.auto_delete, false),
        table(&q.arguments),
        0,
    )
    .map_err(refused)?;
    Ok(if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

pub async fn delete_queue(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    permitted(&api, &caller, &vhost, Resource::Queue, &name)?;
    let q = vh.queue(&name).ok_or_else(ApiError::not_found)?;
    let (messages, consumers) = q.counts();
    let flag = |k: &str| query.get(k).is_some_and(|v| v == "true");
    if flag("if-unused") && consumers > 0 {
        return Err(ApiError::bad_request(format!(
            "queue '{name}' in vhost '{vhost}' in use"
        )));
    }
    if flag("if-empty") && messages > 0 {
        return Err(ApiError::bad_request(format!(
            "queue '{name}' in vhost '{vhost}' not empty"
        )));
    }
    let (_, cancelled) = vh.delete_queue(&q);
    crate::channel::notify_cancelled(cancelled);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn purge_queue(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    if !caller.internal {
        api.broker
            .access
            .check(&caller.name, &vhost, Perm::Read, Resource::Queue, &name)
            .map_err(|_| ApiError::not_authorised("Access refused."))?;
    }
    let q = vh.queue(&name).ok_or_else(ApiError::not_found)?;
    q.purge();
    Ok(StatusCode::NO_CONTENT)
}

pub async fn put_exchange(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    permitted(&api, &caller, &vhost, Resource::Exchange, &name)?;
    let x: ExchangeIn = body(&raw)?;
    let existed = vh.exchange(&name).is_some();
    vh.declare_exchange(
        &name,
        x.kind.as_deref().unwrap_or("direct"),
        false,
        Flag::get(x.durable, true),
        Flag::get(x.auto_delete, false),
        Flag::get(x.internal, false),
        table(&x.arguments),
    )
    .map_err(refused)?;
    Ok(if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

pub async fn delete_exchange(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    permitted(&api, &caller, &vhost, Resource::Exchange, &name)?;
    if vh.exchange(&name).is_none() {
        return Err(ApiError::not_found());
    }
    let if_unused = query.get("if-unused").is_some_and(|v| v == "true");
    vh.delete_exchange(&name, if_unused).map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}
