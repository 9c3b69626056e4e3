//! The control listener of the command-line tools (RabbitMQ's "inter-node and CLI tool
//! communication" port): the management API, authenticated with the Erlang cookie instead
//! of a user's password, plus a few routes only the tools use (`/api/cli/*`).

use super::{Api, ApiError, Caller};
use crate::broker::{node_name, Broker};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The header carrying the cookie.
pub const COOKIE_HEADER: &str = "x-warren-cookie";

/// The user the tools act as, as RabbitMQ's CLI (`rmq-cli`).
pub const CLI_USER: &str = "rmq-cli";

/// The cookie this listener expects; its presence marks a request as arriving on the
/// control listener.
#[derive(Clone)]
pub struct ControlCookie(pub Arc<str>);

/// Asks the process to stop (`rabbitmqctl stop`): whoever runs the server waits on it.
#[derive(Clone, Default)]
pub struct StopRequest(pub Arc<tokio::sync::Notify>);

/// What the protocol names of the listener table mean, in RabbitMQ's words.
pub fn purpose(protocol: &str) -> &'static str {
    match protocol {
        "amqp" => "AMQP 0-9-1 and AMQP 1.0",
        "amqp/ssl" => "AMQP 0-9-1 and AMQP 1.0 over TLS",
        "http" => "HTTP API",
        "http/prometheus" => "Prometheus exporter API over HTTP",
        "clustering" => "inter-node and CLI tool communication",
        _ => "",
    }
}

/// The cookie check that replaces basic authentication on the control listener.
pub(super) async fn authenticate(
    expected: &ControlCookie,
    mut req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(COOKIE_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !crate::cli::cookie::same(given, expected.0.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "not_authorized", "reason": "Erlang cookie mismatch"})),
        )
            .into_response();
    }
    req.extensions_mut().insert(Caller {
        name: CLI_USER.to_string(),
        tags: vec!["administrator".to_string()],
        internal: true,
    });
    next.run(req).await
}

/// The routes only the tools use, relative to `/api`.
pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/cli/status", get(status))
        .route("/cli/authenticate", post(check_user))
        .route("/cli/stop", post(stop))
        .merge(super::control_extra::routes())
}

/// Everything on the control listener.
pub fn router(broker: Arc<Broker>, cookie: ControlCookie, stop: StopRequest) -> Router {
    Router::new()
        .nest("/api", super::api_router(broker, routes()))
        .fallback(|| async { ApiError::not_found() })
        .layer(Extension(stop))
        .layer(Extension(cookie))
}

/// Serve the control listener until `stop` changes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "control listener stopped");
    }
}

/// The node's state as `status` prints it.
async fn status(State(api): State<Api>) -> Json<Value> {
    let b = &api.broker;
    let node = node_name();
    let interface = match b.config.amqp.bind {
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::]".to_string(),
        ip => ip.to_string(),
    };
    let listeners: Vec<Value> = b
        .listeners()
        .iter()
        .map(|(protocol, port)| {
            json!({"interface": interface, "node": node, "port": port, "protocol": protocol,
                   "purpose": purpose(protocol)})
        })
        .collect();
    let a = b.alarms.current();
    let alarms: Vec<&str> = [(a.memory, "memory"), (a.disk, "disk")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, r)| *r)
        .collect();
    let watermark = match b.alarms.watermark() {
        crate::alarm::Watermark::Relative(f) => json!({"relative": f}),
        crate::alarm::Watermark::Absolute(n) => json!({"absolute": n}),
    };
    let queues: usize = b.vhosts.iter().map(|v| v.value().queues().len()).sum();
    Json(json!({
        "node": node,
        "pid": std::process::id(),
        "os": std::env::consts::OS,
        "uptime": b.started.elapsed().as_secs(),
        "rabbitmq_version": super::VERSION,
        "product_name": "warren",
        "product_version": env!("CARGO_PKG_VERSION"),
        "is_under_maintenance": false,
        "plugins": crate::cli::plugins::enabled(&b.config),
        "data_directory": b.config.storage.data_dir,
        "config_files": b.config.config_files,
        "listeners": listeners,
        "alarms": alarms,
        "memory": {"total": crate::memory::rss_kib() * 1024, "strategy": "rss"},
        "vm_memory_high_watermark_setting": watermark,
        "vm_memory_high_watermark_limit": b.alarms.memory_limit(),
        "disk_free": b.alarms.disk_free().unwrap_or(0),
        "disk_free_limit": b.alarms.disk_free_limit(),
        "file_descriptors": {
            "total_used": crate::fd::used(),
            "total_limit": crate::fd::limit(),
            "sockets_used": b.connections.len(),
            "sockets_limit": crate::fd::limit(),
        },
        "totals": {
            "virtual_host_count": b.vhosts.len(),
            "connection_count": b.connections.len(),
            "queue_count": queues,
        },
    }))
}

#[derive(Deserialize)]
struct Credentials {
    user: String,
    password: String,
}

/// `authenticate_user`: whether the password is right (a 401 would mean a wrong cookie).
async fn check_user(State(api): State<Api>, Json(c): Json<Credentials>) -> Json<Value> {
    // The tool checks credentials, not where they may log in from.
    let ok = api.broker.authenticate(&c.user, Some(&c.password), true);
    Json(json!({"authenticated": ok}))
}

/// `stop`: answer, then let the process shut down.
async fn stop(Extension(stop): Extension<StopRequest>) -> StatusCode {
    stop.0.notify_one();
    StatusCode::NO_CONTENT
}
