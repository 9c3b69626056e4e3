//! Policies over HTTP: `GET /api/policies`, `GET /api/policies/{vhost}`,
//! `GET/PUT/DELETE /api/policies/{vhost}/{name}`, with RabbitMQ 3.10's status codes, bodies
//! and access rules (recorded):
//!
//! - the listings are open to every management user, showing the vhosts they may open
//!   (administrators see all); a vhost they may not open is 401;
//! - one policy (read, set, delete) needs the `policymaker` or `administrator` tag, and a
//!   policymaker needs access to the vhost: otherwise 401 "User not authorised to access
//!   object";
//! - `PUT` answers 201 created, 204 replaced, 400 with RabbitMQ's validation text (HTML-escaped
//!   as RabbitMQ sends it), 404 `vhost_not_found`; `DELETE` 204, or 404.

use super::{Api, ApiError, Caller};
use crate::policy::{html_escape, Policy};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::Value;
use std::sync::Arc;

fn may_see_vhost(api: &Api, caller: &Caller, vhost: &str) -> bool {
    caller.is_admin() || api.broker.access.may_open(&caller.name, vhost)
}

/// What reading or changing one policy of `vhost` takes.
fn may_manage(api: &Api, caller: &Caller, vhost: &str) -> Result<(), ApiError> {
    let policymaker = caller.tags.iter().any(|t| t == "policymaker");
    if caller.is_admin() || (policymaker && api.broker.access.may_open(&caller.name, vhost)) {
        Ok(())
    } else {
        Err(ApiError::not_authorised(
            "User not authorised to access object",
        ))
    }
}

/// Serialized as RabbitMQ orders the keys (a `Value` would sort them).
fn listing(policies: impl Iterator<Item = Arc<Policy>>) -> Json<Vec<Policy>> {
    Json(policies.map(|p| (*p).clone()).collect())
}

pub async fn list_all(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
) -> Json<Vec<Policy>> {
    let all = api.broker.policies();
    listing(
        all.into_iter()
            .filter(|p| may_see_vhost(&api, &caller, &p.vhost)),
    )
}

pub async fn list_vhost(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Policy>>, ApiError> {
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    if !may_see_vhost(&api, &caller, &vhost) {
        return Err(ApiError::not_authorised(
            "User not authorised to access virtual host",
        ));
    }
    let mut policies = vh.policies();
    crate::policy::sort_for_listing(&mut policies);
    Ok(listing(policies.into_iter()))
}

pub async fn get_policy(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Policy>, ApiError> {
    may_manage(&api, &caller, &vhost)?;
    api.broker
        .vhost(&vhost)
        .and_then(|vh| vh.policy(&name))
        .map(|p| Json((*p).clone()))
        .ok_or_else(ApiError::not_found)
}

pub async fn put_policy(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    may_manage(&api, &caller, &vhost)?;
    let Some(vh) = api.broker.vhost(&vhost) else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            error: "not_found",
            reason: "vhost_not_found".into(),
        });
    };
    // No body is an empty object (both mandatory keys missing), as RabbitMQ takes it.
    let body = if raw.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&raw).unwrap_or(Value::Null)
    };
    let policy = Policy::from_json(&vhost, &name, &body)
        .map_err(|e| ApiError::bad_request(html_escape(&e.reason())))?;
    let existed = vh.set_policy(policy).map_err(ApiError::internal)?;
    Ok(if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

pub async fn delete_policy(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    may_manage(&api, &caller, &vhost)?;
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    match vh.delete_policy(&name) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found()),
        Err(e) => Err(ApiError::internal(e)),
    }
}
