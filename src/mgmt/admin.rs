//! Administrative endpoints: deleting vhosts, closing connections, definitions export and
//! import over HTTP, vhost limits, and the small informational endpoints rabbitmqadmin and
//! the RabbitMQ UI ask for (cluster name, extensions, parameters).

use super::listing::find_connection;
use super::topology::body;
use super::{require_admin, Api, ApiError, Caller};
use crate::access::VhostLimits;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

type Reply = Result<Json<Value>, ApiError>;

pub async fn delete_vhost(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    match api.broker.delete_vhost(&name) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found()),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// `DELETE /api/connections/{name}`: close it with the `X-Reason` header's text.
pub async fn close_connection(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let c = find_connection(&api, &caller, &name).ok_or_else(ApiError::not_found)?;
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Closed via management plugin");
    api.broker.close_connection(c.id, reason);
    Ok(StatusCode::NO_CONTENT)
}

fn limits_parameter(vhost: &str, l: &VhostLimits) -> Value {
    json!({"value": l, "vhost": vhost, "component": "vhost-limits", "name": "limits"})
}

/// The definitions of `only` (one vhost, whose entities then carry no `vhost` field, as
/// RabbitMQ exports them) or of the whole broker.
fn export(api: &Api, only: Option<&str>) -> Value {
    let b = &api.broker;
    let mut vhosts: Vec<String> = b.vhosts.iter().map(|e| e.key().clone()).collect();
    vhosts.sort();
    let vhosts: Vec<String> = vhosts
        .into_iter()
        .filter(|v| only.is_none_or(|o| o == v))
        .collect();
    let tag = |mut v: Value, vhost: &str| {
        if only.is_none() {
            v["vhost"] = vhost.into();
        }
        v
    };
    let (mut queues, mut exchanges, mut bindings) = (vec![], vec![], vec![]);
    for name in &vhosts {
        let Some(vh) = b.vhost(name) else { continue };
        for q in vh.queues() {
            if !q.durable || q.exclusive_owner.is_some() {
                continue;
            }
            let v = json!({"name": q.name, "durable": q.durable, "auto_delete": q.auto_delete,
                           "arguments": crate::field::table_json(&q.arguments)});
            queues.push(tag(v, name));
        }
        for x in vh.exchanges() {
            if x.name.is_empty() || x.name.starts_with("amq.") || !x.durable {
                continue;
            }
            let v = json!({"name": x.name, "type": x.kind.as_str(), "durable": x.durable,
                           "auto_delete": x.auto_delete, "internal": x.internal,
                           "arguments": crate::field::table_json(&x.arguments)});
            exchanges.push(tag(v, name));
            for bd in x.bindings() {
                let mut v = super::views::binding(name, &x.name, &bd);
                if let Some(m) = v.as_object_mut() {
                    m.remove("properties_key");
                    m.remove("vhost");
                }
                bindings.push(tag(v, name));
            }
        }
    }
    let mut parameters = Vec::new();
    for name in &vhosts {
        if let Some(l) = b.vhost_limits.get(name) {
            parameters.push(limits_parameter(name, &l));
        }
    }
    let mut out = Map::new();
    out.insert("rabbit_version".into(), super::VERSION.into());
    if only.is_none() {
        out.insert("rabbitmq_version".into(), super::VERSION.into());
        out.insert("product_name".into(), "RabbitMQ".into());
        out.insert("product_version".into(), super::VERSION.into());
        let users: Vec<Value> = b
            .access
            .users()
            .iter()
            .map(|u| serde_json::to_value(u).unwrap_or(Value::Null))
            .collect();
        out.insert("users".into(), users.into());
        let vh: Vec<Value> = vhosts.iter().map(|n| json!({"name": n})).collect();
        out.insert("vhosts".into(), vh.into());
        let perms: Vec<Value> = b
            .access
            .permissions()
            .iter()
            .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
            .collect();
        out.insert("permissions".into(), perms.into());
        out.insert("topic_permissions".into(), json!([]));
    }
    out.insert("parameters".into(), parameters.into());
    if only.is_none() {
        out.insert(
            "global_parameters".into(),
            json!([{"name": "cluster_name", "value": api.broker.cluster_name()}]),
        );
    }
    out.insert("policies".into(), super::policies_json(api, only).into());
    out.insert("queues".into(), queues.into());
    out.insert("exchanges".into(), exchanges.into());
    out.insert("bindings".into(), bindings.into());
    Value::Object(out)
}

pub async fn get_definitions(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    vhost: Option<Path<String>>,
) -> Reply {
    require_admin(&caller)?;
    if let Some(v) = vhost.as_deref() {
        api.broker.vhost(v).ok_or_else(ApiError::not_found)?;
    }
    Ok(Json(export(&api, vhost.as_deref().map(String::as_str))))
}

/// `POST /api/definitions[/{vhost}]`: import (204), or 400 with the reason it failed.
pub async fn post_definitions(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    vhost: Option<Path<String>>,
    raw: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    let mut doc: Value =
        serde_json::from_slice(&raw).map_err(|_| ApiError::bad_request("not_json"))?;
    if let Some(v) = vhost.as_deref() {
        api.broker.vhost(v).ok_or_else(ApiError::not_found)?;
        // A vhost's definitions name no vhost: everything goes into the one in the path.
        for kind in ["queues", "exchanges", "bindings", "policies", "parameters"] {
            if let Some(items) = doc.get_mut(kind).and_then(Value::as_array_mut) {
                for item in items {
                    item["vhost"] = v.as_str().into();
                }
            }
        }
        if let Some(m) = doc.as_object_mut() {
            for kind in ["users", "vhosts", "permissions"] {
                m.remove(kind);
            }
        }
    }
    let defs = crate::definitions::parse(&doc.to_string()).map_err(ApiError::bad_request)?;
    crate::definitions::import(&api.broker, defs).map_err(ApiError::bad_request)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_vhost_limits(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    vhost: Option<Path<String>>,
) -> Reply {
    let mut out: Vec<Value> = api
        .broker
        .vhost_limits
        .iter()
        .filter(|e| vhost.as_deref().is_none_or(|v| v == e.key()))
        .filter(|e| e.value() != &VhostLimits::default())
        .filter(|e| {
            super::listing::visible_vhosts(&api, &caller)
                .iter()
                .any(|v| &v.name == e.key())
        })
        .map(|e| json!({"vhost": e.key(), "value": e.value()}))
        .collect();
    out.sort_by(|a, b| a["vhost"].as_str().cmp(&b["vhost"].as_str()));
    Ok(Json(Value::Array(out)))
}

/// The value of a limit's `PUT` body, `{"value": N}` (vhost and user limits alike).
pub(super) fn limit_value(raw: &axum::body::Bytes) -> Result<i64, ApiError> {
    let req: Map<String, Value> = body(raw)?;
    super::messages::int_of(req.get("value"))
        .ok_or_else(|| ApiError::bad_request("value must be an integer"))
}

/// RabbitMQ's refusal of a limit it does not know.
pub(super) fn unrecognised(name: &str) -> ApiError {
    ApiError::bad_request(format!("Unrecognised terms {name}"))
}

/// The field of a vhost's limits that RabbitMQ's `name` stands for.
fn vhost_limit<'a>(l: &'a mut VhostLimits, name: &str) -> Option<&'a mut Option<i64>> {
    match name {
        "max-connections" => Some(&mut l.max_connections),
        "max-queues" => Some(&mut l.max_queues),
        _ => None,
    }
}

/// `PUT /api/vhost-limits/{vhost}/{name}` with `{"value": N}`: set one limit.
pub async fn put_vhost_limit(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    let value = limit_value(&raw)?;
    let mut limits = api
        .broker
        .vhost_limits
        .get(&vhost)
        .map(|l| l.clone())
        .unwrap_or_default();
    *vhost_limit(&mut limits, &name).ok_or_else(|| unrecognised(&name))? = Some(value);
    api.broker
        .set_vhost_limits(&vhost, limits)
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_vhost_limit(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    let Some(mut limits) = api.broker.vhost_limits.get(&vhost).map(|l| l.clone()) else {
        return Err(ApiError::not_found());
    };
    *vhost_limit(&mut limits, &name).ok_or_else(ApiError::not_found)? = None;
    api.broker
        .set_vhost_limits(&vhost, limits)
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn cluster_name(State(api): State<Api>) -> Json<Value> {
    Json(json!({"name": api.broker.cluster_name()}))
}

/// `PUT /api/cluster-name` with `{"name": ...}`: 204.
pub async fn put_cluster_name(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    raw: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    let req: Map<String, Value> = body(&raw)?;
    let name = req
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name must be a non-empty string"))?;
    api.broker
        .set_cluster_name(name)
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn empty_list() -> Json<Value> {
    Json(json!([]))
}

/// `GET /api/parameters[/...]`: vhost limits are the only parameters kept.
pub async fn parameters(State(api): State<Api>, Extension(caller): Extension<Caller>) -> Reply {
    let visible = super::listing::visible_vhosts(&api, &caller);
    let out: Vec<Value> = visible
        .iter()
        .filter_map(|v| {
            api.broker
                .vhost_limits
                .get(&v.name)
                .map(|l| limits_parameter(&v.name, &l))
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

pub async fn global_parameters(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
) -> Reply {
    require_admin(&caller)?;
    Ok(Json(
        json!([{"name": "cluster_name", "value": api.broker.cluster_name()}]),
    ))
}
