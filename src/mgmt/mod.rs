//! The management HTTP API, as RabbitMQ's management plugin answers it (status codes, JSON
//! field names, error bodies recorded from 3.10.8): basic authentication with the users of
//! the broker, access by tag, health checks, users, permissions and vhosts, declaring and
//! deleting queues and exchanges. The listing endpoints with message statistics (overview,
//! queues, exchanges, connections) are not here yet.

mod access;
mod health;
pub mod list;
mod listing;
pub mod prometheus;
mod topology;
pub mod views;

use crate::broker::Broker;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;
use std::sync::Arc;

/// The RabbitMQ version the API reports (as the AMQP handshake does).
pub const VERSION: &str = "4.1.0";

/// The policy applied to a queue: its name and definition.
pub fn policy_of_queue(_q: &crate::queue::Queue) -> (Option<String>, serde_json::Value) {
    (None, json!({}))
}

/// The policy applied to an exchange.
pub fn policy_of_exchange(
    _vhost: &str,
    _x: &crate::exchange::Exchange,
) -> (Option<String>, serde_json::Value) {
    (None, json!({}))
}

/// What a handler knows: the broker, and who is asking.
#[derive(Clone)]
pub struct Api {
    pub broker: Arc<Broker>,
}

/// The authenticated user of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub tags: Vec<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.tags.iter().any(|t| t == "administrator")
    }
}

/// An error answered as RabbitMQ does: a status and `{"error": ..., "reason": ...}`.
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    reason: String,
}

impl ApiError {
    pub fn not_found() -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error: "Object Not Found",
            reason: "Not Found".into(),
        }
    }

    pub fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "bad_request",
            reason: reason.into(),
        }
    }

    pub fn not_authorised(reason: &str) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "not_authorised",
            reason: reason.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "internal_server_error",
            reason: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.error, "reason": self.reason})),
        )
            .into_response()
    }
}

/// Administrator-only endpoints check this first.
pub fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::not_authorised("Not administrator user"))
    }
}

/// Basic authentication with the broker's users; a user needs one of the management tags.
async fn authenticate(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    let creds = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let Some((user, pass)) = creds.as_deref().and_then(|c| c.split_once(':')) else {
        // No credentials: 401 with an empty body and the challenge, as RabbitMQ.
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""),
        );
        return r;
    };
    let loopback = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|c| c.0.ip().to_canonical().is_loopback());
    let ok = api.broker.authenticate(user, Some(pass), loopback);
    api.broker.auth_http.record(ok);
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "not_authorized", "reason": "Login failed"})),
        )
            .into_response();
    }
    let tags = api
        .broker
        .access
        .user(user)
        .map(|u| u.tags)
        .unwrap_or_default();
    let management = ["administrator", "monitoring", "policymaker", "management"];
    if !tags.iter().any(|t| management.contains(&t.as_str())) {
        return ApiError::not_authorised("Not management user").into_response();
    }
    req.extensions_mut().insert(Caller {
        name: user.to_string(),
        tags,
    });
    let mut r = next.run(req).await;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The API's routes.
pub fn router(broker: Arc<Broker>) -> Router {
    let api = Api { broker };
    Router::new()
        .route("/api/whoami", get(access::whoami))
        .route("/api/overview", get(listing::overview))
        .route("/api/nodes", get(listing::list_nodes))
        .route("/api/nodes/{name}", get(listing::get_node))
        .route("/api/vhosts", get(listing::list_vhosts))
        .route("/api/queues", get(listing::list_queues))
        .route("/api/queues/{vhost}", get(listing::list_queues))
        .route("/api/exchanges", get(listing::list_exchanges))
        .route("/api/exchanges/{vhost}", get(listing::list_exchanges))
        .route("/api/bindings", get(listing::list_bindings))
        .route("/api/bindings/{vhost}", get(listing::list_bindings))
        .route("/api/connections", get(listing::list_connections))
        .route("/api/connections/{name}", get(listing::get_connection))
        .route(
            "/api/connections/{name}/channels",
            get(listing::connection_channels),
        )
        .route(
            "/api/vhosts/{vhost}/connections",
            get(listing::list_connections),
        )
        .route("/api/channels", get(listing::list_channels))
        .route("/api/channels/{name}", get(listing::get_channel))
        .route("/api/vhosts/{vhost}/channels", get(listing::list_channels))
        .route("/api/consumers", get(listing::list_consumers))
        .route("/api/consumers/{vhost}", get(listing::list_consumers))
        .route("/api/users", get(access::list_users))
        .route(
            "/api/users/{name}",
            get(access::get_user)
                .put(access::put_user)
                .delete(access::delete_user),
        )
        .route("/api/permissions", get(access::list_permissions))
        .route(
            "/api/permissions/{vhost}/{user}",
            get(access::get_permission)
                .put(access::put_permission)
                .delete(access::delete_permission),
        )
        .route(
            "/api/vhosts/{name}",
            get(listing::get_vhost).put(access::put_vhost),
        )
        .route(
            "/api/queues/{vhost}/{name}",
            get(listing::get_queue)
                .put(topology::put_queue)
                .delete(topology::delete_queue),
        )
        .route(
            "/api/queues/{vhost}/{name}/contents",
            axum::routing::delete(topology::purge_queue),
        )
        .route(
            "/api/exchanges/{vhost}/{name}",
            get(listing::get_exchange)
                .put(topology::put_exchange)
                .delete(topology::delete_exchange),
        )
        .route("/api/health/checks/alarms", get(health::alarms))
        .route("/api/health/checks/local-alarms", get(health::alarms))
        .route(
            "/api/health/checks/virtual-hosts",
            get(health::virtual_hosts),
        )
        .route(
            "/api/health/checks/port-listener/{port}",
            get(health::port_listener),
        )
        .route(
            "/api/health/checks/protocol-listener/{protocol}",
            get(health::protocol_listener),
        )
        .route("/api/aliveness-test/{vhost}", get(health::aliveness))
        .fallback(|| async { ApiError::not_found() })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            authenticate,
        ))
        .with_state(api)
}

/// Largest request body accepted (definitions files included).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Serve the API on `listener` until `stop` changes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    broker: Arc<Broker>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = router(broker).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "management API stopped");
    }
}
