//! `rabbitmqctl` operations on the node: definitions export and import, closing
//! connections, the cluster name, feature flags, and the alarm limits at run time.

use super::output::{self, Outcome, EX_DATAERR, EX_SOFTWARE, EX_UNAVAILABLE, EX_USAGE};
use super::{Ctx, Done};
use serde_json::{json, Value};
use std::path::Path;

pub(super) fn export_definitions(ctx: &Ctx) -> Done {
    let usage =
        "export_definitions <file_path | \"-\"> [--format <json | erlang>] [--timeout <timeout>]";
    ctx.arity(1, 1, usage)?;
    let path = &ctx.args.positional[0];
    let to_stdout = path == "-";
    if !to_stdout {
        let dir = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            let reason = format!("Bad argument: Directory {} does not exist", dir.display());
            return Err(Box::new(output::bad_argument(
                ctx.tool, &ctx.args, &reason, usage,
            )));
        }
    }
    ctx.connect()?;
    let mut o = Outcome::default();
    let defs = ctx.get("/api/definitions")?;
    // Compact, keys sorted, no newline at the end: as RabbitMQ writes them.
    let text = defs.to_string();
    if to_stdout {
        o.out = text;
        return Ok(o);
    }
    o.banner(
        &ctx.args,
        format!("Exporting definitions in JSON to a file at \"{path}\" ..."),
    );
    if std::fs::write(path, text).is_err() {
        return Ok(o.fail(
            EX_DATAERR,
            format!("No permissions to write to file {path} or its parent directory"),
        ));
    }
    Ok(o)
}

pub(super) fn import_definitions(ctx: &Ctx) -> Done {
    let usage = "import_definitions <file_path | \"-\"> [--format <json | erlang>] [--skip-if-unchanged] [--timeout <timeout>]";
    ctx.arity(0, 1, usage)?;
    let path = ctx.args.positional.first().map_or("-", String::as_str);
    let from_stdin = path == "-";
    if !from_stdin && !Path::new(path).is_file() {
        let reason = format!("Bad argument: File {path} does not exist");
        return Err(Box::new(output::bad_argument(
            ctx.tool, &ctx.args, &reason, usage,
        )));
    }
    ctx.connect()?;
    let mut o = Outcome::default();
    let text = if from_stdin {
        o.banner(
            &ctx.args,
            "Importing definitions in JSON from standard input ...",
        );
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s);
        s
    } else {
        o.banner(
            &ctx.args,
            format!("Importing definitions in JSON from a file at \"{path}\" ..."),
        );
        std::fs::read_to_string(path).unwrap_or_default()
    };
    let doc: Value = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => {
            let rest = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
            let token: String = rest
                .chars()
                .skip(e.column().saturating_sub(1))
                .take_while(|c| !c.is_whitespace())
                .collect();
            return Ok(o.fail(
                EX_DATAERR,
                format!("Failed to deserialise input (format: JSON) (error: {{:unexpected_token, \"{token}\"}})"),
            ));
        }
    };
    let r = ctx.request("POST", "/api/definitions", Some(&doc))?;
    if r.ok() {
        o.banner(
            &ctx.args,
            "Successfully started definition import. This process is asynchronous and can take some time.",
        );
        return Ok(o);
    }
    let reason = super::reason(&r);
    // warren's "vhost 'x' does not exist" in RabbitMQ's words.
    if let Some(v) = reason
        .strip_prefix("vhost '")
        .and_then(|r| r.strip_suffix("' does not exist"))
    {
        return Ok(o.fail_bare(EX_DATAERR, format!("Virtual host '{v}' does not exist")));
    }
    Ok(o.fail(EX_DATAERR, reason))
}

/// Ask the node to close connections; how many it closed (None: the one named is not there).
fn close(ctx: &Ctx, body: Value) -> Result<Option<u64>, Box<Outcome>> {
    let r = ctx.request("POST", "/api/cli/close-connections", Some(&body))?;
    match r.status {
        404 => Ok(None),
        _ if r.ok() => Ok(Some(r.body["closed"].as_u64().unwrap_or(0))),
        _ => Err(Box::new(
            Outcome::default().fail(EX_SOFTWARE, super::reason(&r)),
        )),
    }
}

/// `close_connection`: RabbitMQ takes the connection's pid; warren takes its name (as
/// `list_connections name` shows it) or the pid `list_connections pid` shows.
pub(super) fn close_connection(ctx: &Ctx) -> Done {
    ctx.arity(2, 2, "close_connection <connection pid> <explanation>")?;
    let (name, reason) = (&ctx.args.positional[0], &ctx.args.positional[1]);
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Closing connection {name}, reason: {reason}..."),
    );
    let closed = close(ctx, json!({"name": name, "reason": reason}))?;
    // A pid of a connection that is gone is no error in RabbitMQ; anything else is no pid.
    if closed.is_none() && !(name.starts_with('<') && name.ends_with('>')) {
        return Ok(o.fail(
            EX_UNAVAILABLE,
            format!("Error:\n{{:invalid_pid_syntax, \"{name}\"}}"),
        ));
    }
    Ok(o)
}

pub(super) fn close_all_connections(ctx: &Ctx) -> Done {
    let usage = "close_all_connections [--vhost <vhost> --limit <limit>] [-n <node> --global] [--per-connection-delay <delay>] <explanation>";
    ctx.arity(1, 1, usage)?;
    let reason = &ctx.args.positional[0];
    let vhost = ctx.args.vhost();
    let global = ctx.args.flag("global");
    let limit = match ctx.args.value("limit").map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return Err(Box::new(
                ctx.usage_error("limit must be a non-negative integer", usage),
            ))
        }
    };
    let node = ctx.connect()?["node"].as_str().unwrap_or("").to_string();
    let mut o = Outcome::default();
    let banner = match (global, limit) {
        (true, _) => format!(
            "Closing all connections to node {node} (across all vhosts), reason: {reason}..."
        ),
        (false, Some(n)) => {
            format!("Closing {n} connections in vhost {vhost}, reason: {reason}...")
        }
        (false, None) => format!("Closing all connections in vhost {vhost}, reason: {reason}..."),
    };
    o.banner(&ctx.args, banner);
    let mut body = json!({"reason": reason, "limit": limit});
    if !global {
        body["vhost"] = json!(vhost);
    }
    let closed = close(ctx, body)?.unwrap_or(0);
    o.line(format!("Closed {closed} connections"));
    Ok(o)
}

pub(super) fn close_all_user_connections(ctx: &Ctx) -> Done {
    ctx.arity(2, 2, "close_all_user_connections <username> <explanation>")?;
    let (user, reason) = (&ctx.args.positional[0], &ctx.args.positional[1]);
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Closing connections of user {user}, reason: {reason}..."),
    );
    close(ctx, json!({"user": user, "reason": reason}))?;
    Ok(o)
}

pub(super) fn set_cluster_name(ctx: &Ctx) -> Done {
    ctx.arity(1, 1, "set_cluster_name <name>")?;
    let name = &ctx.args.positional[0];
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Setting cluster name to {name} ..."));
    let r = ctx.request("PUT", "/api/cluster-name", Some(&json!({"name": name})))?;
    Ok(if r.ok() {
        o
    } else {
        o.fail(EX_SOFTWARE, super::reason(&r))
    })
}

/// `set_log_level LEVEL`: the node checks the level (RabbitMQ's refusal exits 69).
pub(super) fn set_log_level(ctx: &Ctx) -> Done {
    ctx.arity(1, 1, "set_log_level <log_level>")?;
    let level = &ctx.args.positional[0];
    ctx.connect()?;
    let r = ctx.request("PUT", "/api/cli/log-level", Some(&json!({"level": level})))?;
    if !r.ok() {
        return Ok(Outcome::default().fail(EX_UNAVAILABLE, super::reason(&r)));
    }
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Setting log level to \"{level}\" ..."));
    Ok(o)
}

const FLAG_ITEMS: &[&str] = &[
    "desc",
    "doc_url",
    "name",
    "provided_by",
    "stability",
    "state",
];

pub(super) fn list_feature_flags(ctx: &Ctx) -> Done {
    let usage = "list_feature_flags [<column> ...] [--timeout <timeout>]";
    let columns: Vec<String> = if ctx.args.positional.is_empty() {
        vec!["name".into(), "state".into()]
    } else {
        ctx.args.positional.clone()
    };
    let bad: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| !FLAG_ITEMS.contains(c))
        .collect();
    if !bad.is_empty() {
        let reason = format!("Info key(s) {} are not supported", bad.join(","));
        return Err(Box::new(ctx.usage_error(&reason, usage)));
    }
    ctx.connect()?;
    let mut o = Outcome::default();
    if !ctx.args.json() {
        o.banner(&ctx.args, "Listing feature flags ...");
    }
    let flags = ctx.get("/api/cli/feature-flags")?;
    let rows: Vec<Vec<Value>> = flags
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            columns
                .iter()
                .map(|c| match c.as_str() {
                    "provided_by" => json!("rabbit"),
                    "doc_url" => json!(""),
                    _ => f[c.as_str()].clone(),
                })
                .collect()
        })
        .collect();
    output::table(&mut o, &ctx.args, &columns, &rows);
    Ok(o)
}

pub(super) fn enable_feature_flag(ctx: &Ctx) -> Done {
    ctx.arity(1, 1, "enable_feature_flag <all | feature_flag>")?;
    let name = &ctx.args.positional[0];
    let node = ctx.connect()?["node"].as_str().unwrap_or("").to_string();
    let mut o = Outcome::default();
    if name == "all" {
        o.banner(&ctx.args, "Enabling all feature flags ...");
        return Ok(o);
    }
    o.banner(&ctx.args, format!("Enabling feature flag \"{name}\" ..."));
    let flags = ctx.get("/api/cli/feature-flags")?;
    let known = flags
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["name"] == json!(name));
    Ok(if known {
        o
    } else {
        o.fail(
            EX_USAGE,
            format!("This feature flag is not supported by node {node}"),
        )
    })
}

/// `list_unresponsive_queues`: warren's queues answer or the node does not; none to list.
pub(super) fn list_unresponsive_queues(ctx: &Ctx) -> Done {
    let vhost = ctx.args.vhost();
    ctx.connect()?;
    let mut o = Outcome::default();
    if ctx.args.json() {
        o.line("[]");
    } else {
        o.banner(
            &ctx.args,
            format!("Listing unresponsive queues for vhost {vhost} ..."),
        );
    }
    Ok(o)
}

/// A fraction in 0.0..=1.0 as RabbitMQ reads one (`0.4`, `1`); None when not a number.
fn fraction(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

pub(super) fn set_vm_memory_high_watermark(ctx: &Ctx) -> Done {
    let usage = "set_vm_memory_high_watermark <fraction> | absolute <value>";
    ctx.arity(1, 2, usage)?;
    let p = &ctx.args.positional;
    let bad = |reason: &str| Box::new(output::bad_argument(ctx.tool, &ctx.args, reason, usage));
    let (body, shown) = match p.as_slice() {
        [f] => match fraction(f) {
            Some(x) if (0.0..=1.0).contains(&x) => (json!({"relative": x}), f.clone()),
            Some(_) => {
                return Err(bad(
                    "Bad argument: The threshold should be a fraction between 0.0 and 1.0",
                ))
            }
            None => return Err(bad("Bad argument.")),
        },
        [kind, v] if kind == "absolute" => match crate::rabbitmq_conf::bytes(v) {
            Some(n) => (json!({"absolute": n}), format!("{v} bytes")),
            None => return Err(bad("Bad argument.")),
        },
        _ => return Err(bad("Bad argument.")),
    };
    let node = ctx.connect()?["node"].as_str().unwrap_or("").to_string();
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Setting memory threshold on {node} to {shown} ..."),
    );
    let r = ctx.request("PUT", "/api/cli/memory-high-watermark", Some(&body))?;
    Ok(if r.ok() {
        o
    } else {
        o.fail(EX_SOFTWARE, super::reason(&r))
    })
}

pub(super) fn set_disk_free_limit(ctx: &Ctx) -> Done {
    let usage = "set_disk_free_limit <disk_limit> | mem_relative <fraction>";
    ctx.arity(1, 2, usage)?;
    let p = &ctx.args.positional;
    let bad = || {
        Box::new(output::bad_argument(
            ctx.tool,
            &ctx.args,
            "Bad argument.",
            usage,
        ))
    };
    let (body, shown) = match p.as_slice() {
        [v] => match crate::rabbitmq_conf::bytes(v) {
            Some(n) => (json!({"absolute": n}), format!("{v} bytes")),
            None => return Err(bad()),
        },
        [kind, f] if kind == "mem_relative" => match fraction(f).filter(|x| *x >= 0.0) {
            Some(x) => (json!({"relative": x}), format!("{f} times the total RAM")),
            None => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    let node = ctx.connect()?["node"].as_str().unwrap_or("").to_string();
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Setting disk free limit on {node} to {shown} ..."),
    );
    let r = ctx.request("PUT", "/api/cli/disk-free-limit", Some(&body))?;
    Ok(if r.ok() {
        o
    } else {
        o.fail(EX_SOFTWARE, super::reason(&r))
    })
}
