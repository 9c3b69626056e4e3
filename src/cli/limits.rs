//! `rabbitmqctl` limits of vhosts (`set_vhost_limits`, `clear_vhost_limits`,
//! `list_vhost_limits`) and of users (`set_user_limits`, `clear_user_limits`,
//! `list_user_limits`), through the management API's `/api/vhost-limits` and
//! `/api/user-limits`. As in RabbitMQ, setting a vhost's limits replaces all of them, while
//! setting a user's changes only those given.

use super::client::seg;
use super::output::{self, proplist, Outcome, EX_SOFTWARE, EX_UNAVAILABLE};
use super::policies::{require_vhost, NOT_JSON};
use super::{Ctx, Done};
use serde_json::{json, Map, Value};

const VHOST_LIMITS: &[&str] = &["max-connections", "max-queues"];
const USER_LIMITS: &[&str] = &["max-connections", "max-channels"];

/// The limits of a definition, or RabbitMQ's complaint: not JSON, or unknown terms.
fn parse_limits(
    definition: &str,
    known: &[&str],
    unknown: impl Fn(String) -> String,
) -> Result<Map<String, Value>, String> {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(definition) else {
        return Err(NOT_JSON.into());
    };
    let bad: Vec<(&String, &Value)> = m
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .collect();
    if !bad.is_empty() {
        return Err(unknown(proplist(&bad)));
    }
    Ok(m)
}

/// Set `given` at `base/{name}`, and clear the other `known` limits when `replace`.
fn put_limits(
    ctx: &Ctx,
    base: &str,
    known: &[&str],
    given: &Map<String, Value>,
    replace: bool,
) -> Result<Option<String>, Box<Outcome>> {
    for name in known {
        let path = format!("{base}/{name}");
        let r = match given.get(*name) {
            Some(v) => ctx.request("PUT", &path, Some(&json!({"value": v})))?,
            None if replace => ctx.request("DELETE", &path, None)?,
            None => continue,
        };
        if !r.ok() && r.status != 404 {
            return Ok(Some(super::reason(&r)));
        }
    }
    Ok(None)
}

pub(super) fn set_vhost_limits(ctx: &Ctx) -> Done {
    ctx.arity(1, 1, "set_vhost_limits [--vhost <vhost>] <definition>")?;
    let definition = &ctx.args.positional[0];
    let vhost = ctx.args.vhost();
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Setting vhost limits to \"{definition}\" for vhost \"{vhost}\" ..."),
    );
    require_vhost(ctx, &o)?;
    let limits = match parse_limits(definition, VHOST_LIMITS, |t| {
        format!("Validation failed\n\nUnrecognised terms {t} in limits\n")
    }) {
        Ok(l) => l,
        Err(e) => return Ok(o.fail(EX_UNAVAILABLE, e)),
    };
    let base = format!("/api/vhost-limits/{}", seg(vhost));
    Ok(match put_limits(ctx, &base, VHOST_LIMITS, &limits, true)? {
        None => o,
        Some(e) => o.fail(EX_SOFTWARE, e),
    })
}

/// The limits of one vhost or user as the API lists them (`{}` without any).
fn current(ctx: &Ctx, path: &str) -> Result<Value, Box<Outcome>> {
    let all = ctx.get(path)?;
    Ok(all
        .as_array()
        .and_then(|a| a.first())
        .map(|l| l["value"].clone())
        .unwrap_or(json!({})))
}

fn is_empty(v: &Value) -> bool {
    v.as_object().is_none_or(Map::is_empty)
}

pub(super) fn clear_vhost_limits(ctx: &Ctx) -> Done {
    ctx.arity(0, 0, "clear_vhost_limits [--vhost <vhost>]")?;
    let vhost = ctx.args.vhost();
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Clearing vhost \"{vhost}\" limits ..."));
    let base = format!("/api/vhost-limits/{}", seg(vhost));
    if is_empty(&current(ctx, &base)?) {
        return Ok(o.fail(EX_UNAVAILABLE, "Parameter does not exist"));
    }
    Ok(
        match put_limits(ctx, &base, VHOST_LIMITS, &Map::new(), true)? {
            None => o,
            Some(e) => o.fail(EX_SOFTWARE, e),
        },
    )
}

pub(super) fn list_vhost_limits(ctx: &Ctx) -> Done {
    ctx.arity(
        0,
        0,
        "list_vhost_limits [--vhost <vhost>] [--global] [--no-table-headers]",
    )?;
    let vhost = ctx.args.vhost();
    let node = ctx.connect()?["node"].as_str().unwrap_or("").to_string();
    let mut o = Outcome::default();
    let json = ctx.args.json();
    if ctx.args.flag("global") {
        if !json {
            o.banner(&ctx.args, "Listing limits for all vhosts ...");
        }
        let all = ctx.get("/api/vhost-limits")?;
        let rows: Vec<Vec<Value>> = all
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| vec![l["vhost"].clone(), Value::String(l["value"].to_string())])
            .collect();
        let columns = ["vhost", "limits"].map(String::from);
        output::table_or_blank(&mut o, &ctx.args, &columns, &rows);
        return Ok(o);
    }
    if !json {
        o.banner(
            &ctx.args,
            format!("Listing limits for vhost \"{vhost}\" ..."),
        );
    }
    require_vhost(ctx, &o)?;
    let limits = current(ctx, &format!("/api/vhost-limits/{}", seg(vhost)))?;
    let text = if is_empty(&limits) {
        String::new()
    } else {
        limits.to_string()
    };
    if json {
        o.line(json!({"node": node, "result": "ok", "value": text}).to_string());
    } else {
        o.line(text);
    }
    Ok(o)
}

/// The user must exist: exit 69 with RabbitMQ's Elixir tuple.
fn require_user(ctx: &Ctx, o: &Outcome, user: &str) -> Result<(), Box<Outcome>> {
    let r = ctx.request("GET", &format!("/api/users/{}", seg(user)), None)?;
    if r.status == 404 {
        let o = Outcome {
            out: o.out.clone(),
            ..Outcome::default()
        };
        return Err(Box::new(
            o.fail(EX_UNAVAILABLE, format!("{{:no_such_user, \"{user}\"}}")),
        ));
    }
    Ok(())
}

pub(super) fn set_user_limits(ctx: &Ctx) -> Done {
    ctx.arity(2, 2, "set_user_limits <username> <definition>")?;
    let (user, definition) = (&ctx.args.positional[0], &ctx.args.positional[1]);
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Setting user limits to \"{definition}\" for user \"{user}\" ..."),
    );
    require_user(ctx, &o, user)?;
    let limits = match parse_limits(definition, USER_LIMITS, |t| {
        format!("Unrecognised terms {t} in user-limits")
    }) {
        Ok(l) => l,
        Err(e) => return Ok(o.fail(EX_UNAVAILABLE, e)),
    };
    let base = format!("/api/user-limits/{}", seg(user));
    Ok(match put_limits(ctx, &base, USER_LIMITS, &limits, false)? {
        None => o,
        Some(e) => o.fail(EX_SOFTWARE, e),
    })
}

pub(super) fn clear_user_limits(ctx: &Ctx) -> Done {
    ctx.arity(2, 2, "clear_user_limits <username> <limit_type> | all")?;
    let (user, which) = (&ctx.args.positional[0], &ctx.args.positional[1]);
    ctx.connect()?;
    let mut o = Outcome::default();
    if which == "all" {
        o.banner(
            &ctx.args,
            format!("Clearing all limits for user \"{user}\" ..."),
        );
    } else {
        o.banner(
            &ctx.args,
            format!("Clearing \"{which}\" limit for user \"{user}\" ..."),
        );
    }
    require_user(ctx, &o, user)?;
    let base = format!("/api/user-limits/{}", seg(user));
    // An unknown limit name clears nothing, without an error (as RabbitMQ).
    for name in USER_LIMITS {
        if which == "all" || which == name {
            let r = ctx.request("DELETE", &format!("{base}/{name}"), None)?;
            if !r.ok() && r.status != 404 {
                return Ok(o.fail(EX_SOFTWARE, super::reason(&r)));
            }
        }
    }
    Ok(o)
}

pub(super) fn list_user_limits(ctx: &Ctx) -> Done {
    ctx.arity(
        0,
        0,
        "list_user_limits [--user <username>] [--global] [--no-table-headers]",
    )?;
    // RabbitMQ's tool lists the limits of `guest` unless told another user.
    let user = ctx.args.value("user").unwrap_or("guest");
    ctx.connect()?;
    let mut o = Outcome::default();
    let json = ctx.args.json();
    if ctx.args.flag("global") {
        if !json {
            o.banner(&ctx.args, "Listing limits for all users ...");
        }
        let all = ctx.get("/api/user-limits")?;
        let rows: Vec<Vec<Value>> = all
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| vec![l["user"].clone(), Value::String(l["value"].to_string())])
            .collect();
        let columns = ["user", "limits"].map(String::from);
        output::table_or_blank(&mut o, &ctx.args, &columns, &rows);
        return Ok(o);
    }
    if !json {
        o.banner(&ctx.args, format!("Listing limits for user \"{user}\" ..."));
    }
    require_user(ctx, &o, user)?;
    let limits = current(ctx, &format!("/api/user-limits/{}", seg(user)))?.to_string();
    if json {
        o.line(json!({"message": limits}).to_string());
    } else {
        o.line(limits);
    }
    Ok(o)
}
