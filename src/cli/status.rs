//! The `status` and `cluster_status` reports, as RabbitMQ 3.10 lays them out, with what a
//! warren node knows about itself.

use super::diagnostics::{alarm_lines, listener_line};
use super::output::Outcome;
use super::{Ctx, Done};
use serde_json::{json, Value};

fn section(o: &mut Outcome, title: &str) {
    o.line(format!("\x1b[1m{title}\x1b[0m"));
    o.line("");
}

/// The "Alarms" section of `status` and `cluster_status`.
fn alarms_section(o: &mut Outcome, s: &Value) {
    section(o, "Alarms");
    let alarms = alarm_lines(s);
    if alarms.is_empty() {
        o.line("(none)");
    }
    for a in alarms {
        o.line(a);
    }
    o.line("");
}

/// Bytes in gigabytes (10^9) with up to four decimals, as RabbitMQ prints them (`0.05`,
/// `34.7379`, `0.0`).
pub(super) fn gb(bytes: u64) -> String {
    let v = (bytes as f64 / 1e9 * 10_000.0).round() / 10_000.0;
    let s = v.to_string();
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

pub(super) fn status(ctx: &Ctx, ctl: bool) -> Done {
    ctx.arity(0, 0, "status [--unit <unit>] [--timeout <timeout>]")?;
    let s = ctx.connect()?;
    let mut o = Outcome::default();
    let node = s["node"].as_str().unwrap_or_default();
    if ctx.args.json() {
        o.line(status_json(&s).to_string());
        return Ok(o);
    }
    if ctl {
        o.banner(&ctx.args, format!("Status of node {node} ..."));
    }
    section(&mut o, "Runtime");
    o.line(format!("OS PID: {}", s["pid"]));
    o.line(format!(
        "OS: {}",
        capitalised(s["os"].as_str().unwrap_or(""))
    ));
    o.line(format!("Uptime (seconds): {}", s["uptime"]));
    o.line(format!(
        "Is under maintenance?: {}",
        s["is_under_maintenance"]
    ));
    o.line(format!(
        "RabbitMQ version: {}",
        s["rabbitmq_version"].as_str().unwrap_or("")
    ));
    o.line(format!("Node name: {node}"));
    o.line(format!(
        "Product name: {}\nProduct version: {}",
        s["product_name"].as_str().unwrap_or(""),
        s["product_version"].as_str().unwrap_or("")
    ));
    o.line("");
    section(&mut o, "Plugins");
    o.line("Enabled plugins:");
    o.line("");
    for p in s["plugins"].as_array().into_iter().flatten() {
        o.line(format!(" * {}", p.as_str().unwrap_or("")));
    }
    o.line("");
    section(&mut o, "Data directory");
    o.line(format!(
        "Node data directory: {}",
        s["data_directory"].as_str().unwrap_or("")
    ));
    o.line("");
    let files = s["config_files"].as_array().cloned().unwrap_or_default();
    if !files.is_empty() {
        section(&mut o, "Config files");
        for f in files {
            o.line(format!(" * {}", f.as_str().unwrap_or("")));
        }
        o.line("");
    }
    section(&mut o, "Log file(s)");
    o.line(" * <stdout>");
    o.line("");
    alarms_section(&mut o, &s);
    section(&mut o, "Memory");
    o.line(format!(
        "Total memory used: {} gb",
        gb(s["memory"]["total"].as_u64().unwrap_or(0))
    ));
    o.line("Calculation strategy: rss");
    let limit = gb(s["vm_memory_high_watermark_limit"].as_u64().unwrap_or(0));
    let setting = &s["vm_memory_high_watermark_setting"];
    match setting.get("relative") {
        Some(r) => o.line(format!(
            "Memory high watermark setting: {r} of available memory, computed to: {limit} gb"
        )),
        None => o.line(format!(
            "Memory high watermark setting: {} gb, computed to: {limit} gb",
            gb(setting["absolute"].as_u64().unwrap_or(0))
        )),
    }
    o.line("");
    section(&mut o, "File Descriptors");
    let fd = &s["file_descriptors"];
    o.line(format!(
        "Total: {}, limit: {}",
        fd["total_used"], fd["total_limit"]
    ));
    o.line(format!(
        "Sockets: {}, limit: {}",
        fd["sockets_used"], fd["sockets_limit"]
    ));
    o.line("");
    section(&mut o, "Free Disk Space");
    o.line(format!(
        "Low free disk space watermark: {} gb",
        gb(s["disk_free_limit"].as_u64().unwrap_or(0))
    ));
    o.line(format!(
        "Free disk space: {} gb",
        gb(s["disk_free"].as_u64().unwrap_or(0))
    ));
    o.line("");
    section(&mut o, "Totals");
    let t = &s["totals"];
    o.line(format!("Connection count: {}", t["connection_count"]));
    o.line(format!("Queue count: {}", t["queue_count"]));
    o.line(format!("Virtual host count: {}", t["virtual_host_count"]));
    o.line("");
    section(&mut o, "Listeners");
    for l in s["listeners"].as_array().into_iter().flatten() {
        o.line(listener_line(l));
    }
    Ok(o)
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `status --formatter json`: the fields of RabbitMQ's that warren can fill.
fn status_json(s: &Value) -> Value {
    let node = s["node"].as_str().unwrap_or("");
    let listeners: Vec<Value> = s["listeners"].as_array().cloned().unwrap_or_default();
    json!({
        "active_plugins": s["plugins"],
        "alarms": alarm_lines(s),
        "config_files": s["config_files"],
        "data_directory": s["data_directory"],
        "disk_free": s["disk_free"],
        "disk_free_limit": s["disk_free_limit"],
        "file_descriptors": s["file_descriptors"],
        "is_under_maintenance": s["is_under_maintenance"],
        "listeners": listeners,
        "log_files": ["<stdout>"],
        "memory": {"strategy": "rss", "total": {"rss": s["memory"]["total"]}},
        "node": node,
        "os": capitalised(s["os"].as_str().unwrap_or("")),
        "pid": s["pid"],
        "product_name": s["product_name"],
        "product_version": s["product_version"],
        "rabbitmq_version": s["rabbitmq_version"],
        "totals": s["totals"],
        "uptime": s["uptime"],
        "vm_memory_calculation_strategy": "rss",
        "vm_memory_high_watermark_limit": s["vm_memory_high_watermark_limit"],
        "vm_memory_high_watermark_setting": s["vm_memory_high_watermark_setting"],
    })
}

pub(super) fn cluster_status(ctx: &Ctx) -> Done {
    ctx.arity(0, 0, "cluster_status [--timeout <timeout>]")?;
    let s = ctx.connect()?;
    let node = s["node"].as_str().unwrap_or_default().to_string();
    let mut o = Outcome::default();
    let cluster = ctx.get("/api/cluster-name")?;
    let cluster = cluster["name"].as_str().unwrap_or(&node).to_string();
    if ctx.args.json() {
        let listeners = s["listeners"].clone();
        let versions = json!({"rabbitmq_name": s["product_name"], "rabbitmq_version": s["rabbitmq_version"],
                              "product_version": s["product_version"]});
        o.line(
            json!({"alarms": alarm_lines(&s), "cluster_name": cluster, "disk_nodes": [node],
                   "feature_flags": [], "listeners": {node.clone(): listeners},
                   "maintenance_status": {node.clone(): "not under maintenance"}, "partitions": {},
                   "ram_nodes": [], "running_nodes": [node], "versions": {node.clone(): versions}})
            .to_string(),
        );
        return Ok(o);
    }
    o.banner(&ctx.args, format!("Cluster status of node {node} ..."));
    section(&mut o, "Basics");
    o.line(format!("Cluster name: {cluster}"));
    o.line("");
    section(&mut o, "Disk Nodes");
    o.line(&node);
    o.line("");
    section(&mut o, "Running Nodes");
    o.line(&node);
    o.line("");
    section(&mut o, "Versions");
    o.line(format!(
        "{node}: RabbitMQ {} on {} {}",
        s["rabbitmq_version"].as_str().unwrap_or(""),
        s["product_name"].as_str().unwrap_or(""),
        s["product_version"].as_str().unwrap_or("")
    ));
    o.line("");
    section(&mut o, "Maintenance status");
    o.line(format!("Node: {node}, status: not under maintenance"));
    o.line("");
    alarms_section(&mut o, &s);
    section(&mut o, "Network Partitions");
    o.line("(none)");
    o.line("");
    section(&mut o, "Listeners");
    for l in s["listeners"].as_array().into_iter().flatten() {
        o.line(format!(
            "Node: {node}, {}",
            listener_line(l).replacen("Interface", "interface", 1)
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    #[test]
    fn gigabytes_as_rabbitmq_rounds_them() {
        assert_eq!(super::gb(50_000_000), "0.05");
        assert_eq!(super::gb(34_737_900_000), "34.7379");
        assert_eq!(super::gb(0), "0.0");
        assert_eq!(super::gb(3_000_000_000), "3.0");
    }
}
