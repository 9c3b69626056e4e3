//! `rabbitmq-plugins`: the plugins warren has built in. They cannot be switched on or off
//! with this tool (the management and Prometheus listeners follow the configuration), so
//! `enable` and `disable` of a known plugin report an unchanged configuration.

use super::output::{Outcome, EX_SOFTWARE};
use super::{settle, Ctx};
use serde_json::Value;

pub(super) const COMMANDS: &[(&str, &str)] = &[
    ("disable", "Disables one or more plugins"),
    ("enable", "Enables one or more plugins"),
    ("list", "Lists plugins and their state"),
];

/// Built-in plugins and whether they count as explicitly enabled (the others come with them).
const PLUGINS: &[(&str, bool)] = &[
    ("rabbitmq_consistent_hash_exchange", true),
    ("rabbitmq_delayed_message_exchange", true),
    ("rabbitmq_management", true),
    ("rabbitmq_management_agent", false),
    ("rabbitmq_prometheus", true),
    ("rabbitmq_web_dispatch", false),
];

/// Whether warren has this plugin built in.
pub fn is_builtin(name: &str) -> bool {
    PLUGINS.iter().any(|(p, _)| *p == name)
}

/// Which built-in plugins are on in a configuration.
pub fn enabled(config: &crate::config::Config) -> Vec<&'static str> {
    PLUGINS
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| match *p {
            "rabbitmq_management" | "rabbitmq_management_agent" => config.management.enabled,
            "rabbitmq_prometheus" => config.prometheus.enabled,
            "rabbitmq_web_dispatch" => config.management.enabled || config.prometheus.enabled,
            _ => true,
        })
        .collect()
}

pub(super) fn run(ctx: &Ctx, command: &str) -> Outcome {
    settle(match command {
        "list" => list(ctx),
        _ => change(ctx, command),
    })
}

/// The node's running plugins, when it answers.
fn running(ctx: &Ctx) -> Option<Vec<String>> {
    ctx.node.connect().ok().map(|s| plugin_names(&s))
}

/// The `plugins` of a node's status.
fn plugin_names(status: &Value) -> Vec<String> {
    status["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

fn list(ctx: &Ctx) -> Result<Outcome, Box<Outcome>> {
    let usage = "list [pattern] [--verbose] [--minimal] [--enabled] [--implicitly-enabled]";
    ctx.arity(0, 1, usage)?;
    let pattern = ctx.args.positional.first().map_or(".*", String::as_str);
    let Ok(re) = regex::Regex::new(pattern) else {
        return Err(Box::new(
            ctx.usage_error(&format!("invalid pattern {pattern:?}"), usage),
        ));
    };
    let node = &ctx.node.name;
    let on = running(ctx);
    let mut o = Outcome::default();
    let shown: Vec<(&str, &str)> = PLUGINS
        .iter()
        .filter(|(p, _)| re.is_match(p))
        .filter_map(|(p, explicit)| {
            let is_on = on.as_ref().is_none_or(|r| r.iter().any(|x| x == p));
            let mark = match (is_on, explicit, on.is_some()) {
                (true, true, true) => "[E*]",
                (true, false, true) => "[e*]",
                (true, true, false) => "[E ]",
                (true, false, false) => "[e ]",
                _ => "[  ]",
            };
            let enabled_only = ctx.args.flag("enabled") || ctx.args.flag("implicitly-enabled");
            if enabled_only && !is_on || ctx.args.flag("enabled") && !explicit {
                return None;
            }
            Some((*p, mark))
        })
        .collect();
    if ctx.args.flag("minimal") {
        for (p, _) in shown {
            o.line(p);
        }
        return Ok(o);
    }
    o.banner(
        &ctx.args,
        format!("Listing plugins with pattern \"{pattern}\" ..."),
    );
    o.line(" Configured: E = explicitly enabled; e = implicitly enabled");
    o.line(format!(" | Status: * = running on {node}"));
    o.line(" |/");
    let width = PLUGINS.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    for (p, mark) in shown {
        o.line(format!("{mark} {p:width$} {}", crate::mgmt::VERSION));
    }
    Ok(o)
}

fn change(ctx: &Ctx, command: &str) -> Result<Outcome, Box<Outcome>> {
    ctx.arity(
        0,
        usize::MAX,
        &format!("{command} <plugin1> [ <plugin2>] | --all [--offline] [--online]"),
    )?;
    let node = &ctx.node.name;
    let mut names: Vec<String> = ctx.args.positional.clone();
    if ctx.args.flag("all") {
        names = PLUGINS.iter().map(|(p, _)| p.to_string()).collect();
    }
    if names.is_empty() {
        return Err(Box::new(ctx.usage_error(
            "not enough arguments.",
            &format!("{command} <plugin1> [ <plugin2>] | --all [--offline] [--online]"),
        )));
    }
    let offline = ctx.args.flag("offline");
    let on = if offline { None } else { Some(ctx.connect()?) };
    let mut o = Outcome::default();
    let verb = if command == "enable" {
        "Enabling"
    } else {
        "Disabling"
    };
    o.banner(&ctx.args, format!("{verb} plugins on node {node}:"));
    for n in &names {
        o.banner(&ctx.args, n);
    }
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !PLUGINS.iter().any(|(p, _)| p == n))
        .collect();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|n| format!(":{n}")).collect();
        return Ok(o.fail(
            EX_SOFTWARE,
            format!("{{:plugins_not_found, [{}]}}", list.join(", ")),
        ));
    }
    let configured: Vec<String> = match &on {
        Some(s) => plugin_names(s),
        None => PLUGINS.iter().map(|(p, _)| p.to_string()).collect(),
    };
    o.banner(&ctx.args, "The following plugins have been configured:");
    for p in &configured {
        o.banner(&ctx.args, format!("  {p}"));
    }
    if offline {
        o.banner(
            &ctx.args,
            "Offline change; changes will take effect at broker restart.",
        );
    } else {
        o.banner(
            &ctx.args,
            format!("Applying plugin configuration to {node}..."),
        );
        o.banner(&ctx.args, "Plugin configuration unchanged.");
    }
    Ok(o)
}
