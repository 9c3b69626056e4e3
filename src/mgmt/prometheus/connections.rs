//! The families of connections, labelled `channel` with the connection's name, as RabbitMQ
//! labels them. Aggregated counters keep the counts of closed connections.

use super::objects::emit;
use super::text::{def, Def, Kind, Writer};
use super::Scrape;
use crate::connection::info::ConnInfo;
use crate::vhost::stats::VhostMetrics;

/// A connection's value, and what its vhost keeps of closed connections' (counters).
type ConnValue = (fn(&ConnInfo) -> u64, fn(&VhostMetrics) -> u64);

fn connection_families(s: &Scrape, w: &mut Writer, defs: &[(Def, ConnValue)]) {
    for (d, (live, retired)) in defs {
        if s.per_object {
            let rows = s
                .conns
                .iter()
                .map(|c| (vec![("channel", c.name())], live(c).into()));
            emit(s, w, d, rows);
        } else {
            let kept: u64 = s.kept().map(retired).sum();
            let live: u64 = s.conns.iter().map(|c| live(c)).sum();
            w.single(d, live + kept);
        }
    }
}

const CONNECTION_COARSE: [(Def, ConnValue); 2] = [
    (
        def(
            "connection_incoming_bytes_total",
            Kind::Counter,
            "Total number of bytes received on a connection",
        ),
        (|c| c.io.recv_oct.get(), |m| m.retired_recv_oct.get()),
    ),
    (
        def(
            "connection_outgoing_bytes_total",
            Kind::Counter,
            "Total number of bytes sent on a connection",
        ),
        (|c| c.io.send_oct.get(), |m| m.retired_send_oct.get()),
    ),
];

/// `connection_coarse_metrics`. RabbitMQ labels connections `channel`, so does warren.
pub(super) fn connection_coarse(s: &Scrape, w: &mut Writer) {
    connection_families(s, w, &CONNECTION_COARSE);
}

const CONNECTION: [(Def, ConnValue); 4] = [
    (
        def(
            "connection_incoming_packets_total",
            Kind::Counter,
            "Total number of packets received on a connection",
        ),
        (|c| c.io.recv_cnt.get(), |m| m.retired_recv_cnt.get()),
    ),
    (
        def(
            "connection_outgoing_packets_total",
            Kind::Counter,
            "Total number of packets sent on a connection",
        ),
        (|c| c.io.send_cnt.get(), |m| m.retired_send_cnt.get()),
    ),
    (
        def(
            "connection_pending_packets",
            Kind::Gauge,
            "Number of packets waiting to be sent on a connection",
        ),
        // A connection's writes are flushed as they are made (as the management API's
        // `send_pend`).
        (|_| 0, |_| 0),
    ),
    (
        def(
            "connection_channels",
            Kind::Gauge,
            "Channels on a connection",
        ),
        (|c| c.channels().len() as u64, |_| 0),
    ),
];

/// `connection_metrics`.
pub(super) fn connection(s: &Scrape, w: &mut Writer) {
    connection_families(s, w, &CONNECTION);
}
