//! `rabbitmq-diagnostics`: ping, health checks, listeners, alarms, version and status.

use super::output::{Outcome, EX_UNAVAILABLE};
use super::{settle, Ctx, Done};
use serde_json::{json, Value};

pub(super) const COMMANDS: &[(&str, &str)] = &[
    ("alarms", "Lists resource alarms (local or cluster-wide) in effect on the target node"),
    ("check_alarms", "Health check that exits with a non-zero code if the target node reports any alarms, local or cluster-wide."),
    ("check_certificate_expiration", "Checks the expiration date on the certificates for every listener configured to use TLS"),
    ("check_if_node_is_mirror_sync_critical", "Health check that exits with a non-zero code if there are classic mirrored queues without online synchronised mirrors (queues that would potentially lose data if the target node is shut down)"),
    ("check_if_node_is_quorum_critical", "Health check that exits with a non-zero code if there are queues with minimum online quorum (queues that would lose their quorum if the target node is shut down)"),
    ("check_local_alarms", "Health check that exits with a non-zero code if the target node reports any local alarms"),
    ("check_port_connectivity", "Basic TCP connectivity health check for each listener's port on the target node"),
    ("check_port_listener", "Health check that exits with a non-zero code if target node does not have an active listener for given port"),
    ("check_protocol_listener", "Health check that exits with a non-zero code if target node does not have an active listener for given protocol"),
    ("check_running", "Health check that exits with a non-zero code if the RabbitMQ app on the target node is not running"),
    ("check_virtual_hosts", "Health check that checks if all vhosts are running in the target node"),
    ("cluster_status", "Displays all the nodes in the cluster grouped by node type, together with the currently running nodes"),
    ("erlang_cookie_hash", "Displays a hash of the Erlang cookie (shared secret) used by the target node"),
    ("is_booting", "Checks if RabbitMQ is still booting on the target node"),
    ("is_running", "Checks if RabbitMQ is fully booted and running on the target node"),
    ("listeners", "Lists active connection listeners (bound interface, port, protocol) on the target node"),
    ("memory_breakdown", "Provides a memory usage breakdown on the target node."),
    ("ping", "Checks that the node OS process is up, registered with EPMD and CLI tools can authenticate with it"),
    ("server_version", "Displays server version on the target node"),
    ("status", "Displays status of a node"),
];

pub(super) fn run(ctx: &Ctx, command: &str) -> Outcome {
    settle(match command {
        "ping" => ping(ctx),
        "status" => super::status::status(ctx, false),
        "cluster_status" => super::status::cluster_status(ctx),
        "check_protocol_listener" => check_protocol_listener(ctx),
        "check_port_listener" => check_port_listener(ctx),
        "is_running"
        | "is_booting"
        | "check_if_node_is_quorum_critical"
        | "check_if_node_is_mirror_sync_critical"
        | "check_certificate_expiration"
        | "erlang_cookie_hash"
        | "memory_breakdown" => super::health::run(ctx, command),
        _ => simple(ctx, command),
    })
}

/// Print `banner` (unless quiet), then connect; a failure keeps the banner on stdout.
pub(super) fn connect_after(ctx: &Ctx, banner: String) -> Result<(Outcome, Value), Box<Outcome>> {
    let mut o = Outcome::default();
    if !ctx.args.json() {
        o.banner(&ctx.args, banner);
    }
    match ctx.connect() {
        Ok(status) => Ok((o, status)),
        Err(mut e) => {
            e.out = o.out + &e.out;
            Err(e)
        }
    }
}

pub(super) fn ping(ctx: &Ctx) -> Done {
    ctx.arity(0, 0, "ping [--timeout <timeout>]")?;
    let node = &ctx.node.name;
    let ms = ctx.args.timeout_secs() * 1000;
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Will ping {node}. This only checks if the OS process is running and registered with epmd. Timeout: {ms} ms."));
    Ok(match ctx.node.connect() {
        Ok(_) => {
            o.line("Ping succeeded");
            o
        }
        Err(_) => o.fail(
            EX_UNAVAILABLE,
            format!("Failed to connect and authenticate to {node} in {ms} ms"),
        ),
    })
}

/// One listener as `listeners` prints it.
pub(super) fn listener_line(l: &Value) -> String {
    format!(
        "Interface: {}, port: {}, protocol: {}, purpose: {}",
        l["interface"].as_str().unwrap_or(""),
        l["port"],
        l["protocol"].as_str().unwrap_or(""),
        l["purpose"].as_str().unwrap_or("")
    )
}

/// The alarms of a status as RabbitMQ words them.
pub(super) fn alarm_lines(status: &Value) -> Vec<String> {
    let node = status["node"].as_str().unwrap_or("");
    status["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| match a {
            "disk" => format!("Free disk space alarm on node {node}"),
            _ => format!("Memory alarm on node {node}"),
        })
        .collect()
}

fn sorted_ports(status: &Value) -> Vec<u64> {
    let mut ports: Vec<u64> = status["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["port"].as_u64())
        .collect();
    ports.sort_unstable();
    ports
}

fn joined<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The commands without arguments.
fn simple(ctx: &Ctx, command: &str) -> Done {
    ctx.arity(0, 0, &format!("{command} [--timeout <timeout>]"))?;
    let node = ctx.node.name.clone();
    let banner = match command {
        "check_running" => format!("Checking if RabbitMQ is running on node {node} ..."),
        "check_port_connectivity" => {
            format!("Testing TCP connections to all active listeners on node {node} ...")
        }
        "check_local_alarms" | "check_alarms" => {
            format!("Asking node {node} to report any local resource alarms ...")
        }
        "check_virtual_hosts" => format!("Checking if all vhosts are running on node {node} ..."),
        "listeners" => format!("Asking node {node} to report its protocol listeners ..."),
        "alarms" => format!("Asking node {node} to report any known resource alarms ..."),
        _ => format!("Asking node {node} for its RabbitMQ version..."),
    };
    let (mut o, status) = connect_after(ctx, banner)?;
    let json = ctx.args.json();
    let alarms = alarm_lines(&status);
    match command {
        "check_running" => {
            let msg = format!("RabbitMQ on node {node} is fully booted and running");
            o.line(if json { json!({"message": msg}).to_string() } else { msg });
        }
        "check_port_connectivity" => {
            let mut failed = Vec::new();
            for l in status["listeners"].as_array().into_iter().flatten() {
                let port = l["port"].as_u64().unwrap_or(0) as u16;
                if ctx.node.open(port).is_err() {
                    failed.push(listener_line(l));
                }
            }
            if !failed.is_empty() {
                let text = format!("Connection to ports of the following listeners on node {node} failed: \n{}", failed.join("\n"));
                return Ok(o.fail(EX_UNAVAILABLE, text));
            }
            if json {
                o.line(json!({"listeners": status["listeners"], "node": node, "result": "ok"}).to_string());
            } else {
                o.line(format!("Successfully connected to ports {} on node {node}.", joined(&sorted_ports(&status))));
            }
        }
        "check_local_alarms" | "check_alarms" if json && alarms.is_empty() => {
            o.line(json!({"result": "ok"}).to_string())
        }
        "check_local_alarms" if !alarms.is_empty() => return Ok(o.fail(EX_UNAVAILABLE, alarms.join("\n"))),
        "check_local_alarms" => o.line(format!("Node {node} reported no local alarms")),
        "check_alarms" if !alarms.is_empty() => return Ok(o.fail_bare(EX_UNAVAILABLE, alarms.join("\n"))),
        "check_alarms" => o.line(format!("Node {node} reported no alarms, local or clusterwide")),
        "check_virtual_hosts" => o.line(format!("Node {node} reported all vhosts as running")),
        "listeners" if json => {
            o.line(json!({"listeners": status["listeners"], "node": node, "result": "ok"}).to_string())
        }
        "listeners" => {
            for l in status["listeners"].as_array().into_iter().flatten() {
                o.line(listener_line(l));
            }
        }
        "alarms" if json && alarms.is_empty() => {
            o.line(json!({"alarms": [], "node": node, "result": "ok"}).to_string())
        }
        "alarms" if json => o.line(
            json!({"global": [], "local": alarms, "message": format!("Node {node} reported alarms"), "result": "ok"})
                .to_string(),
        ),
        "alarms" if alarms.is_empty() => o.line(format!("Node {node} reported no alarms, local or clusterwide")),
        "alarms" => {
            for a in &alarms {
                o.line(a);
            }
        }
        _ => o.line(status["rabbitmq_version"].as_str().unwrap_or("")),
    }
    Ok(o)
}

fn check_protocol_listener(ctx: &Ctx) -> Done {
    ctx.arity(
        1,
        1,
        "check_protocol_listener <protocol> [--timeout <timeout>]",
    )?;
    let node = &ctx.node.name;
    let proto = &ctx.args.positional[0];
    let banner =
        format!("Asking node {node} if there's an active listener for protocol {proto} ...");
    let (mut o, status) = connect_after(ctx, banner)?;
    let mut protocols: Vec<&str> = status["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["protocol"].as_str())
        .collect();
    protocols.sort_unstable();
    if protocols.contains(&proto.as_str()) {
        o.line(format!(
            "A listener for protocol {proto} is running on node {node}."
        ));
        return Ok(o);
    }
    Ok(o.fail(
        EX_UNAVAILABLE,
        format!("No listener for protocol {proto} is active on node {node}. Found listeners for the following protocols: {}", joined(&protocols)),
    ))
}

fn check_port_listener(ctx: &Ctx) -> Done {
    let usage = "check_port_listener <port> [--timeout <timeout>]";
    ctx.arity(1, 1, usage)?;
    let node = &ctx.node.name;
    let Ok(port) = ctx.args.positional[0].parse::<u64>() else {
        return Err(Box::new(
            ctx.usage_error("port must be a positive integer", usage),
        ));
    };
    let banner = format!("Asking node {node} if there's an active listener on port {port} ...");
    let (mut o, status) = connect_after(ctx, banner)?;
    let ports = sorted_ports(&status);
    if ports.contains(&port) {
        o.line(format!(
            "A listener for port {port} is running on node {node}."
        ));
        return Ok(o);
    }
    Ok(o.fail_bare(
        EX_UNAVAILABLE,
        format!("No listener for port {port} is active on node {node}. Found listeners that use the following ports: {}", joined(&ports)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_and_listeners_in_rabbitmq_words() {
        let s = json!({"node": "rabbit@h", "alarms": ["memory", "disk"], "listeners": [
            {"interface": "[::]", "port": 25672, "protocol": "clustering", "purpose": "inter-node and CLI tool communication"},
            {"interface": "[::]", "port": 5672, "protocol": "amqp", "purpose": "AMQP 0-9-1 and AMQP 1.0"}]});
        assert_eq!(
            alarm_lines(&s),
            [
                "Memory alarm on node rabbit@h",
                "Free disk space alarm on node rabbit@h"
            ]
        );
        assert_eq!(sorted_ports(&s), [5672, 25672]);
        assert_eq!(
            listener_line(&s["listeners"][1]),
            "Interface: [::], port: 5672, protocol: amqp, purpose: AMQP 0-9-1 and AMQP 1.0"
        );
    }
}
