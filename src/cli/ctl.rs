//! `rabbitmqctl`: users, permissions, vhosts, queues, the node's status, and the listings
//! (in [`super::list`]).

use super::client::seg;
use super::output::{
    self, name_list, Outcome, EX_DATAERR, EX_NOUSER, EX_SOFTWARE, EX_UNAVAILABLE, EX_USAGE,
};
use super::{settle, Ctx, Done};
use serde_json::{json, Value};

pub(super) const COMMANDS: &[(&str, &str)] = &[
    ("add_user", "Creates a new user in the internal database. This user will have no permissions for any virtual hosts by default."),
    ("add_vhost", "Creates a virtual host"),
    ("authenticate_user", "Attempts to authenticate a user. Exits with a non-zero code if authentication fails."),
    ("await_startup", "Waits for the RabbitMQ application to start on the target node"),
    ("change_password", "Changes the user password"),
    ("clear_permissions", "Revokes user permissions for a vhost"),
    ("clear_policy", "Clears (removes) a policy"),
    ("clear_user_limits", "Clears user connection/channel limits"),
    ("clear_vhost_limits", "Clears virtual host limits"),
    ("close_all_connections", "Instructs the broker to close all connections for the specified vhost or entire RabbitMQ node"),
    ("close_all_user_connections", "Instructs the broker to close all connections of the specified user"),
    ("close_connection", "Instructs the broker to close the connection associated with the Erlang process id"),
    ("cluster_status", "Displays all the nodes in the cluster grouped by node type, together with the currently running nodes"),
    ("delete_queue", "Deletes a queue"),
    ("delete_user", "Removes a user from the internal database. Has no effect on users provided by external backends such as LDAP"),
    ("delete_vhost", "Deletes a virtual host"),
    ("enable_feature_flag", "Enables a feature flag or all supported feature flags on the target node"),
    ("export_definitions", "Exports definitions in JSON or compressed Erlang Term Format."),
    ("import_definitions", "Imports definitions in JSON or compressed Erlang Term Format."),
    ("list_bindings", "Lists all bindings on a vhost"),
    ("list_channels", "Lists all channels in the node"),
    ("list_connections", "Lists AMQP 0.9.1 connections for the node"),
    ("list_consumers", "Lists all consumers for a vhost"),
    ("list_exchanges", "Lists exchanges"),
    ("list_feature_flags", "Lists feature flags"),
    ("list_global_parameters", "Lists global runtime parameters"),
    ("list_operator_policies", "Lists operator policy overrides for a virtual host"),
    ("list_parameters", "Lists runtime parameters for a virtual host"),
    ("list_permissions", "Lists user permissions in a virtual host"),
    ("list_policies", "Lists all policies in a virtual host"),
    ("list_queues", "Lists queues and their properties"),
    ("list_unresponsive_queues", "Tests queues to respond within timeout. Lists those which did not respond"),
    ("list_user_limits", "Displays configured user limits"),
    ("list_user_permissions", "Lists permissions of a user across all virtual hosts"),
    ("list_users", "List user names and tags"),
    ("list_vhost_limits", "Displays configured virtual host limits"),
    ("list_vhosts", "Lists virtual hosts"),
    ("node_health_check", "DEPRECATED. Performs intrusive, opinionated health checks on a fully booted node. See https://www.rabbitmq.com/monitoring.html#health-checks instead"),
    ("ping", "Checks that the node OS process is up, registered with EPMD and CLI tools can authenticate with it"),
    ("purge_queue", "Purges a queue (removes all messages in it)"),
    ("set_cluster_name", "Sets cluster name"),
    ("set_disk_free_limit", "Sets the disk_free_limit setting"),
    ("set_log_level", "Sets log level in the running node"),
    ("set_permissions", "Sets user permissions for a vhost"),
    ("set_policy", "Sets or updates a policy"),
    ("set_user_limits", "Sets user limits"),
    ("set_user_tags", "Sets user tags"),
    ("set_vhost_limits", "Sets virtual host limits"),
    ("set_vm_memory_high_watermark", "Sets the vm_memory_high_watermark setting"),
    ("shutdown", "Stops RabbitMQ and its runtime (Erlang VM). Monitors progress for local nodes. Does not require a PID file path."),
    ("status", "Displays status of a node"),
    ("stop", "Stops RabbitMQ and its runtime (Erlang VM). Requires a local node pid file path to monitor progress."),
    ("wait", "Waits for RabbitMQ node startup by monitoring a local PID file. See also 'rabbitmqctl await_online_nodes'"),
];

pub(super) fn run(ctx: &Ctx, command: &str) -> Outcome {
    use super::{admin, limits, policies};
    settle(match command {
        "set_policy" => policies::set_policy(ctx),
        "clear_policy" => policies::clear_policy(ctx),
        "list_policies" => policies::list_policies(ctx, false),
        "list_operator_policies" => policies::list_policies(ctx, true),
        "list_parameters" => policies::list_parameters(ctx),
        "list_global_parameters" => policies::list_global_parameters(ctx),
        "set_vhost_limits" => limits::set_vhost_limits(ctx),
        "clear_vhost_limits" => limits::clear_vhost_limits(ctx),
        "list_vhost_limits" => limits::list_vhost_limits(ctx),
        "set_user_limits" => limits::set_user_limits(ctx),
        "clear_user_limits" => limits::clear_user_limits(ctx),
        "list_user_limits" => limits::list_user_limits(ctx),
        "export_definitions" => admin::export_definitions(ctx),
        "import_definitions" => admin::import_definitions(ctx),
        "close_connection" => admin::close_connection(ctx),
        "close_all_connections" => admin::close_all_connections(ctx),
        "close_all_user_connections" => admin::close_all_user_connections(ctx),
        "set_cluster_name" => admin::set_cluster_name(ctx),
        "list_feature_flags" => admin::list_feature_flags(ctx),
        "enable_feature_flag" => admin::enable_feature_flag(ctx),
        "list_unresponsive_queues" => admin::list_unresponsive_queues(ctx),
        "set_vm_memory_high_watermark" => admin::set_vm_memory_high_watermark(ctx),
        "set_disk_free_limit" => admin::set_disk_free_limit(ctx),
        "set_log_level" => admin::set_log_level(ctx),
        _ if command.starts_with("list_") => return super::list::run(ctx, command),
        "await_startup" => await_startup(ctx),
        "wait" => super::wait::wait(ctx),
        "status" => super::status::status(ctx, true),
        "ping" => super::diagnostics::ping(ctx),
        "add_user" => add_user(ctx),
        "delete_user" => delete_user(ctx),
        "change_password" => change_password(ctx),
        "authenticate_user" => authenticate_user(ctx),
        "set_user_tags" => set_user_tags(ctx),
        "set_permissions" => set_permissions(ctx),
        "clear_permissions" => clear_permissions(ctx),
        "add_vhost" => add_vhost(ctx),
        "delete_vhost" => delete_vhost(ctx),
        "purge_queue" => purge_queue(ctx),
        "delete_queue" => delete_queue(ctx),
        "cluster_status" => super::status::cluster_status(ctx),
        "node_health_check" => node_health_check(ctx),
        "stop" | "shutdown" => stop(ctx, command),
        _ => Ok(output::unknown_command(ctx.tool, command, COMMANDS)),
    })
}

fn await_startup(ctx: &Ctx) -> Done {
    ctx.arity(0, 0, "await_startup")?;
    ctx.connect()?;
    Ok(Outcome::default())
}

/// The user's record, or exit 67 with `missing` (the text differs between commands).
fn existing_user(
    ctx: &Ctx,
    o: &Outcome,
    user: &str,
    missing: String,
) -> Result<Value, Box<Outcome>> {
    let r = ctx.request("GET", &format!("/api/users/{}", seg(user)), None)?;
    if r.status == 404 {
        return Err(Box::new(take(o).fail(EX_NOUSER, missing)));
    }
    Ok(r.body)
}

/// The outcome so far, to continue it into an error.
fn take(o: &Outcome) -> Outcome {
    Outcome {
        out: o.out.clone(),
        ..Outcome::default()
    }
}

fn add_user(ctx: &Ctx) -> Done {
    ctx.arity(1, 2, "add_user <username> <password>")?;
    let user = &ctx.args.positional[0];
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Adding user \"{user}\" ..."));
    let password = match ctx.args.positional.get(1) {
        Some(p) => p.clone(),
        None => {
            o.line("Password: ");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            let p = line.trim_end_matches(['\r', '\n']).to_string();
            if p.is_empty() {
                return Ok(o.fail(EX_DATAERR, "Password is not provided via argument or stdin"));
            }
            p
        }
    };
    let path = format!("/api/users/{}", seg(user));
    if ctx.request("GET", &path, None)?.ok() {
        return Ok(o.fail(EX_SOFTWARE, format!("User \"{user}\" already exists")));
    }
    let r = ctx.request(
        "PUT",
        &path,
        Some(&json!({"password": password, "tags": []})),
    )?;
    if !r.ok() {
        return Ok(o.fail(EX_SOFTWARE, super::reason(&r)));
    }
    o.banner(&ctx.args, "Done. Don't forget to grant the user permissions to some virtual hosts! See 'rabbitmqctl help set_permissions' to learn more.");
    Ok(o)
}

fn delete_user(ctx: &Ctx) -> Done {
    ctx.arity(1, 1, "delete_user <username>")?;
    let user = &ctx.args.positional[0];
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Deleting user \"{user}\" ..."));
    let r = ctx.request("DELETE", &format!("/api/users/{}", seg(user)), None)?;
    Ok(match r.status {
        404 => o.fail(EX_NOUSER, format!("User \"{user}\" does not exist")),
        _ if r.ok() => o,
        _ => o.fail(EX_SOFTWARE, super::reason(&r)),
    })
}

fn change_password(ctx: &Ctx) -> Done {
    ctx.arity(2, 2, "change_password <username> <password>")?;
    let (user, password) = (&ctx.args.positional[0], &ctx.args.positional[1]);
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Changing password for user \"{user}\" ..."),
    );
    let record = existing_user(ctx, &o, user, format!("User \"{user}\" does not exist"))?;
    let body =
        json!({"password": password, "tags": record.get("tags").cloned().unwrap_or(json!([]))});
    let r = ctx.request("PUT", &format!("/api/users/{}", seg(user)), Some(&body))?;
    Ok(if r.ok() {
        o
    } else {
        o.fail(EX_SOFTWARE, super::reason(&r))
    })
}

fn authenticate_user(ctx: &Ctx) -> Done {
    ctx.arity(2, 2, "authenticate_user <username> <password>")?;
    let (user, password) = (&ctx.args.positional[0], &ctx.args.positional[1]);
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Authenticating user \"{user}\" ..."));
    let r = ctx.request(
        "POST",
        "/api/cli/authenticate",
        Some(&json!({"user": user, "password": password})),
    )?;
    if r.body["authenticated"] == json!(true) {
        o.line("Success");
        return Ok(o);
    }
    Ok(o.fail(
        EX_DATAERR,
        format!(
            "Error: failed to authenticate user \"{user}\"\nuser '{user}' - invalid credentials"
        ),
    ))
}

fn set_user_tags(ctx: &Ctx) -> Done {
    ctx.arity(1, usize::MAX, "set_user_tags <username> <tag> [...]")?;
    let user = &ctx.args.positional[0];
    let tags = &ctx.args.positional[1..];
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!(
            "Setting tags for user \"{user}\" to {} ...",
            name_list(&json!(tags))
        ),
    );
    existing_user(ctx, &o, user, format!("User \"{user}\" does not exist"))?;
    let r = ctx.request(
        "PUT",
        &format!("/api/users/{}", seg(user)),
        Some(&json!({"tags": tags})),
    )?;
    Ok(if r.ok() {
        o
    } else {
        o.fail(EX_SOFTWARE, super::reason(&r))
    })
}

/// The vhost must exist (exit 69, as RabbitMQ) and the user too (67).
fn check_user_and_vhost(
    ctx: &Ctx,
    o: &Outcome,
    user: &str,
    vhost: &str,
) -> Result<(), Box<Outcome>> {
    if ctx
        .request("GET", &format!("/api/vhosts/{}", seg(vhost)), None)?
        .status
        == 404
    {
        return Err(Box::new(take(o).fail(
            EX_UNAVAILABLE,
            format!("Virtual host {vhost} does not exist"),
        )));
    }
    existing_user(ctx, o, user, format!("User {user} does not exist"))?;
    Ok(())
}

fn set_permissions(ctx: &Ctx) -> Done {
    let usage = "set_permissions [--vhost <vhost>] <username> <conf> <write> <read>";
    ctx.arity(4, 4, usage)?;
    let p = &ctx.args.positional;
    let vhost = ctx.args.vhost();
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!(
            "Setting permissions for user \"{}\" in vhost \"{vhost}\" ...",
            p[0]
        ),
    );
    check_user_and_vhost(ctx, &o, &p[0], vhost)?;
    let body = json!({"configure": p[1], "write": p[2], "read": p[3]});
    let r = ctx.request(
        "PUT",
        &format!("/api/permissions/{}/{}", seg(vhost), seg(&p[0])),
        Some(&body),
    )?;
    Ok(if r.ok() {
        o
    } else {
        o.fail(EX_SOFTWARE, super::reason(&r))
    })
}

fn clear_permissions(ctx: &Ctx) -> Done {
    ctx.arity(1, 1, "clear_permissions [--vhost <vhost>] <username>")?;
    let user = &ctx.args.positional[0];
    let vhost = ctx.args.vhost();
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Clearing permissions for user \"{user}\" in vhost \"{vhost}\" ..."),
    );
    check_user_and_vhost(ctx, &o, user, vhost)?;
    let r = ctx.request(
        "DELETE",
        &format!("/api/permissions/{}/{}", seg(vhost), seg(user)),
        None,
    )?;
    // Clearing permissions that were never set is not an error.
    Ok(if r.ok() || r.status == 404 {
        o
    } else {
        o.fail(EX_SOFTWARE, super::reason(&r))
    })
}

fn add_vhost(ctx: &Ctx) -> Done {
    let usage = "add_vhost <vhost> [--description <description> --tags \"<tag1>,<tag2>,<...>\" --default-queue-type <quorum|classic|stream>]";
    ctx.arity(1, 1, usage)?;
    let vhost = &ctx.args.positional[0];
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Adding vhost \"{vhost}\" ..."));
    let r = ctx.request(
        "PUT",
        &format!("/api/vhosts/{}", seg(vhost)),
        Some(&json!({})),
    )?;
    Ok(if r.ok() {
        o
    } else {
        o.fail(EX_SOFTWARE, super::reason(&r))
    })
}

fn delete_vhost(ctx: &Ctx) -> Done {
    ctx.arity(1, 1, "delete_vhost <vhost>")?;
    let vhost = &ctx.args.positional[0];
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Deleting vhost \"{vhost}\" ..."));
    let r = ctx.request("DELETE", &format!("/api/vhosts/{}", seg(vhost)), None)?;
    Ok(match r.status {
        404 => o.fail_bare(EX_DATAERR, format!("Virtual host '{vhost}' does not exist")),
        _ if r.ok() => o,
        _ => o.fail(EX_SOFTWARE, super::reason(&r)),
    })
}

fn purge_queue(ctx: &Ctx) -> Done {
    ctx.arity(1, 1, "purge_queue <queue> [--timeout <timeout>]")?;
    let queue = &ctx.args.positional[0];
    let vhost = ctx.args.vhost();
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Purging queue '{queue}' in vhost '{vhost}' ..."),
    );
    let r = ctx.request(
        "DELETE",
        &format!("/api/queues/{}/{}/contents", seg(vhost), seg(queue)),
        None,
    )?;
    Ok(match r.status {
        404 => o.fail(EX_UNAVAILABLE, "not_found"),
        _ if r.ok() => o,
        _ => o.fail(EX_SOFTWARE, super::reason(&r)),
    })
}

fn delete_queue(ctx: &Ctx) -> Done {
    let usage = "delete_queue <queue_name> [--if-empty|-e] [--if-unused|-u] [--timeout <timeout>]";
    ctx.arity(1, 1, usage)?;
    let queue = &ctx.args.positional[0];
    let vhost = ctx.args.vhost();
    let (empty, unused) = (ctx.args.flag("if-empty"), ctx.args.flag("if-unused"));
    ctx.connect()?;
    let mut o = Outcome::default();
    let condition = match (empty, unused) {
        (true, true) => " if queue is empty and unused",
        (true, false) => " if queue is empty",
        (false, true) => " if queue is unused",
        (false, false) => "",
    };
    o.banner(
        &ctx.args,
        format!("Deleting queue '{queue}' on vhost '{vhost}'{condition} ..."),
    );
    let path = format!("/api/queues/{}/{}", seg(vhost), seg(queue));
    let info = ctx.request("GET", &path, None)?;
    if info.status == 404 {
        return Ok(o.fail(EX_USAGE, "Queue not found"));
    }
    let ready = info
        .body
        .get("messages_ready")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let r = ctx.request(
        "DELETE",
        &format!("{path}?if-empty={empty}&if-unused={unused}"),
        None,
    )?;
    if r.ok() {
        o.line(format!(
            "Queue was successfully deleted with {ready} ready messages"
        ));
        return Ok(o);
    }
    let reason = super::reason(&r);
    Ok(match r.status {
        404 => o.fail(EX_USAGE, "Queue not found"),
        400 if reason.ends_with("not empty") => o.fail(EX_USAGE, "Queue is not empty"),
        400 if reason.ends_with("in use") => o.fail(EX_USAGE, "Queue is in use"),
        _ => o.fail(EX_SOFTWARE, reason),
    })
}

fn node_health_check(ctx: &Ctx) -> Done {
    ctx.arity(0, 0, "node_health_check [--timeout <timeout>]")?;
    let mut o = Outcome::default();
    o.banner(&ctx.args, "This command is DEPRECATED and will be removed in a future version.\nIt performs intrusive, opinionated health checks and requires a fully booted node.\nUse one of the options covered in https://www.rabbitmq.com/monitoring.html#health-checks instead.");
    o.banner(
        &ctx.args,
        format!("Timeout: {} seconds ...", ctx.args.timeout.unwrap_or(70)),
    );
    o.banner(
        &ctx.args,
        format!("Checking health of node {} ...", ctx.node.name),
    );
    let status = ctx.connect()?;
    if let Some(alarm) = status["alarms"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
    {
        return Ok(o.fail(
            EX_UNAVAILABLE,
            format!("Error: health check failed. Message: resource alarm(s) in effect: [{alarm}]"),
        ));
    }
    o.line("Health check passed");
    Ok(o)
}

/// `stop` and `shutdown`: ask the node to stop; `shutdown` waits until it has.
fn stop(ctx: &Ctx, command: &str) -> Done {
    let usage = if command == "stop" {
        "stop [--idempotent] [<pidfile>]"
    } else {
        "shutdown [--wait] [--timeout <timeout>]"
    };
    ctx.arity(0, usize::from(command == "stop"), usage)?;
    let status = match ctx.node.connect() {
        Ok(s) => s,
        Err(_) if ctx.args.flag("idempotent") => return Ok(Outcome::default()),
        Err(e) => return Err(Box::new(output::unreachable(&ctx.node, &e))),
    };
    let node = &ctx.node.name;
    let pid = status["pid"].as_u64().unwrap_or(0);
    let mut o = Outcome::default();
    if command == "stop" {
        o.banner(&ctx.args, format!("Stopping and halting node {node} ..."));
    } else {
        o.banner(
            &ctx.args,
            format!("Shutting down RabbitMQ node {node} running at PID {pid}"),
        );
    }
    ctx.request("POST", "/api/cli/stop", None)?;
    if command == "shutdown" {
        o.banner(&ctx.args, format!("Waiting for PID {pid} to terminate"));
        let deadline = std::time::Instant::now() + ctx.node.timeout;
        while ctx.node.open(ctx.node.port).is_ok() {
            if std::time::Instant::now() > deadline {
                return Ok(o.fail(EX_SOFTWARE, format!("node {node} did not stop in time")));
            }
            std::thread::sleep(std::time::Duration::from_millis(50)); // poll interval
        }
        o.banner(
            &ctx.args,
            format!("RabbitMQ node {node} running at PID {pid} has stopped"),
        );
    }
    Ok(o)
}
