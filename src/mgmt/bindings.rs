//! Bindings over HTTP: `/api/bindings/{vhost}/e/{source}/q|e/{destination}` lists (GET) and
//! creates (POST, 201 with a `Location` naming the new binding by its properties key), and
//! `.../{props}` shows or deletes one, as RabbitMQ's management API does. Creating needs write
//! permission on the destination and read on the source, as queue.bind does.

use super::listing::one_vhost;
use super::topology::{body, refused, table};
use super::views::{binding, default_binding, properties_key};
use super::{Api, ApiError, Caller};
use crate::access::{Perm, Resource};
use crate::exchange::{Binding, Dest};
use crate::vhost::VHost;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize, Default)]
struct BindingIn {
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    arguments: BTreeMap<String, Value>,
}

fn dest(kind: &str, name: &str) -> Result<Dest, ApiError> {
    match kind {
        "q" => Ok(Dest::Queue(name.to_string())),
        "e" => Ok(Dest::Exchange(name.to_string())),
        _ => Err(ApiError::not_found()),
    }
}

fn source_name(name: &str) -> &str {
    if name == "amq.default" {
        ""
    } else {
        name
    }
}

/// The bindings from `source` to `dest`, the default exchange's implicit one included.
fn between(vh: &VHost, source: &str, dest: &Dest) -> Result<Vec<(Value, String)>, ApiError> {
    let exists = match dest {
        Dest::Queue(q) => vh.queue(q).is_some(),
        Dest::Exchange(x) => vh.exchange(x).is_some(),
    };
    if !exists {
        return Err(ApiError::not_found());
    }
    if source.is_empty() {
        return Ok(match dest {
            Dest::Queue(q) => vec![(default_binding(&vh.name, q), q.clone())],
            Dest::Exchange(_) => vec![],
        });
    }
    let x = vh.exchange(source).ok_or_else(ApiError::not_found)?;
    Ok(x.bindings()
        .iter()
        .filter(|b| &b.dest == dest)
        .map(|b| (binding(&vh.name, source, b), properties_key(b)))
        .collect())
}

pub async fn list(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, source, kind, name)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let vh = one_vhost(&api, &caller, &vhost)?;
    let d = dest(&kind, &name)?;
    let items = between(&vh, source_name(&source), &d)?;
    Ok(Json(Value::Array(
        items.into_iter().map(|(v, _)| v).collect(),
    )))
}

pub async fn get_one(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, source, kind, name, props)): Path<(String, String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let vh = one_vhost(&api, &caller, &vhost)?;
    let d = dest(&kind, &name)?;
    between(&vh, source_name(&source), &d)?
        .into_iter()
        .find(|(_, key)| *key == props)
        .map(|(v, _)| Json(v))
        .ok_or_else(ApiError::not_found)
}

fn check_bind(
    api: &Api,
    caller: &Caller,
    vhost: &str,
    source: &str,
    d: &Dest,
) -> Result<(), ApiError> {
    let (kind, name) = match d {
        Dest::Queue(q) => (Resource::Queue, q.as_str()),
        Dest::Exchange(x) => (Resource::Exchange, x.as_str()),
    };
    let access = &api.broker.access;
    access
        .check(&caller.name, vhost, Perm::Write, kind, name)
        .and_then(|_| access.check(&caller.name, vhost, Perm::Read, Resource::Exchange, source))
        .map_err(|_| ApiError::not_authorised("Access refused."))
}

/// A path segment percent-encoded as RabbitMQ writes it in `Location`.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn create(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, source, kind, name)): Path<(String, String, String, String)>,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let vh: Arc<VHost> = one_vhost(&api, &caller, &vhost)?;
    let d = dest(&kind, &name)?;
    let source = source_name(&source).to_string();
    let b: BindingIn = body(&raw)?;
    let exists = match &d {
        Dest::Queue(q) => vh.queue(q).is_some(),
        Dest::Exchange(x) => vh.exchange(x).is_some(),
    };
    if !exists || vh.exchange(&source).is_none() {
        return Err(ApiError::not_found());
    }
    check_bind(&api, &caller, &vhost, &source, &d)?;
    let args = table(&b.arguments);
    vh.bind(&source, d.clone(), &b.routing_key, args.clone())
        .map_err(refused)?;
    let key = properties_key(&Binding {
        dest: d,
        routing_key: b.routing_key,
        arguments: args,
    });
    let location = format!(
        "/api/bindings/{}/e/{}/{kind}/{}/{}",
        encode(&vhost),
        encode(&source),
        encode(&name),
        encode(&key)
    );
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

pub async fn delete(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, source, kind, name, props)): Path<(String, String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let vh = one_vhost(&api, &caller, &vhost)?;
    let d = dest(&kind, &name)?;
    let source = source_name(&source).to_string();
    if source.is_empty() {
        return Err(ApiError::bad_request(
            "operation not permitted on the default exchange",
        ));
    }
    let x = vh.exchange(&source).ok_or_else(ApiError::not_found)?;
    let Some(b) = x
        .bindings()
        .into_iter()
        .find(|b| b.dest == d && properties_key(b) == props)
    else {
        return Err(ApiError::not_found());
    };
    check_bind(&api, &caller, &vhost, &source, &d)?;
    vh.unbind(&source, b.dest, &b.routing_key, b.arguments)
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/queues/{vhost}/{name}/bindings`: every binding to the queue.
pub async fn of_queue(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let vh = one_vhost(&api, &caller, &vhost)?;
    vh.queue(&name).ok_or_else(ApiError::not_found)?;
    let d = Dest::Queue(name.clone());
    let mut out = vec![default_binding(&vh.name, &name)];
    for x in vh.exchanges() {
        out.extend(
            x.bindings()
                .iter()
                .filter(|b| b.dest == d)
                .map(|b| binding(&vh.name, &x.name, b)),
        );
    }
    Ok(Json(Value::Array(out)))
}

/// `GET /api/exchanges/{vhost}/{name}/bindings/source|destination`.
pub async fn of_exchange(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name, side)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let vh = one_vhost(&api, &caller, &vhost)?;
    let name = source_name(&name).to_string();
    let x = vh.exchange(&name).ok_or_else(ApiError::not_found)?;
    let out: Vec<Value> = match side.as_str() {
        "source" if name.is_empty() => vh
            .queues()
            .iter()
            .map(|q| default_binding(&vh.name, &q.name))
            .collect(),
        "source" => x
            .bindings()
            .iter()
            .map(|b| binding(&vh.name, &name, b))
            .collect(),
        "destination" => {
            let d = Dest::Exchange(name.clone());
            let mut out = Vec::new();
            for src in vh.exchanges() {
                out.extend(
                    src.bindings()
                        .iter()
                        .filter(|b| b.dest == d)
                        .map(|b| binding(&vh.name, &src.name, b)),
                );
            }
            out
        }
        _ => return Err(ApiError::not_found()),
    };
    Ok(Json(Value::Array(out)))
}
