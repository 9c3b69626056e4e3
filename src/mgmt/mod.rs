//! The management HTTP API, as RabbitMQ's management plugin answers it (status codes, JSON
//! field names, error bodies recorded from 3.10.8): basic authentication with the users of
//! the broker, access by tag, health checks, users, permissions and vhosts, declaring and
//! deleting queues and exchanges, policies, listings with message statistics, publish and get.
//! The same port serves the web page (`ui`) at `/`, outside the API's authentication.

mod access;
mod admin;
mod bindings;
pub mod control;
mod control_extra;
mod health;
pub mod list;
mod listing;
mod messages;
mod policies;
pub mod prometheus;
mod topology;
mod ui;
mod users_extra;
pub mod views;

use crate::broker::Broker;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;
use std::sync::Arc;

/// The RabbitMQ version the API reports (as the AMQP handshake does).
pub const VERSION: &str = "4.1.0";

/// The policy applied to a queue: its name and definition (`effective_policy_definition`,
/// `{}` without one).
pub fn policy_of_queue(q: &crate::queue::Queue) -> (Option<String>, serde_json::Value) {
    (
        q.policy().map(|p| p.name.clone()),
        q.effective_policy_definition(),
    )
}

/// The policy applied to an exchange.
pub fn policy_of_exchange(
    _vhost: &str,
    x: &crate::exchange::Exchange,
) -> (Option<String>, serde_json::Value) {
    (
        x.policy().map(|p| p.name.clone()),
        x.effective_policy_definition(),
    )
}

/// Policies as definitions list them (of one vhost, without their `vhost` field as
/// RabbitMQ exports a vhost's definitions, or all).
pub fn policies_json(api: &Api, vhost: Option<&str>) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for p in api.broker.policies() {
        if vhost.is_some_and(|v| v != p.vhost) {
            continue;
        }
        let mut v = p.to_json();
        if let (Some(_), Some(m)) = (vhost, v.as_object_mut()) {
            m.remove("vhost");
        }
        out.push(v);
    }
    out
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
    /// The command-line tools on the control listener: like RabbitMQ's `rabbitmqctl`, they
    /// act on any vhost and resource without permissions of their own.
    pub internal: bool,
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

    /// A 400 with RabbitMQ's own error name.
    pub fn bad_request_as(error: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error,
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
/// On the control listener, the Erlang cookie instead.
async fn authenticate(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    if let Some(cookie) = req.extensions().get::<control::ControlCookie>().cloned() {
        return control::authenticate(&cookie, req, next).await;
    }
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
        internal: false,
    });
    let mut r = next.run(req).await;
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The body limit's refusal, in JSON like every other error.
        let limit = api.broker.config.management.max_body_size;
        r = ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "payload_too_large",
            reason: format!("request body is larger than the limit of {limit} bytes"),
        }
        .into_response();
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Everything on the management port: the web page without authentication, the API under
/// `/api` with it. Other paths get the API's 404 body, without asking for credentials.
pub fn router(broker: Arc<Broker>) -> Router {
    ui::router()
        .nest("/api", api_router(broker, Router::new()))
        .fallback(|| async { ApiError::not_found() })
}

/// The API's routes, relative to `/api`. The authentication layer covers them and their
/// fallback: an unknown path under `/api` needs credentials before it gets its 404, as in
/// RabbitMQ. `extra` adds routes (those of the control listener).
fn api_router(broker: Arc<Broker>, extra: Router<Api>) -> Router {
    let max_body = broker.config.management.max_body_size;
    let api = Api { broker };
    Router::new()
        .route("/whoami", get(access::whoami))
        .route("/overview", get(listing::overview))
        .route("/nodes", get(listing::list_nodes))
        .route("/nodes/{name}", get(listing::get_node))
        .route("/vhosts", get(listing::list_vhosts))
        .route("/queues", get(listing::list_queues))
        .route("/queues/{vhost}", get(listing::list_queues))
        .route("/exchanges", get(listing::list_exchanges))
        .route("/exchanges/{vhost}", get(listing::list_exchanges))
        .route("/bindings", get(listing::list_bindings))
        .route("/bindings/{vhost}", get(listing::list_bindings))
        .route(
            "/bindings/{vhost}/e/{source}/{kind}/{dest}",
            get(bindings::list).post(bindings::create),
        )
        .route(
            "/bindings/{vhost}/e/{source}/{kind}/{dest}/{props}",
            get(bindings::get_one).delete(bindings::delete),
        )
        .route("/queues/{vhost}/{name}/bindings", get(bindings::of_queue))
        .route(
            "/exchanges/{vhost}/{name}/bindings/{side}",
            get(bindings::of_exchange),
        )
        .route(
            "/exchanges/{vhost}/{name}/publish",
            axum::routing::post(messages::publish),
        )
        .route(
            "/queues/{vhost}/{name}/get",
            axum::routing::post(messages::get),
        )
        .route("/connections", get(listing::list_connections))
        .route(
            "/connections/{name}",
            get(listing::get_connection).delete(admin::close_connection),
        )
        .route(
            "/connections/{name}/channels",
            get(listing::connection_channels),
        )
        .route(
            "/vhosts/{vhost}/connections",
            get(listing::list_connections),
        )
        .route("/channels", get(listing::list_channels))
        .route("/channels/{name}", get(listing::get_channel))
        .route("/vhosts/{vhost}/channels", get(listing::list_channels))
        .route("/consumers", get(listing::list_consumers))
        .route("/consumers/{vhost}", get(listing::list_consumers))
        .route("/users", get(access::list_users))
        .route(
            "/users/{name}",
            get(access::get_user)
                .put(access::put_user)
                .delete(access::delete_user),
        )
        .route("/permissions", get(access::list_permissions))
        .route(
            "/vhosts/{name}/permissions",
            get(users_extra::vhost_permissions),
        )
        .route(
            "/vhosts/{name}/topic-permissions",
            get(users_extra::no_topic_permissions),
        )
        .route(
            "/users/{name}/permissions",
            get(users_extra::user_permissions),
        )
        .route(
            "/users/{name}/topic-permissions",
            get(users_extra::no_topic_permissions),
        )
        .route(
            "/users/without-permissions",
            get(users_extra::users_without_permissions),
        )
        .route(
            "/users/bulk-delete",
            axum::routing::post(users_extra::bulk_delete_users),
        )
        .route("/user-limits", get(users_extra::list_user_limits))
        .route("/user-limits/{user}", get(users_extra::list_user_limits))
        .route(
            "/user-limits/{user}/{name}",
            put(users_extra::put_user_limit).delete(users_extra::delete_user_limit),
        )
        .route(
            "/connections/username/{user}",
            get(users_extra::user_connections).delete(users_extra::close_user_connections),
        )
        .route("/auth", get(users_extra::auth))
        .route(
            "/permissions/{vhost}/{user}",
            get(access::get_permission)
                .put(access::put_permission)
                .delete(access::delete_permission),
        )
        .route(
            "/vhosts/{name}",
            get(listing::get_vhost)
                .put(access::put_vhost)
                .delete(admin::delete_vhost),
        )
        .route(
            "/definitions",
            get(admin::get_definitions).post(admin::post_definitions),
        )
        .route(
            "/definitions/{vhost}",
            get(admin::get_definitions).post(admin::post_definitions),
        )
        .route("/vhost-limits", get(admin::list_vhost_limits))
        .route("/vhost-limits/{vhost}", get(admin::list_vhost_limits))
        .route(
            "/vhost-limits/{vhost}/{name}",
            put(admin::put_vhost_limit).delete(admin::delete_vhost_limit),
        )
        .route(
            "/cluster-name",
            get(admin::cluster_name).put(admin::put_cluster_name),
        )
        .route("/extensions", get(admin::empty_list))
        .route("/topic-permissions", get(admin::empty_list))
        .route("/parameters", get(admin::parameters))
        .route("/global-parameters", get(admin::global_parameters))
        .route(
            "/queues/{vhost}/{name}",
            get(listing::get_queue)
                .put(topology::put_queue)
                .delete(topology::delete_queue),
        )
        .route(
            "/queues/{vhost}/{name}/contents",
            axum::routing::delete(topology::purge_queue),
        )
        .route(
            "/exchanges/{vhost}/{name}",
            get(listing::get_exchange)
                .put(topology::put_exchange)
                .delete(topology::delete_exchange),
        )
        // Policies.
        .route("/policies", get(policies::list_all))
        .route("/policies/{vhost}", get(policies::list_vhost))
        .route(
            "/policies/{vhost}/{name}",
            get(policies::get_policy)
                .put(policies::put_policy)
                .delete(policies::delete_policy),
        )
        .route("/health/checks/alarms", get(health::alarms))
        .route("/health/checks/local-alarms", get(health::alarms))
        .route("/health/checks/virtual-hosts", get(health::virtual_hosts))
        .route(
            "/health/checks/port-listener/{port}",
            get(health::port_listener),
        )
        .route(
            "/health/checks/protocol-listener/{protocol}",
            get(health::protocol_listener),
        )
        .route("/aliveness-test/{vhost}", get(health::aliveness))
        .route(
            "/health/checks/node-is-quorum-critical",
            get(health::single_node),
        )
        .route(
            "/health/checks/node-is-mirror-sync-critical",
            get(health::single_node),
        )
        .merge(extra)
        .fallback(|| async { ApiError::not_found() })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            authenticate,
        ))
        .with_state(api)
}

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
