//! `rabbitmqctl list_*`: RabbitMQ's info items (columns) for queues, exchanges, bindings,
//! connections, channels, consumers, users, vhosts and permissions, read from the
//! management API and printed as RabbitMQ prints them.

use super::args::Args;
use super::client::seg;
use super::output::{self, name_list, Outcome, EX_UNAVAILABLE};
use super::Ctx;
use serde_json::{json, Value};

/// One `list_*` command.
struct Listing {
    command: &'static str,
    /// The usage line after the command name.
    usage: &'static str,
    /// Every info item RabbitMQ accepts (empty: the command takes no columns).
    items: &'static [&'static str],
    /// The columns printed when none are given.
    defaults: &'static [&'static str],
}

const QUEUE_ITEMS: &[&str] = &[
    "arguments",
    "auto_delete",
    "consumer_capacity",
    "consumer_utilisation",
    "consumers",
    "disk_reads",
    "disk_writes",
    "durable",
    "exclusive",
    "exclusive_consumer_pid",
    "exclusive_consumer_tag",
    "head_message_timestamp",
    "leader",
    "members",
    "memory",
    "message_bytes",
    "message_bytes_persistent",
    "message_bytes_ram",
    "message_bytes_ready",
    "message_bytes_unacknowledged",
    "messages",
    "messages_persistent",
    "messages_ram",
    "messages_ready",
    "messages_ready_ram",
    "messages_unacknowledged",
    "messages_unacknowledged_ram",
    "name",
    "online",
    "owner_pid",
    "pid",
    "policy",
    "slave_pids",
    "state",
    "synchronised_slave_pids",
    "type",
];

const LISTINGS: &[Listing] = &[
    Listing {
        command: "list_queues",
        usage: "list_queues [--vhost <vhost>] [--online] [--offline] [--local] [--no-table-headers] [<column>, ...] [--timeout <timeout>]",
        items: QUEUE_ITEMS,
        defaults: &["name", "messages"],
    },
    Listing {
        command: "list_exchanges",
        usage: "list_exchanges [--vhost <vhost>] [--no-table-headers] [<column> ...] [--timeout <timeout>]",
        items: &["arguments", "auto_delete", "durable", "internal", "name", "policy", "type"],
        defaults: &["name", "type"],
    },
    Listing {
        command: "list_bindings",
        usage: "list_bindings [--vhost <vhost>] [--no-table-headers] [<column> ...] [--timeout <timeout>]",
        items: &["arguments", "destination_kind", "destination_name", "routing_key", "source_kind", "source_name"],
        defaults: &["source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"],
    },
    Listing {
        command: "list_connections",
        usage: "list_connections [--no-table-headers] [<column> ...] [--timeout <timeout>]",
        items: &[
            "auth_mechanism", "channel_max", "channels", "client_properties", "connected_at",
            "frame_max", "host", "name", "peer_cert_issuer", "peer_cert_subject",
            "peer_cert_validity", "peer_host", "peer_port", "pid", "port", "protocol", "recv_cnt",
            "recv_oct", "send_cnt", "send_oct", "send_pend", "ssl", "ssl_cipher", "ssl_hash",
            "ssl_key_exchange", "ssl_protocol", "state", "timeout", "user", "vhost",
        ],
        defaults: &["user", "peer_host", "peer_port", "state"],
    },
    Listing {
        command: "list_channels",
        usage: "list_channels [--no-table-headers] [<column> ...]",
        items: &[
            "acks_uncommitted", "confirm", "connection", "consumer_count", "global_prefetch_count",
            "messages_unacknowledged", "messages_uncommitted", "messages_unconfirmed", "name",
            "number", "pid", "prefetch_count", "transactional", "user", "vhost",
        ],
        defaults: &["pid", "user", "consumer_count", "messages_unacknowledged"],
    },
    Listing {
        command: "list_consumers",
        usage: "list_consumers [--vhost <vhost>] [--no-table-headers] [<column> ...] [--timeout <timeout>]",
        items: &["ack_required", "active", "activity_status", "arguments", "channel_pid", "consumer_tag", "prefetch_count", "queue_name"],
        defaults: &["queue_name", "channel_pid", "consumer_tag", "ack_required", "prefetch_count", "active", "arguments"],
    },
    Listing {
        command: "list_users",
        usage: "list_users [--no-table-headers] [--timeout <timeout>]",
        items: &[],
        defaults: &["user", "tags"],
    },
    Listing {
        command: "list_vhosts",
        usage: "list_vhosts [--no-table-headers] [<column> ...]",
        items: &["cluster_state", "default_queue_type", "description", "name", "tags", "tracing"],
        defaults: &["name"],
    },
    Listing {
        command: "list_permissions",
        usage: "list_permissions [--vhost <vhost>] [--no-table-headers] [--timeout <timeout>]",
        items: &[],
        defaults: &["user", "configure", "write", "read"],
    },
    Listing {
        command: "list_user_permissions",
        usage: "list_user_permissions [--no-table-headers] <username> [--timeout <timeout>]",
        items: &[],
        defaults: &["vhost", "configure", "write", "read"],
    },
];

pub(super) fn run(ctx: &Ctx, command: &str) -> Outcome {
    let Some(l) = LISTINGS.iter().find(|l| l.command == command) else {
        return output::unknown_command(ctx.tool, command, super::ctl::COMMANDS);
    };
    super::settle(list(ctx, l))
}

fn list(ctx: &Ctx, l: &Listing) -> Result<Outcome, Box<Outcome>> {
    let args = &ctx.args;
    let takes_user = l.command == "list_user_permissions";
    let columns: Vec<String> = if l.items.is_empty() {
        ctx.arity(usize::from(takes_user), usize::from(takes_user), l.usage)?;
        l.defaults.iter().map(|s| s.to_string()).collect()
    } else {
        let given: Vec<String> = args
            .positional
            .iter()
            .flat_map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        let bad: Vec<&str> = given
            .iter()
            .map(String::as_str)
            .filter(|c| !l.items.contains(c))
            .collect();
        if !bad.is_empty() {
            let reason = format!("Info key(s) {} are not supported", bad.join(","));
            return Err(Box::new(ctx.usage_error(&reason, l.usage)));
        }
        if given.is_empty() {
            l.defaults.iter().map(|s| s.to_string()).collect()
        } else {
            given
        }
    };
    let status = ctx.connect()?;
    let node = status["node"].as_str().unwrap_or_default().to_string();
    let mut o = Outcome::default();
    let vhost = args.vhost();
    let user = args.positional.first().cloned().unwrap_or_default();
    let quiet = !args.banner() || args.json();
    let banner = |o: &mut Outcome, s: String| {
        if !quiet {
            o.line(s)
        }
    };
    let v = seg(vhost);
    let path = match l.command {
        "list_queues" => {
            banner(
                &mut o,
                format!("Timeout: {}.0 seconds ...", args.timeout_secs()),
            );
            banner(&mut o, format!("Listing queues for vhost {vhost} ..."));
            format!("/api/queues/{v}")
        }
        "list_exchanges" => {
            banner(&mut o, format!("Listing exchanges for vhost {vhost} ..."));
            format!("/api/exchanges/{v}")
        }
        "list_bindings" => {
            banner(&mut o, format!("Listing bindings for vhost {vhost}..."));
            format!("/api/bindings/{v}")
        }
        "list_connections" => {
            banner(&mut o, "Listing connections ...".into());
            "/api/connections".into()
        }
        "list_channels" => {
            banner(&mut o, "Listing channels ...".into());
            "/api/channels".into()
        }
        "list_consumers" => {
            banner(&mut o, format!("Listing consumers in vhost {vhost} ..."));
            format!("/api/consumers/{v}")
        }
        "list_users" => {
            banner(&mut o, "Listing users ...".into());
            "/api/users".into()
        }
        "list_vhosts" => {
            banner(&mut o, "Listing vhosts ...".into());
            "/api/vhosts".into()
        }
        "list_permissions" => {
            banner(
                &mut o,
                format!("Listing permissions for vhost \"{vhost}\" ..."),
            );
            format!("/api/vhosts/{v}/permissions")
        }
        _ => {
            banner(
                &mut o,
                format!("Listing permissions for user \"{user}\" ..."),
            );
            format!("/api/users/{}/permissions", seg(&user))
        }
    };
    let r = ctx.request("GET", &path, None)?;
    let rows = match r.status {
        // An unknown vhost has nothing to list, as in RabbitMQ.
        404 if !takes_user => Vec::new(),
        404 => return Ok(o.fail(EX_UNAVAILABLE, format!("{{:no_such_user, \"{user}\"}}"))),
        _ if !r.ok() => return Ok(o.fail(output::EX_SOFTWARE, super::reason(&r))),
        _ => r.body.as_array().cloned().unwrap_or_default(),
    };
    let rows: Vec<Vec<Value>> = rows
        .iter()
        .map(|obj| {
            columns
                .iter()
                .map(|c| item(l.command, c, obj, &node, args))
                .collect()
        })
        .collect();
    output::table(&mut o, args, &columns, &rows);
    Ok(o)
}

/// The value of info item `name` of one listed object.
fn item(command: &str, name: &str, obj: &Value, node: &str, args: &Args) -> Value {
    let field = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
    let names = |v: Value| {
        if args.json() {
            v
        } else {
            Value::String(name_list(&v))
        }
    };
    let pid = |v: &Value| match v.as_str() {
        Some(n) => Value::String(format!("<{node}.{n}>")),
        None => Value::Null,
    };
    match (command, name) {
        ("list_queues", "leader") => Value::String(node.into()),
        ("list_queues", "members" | "online") => names(json!([node])),
        ("list_queues", "pid") => pid(&field("name")),
        ("list_bindings", "source_name") => field("source"),
        ("list_bindings", "source_kind") => Value::String("exchange".into()),
        ("list_bindings", "destination_name") => field("destination"),
        ("list_bindings", "destination_kind") => field("destination_type"),
        ("list_connections", "pid") => pid(&field("name")),
        ("list_channels", "pid") => pid(&field("name")),
        ("list_channels", "connection") => pid(&obj["connection_details"]["name"]),
        ("list_consumers", "queue_name") => obj["queue"]["name"].clone(),
        ("list_consumers", "channel_pid") => pid(&obj["channel_details"]["name"]),
        ("list_consumers", "activity_status") => match obj.get("activity_status") {
            Some(v) => v.clone(),
            None => json!("up"),
        },
        ("list_users", "user") => field("name"),
        ("list_users" | "list_vhosts", "tags") => names(field("tags")),
        ("list_vhosts", "cluster_state") => {
            if args.json() {
                json!({node: "running"})
            } else {
                Value::String(format!("[{{{node}, running}}]"))
            }
        }
        ("list_vhosts", "default_queue_type") => match field("default_queue_type") {
            Value::Null => json!("classic"),
            v => v,
        },
        _ => field(name),
    }
}
