//! Users, permissions and vhosts over HTTP: `/api/whoami`, `/api/users`, `/api/permissions`,
//! `PUT /api/vhosts/{name}`. Creating answers 201, replacing 204, as RabbitMQ.

use super::{require_admin, Api, ApiError, Caller};
use crate::access::{PermissionRecord, UserRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

pub async fn whoami(Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(json!({"name": caller.name, "tags": caller.tags}))
}

fn user_json(u: &UserRecord) -> Value {
    json!({
        "name": u.name,
        "password_hash": u.password_hash,
        "hashing_algorithm": u.hashing_algorithm,
        "tags": u.tags,
        "limits": u.limits,
    })
}

pub async fn list_users(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let users: Vec<Value> = api.broker.access.users().iter().map(user_json).collect();
    Ok(Json(Value::Array(users)))
}

pub async fn get_user(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let user = api
        .broker
        .access
        .user(&name)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(user_json(&user)))
}

/// Tags as rabbitmqadmin v1 sends them ("a,b") or as v2 and the API docs do (a list).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum TagsIn {
    Text(String),
    List(Vec<String>),
}

#[derive(Deserialize)]
pub struct UserIn {
    password: Option<String>,
    password_hash: Option<String>,
    hashing_algorithm: Option<String>,
    tags: Option<TagsIn>,
}

pub async fn put_user(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    let input: UserIn = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("failed to decode JSON: {e}")))?;
    let tags = match input.tags {
        None => Vec::new(),
        Some(TagsIn::List(v)) => v,
        Some(TagsIn::Text(s)) => s
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
    };
    let existed = api.broker.access.user(&name);
    let (password_hash, hashing_algorithm) = match (input.password, input.password_hash) {
        (Some(p), _) => (
            crate::access::hash_password(&p),
            crate::access::SHA256.to_string(),
        ),
        (None, Some(h)) => (
            h,
            input
                .hashing_algorithm
                .unwrap_or_else(|| crate::access::SHA256.to_string()),
        ),
        // Neither: an existing user keeps its password; a new one has none (no password login).
        (None, None) => match &existed {
            Some(u) => (u.password_hash.clone(), u.hashing_algorithm.clone()),
            None => (String::new(), crate::access::SHA256.to_string()),
        },
    };
    let record = UserRecord {
        name,
        password_hash,
        hashing_algorithm,
        tags,
        limits: existed
            .as_ref()
            .map(|u| u.limits.clone())
            .unwrap_or_default(),
    };
    api.broker.put_user(record).map_err(ApiError::internal)?;
    Ok(if existed.is_some() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

pub async fn delete_user(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    if api.broker.access.user(&name).is_none() {
        return Err(ApiError::not_found());
    }
    api.broker.delete_user(&name).map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_permissions(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<PermissionRecord>>, ApiError> {
    require_admin(&caller)?;
    Ok(Json(api.broker.access.permissions()))
}

pub async fn get_permission(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<Json<PermissionRecord>, ApiError> {
    require_admin(&caller)?;
    api.broker
        .access
        .permissions()
        .into_iter()
        .find(|p| p.vhost == vhost && p.user == user)
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

#[derive(Deserialize)]
pub struct PermissionIn {
    #[serde(default)]
    configure: String,
    #[serde(default)]
    write: String,
    #[serde(default)]
    read: String,
}

pub async fn put_permission(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, user)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    if api.broker.vhost(&vhost).is_none() || api.broker.access.user(&user).is_none() {
        return Err(ApiError::not_found());
    }
    let p: PermissionIn = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("failed to decode JSON: {e}")))?;
    let existed = api.broker.access.may_open(&user, &vhost);
    api.broker
        .set_permissions(&user, &vhost, &p.configure, &p.write, &p.read)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

pub async fn delete_permission(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    match api.broker.clear_permissions(&user, &vhost) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found()),
        Err(e) => Err(ApiError::internal(e)),
    }
}

pub async fn put_vhost(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    let existed = api.broker.vhost(&name).is_some();
    api.broker.add_vhost(&name).map_err(ApiError::internal)?;
    // The tools' `add_vhost` grants nothing, as `rabbitmqctl add_vhost`.
    if !existed && !caller.internal {
        // As RabbitMQ: the user who creates a vhost gets full permissions on it.
        api.broker
            .set_permissions(&caller.name, &name, ".*", ".*", ".*")
            .map_err(ApiError::internal)?;
    }
    Ok(if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}
