//! The Prometheus endpoint, as RabbitMQ's `rabbitmq_prometheus` plugin serves it on :15692
//! (names, types, help texts and labels recorded from 3.10.8; `rabbitmq_endpoint` on
//! `rabbitmq_identity_info` as 4.1 adds it), so that RabbitMQ's Grafana dashboards work
//! unchanged. No authentication, as RabbitMQ.
//!
//! - `GET /metrics`: aggregated, one sample per metric (sums over queues, channels and
//!   connections), plus the global counters and 4.1's message size histogram.
//! - `GET /metrics/per-object`: the same metrics, one sample per queue, channel, connection.
//! - `GET /metrics/detailed?family=F&vhost=V`: the families asked for, per object, named
//!   `rabbitmq_detailed_*` (`rabbitmq_cluster_*` for vhost and exchange enumerations); `vhost`
//!   narrows the queue families.
//!
//! Left out, because warren has no counterpart: Erlang VM internals (`erlang_vm_*`,
//! `erlang_mnesia_*`, `rabbitmq_erlang_processes_*`, `..._gc_*`, `..._scheduler_*`,
//! `..._net_ticktime_seconds`, reductions, `telemetry_scrape_*`), the file handle cache and
//! message store counters (`rabbitmq_io_*`, `rabbitmq_schema_db_*`, `rabbitmq_msg_store_*`,
//! `rabbitmq_queue_index_*`), Raft (`rabbitmq_raft_*`), authentication attempts by source,
//! and the queue metrics that would need a walk over every message (`..._ram`,
//! `..._persistent`, `..._paged_out`, `rabbitmq_queue_head_message_timestamp`,
//! `rabbitmq_queue_disk_*`).

mod cluster;
mod connections;
mod core;
mod global;
mod objects;
pub mod text;

use crate::broker::Broker;
use crate::connection::info::ConnInfo;
use crate::vhost::VHost;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// What one scrape looks at: the live connections and the vhosts, read once.
pub(crate) struct Scrape<'a> {
    pub broker: &'a Broker,
    /// Open connections, oldest first.
    pub conns: Vec<Arc<ConnInfo>>,
    /// Vhosts by name.
    pub vhosts: Vec<Arc<VHost>>,
    /// One sample per object (per-object and detailed) rather than one per metric.
    pub per_object: bool,
    /// `vhost=` of a detailed scrape: only these vhosts' queues.
    pub vhost_filter: Option<Vec<String>>,
    /// The queues shown and their levels, read once (under each queue's lock) per scrape.
    pub queue_rows: std::cell::OnceCell<Vec<(Arc<crate::queue::Queue>, crate::queue::Levels)>>,
}

impl<'a> Scrape<'a> {
    fn new(broker: &'a Broker, per_object: bool) -> Scrape<'a> {
        let mut conns: Vec<_> = broker.connections.iter().map(|c| c.info.clone()).collect();
        conns.sort_by_key(|c| c.id);
        let mut vhosts: Vec<_> = broker.vhosts.iter().map(|v| v.value().clone()).collect();
        vhosts.sort_by(|a, b| a.name.cmp(&b.name));
        Scrape {
            broker,
            conns,
            vhosts,
            per_object,
            vhost_filter: None,
            queue_rows: Default::default(),
        }
    }

    /// The counts every vhost keeps of closed channels and connections and deleted queues,
    /// those of deleted vhosts included.
    fn kept(&self) -> impl Iterator<Item = &crate::vhost::stats::VhostMetrics> {
        self.vhosts
            .iter()
            .map(|v| &v.metrics)
            .chain(std::iter::once(&self.broker.deleted_vhosts))
    }

    /// Whether the queue families include `vhost`.
    fn shows_queues_of(&self, vhost: &str) -> bool {
        self.vhost_filter
            .as_ref()
            .is_none_or(|v| v.iter().any(|f| f == vhost))
    }
}

/// Which endpoint, and so which families and which names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Aggregated,
    PerObject,
    Detailed,
}

impl Endpoint {
    /// `rabbitmq_endpoint` of `rabbitmq_identity_info`.
    fn label(self) -> &'static str {
        match self {
            Endpoint::Aggregated => "aggregated",
            Endpoint::PerObject => "per-object",
            Endpoint::Detailed => "detailed",
        }
    }
}

/// The families of RabbitMQ's `/metrics/detailed` that warren has, in the order RabbitMQ
/// writes them. The aggregated and per-object endpoints write all of them but the
/// enumerations (`vhost_status`, `exchange_bindings`, `exchange_names`).
pub const FAMILIES: &[&str] = &[
    "connection_churn_metrics",
    "node_coarse_metrics",
    "node_metrics",
    "auth_attempt_metrics",
    "queue_coarse_metrics",
    "queue_consumer_count",
    "queue_metrics",
    "channel_metrics",
    "channel_exchange_metrics",
    "channel_queue_metrics",
    "connection_coarse_metrics",
    "connection_metrics",
    "channel_queue_exchange_metrics",
    "vhost_status",
    "exchange_bindings",
    "exchange_names",
];

/// The families of detailed scrapes only, named `rabbitmq_cluster_*`.
const CLUSTER: &str = "rabbitmq_cluster_";
const CLUSTER_FAMILIES: &[&str] = &["vhost_status", "exchange_bindings", "exchange_names"];

/// The text of one scrape of `endpoint`; `families` and `vhosts` are a detailed scrape's.
fn render(
    broker: &Broker,
    endpoint: Endpoint,
    families: &[String],
    vhosts: Option<Vec<String>>,
) -> String {
    let mut s = Scrape::new(broker, endpoint != Endpoint::Aggregated);
    let prefix = match endpoint {
        Endpoint::Detailed => "rabbitmq_detailed_",
        _ => "rabbitmq_",
    };
    let mut w = text::Writer::new(prefix);
    let wanted: Vec<&str> = match endpoint {
        Endpoint::Detailed => {
            s.vhost_filter = vhosts;
            FAMILIES
                .iter()
                .copied()
                .filter(|f| families.iter().any(|g| g == f))
                // queue_metrics has everything queue_consumer_count has.
                .filter(|f| {
                    *f != "queue_consumer_count" || !families.iter().any(|g| g == "queue_metrics")
                })
                .collect()
        }
        _ => FAMILIES
            .iter()
            .copied()
            .filter(|f| *f != "queue_consumer_count" && !CLUSTER_FAMILIES.contains(f))
            .collect(),
    };
    if endpoint == Endpoint::Aggregated {
        core::process(&s, &mut w);
        core::alarms(&s, &mut w);
    }
    for family in wanted {
        match family {
            "connection_churn_metrics" => core::churn(&s, &mut w),
            "node_coarse_metrics" => core::node_coarse(&s, &mut w),
            "node_metrics" => core::node(&s, &mut w),
            "auth_attempt_metrics" => core::auth(&s, &mut w),
            "queue_coarse_metrics" => objects::queue_coarse(&s, &mut w),
            "queue_consumer_count" => objects::queue_consumers(&s, &mut w),
            "queue_metrics" => objects::queue_metrics(&s, &mut w),
            "channel_metrics" => objects::channel_levels(&s, &mut w),
            "channel_exchange_metrics" => objects::channel_exchange(&s, &mut w),
            "channel_queue_metrics" => objects::channel_queue(&s, &mut w),
            "connection_coarse_metrics" => connections::connection_coarse(&s, &mut w),
            "connection_metrics" => connections::connection(&s, &mut w),
            "channel_queue_exchange_metrics" => objects::queue_published(&s, &mut w),
            "vhost_status" => w.with_prefix(CLUSTER, |w| cluster::vhost_status(&s, w)),
            "exchange_bindings" => w.with_prefix(CLUSTER, |w| cluster::exchange_bindings(&s, w)),
            "exchange_names" => w.with_prefix(CLUSTER, |w| cluster::exchange_names(&s, w)),
            _ => {}
        }
    }
    if endpoint != Endpoint::Detailed {
        core::totals(&s, &mut w);
    }
    w.with_prefix("rabbitmq_", |w| core::identity(&s, w, endpoint.label()));
    if endpoint != Endpoint::Detailed {
        global::counters(&s, &mut w);
    }
    if endpoint == Endpoint::Aggregated {
        global::message_sizes(&s, &mut w);
    }
    w.finish()
}

/// The metrics as RabbitMQ sends them: `text/plain; version=0.0.4`, not compressed.
async fn respond(broker: Arc<Broker>, endpoint: Endpoint, query: Option<String>) -> Response {
    let (families, vhosts) = parse_query(query.as_deref().unwrap_or(""));
    let vhosts = (!vhosts.is_empty()).then_some(vhosts);
    // A scrape reads every queue and channel: keep it off the runtime's worker threads.
    let body = tokio::task::spawn_blocking(move || render(&broker, endpoint, &families, vhosts))
        .await
        .unwrap_or_default();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; version=0.0.4"),
            (header::CONTENT_ENCODING, "identity"),
        ],
        body,
    )
        .into_response()
}

/// `family=` and `vhost=` values of a query string (each may repeat).
fn parse_query(q: &str) -> (Vec<String>, Vec<String>) {
    let (mut families, mut vhosts) = (Vec::new(), Vec::new());
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(k).as_str() {
            "family" => families.push(percent_decode(v)),
            "vhost" => vhosts.push(percent_decode(v)),
            _ => {}
        }
    }
    (families, vhosts)
}

/// Form decoding: `+` is a space, `%XX` a byte; malformed escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The endpoint's routes.
pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(b): State<Arc<Broker>>, RawQuery(q): RawQuery| {
                respond(b, Endpoint::Aggregated, q)
            }),
        )
        .route(
            "/metrics/per-object",
            get(|State(b): State<Arc<Broker>>, RawQuery(q): RawQuery| {
                respond(b, Endpoint::PerObject, q)
            }),
        )
        .route(
            "/metrics/detailed",
            get(|State(b): State<Arc<Broker>>, RawQuery(q): RawQuery| {
                respond(b, Endpoint::Detailed, q)
            }),
        )
        // RabbitMQ's answers for a registry it does not have, and for any other path.
        .route(
            "/metrics/{registry}",
            get(|Path(_): Path<String>| async {
                (
                    StatusCode::NOT_FOUND,
                    [(header::CONTENT_TYPE, "text/plain")],
                    "Unknown Registry",
                )
            }),
        )
        .fallback(|| async { super::ApiError::not_found() })
        .with_state(broker)
}

/// Serve the metrics on `listener` until `stop` changes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    broker: Arc<Broker>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = axum::serve(listener, router(broker))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "Prometheus endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_repeat_and_decode() {
        let (f, v) = parse_query("family=queue_coarse_metrics&vhost=%2F&family=a+b&vhost=x%zz&z");
        assert_eq!(f, ["queue_coarse_metrics", "a b"]);
        assert_eq!(v, ["/", "x%zz"]);
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("a%41"), "aA");
    }
}
