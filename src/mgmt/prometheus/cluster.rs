//! The enumerations of detailed scrapes, named `rabbitmq_cluster_*`: vhosts and exchanges.

use super::text::{def, Def, Kind, Writer};
use super::Scrape;
use std::sync::Arc;

const VHOST_STATUS: Def = def(
    "vhost_status",
    Kind::Gauge,
    "Whether a given vhost is running",
);

/// `vhost_status` (`rabbitmq_cluster_`).
pub(super) fn vhost_status(s: &Scrape, w: &mut Writer) {
    let mut f = w.family(&VHOST_STATUS);
    for v in &s.vhosts {
        f.sample(&[("vhost", &v.name)], 1u64);
    }
}

const EXCHANGE_BINDINGS: Def = def(
    "exchange_bindings",
    Kind::Gauge,
    "Number of bindings for an exchange. This value is cluster-wide.",
);
const EXCHANGE_NAME: Def = def(
    "exchange_name",
    Kind::Gauge,
    "Enumerates exchanges without any additional info. This value is cluster-wide. A cheaper alternative to `exchange_bindings`",
);

/// The exchanges RabbitMQ enumerates: not the default one.
fn exchanges(s: &Scrape) -> Vec<(String, Arc<crate::exchange::Exchange>)> {
    s.vhosts
        .iter()
        .flat_map(|v| v.exchanges().into_iter().map(|x| (v.name.clone(), x)))
        .filter(|(_, x)| !x.name.is_empty())
        .collect()
}

/// `exchange_bindings` (`rabbitmq_cluster_`).
pub(super) fn exchange_bindings(s: &Scrape, w: &mut Writer) {
    let mut f = w.family(&EXCHANGE_BINDINGS);
    for (vhost, x) in exchanges(s) {
        let labels = [
            ("vhost", vhost.as_str()),
            ("exchange", &x.name),
            ("type", x.kind.as_str()),
        ];
        f.sample(&labels, x.bindings().len());
    }
}

/// `exchange_names` (`rabbitmq_cluster_`).
pub(super) fn exchange_names(s: &Scrape, w: &mut Writer) {
    let mut f = w.family(&EXCHANGE_NAME);
    for (vhost, x) in exchanges(s) {
        let labels = [
            ("vhost", vhost.as_str()),
            ("exchange", &x.name),
            ("type", x.kind.as_str()),
        ];
        f.sample(&labels, 1u64);
    }
}
