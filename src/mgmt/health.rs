//! Health checks (`/api/health/checks/*`, `/api/aliveness-test/{vhost}`), with RabbitMQ's
//! bodies: 200 `{"status":"ok"}`, or 503 with `"status":"failed"` and a reason.

use super::{Api, ApiError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

type Health = (StatusCode, Json<Value>);

fn ok(extra: Value) -> Health {
    let mut body = json!({"status": "ok"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    (StatusCode::OK, Json(body))
}

fn failed(body: Value) -> Health {
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}

/// Memory and disk alarms (this node is the whole cluster).
pub async fn alarms(State(api): State<Api>) -> Health {
    let a = api.broker.alarms.current();
    if !a.any() {
        return ok(json!({}));
    }
    let node = crate::broker::node_name();
    let alarms: Vec<Value> = [(a.memory, "memory"), (a.disk, "disk")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, resource)| json!({"node": node, "resource": resource}))
        .collect();
    failed(json!({
        "status": "failed",
        "reason": "There are alarms in effect in the cluster",
        "alarms": alarms,
    }))
}

/// Quorum and mirror-sync criticality: a single node is never critical.
pub async fn single_node() -> Health {
    ok(json!({"reason": "single node cluster"}))
}

/// Every vhost is running (they always are here).
pub async fn virtual_hosts() -> Health {
    ok(json!({}))
}

pub async fn port_listener(State(api): State<Api>, Path(port): Path<String>) -> Health {
    let ports: Vec<u16> = api.broker.listeners().iter().map(|(_, p)| *p).collect();
    match port.parse::<u16>() {
        Ok(p) if ports.contains(&p) => ok(json!({"port": p})),
        _ => failed(json!({
            "status": "failed",
            "reason": "No active listener",
            "missing": port.parse::<u64>().map(Value::from).unwrap_or(Value::from(port)),
            "ports": ports,
        })),
    }
}

pub async fn protocol_listener(State(api): State<Api>, Path(protocol): Path<String>) -> Health {
    let protocols: Vec<&str> = api.broker.listeners().iter().map(|(p, _)| *p).collect();
    if protocols.contains(&protocol.as_str()) {
        ok(json!({"protocol": protocol}))
    } else {
        failed(json!({
            "status": "failed",
            "reason": "No active listener",
            "missing": protocol,
            "protocols": protocols,
        }))
    }
}

/// Declare the `aliveness-test` queue in the vhost, publish a message to it and get it back.
pub async fn aliveness(
    State(api): State<Api>,
    Path(vhost): Path<String>,
) -> Result<Health, ApiError> {
    let vh = api.broker.vhost(&vhost).ok_or_else(ApiError::not_found)?;
    let q = vh
        .declare_queue("aliveness-test", false, false, false, Default::default(), 0)
        .map_err(|e| ApiError::internal(e.text))?;
    let msg = crate::message::Message::with_properties(
        String::new(),
        "aliveness-test".into(),
        Default::default(),
        bytes::Bytes::from_static(b"test_message"),
    );
    q.publish(msg).map_err(ApiError::internal)?;
    match q.get(true) {
        Some((entry, _)) if entry.msg.body.as_ref() == b"test_message" => Ok(ok(json!({}))),
        _ => Ok(failed(
            json!({"status": "failed", "reason": "aliveness test message not received"}),
        )),
    }
}
