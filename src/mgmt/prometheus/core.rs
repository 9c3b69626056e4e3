//! The node's families: process and resource levels, alarms, churn, logins, object totals,
//! and the build and identity info every endpoint ends with.

use super::text::{def, Def, Kind, Writer};
use super::Scrape;
use crate::broker::node_name;
use crate::stats::Counter;
use crate::vhost::stats::VhostMetrics;

const START_TIME: Def = def(
    "process_start_time_seconds",
    Kind::Gauge,
    "Start time of the process since unix epoch in seconds.",
);

/// `process_start_time_seconds`, which RabbitMQ writes without its prefix.
pub(super) fn process(s: &Scrape, w: &mut Writer) {
    let up_ms = s.broker.started.elapsed().as_millis() as u64;
    let start = crate::stats::now_ms().saturating_sub(up_ms) / 1000;
    w.with_prefix("", |w| w.single(&START_TIME, start));
}

const ALARMS: [Def; 3] = [
    def(
        "alarms_file_descriptor_limit",
        Kind::Untyped,
        "is 1 if file descriptor limit alarm is in effect",
    ),
    def(
        "alarms_free_disk_space_watermark",
        Kind::Untyped,
        "is 1 if free disk space watermark alarm is in effect",
    ),
    def(
        "alarms_memory_used_watermark",
        Kind::Untyped,
        "is 1 if VM memory watermark alarm is in effect",
    ),
];

/// warren has no file descriptor alarm (it raises its limit at startup and refuses
/// connections past `connection_max`): that one is always 0.
pub(super) fn alarms(s: &Scrape, w: &mut Writer) {
    let a = s.broker.alarms.current();
    w.single(&ALARMS[0], 0u64);
    w.single(&ALARMS[1], a.disk);
    w.single(&ALARMS[2], a.memory);
}

const CHURN: [Def; 7] = [
    def(
        "connections_opened_total",
        Kind::Counter,
        "Total number of connections opened",
    ),
    def(
        "connections_closed_total",
        Kind::Counter,
        "Total number of connections closed or terminated",
    ),
    def(
        "channels_opened_total",
        Kind::Counter,
        "Total number of channels opened",
    ),
    def(
        "channels_closed_total",
        Kind::Counter,
        "Total number of channels closed",
    ),
    def(
        "queues_declared_total",
        Kind::Counter,
        "Total number of queues declared",
    ),
    def(
        "queues_created_total",
        Kind::Counter,
        "Total number of queues created",
    ),
    def(
        "queues_deleted_total",
        Kind::Counter,
        "Total number of queues deleted",
    ),
];

/// `connection_churn_metrics`.
pub(super) fn churn(s: &Scrape, w: &mut Writer) {
    let c = &s.broker.churn;
    let queues = |f: fn(&VhostMetrics) -> &Counter| -> u64 { s.kept().map(|m| f(m).get()).sum() };
    let values = [
        c.connection_created.get(),
        c.connection_closed.get(),
        c.channel_created.get(),
        c.channel_closed.get(),
        queues(|m| &m.queue_declared),
        queues(|m| &m.queue_created),
        queues(|m| &m.queue_deleted),
    ];
    for (d, v) in CHURN.iter().zip(values) {
        w.single(d, v);
    }
}

const NODE_COARSE: [Def; 4] = [
    def("process_open_fds", Kind::Gauge, "Open file descriptors"),
    def("process_open_tcp_sockets", Kind::Gauge, "Open TCP sockets"),
    def(
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Memory used in bytes",
    ),
    def(
        "disk_space_available_bytes",
        Kind::Gauge,
        "Disk space available in bytes",
    ),
];

/// `node_coarse_metrics` (the Erlang process and garbage collector counts left out).
pub(super) fn node_coarse(s: &Scrape, w: &mut Writer) {
    let b = s.broker;
    w.single(&NODE_COARSE[0], crate::fd::used());
    w.single(&NODE_COARSE[1], b.connections.len());
    w.single(&NODE_COARSE[2], crate::memory::rss_kib() * 1024);
    w.single(&NODE_COARSE[3], b.alarms.disk_free().unwrap_or(0));
}

const NODE: [Def; 5] = [
    def(
        "process_max_fds",
        Kind::Gauge,
        "Open file descriptors limit",
    ),
    def(
        "process_max_tcp_sockets",
        Kind::Gauge,
        "Open TCP sockets limit",
    ),
    def(
        "resident_memory_limit_bytes",
        Kind::Gauge,
        "Memory high watermark in bytes",
    ),
    def(
        "disk_space_available_limit_bytes",
        Kind::Gauge,
        "Free disk space low watermark in bytes",
    ),
    def("erlang_uptime_seconds", Kind::Gauge, "Node uptime"),
];

/// `node_metrics`: limits, and the broker's uptime under RabbitMQ's name for it (the
/// Overview dashboard shows it); the Erlang scheduler and process limits left out.
pub(super) fn node(s: &Scrape, w: &mut Writer) {
    let b = s.broker;
    let fds = crate::fd::limit();
    let sockets = match b.config.amqp.connection_max {
        0 => fds,
        n => n as u64,
    };
    w.single(&NODE[0], fds);
    w.single(&NODE[1], sockets);
    w.single(&NODE[2], b.alarms.memory_limit());
    w.single(&NODE[3], b.alarms.disk_free_limit());
    let uptime_ms = b.started.elapsed().as_millis() as u64;
    w.single(&NODE[4], uptime_ms as f64 / 1000.0);
}

const AUTH: [Def; 3] = [
    def(
        "auth_attempts_total",
        Kind::Counter,
        "Total number of authorization attempts",
    ),
    def(
        "auth_attempts_succeeded_total",
        Kind::Counter,
        "Total number of successful authentication attempts",
    ),
    def(
        "auth_attempts_failed_total",
        Kind::Counter,
        "Total number of failed authentication attempts",
    ),
];

/// `auth_attempt_metrics`: logins over the management API and over AMQP.
pub(super) fn auth(s: &Scrape, w: &mut Writer) {
    let b = s.broker;
    let by_protocol = [("http", &b.auth_http), ("amqp091", &b.auth_amqp)];
    for (i, d) in AUTH.iter().enumerate() {
        let mut f = w.family(d);
        for (protocol, a) in by_protocol {
            let c = [&a.attempts, &a.succeeded, &a.failed][i];
            f.sample(&[("protocol", protocol)], c.get());
        }
    }
}

const TOTALS: [Def; 4] = [
    def("connections", Kind::Gauge, "Connections currently open"),
    def("channels", Kind::Gauge, "Channels currently open"),
    def("consumers", Kind::Gauge, "Consumers currently connected"),
    def("queues", Kind::Gauge, "Queues available"),
];

/// How many connections, channels, consumers and queues there are.
pub(super) fn totals(s: &Scrape, w: &mut Writer) {
    let channels: Vec<_> = s.conns.iter().flat_map(|c| c.channels()).collect();
    let consumers: u64 = channels
        .iter()
        .map(|c| crate::connection::info::ChannelInfo::level(&c.consumers) as u64)
        .sum();
    let queues: usize = s.vhosts.iter().map(|v| v.queues().len()).sum();
    w.single(&TOTALS[0], s.conns.len());
    w.single(&TOTALS[1], channels.len());
    w.single(&TOTALS[2], consumers);
    w.single(&TOTALS[3], queues);
}

const BUILD_INFO: Def = def(
    "build_info",
    Kind::Untyped,
    "RabbitMQ & Erlang/OTP version info",
);
const IDENTITY_INFO: Def = def(
    "identity_info",
    Kind::Untyped,
    "RabbitMQ node & cluster identity info",
);

/// `rabbitmq_build_info` (the RabbitMQ version warren answers as, as the management API
/// does; warren's own version where RabbitMQ gives Erlang's) and `rabbitmq_identity_info`,
/// which dashboards join every query on.
pub(super) fn identity(s: &Scrape, w: &mut Writer, endpoint: &str) {
    let ours = format!("warren {}", env!("CARGO_PKG_VERSION"));
    let version = crate::mgmt::VERSION;
    w.family(&BUILD_INFO).sample(
        &[
            ("rabbitmq_version", version),
            ("prometheus_plugin_version", version),
            ("prometheus_client_version", &ours),
            ("erlang_version", &ours),
        ],
        1u64,
    );
    let node = node_name();
    w.family(&IDENTITY_INFO).sample(
        &[
            ("rabbitmq_node", &node),
            ("rabbitmq_cluster", &node),
            ("rabbitmq_cluster_permanent_id", &s.broker.cluster_id),
            ("rabbitmq_endpoint", endpoint),
        ],
        1u64,
    );
}
