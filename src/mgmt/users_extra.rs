//! The rest of the user and permission endpoints: permissions per vhost and per user, users
//! without permissions, bulk delete, user limits, closing a user's connections, and the
//! topic-permission and auth endpoints (warren has no topic permissions and no OAuth: they
//! answer as a RabbitMQ with none configured).

use super::topology::body;
use super::{require_admin, Api, ApiError, Caller};
use crate::access::UserLimits;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

type Reply = Result<Json<Value>, ApiError>;

fn permissions_where(api: &Api, keep: impl Fn(&crate::access::PermissionRecord) -> bool) -> Value {
    let list: Vec<Value> = api
        .broker
        .access
        .permissions()
        .iter()
        .filter(|p| keep(p))
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .collect();
    Value::Array(list)
}

pub async fn vhost_permissions(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(vhost): Path<String>,
) -> Reply {
    require_admin(&caller)?;
    api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    Ok(Json(permissions_where(&api, |p| p.vhost == vhost)))
}

pub async fn user_permissions(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
) -> Reply {
    require_admin(&caller)?;
    api.broker
        .access
        .user(&user)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(permissions_where(&api, |p| p.user == user)))
}

/// Topic permissions of a vhost or user: none (warren does not have them).
pub async fn no_topic_permissions(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(_name): Path<String>,
) -> Reply {
    require_admin(&caller)?;
    let _ = api;
    Ok(Json(json!([])))
}

pub async fn users_without_permissions(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
) -> Reply {
    require_admin(&caller)?;
    let perms = api.broker.access.permissions();
    let users: Vec<Value> = api
        .broker
        .access
        .users()
        .iter()
        .filter(|u| !perms.iter().any(|p| p.user == u.name))
        .map(|u| {
            json!({"name": u.name, "password_hash": u.password_hash,
                   "hashing_algorithm": u.hashing_algorithm, "tags": u.tags, "limits": u.limits})
        })
        .collect();
    Ok(Json(Value::Array(users)))
}

/// `POST /api/users/bulk-delete` with `{"users": [...]}`: 204, unknown names ignored.
pub async fn bulk_delete_users(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    raw: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    let req: Map<String, Value> = body(&raw)?;
    let names = req
        .get("users")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("users must be a list"))?;
    for n in names.iter().filter_map(Value::as_str) {
        api.broker.delete_user(n).map_err(ApiError::internal)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn limits_json(user: &str, l: &UserLimits) -> Value {
    json!({"user": user, "value": l})
}

pub async fn list_user_limits(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    user: Option<Path<String>>,
) -> Reply {
    require_admin(&caller)?;
    let out: Vec<Value> = api
        .broker
        .access
        .users()
        .iter()
        .filter(|u| user.as_deref().is_none_or(|n| n == &u.name))
        .filter(|u| u.limits != UserLimits::default())
        .map(|u| limits_json(&u.name, &u.limits))
        .collect();
    Ok(Json(Value::Array(out)))
}

/// The field of a user's limits that RabbitMQ's `name` stands for.
fn user_limit<'a>(l: &'a mut UserLimits, name: &str) -> Option<&'a mut Option<i64>> {
    match name {
        "max-connections" => Some(&mut l.max_connections),
        "max-channels" => Some(&mut l.max_channels),
        _ => None,
    }
}

/// `PUT /api/user-limits/{user}/{name}` with `{"value": N}`.
pub async fn put_user_limit(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((user, name)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    let value = super::admin::limit_value(&raw)?;
    let mut limits = api
        .broker
        .access
        .user(&user)
        .ok_or_else(ApiError::not_found)?
        .limits;
    *user_limit(&mut limits, &name).ok_or_else(|| super::admin::unrecognised(&name))? = Some(value);
    api.broker
        .set_user_limits(&user, limits)
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_user_limit(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((user, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    let mut limits = api
        .broker
        .access
        .user(&user)
        .ok_or_else(ApiError::not_found)?
        .limits;
    *user_limit(&mut limits, &name).ok_or_else(ApiError::not_found)? = None;
    api.broker
        .set_user_limits(&user, limits)
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/connections/username/{user}`: close every connection of that user.
pub async fn close_user_connections(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    if !caller.is_admin() && caller.name != user {
        return Err(ApiError::not_authorised("Not administrator user"));
    }
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Closed via management plugin");
    let ids: Vec<u64> = api
        .broker
        .connections
        .iter()
        .filter(|c| c.user == user)
        .map(|c| *c.key())
        .collect();
    for id in ids {
        api.broker.close_connection(id, reason);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// GET of a user's connections, as `/api/connections/username/{user}` lists them.
pub async fn user_connections(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
) -> Reply {
    if !caller.is_admin() && caller.name != user {
        return Err(ApiError::not_authorised("Not administrator user"));
    }
    let node = crate::broker::node_name();
    let mut conns: Vec<_> = api
        .broker
        .connections
        .iter()
        .filter(|c| c.user == user)
        .map(|c| c.info.clone())
        .collect();
    conns.sort_by_key(|c| c.id);
    Ok(Json(Value::Array(
        conns
            .iter()
            .map(|c| super::views::connection(c, &node))
            .collect(),
    )))
}

pub async fn auth() -> Json<Value> {
    Json(json!({"enable_uaa": false, "uaa_client_id": "", "uaa_location": ""}))
}
