//! More `rabbitmq-diagnostics` commands: `is_running`, `is_booting`, the single-node health
//! checks (`check_if_node_is_quorum_critical`, `check_if_node_is_mirror_sync_critical`),
//! `check_certificate_expiration`, `erlang_cookie_hash` and `memory_breakdown`.

use super::diagnostics::connect_after;
use super::output;
use super::{Ctx, Done};
use serde_json::{json, Value};

pub(super) fn run(ctx: &Ctx, command: &str) -> Done {
    let node = ctx.node.name.clone();
    match command {
        "is_running" | "is_booting" => {
            ctx.arity(0, 0, &format!("{command} [--timeout <timeout>]"))?;
            let running = command == "is_running";
            let banner = if running {
                format!("Asking node {node} for its status ...")
            } else {
                format!("Asking node {node} for its boot status ...")
            };
            let (mut o, _) = connect_after(ctx, banner)?;
            // A node that answers is booted: warren answers only once it is.
            let msg = if running {
                format!("RabbitMQ on node {node} is fully booted and running")
            } else {
                format!("RabbitMQ on node {node} is fully booted (check with is_running), stopped or has not started booting yet")
            };
            if ctx.args.json() {
                o.line(json!({"message": msg, "result": running}).to_string());
            } else {
                o.line(msg);
            }
            Ok(o)
        }
        "check_if_node_is_quorum_critical" | "check_if_node_is_mirror_sync_critical" => {
            ctx.arity(0, 0, &format!("{command} [--timeout <timeout>]"))?;
            let what = if command.contains("quorum") {
                "quorum of any quorum queues"
            } else {
                "data safety of any classic mirrored queues"
            };
            let (mut o, _) = connect_after(
                ctx,
                format!("Checking if node {node} is critical for {what} ..."),
            )?;
            let msg = "seems to be the only one in a single node cluster, the check does not apply";
            if ctx.args.json() {
                o.line(
                    json!({"message": format!("Target node {msg}"), "result": "ok"}).to_string(),
                );
            } else {
                o.line(format!("Node {node} {msg}"));
            }
            Ok(o)
        }
        "check_certificate_expiration" => certificate_expiration(ctx),
        "erlang_cookie_hash" => {
            ctx.arity(0, 0, "erlang_cookie_hash [--timeout <timeout>]")?;
            let (mut o, _) =
                connect_after(ctx, format!("Asking node {node} its Erlang cookie hash..."))?;
            let hash = ctx.get("/api/cli/cookie-hash")?["hash"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if ctx.args.json() {
                o.line(json!({"result": "ok", "value": hash}).to_string());
            } else {
                o.line(hash);
            }
            Ok(o)
        }
        _ => memory_breakdown(ctx),
    }
}

fn certificate_expiration(ctx: &Ctx) -> Done {
    let usage = "check_certificate_expiration [--within <period>] [--unit <unit>]";
    ctx.arity(0, 0, usage)?;
    let within = ctx.args.value("within").unwrap_or("4");
    let Ok(n) = within.parse::<u64>() else {
        return Err(Box::new(
            ctx.usage_error("within must be a non-negative integer", usage),
        ));
    };
    let unit = ctx.args.value("unit").unwrap_or("weeks");
    let unit_secs = match unit {
        "days" => 86_400,
        "weeks" => 7 * 86_400,
        "months" => 30 * 86_400,
        "years" => 365 * 86_400,
        _ => {
            let reason = format!(
                "unit '{unit}' is not supported. Please use one of: days, weeks, months, years"
            );
            return Err(Box::new(ctx.usage_error(&reason, usage)));
        }
    };
    let node = ctx.node.name.clone();
    let (mut o, _) = connect_after(
        ctx,
        format!("Checking certificate expiration on node {node} ..."),
    )?;
    let certs = ctx.get("/api/cli/certificates")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let expiring: Vec<&Value> = certs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["not_after"]
                .as_u64()
                .is_some_and(|t| t < now + n * unit_secs)
        })
        .collect();
    if expiring.is_empty() {
        if ctx.args.json() {
            o.line(json!({"result": "ok"}).to_string());
        } else {
            let label = if n == 1 {
                unit.trim_end_matches('s')
            } else {
                unit
            };
            o.line(format!("No certificates are expiring within {n} {label}."));
        }
        return Ok(o);
    }
    if ctx.args.json() {
        o.line(json!({"result": "error", "node": node, "expired": expiring}).to_string());
        o.code = output::EX_UNAVAILABLE;
        return Ok(o);
    }
    let lines: Vec<String> = expiring
        .iter()
        .map(|c| {
            format!(
                "Certificate: {}, listener port: {}, expires: {}",
                c["file"].as_str().unwrap_or(""),
                c["port"],
                c["expires"].as_str().unwrap_or("")
            )
        })
        .collect();
    Ok(o.fail_bare(
        output::EX_UNAVAILABLE,
        format!(
            "Certificates expiring on node {node}:\n{}",
            lines.join("\n")
        ),
    ))
}

/// RabbitMQ's categories in its order (ties keep it once sorted by size).
const CATEGORIES: &[&str] = &[
    "connection_readers",
    "connection_writers",
    "connection_channels",
    "connection_other",
    "queue_procs",
    "queue_slave_procs",
    "quorum_queue_procs",
    "quorum_queue_dlx_procs",
    "stream_queue_procs",
    "stream_queue_replica_reader_procs",
    "stream_queue_coordinator_procs",
    "plugins",
    "metrics",
    "other_proc",
    "code",
    "atom",
    "binary",
    "mnesia",
    "msg_index",
    "other_ets",
    "quorum_ets",
    "mgmt_db",
    "other_system",
    "allocated_unused",
    "reserved_unallocated",
];

/// A float as Elixir prints it: the shortest form, always with a fraction.
fn float(x: f64) -> String {
    let s = format!("{x}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// RabbitMQ's layout over what warren measures: the resident size, the part queues
/// account for (`queue_procs`), the rest as `other_proc`; the categories it cannot tell
/// apart (an Erlang VM's) are 0.
fn memory_breakdown(ctx: &Ctx) -> Done {
    let usage = "memory_breakdown [--unit <unit>] [--timeout <timeout>]";
    ctx.arity(0, 0, usage)?;
    let unit = ctx.args.value("unit").unwrap_or("gb").to_ascii_lowercase();
    let divisor = match unit.as_str() {
        "bytes" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        _ => {
            let reason =
                format!("\"unit '{unit}' is not supported. Please use one of: bytes, mb, gb\"");
            return Err(Box::new(ctx.usage_error(&reason, usage)));
        }
    };
    let node = ctx.node.name.clone();
    let (mut o, _) = connect_after(ctx, format!("Reporting memory breakdown on node {node}..."))?;
    let m = ctx.get("/api/cli/memory")?;
    let total = m["total"].as_u64().unwrap_or(0);
    let queues = m["queue_procs"].as_u64().unwrap_or(0).min(total);
    let mut rows: Vec<(&str, u64)> = CATEGORIES
        .iter()
        .map(|c| match *c {
            "queue_procs" => (*c, queues),
            "other_proc" => (*c, total - queues),
            _ => (*c, 0),
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let pct = |b: u64| {
        if total == 0 {
            0.0
        } else {
            round(b as f64 * 100.0 / total as f64, 2)
        }
    };
    if ctx.args.json() {
        let fields: Vec<String> = rows
            .iter()
            .map(|(k, b)| {
                format!(
                    "\"{k}\":{{\"bytes\":{b},\"percentage\":{}}}",
                    float(pct(*b))
                )
            })
            .collect();
        o.line(format!("{{{}}}", fields.join(",")));
        return Ok(o);
    }
    for (k, b) in &rows {
        let amount = if divisor == 1.0 {
            b.to_string()
        } else {
            float(round(*b as f64 / divisor, 4))
        };
        o.line(format!("{k}: {amount} {unit} ({}%)", float(pct(*b))));
    }
    o.line("");
    Ok(o)
}

#[cfg(test)]
mod tests {
    #[test]
    fn floats_as_elixir_prints_them() {
        assert_eq!(super::float(0.0), "0.0");
        assert_eq!(super::float(super::round(10.1004, 2)), "10.1");
        assert_eq!(super::float(super::round(84_701_184.0 / 1e6, 4)), "84.7012");
    }
}
