//! `rabbitmqctl` policies and runtime parameters: `set_policy`, `clear_policy`,
//! `list_policies`, `list_operator_policies` (warren has none), `list_parameters` and
//! `list_global_parameters`, through the management API's policies and parameters.

use super::client::seg;
use super::output::{self, Outcome, EX_DATAERR, EX_SOFTWARE, EX_UNAVAILABLE};
use super::{Ctx, Done};
use serde_json::{json, Value};

/// The vhost of `-p` must exist: RabbitMQ's bare message and exit 65, after the banner.
pub(super) fn require_vhost(ctx: &Ctx, o: &Outcome) -> Result<(), Box<Outcome>> {
    let vhost = ctx.args.vhost();
    let r = ctx.request("GET", &format!("/api/vhosts/{}", seg(vhost)), None)?;
    if r.status == 404 {
        let o = Outcome {
            out: o.out.clone(),
            ..Outcome::default()
        };
        return Err(Box::new(o.fail_bare(
            EX_DATAERR,
            format!("Virtual host '{vhost}' does not exist"),
        )));
    }
    Ok(())
}

/// Undo the HTML escaping of the management API's error reasons.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The text RabbitMQ gives for a definition that is not JSON.
pub(super) const NOT_JSON: &str = "JSON decoding error. Reason: badarg";

pub(super) fn set_policy(ctx: &Ctx) -> Done {
    let usage = "set_policy [--vhost <vhost>] [--priority <priority>] [--apply-to <apply-to>] <name> <pattern> <definition>";
    ctx.arity(3, 3, usage)?;
    let p = &ctx.args.positional;
    let (name, pattern, definition) = (&p[0], &p[1], &p[2]);
    let vhost = ctx.args.vhost();
    let priority = ctx.args.value("priority").unwrap_or("0");
    let Ok(priority_n) = priority.parse::<i64>() else {
        return Err(Box::new(
            ctx.usage_error(&format!("invalid priority {priority:?}"), usage),
        ));
    };
    let apply_to = ctx.args.value("apply-to").unwrap_or("all");
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(&ctx.args, format!("Setting policy \"{name}\" for pattern \"{pattern}\" to \"{definition}\" with priority \"{priority}\" for vhost \"{vhost}\" ..."));
    require_vhost(ctx, &o)?;
    let Ok(def) = serde_json::from_str::<Value>(definition) else {
        return Ok(o.fail(EX_UNAVAILABLE, NOT_JSON));
    };
    let body = json!({"pattern": pattern, "definition": def, "priority": priority_n, "apply-to": apply_to});
    let r = ctx.request(
        "PUT",
        &format!("/api/policies/{}/{}", seg(vhost), seg(name)),
        Some(&body),
    )?;
    Ok(match r.status {
        _ if r.ok() => o,
        400 => o.fail(EX_UNAVAILABLE, unescape(&super::reason(&r))),
        _ => o.fail(EX_SOFTWARE, super::reason(&r)),
    })
}

pub(super) fn clear_policy(ctx: &Ctx) -> Done {
    ctx.arity(1, 1, "clear_policy [--vhost <vhost>] <name>")?;
    let name = &ctx.args.positional[0];
    let vhost = ctx.args.vhost();
    ctx.connect()?;
    let mut o = Outcome::default();
    o.banner(
        &ctx.args,
        format!("Clearing policy \"{name}\" on vhost \"{vhost}\" ..."),
    );
    let r = ctx.request(
        "DELETE",
        &format!("/api/policies/{}/{}", seg(vhost), seg(name)),
        None,
    )?;
    Ok(match r.status {
        _ if r.ok() => o,
        404 => o.fail(EX_UNAVAILABLE, "Parameter does not exist"),
        _ => o.fail(EX_SOFTWARE, super::reason(&r)),
    })
}

/// `list_policies` and `list_operator_policies` (always empty: warren has no operator
/// policies).
pub(super) fn list_policies(ctx: &Ctx, operator: bool) -> Done {
    let command = if operator {
        "list_operator_policies"
    } else {
        "list_policies"
    };
    ctx.arity(
        0,
        0,
        &format!("{command} [--vhost <vhost>] [--no-table-headers] [--timeout <timeout>]"),
    )?;
    let vhost = ctx.args.vhost();
    ctx.connect()?;
    let mut o = Outcome::default();
    if !ctx.args.json() {
        let what = if operator {
            "operator policy overrides"
        } else {
            "policies"
        };
        o.banner(
            &ctx.args,
            format!("Listing {what} for vhost \"{vhost}\" ..."),
        );
    }
    require_vhost(ctx, &o)?;
    let policies = if operator {
        Vec::new()
    } else {
        let all = ctx.get(&format!("/api/policies/{}", seg(vhost)))?;
        all.as_array().cloned().unwrap_or_default()
    };
    let columns: Vec<String> = [
        "vhost",
        "name",
        "pattern",
        "apply-to",
        "definition",
        "priority",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<Value>> = policies
        .iter()
        .map(|p| {
            vec![
                p["vhost"].clone(),
                p["name"].clone(),
                p["pattern"].clone(),
                p["apply-to"].clone(),
                Value::String(p["definition"].to_string()),
                p["priority"].clone(),
            ]
        })
        .collect();
    output::table_or_blank(&mut o, &ctx.args, &columns, &rows);
    Ok(o)
}

pub(super) fn list_parameters(ctx: &Ctx) -> Done {
    ctx.arity(
        0,
        0,
        "list_parameters [--vhost <vhost>] [--no-table-headers] [--timeout <timeout>]",
    )?;
    let vhost = ctx.args.vhost();
    ctx.connect()?;
    let mut o = Outcome::default();
    if !ctx.args.json() {
        o.banner(
            &ctx.args,
            format!("Listing runtime parameters for vhost \"{vhost}\" ..."),
        );
    }
    require_vhost(ctx, &o)?;
    let all = ctx.get("/api/parameters")?;
    let rows: Vec<Vec<Value>> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["vhost"] == json!(vhost))
        // Cleared limits are no parameter.
        .filter(|p| p["value"].as_object().is_none_or(|m| !m.is_empty()))
        .map(|p| {
            vec![
                p["component"].clone(),
                p["name"].clone(),
                Value::String(p["value"].to_string()),
            ]
        })
        .collect();
    let columns = ["component", "name", "value"].map(String::from);
    output::table_or_blank(&mut o, &ctx.args, &columns, &rows);
    Ok(o)
}

pub(super) fn list_global_parameters(ctx: &Ctx) -> Done {
    ctx.arity(
        0,
        0,
        "list_global_parameters [--no-table-headers] [--timeout <timeout>]",
    )?;
    ctx.connect()?;
    let mut o = Outcome::default();
    if !ctx.args.json() {
        o.banner(&ctx.args, "Listing global runtime parameters ...");
    }
    let all = ctx.get("/api/global-parameters")?;
    let rows: Vec<Vec<Value>> = all
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| vec![p["name"].clone(), Value::String(p["value"].to_string())])
        .collect();
    let columns = ["name", "value"].map(String::from);
    output::table_or_blank(&mut o, &ctx.args, &columns, &rows);
    Ok(o)
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_reasons_unescaped() {
        assert_eq!(
            super::unescape("[{&lt;&lt;\"foo\"&gt;&gt;,1}] are not recognised"),
            "[{<<\"foo\">>,1}] are not recognised"
        );
    }
}
