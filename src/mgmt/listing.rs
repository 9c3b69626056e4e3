//! The read side of the API: overview, nodes, vhosts, queues, exchanges, bindings,
//! connections, channels and consumers, with message statistics. Administrators and
//! monitoring users see everything; other management users see the vhosts they have
//! permissions in and their own connections, as in RabbitMQ.

use super::list::{respond, ListQuery};
use super::views;
use super::{Api, ApiError, Caller};
use crate::broker::{node_name, Broker};
use crate::connection::info::ConnInfo;
use crate::stats::{with_rate, MsgStats, CHANNEL_KEYS};
use crate::vhost::VHost;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use std::sync::Arc;

type Reply = Result<Json<Value>, ApiError>;

/// Sees every vhost and connection.
fn sees_all(c: &Caller) -> bool {
    c.tags
        .iter()
        .any(|t| t == "administrator" || t == "monitoring")
}

/// The vhosts `caller` may look into, sorted by name.
pub fn visible_vhosts(api: &Api, caller: &Caller) -> Vec<Arc<VHost>> {
    let all = sees_all(caller);
    let mut v: Vec<Arc<VHost>> = api
        .broker
        .vhosts
        .iter()
        .filter(|e| all || api.broker.access.may_open(&caller.name, e.key()))
        .map(|e| e.value().clone())
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The one vhost named, if it exists and `caller` may see it; else 404.
pub(super) fn one_vhost(api: &Api, caller: &Caller, name: &str) -> Result<Arc<VHost>, ApiError> {
    let vh = api.broker.vhost(name).ok_or_else(ApiError::not_found)?;
    if sees_all(caller) || api.broker.access.may_open(&caller.name, name) {
        Ok(vh)
    } else {
        Err(ApiError::not_authorised(
            "User not authorised to access virtual host",
        ))
    }
}

fn vhosts_in(api: &Api, caller: &Caller, vhost: Option<&str>) -> Result<Vec<Arc<VHost>>, ApiError> {
    match vhost {
        Some(v) => Ok(vec![one_vhost(api, caller, v)?]),
        None => Ok(visible_vhosts(api, caller)),
    }
}

/// Live connections `caller` may see (in `vhost` if given), oldest first.
fn visible_connections(api: &Api, caller: &Caller, vhost: Option<&str>) -> Vec<Arc<ConnInfo>> {
    let all = sees_all(caller);
    let mut v: Vec<Arc<ConnInfo>> = api
        .broker
        .connections
        .iter()
        .map(|c| c.info.clone())
        .filter(|c| all || c.user() == caller.name)
        .filter(|c| vhost.is_none_or(|v| c.vhost() == v))
        .collect();
    v.sort_by_key(|c| c.id);
    v
}

/// A vhost's message counters: those of its closed channels plus its live ones.
fn vhost_totals(broker: &Broker, vh: &VHost) -> MsgStats {
    let totals = MsgStats::default();
    let channels: Vec<_> = broker
        .connections
        .iter()
        .filter(|c| c.info.vhost() == vh.name)
        .flat_map(|c| c.info.channels())
        .collect();
    totals.set_sum(&vh.metrics.retired, channels.iter().map(|c| &c.stats));
    totals
}

/// Counters with the rates of the last sample (`rates_from`).
fn stats_json(counts: &MsgStats, rates_from: &[&MsgStats]) -> Value {
    let mut v = counts.json(CHANNEL_KEYS, true);
    if let Some(m) = v.as_object_mut() {
        for k in CHANNEL_KEYS {
            let rate: f64 = rates_from.iter().map(|s| s.value(k).1).sum();
            m.insert(
                format!("{k}_details"),
                json!({ "rate": (rate * 10.0).round() / 10.0 }),
            );
        }
    }
    v
}

fn vhost_json(api: &Api, vh: &VHost) -> Value {
    let totals = vhost_totals(&api.broker, vh);
    let (ready, unacked) = vh.depth();
    let m = &vh.metrics;
    let mut o = Map::new();
    o.insert("cluster_state".into(), json!({ node_name(): "running" }));
    o.insert("default_queue_type".into(), "undefined".into());
    let description = if vh.name == api.broker.config.auth.default_vhost {
        "Default virtual host"
    } else {
        ""
    };
    o.insert("description".into(), description.into());
    o.insert("message_stats".into(), stats_json(&totals, &[&m.totals]));
    with_rate(&mut o, "messages", ready + unacked, m.depth[0].rate());
    with_rate(&mut o, "messages_ready", ready, m.depth[1].rate());
    with_rate(
        &mut o,
        "messages_unacknowledged",
        unacked,
        m.depth[2].rate(),
    );
    o.insert(
        "metadata".into(),
        json!({"description": description, "tags": []}),
    );
    o.insert("name".into(), vh.name.clone().into());
    let live = |f: fn(&crate::stats::IoStats) -> u64| -> u64 {
        api.broker
            .connections
            .iter()
            .filter(|c| c.info.vhost() == vh.name)
            .map(|c| f(&c.info.io))
            .sum()
    };
    let recv = m.retired_recv_oct.get() + live(|i| i.recv_oct.get());
    let send = m.retired_send_oct.get() + live(|i| i.send_oct.get());
    with_rate(&mut o, "recv_oct", recv, m.recv_oct.rate());
    with_rate(&mut o, "send_oct", send, m.send_oct.rate());
    o.insert("tags".into(), json!([]));
    o.insert("tracing".into(), false.into());
    Value::Object(o)
}

pub async fn list_vhosts(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Reply {
    let items = visible_vhosts(&api, &caller)
        .iter()
        .map(|vh| vhost_json(&api, vh))
        .collect();
    Ok(Json(respond(items, &q)?))
}

pub async fn get_vhost(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Reply {
    let vh = one_vhost(&api, &caller, &name)?;
    Ok(Json(vhost_json(&api, &vh)))
}

const EXCHANGE_TYPES: &[(&str, &str)] = &[
    (
        "direct",
        "AMQP direct exchange, as per the AMQP specification",
    ),
    (
        "fanout",
        "AMQP fanout exchange, as per the AMQP specification",
    ),
    (
        "headers",
        "AMQP headers exchange, as per the AMQP specification",
    ),
    (
        "topic",
        "AMQP topic exchange, as per the AMQP specification",
    ),
    ("x-consistent-hash", "Consistent Hashing Exchange"),
    ("x-delayed-message", "Delayed Message Exchange"),
];

fn exchange_types() -> Value {
    EXCHANGE_TYPES
        .iter()
        .map(|(n, d)| json!({"name": n, "description": d, "enabled": true}))
        .collect()
}

fn listeners(api: &Api, node: &str) -> Value {
    let ip = api.broker.config.amqp.bind.to_string();
    api.broker
        .listeners()
        .iter()
        .map(|(protocol, port)| {
            json!({"node": node, "protocol": protocol, "ip_address": ip, "port": port,
                   "socket_opts": {}})
        })
        .collect()
}

pub async fn overview(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Reply {
    let b = &api.broker;
    let node = node_name();
    let vhosts = visible_vhosts(&api, &caller);
    let totals = MsgStats::default();
    let per_vhost: Vec<MsgStats> = vhosts.iter().map(|vh| vhost_totals(b, vh)).collect();
    totals.set_sum(&MsgStats::default(), per_vhost.iter());
    let rates: Vec<&MsgStats> = vhosts.iter().map(|vh| &vh.metrics.totals).collect();
    let (mut ready, mut unacked) = (0, 0);
    let mut depth_rates = [0.0f64; 3];
    let (mut queues, mut exchanges, mut consumers) = (0, 0, 0);
    for vh in &vhosts {
        let (r, u) = vh.depth();
        ready += r;
        unacked += u;
        for (i, g) in vh.metrics.depth.iter().enumerate() {
            depth_rates[i] += g.rate();
        }
        let qs = vh.queues();
        queues += qs.len();
        consumers += qs
            .iter()
            .map(|q| q.snapshot().consumers.len())
            .sum::<usize>();
        exchanges += vh.exchanges().len();
    }
    let conns = visible_connections(&api, &caller, None);
    let channels: usize = conns.iter().map(|c| c.channels().len()).sum();
    let mut queue_totals = Map::new();
    with_rate(
        &mut queue_totals,
        "messages",
        ready + unacked,
        depth_rates[0],
    );
    with_rate(&mut queue_totals, "messages_ready", ready, depth_rates[1]);
    with_rate(
        &mut queue_totals,
        "messages_unacknowledged",
        unacked,
        depth_rates[2],
    );
    let mut churn = Map::new();
    for (name, c) in b.churn.all() {
        with_rate(&mut churn, name, c.get(), c.rate());
    }
    let queue_churn = |f: fn(&crate::vhost::stats::VhostMetrics) -> &crate::stats::Counter| {
        let n: u64 = vhosts.iter().map(|vh| f(&vh.metrics).get()).sum();
        n
    };
    churn.insert(
        "queue_created".into(),
        queue_churn(|m| &m.queue_created).into(),
    );
    churn.insert(
        "queue_declared".into(),
        queue_churn(|m| &m.queue_declared).into(),
    );
    churn.insert(
        "queue_deleted".into(),
        queue_churn(|m| &m.queue_deleted).into(),
    );
    let mgmt_port = b
        .listeners()
        .iter()
        .find(|(p, _)| *p == "http")
        .map(|(_, port)| port.to_string())
        .unwrap_or_default();
    let v = json!({
        "management_version": crate::mgmt::VERSION,
        "rates_mode": "basic",
        "sample_retention_policies": {"global": [600, 3600, 28800, 86400], "basic": [600, 3600], "detailed": [600]},
        "exchange_types": exchange_types(),
        "product_version": crate::mgmt::VERSION,
        "product_name": "RabbitMQ",
        "rabbitmq_version": crate::mgmt::VERSION,
        "cluster_name": node,
        "erlang_version": format!("warren {}", env!("CARGO_PKG_VERSION")),
        "erlang_full_version": format!("warren {} (Rust)", env!("CARGO_PKG_VERSION")),
        "release_series_support_status": "supported",
        "disable_stats": false,
        "is_op_policy_updating_enabled": true,
        "enable_queue_totals": false,
        "message_stats": stats_json(&totals, &rates),
        "churn_rates": churn,
        "queue_totals": queue_totals,
        "object_totals": {
            "channels": channels,
            "connections": conns.len(),
            "consumers": consumers,
            "exchanges": exchanges,
            "queues": queues,
        },
        "statistics_db_event_queue": 0,
        "node": node,
        "listeners": listeners(&api, &node),
        "contexts": [{"node": node, "description": "RabbitMQ Management", "path": "/",
                      "port": mgmt_port}],
    });
    Ok(Json(match q.columns.as_deref() {
        Some(c) if !c.is_empty() => super::list::select(&v, c),
        _ => v,
    }))
}

fn node_json(api: &Api) -> Value {
    let b = &api.broker;
    let node = node_name();
    let mut m = Map::new();
    let mem_used = crate::memory::rss_kib() * 1024;
    m.insert("applications".into(), json!([]));
    m.insert("auth_mechanisms".into(), json!([
        {"name": "PLAIN", "description": "SASL PLAIN authentication mechanism", "enabled": true},
        {"name": "AMQPLAIN", "description": "QPid AMQPLAIN mechanism", "enabled": true},
        {"name": "EXTERNAL", "description": "SASL EXTERNAL authentication mechanism", "enabled": b.listeners().iter().any(|(p, _)| *p == "amqp/ssl")},
    ]));
    for (name, c) in b.churn.all() {
        if name.starts_with("queue_") {
            continue;
        }
        with_rate(&mut m, name, c.get(), c.rate());
    }
    let disk_free = b.alarms.disk_free().unwrap_or(0);
    let alarm = b.alarms.current();
    m.insert("disk_free".into(), disk_free.into());
    m.insert("disk_free_details".into(), json!({"rate": 0.0}));
    m.insert("disk_free_alarm".into(), alarm.disk.into());
    m.insert("disk_free_limit".into(), b.alarms.disk_free_limit().into());
    m.insert("exchange_types".into(), exchange_types());
    let fd_total = crate::fd::limit();
    let fd_used = crate::fd::used();
    m.insert("fd_total".into(), fd_total.into());
    with_rate(&mut m, "fd_used", fd_used, 0.0);
    m.insert("mem_alarm".into(), alarm.memory.into());
    m.insert("mem_calculation_strategy".into(), "rss".into());
    m.insert("mem_limit".into(), b.alarms.memory_limit().into());
    with_rate(&mut m, "mem_used", mem_used, 0.0);
    m.insert("name".into(), node.into());
    m.insert("os_pid".into(), std::process::id().to_string().into());
    m.insert("partitions".into(), json!([]));
    m.insert(
        "processors".into(),
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .into(),
    );
    m.insert("rates_mode".into(), "basic".into());
    m.insert("running".into(), true.into());
    m.insert("run_queue".into(), 0.into());
    m.insert("sockets_total".into(), fd_total.into());
    with_rate(&mut m, "sockets_used", b.connections.len() as u64, 0.0);
    m.insert("type".into(), "disc".into());
    m.insert(
        "uptime".into(),
        (b.started.elapsed().as_millis() as u64).into(),
    );
    m.insert("being_drained".into(), false.into());
    m.insert(
        "enabled_plugins".into(),
        json!(["rabbitmq_management", "rabbitmq_prometheus"]),
    );
    m.insert("rabbitmq_version".into(), crate::mgmt::VERSION.into());
    m.insert(
        "erlang_version".into(),
        format!("warren {}", env!("CARGO_PKG_VERSION")).into(),
    );
    m.insert(
        "db_dir".into(),
        b.config.storage.data_dir.display().to_string().into(),
    );
    Value::Object(m)
}

pub async fn list_nodes(State(api): State<Api>, Query(q): Query<ListQuery>) -> Reply {
    Ok(Json(respond(vec![node_json(&api)], &q)?))
}

pub async fn get_node(State(api): State<Api>, Path(name): Path<String>) -> Reply {
    if name != node_name() {
        return Err(ApiError::not_found());
    }
    Ok(Json(node_json(&api)))
}

pub async fn list_queues(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    vhost: Option<Path<String>>,
    Query(q): Query<ListQuery>,
) -> Reply {
    let node = node_name();
    let mut items = Vec::new();
    for vh in vhosts_in(&api, &caller, vhost.as_deref().map(String::as_str))? {
        items.extend(vh.queues().iter().map(|q| views::queue(q, &node)));
    }
    Ok(Json(respond(items, &q)?))
}

pub async fn get_queue(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
) -> Reply {
    let vh = one_vhost(&api, &caller, &vhost)?;
    let q = vh.queue(&name).ok_or_else(ApiError::not_found)?;
    Ok(Json(views::queue_detail(&api.broker, &q)))
}

pub async fn list_exchanges(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    vhost: Option<Path<String>>,
    Query(q): Query<ListQuery>,
) -> Reply {
    let mut items = Vec::new();
    for vh in vhosts_in(&api, &caller, vhost.as_deref().map(String::as_str))? {
        items.extend(vh.exchanges().iter().map(|x| views::exchange(&vh.name, x)));
    }
    Ok(Json(respond(items, &q)?))
}

pub async fn get_exchange(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path((vhost, name)): Path<(String, String)>,
) -> Reply {
    let vh = one_vhost(&api, &caller, &vhost)?;
    let name = if name == "amq.default" {
        String::new()
    } else {
        name
    };
    let x = vh.exchange(&name).ok_or_else(ApiError::not_found)?;
    let mut v = views::exchange(&vh.name, &x);
    v["incoming"] = json!([]);
    v["outgoing"] = json!([]);
    Ok(Json(v))
}

pub async fn list_bindings(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    vhost: Option<Path<String>>,
    Query(q): Query<ListQuery>,
) -> Reply {
    let mut items = Vec::new();
    for vh in vhosts_in(&api, &caller, vhost.as_deref().map(String::as_str))? {
        items.extend(views::bindings(&vh));
    }
    Ok(Json(respond(items, &q)?))
}

pub async fn list_connections(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    vhost: Option<Path<String>>,
    Query(q): Query<ListQuery>,
) -> Reply {
    if let Some(v) = vhost.as_deref() {
        one_vhost(&api, &caller, v)?;
    }
    let node = node_name();
    let items = visible_connections(&api, &caller, vhost.as_deref().map(String::as_str))
        .iter()
        .map(|c| views::connection(c, &node))
        .collect();
    Ok(Json(respond(items, &q)?))
}

/// The connection named `name` (`peer -> local`), if `caller` may see it.
pub fn find_connection(api: &Api, caller: &Caller, name: &str) -> Option<Arc<ConnInfo>> {
    visible_connections(api, caller, None)
        .into_iter()
        .find(|c| c.name() == name)
}

pub async fn get_connection(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Reply {
    let c = find_connection(&api, &caller, &name).ok_or_else(ApiError::not_found)?;
    Ok(Json(views::connection(&c, &node_name())))
}

fn channels_of(conns: &[Arc<ConnInfo>]) -> Vec<Value> {
    let node = node_name();
    conns
        .iter()
        .flat_map(|c| {
            c.channels()
                .iter()
                .map(|ch| views::channel(c, ch, &node))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub async fn list_channels(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    vhost: Option<Path<String>>,
    Query(q): Query<ListQuery>,
) -> Reply {
    if let Some(v) = vhost.as_deref() {
        one_vhost(&api, &caller, v)?;
    }
    let conns = visible_connections(&api, &caller, vhost.as_deref().map(String::as_str));
    Ok(Json(respond(channels_of(&conns), &q)?))
}

pub async fn connection_channels(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> Reply {
    let c = find_connection(&api, &caller, &name).ok_or_else(ApiError::not_found)?;
    Ok(Json(respond(channels_of(&[c]), &q)?))
}

pub async fn get_channel(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Reply {
    let node = node_name();
    for c in visible_connections(&api, &caller, None) {
        for ch in c.channels() {
            if views::channel_name(&c, ch.number) == name {
                return Ok(Json(views::channel(&c, &ch, &node)));
            }
        }
    }
    Err(ApiError::not_found())
}

pub async fn list_consumers(
    State(api): State<Api>,
    Extension(caller): Extension<Caller>,
    vhost: Option<Path<String>>,
    Query(q): Query<ListQuery>,
) -> Reply {
    let node = node_name();
    let mut items = Vec::new();
    for vh in vhosts_in(&api, &caller, vhost.as_deref().map(String::as_str))? {
        for queue in vh.queues() {
            for c in queue.snapshot().consumers {
                items.push(views::consumer(
                    &api.broker,
                    &vh.name,
                    &queue.name,
                    &c,
                    &node,
                ));
            }
        }
    }
    Ok(Json(respond(items, &q)?))
}
