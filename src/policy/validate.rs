//! Checking a policy definition as RabbitMQ 3.10 does, with its texts. RabbitMQ validates the
//! keys of each plugin module together (the core keys first, in key order, then the
//! mirroring keys, then the locator) and reports the first error; keys no module knows are
//! reported last, all together. warren accepts every key RabbitMQ knows; the ones that have no
//! meaning on one node (mirroring, locators, streams, queue modes) are kept and ignored.

use super::erl::Term;
use serde_json::{Map, Value};

fn show(v: &Value) -> String {
    Term::from_json(v).pretty(0)
}

fn int_at_least(v: &Value, min: i64) -> bool {
    // An Erlang integer: a JSON number without a fraction or exponent.
    match v {
        Value::Number(n) if !n.is_f64() => n.as_i64().is_none_or(|i| i >= min),
        _ => false,
    }
}

fn one_of(v: &Value, allowed: &[&str]) -> bool {
    v.as_str().is_some_and(|s| allowed.contains(&s))
}

/// The core keys (RabbitMQ's `rabbit_policies` module), each with its check and the text
/// that follows the value when the check fails.
fn core_check(key: &str, v: &Value) -> Option<Result<(), String>> {
    let (ok, what) = match key {
        "alternate-exchange" => (v.is_string(), "is not a valid alternate exchange name"),
        "dead-letter-exchange" => (v.is_string(), "is not a valid dead letter exchange name"),
        "dead-letter-routing-key" => (v.is_string(), "is not a valid dead letter routing key"),
        "dead-letter-strategy" => (
            one_of(v, &["at-most-once", "at-least-once"]),
            "is not a valid dead letter strategy",
        ),
        "message-ttl" => (int_at_least(v, 0), "is not a valid message TTL"),
        "expires" => (int_at_least(v, 1), "is not a valid queue expiry"),
        "max-length" => (int_at_least(v, 0), "is not a valid maximum length"),
        "max-length-bytes" => (int_at_least(v, 0), "is not a valid maximum length in bytes"),
        // RabbitMQ says "bytes" for both.
        "max-in-memory-length" | "max-in-memory-bytes" => {
            (int_at_least(v, 0), "is not a valid maximum memory in bytes")
        }
        "delivery-limit" => (int_at_least(v, 0), "is not a valid delivery limit"),
        "queue-mode" => (
            one_of(v, &["default", "lazy"]),
            "is not a valid queue-mode value",
        ),
        "queue-version" => (
            matches!(v.as_i64(), Some(1 | 2)) && !v.is_f64(),
            "is not a valid queue-version value",
        ),
        "overflow" => (
            one_of(v, &["drop-head", "reject-publish", "reject-publish-dlx"]),
            "is not a valid overflow value",
        ),
        // RabbitMQ answers 500 to a bad one; warren says why.
        "max-age" => (
            v.as_str().is_some_and(|s| {
                let unit = s.trim_start_matches(|c: char| c.is_ascii_digit());
                unit.len() < s.len() && ["Y", "M", "D", "h", "m", "s"].contains(&unit)
            }),
            "is not a valid max age",
        ),
        "stream-max-segment-size-bytes" => (int_at_least(v, 0), "is not a valid segment size"),
        "queue-leader-locator" => (
            one_of(v, &["client-local", "balanced", "random", "least-leaders"]),
            "is not a valid queue leader locator value",
        ),
        "initial-cluster-size" => (int_at_least(v, 0), "is not a valid cluster size"),
        _ => return None,
    };
    Some(if ok {
        Ok(())
    } else {
        Err(format!("{} {what}", show(v)))
    })
}

const HA_KEYS: &[&str] = &[
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "ha-sync-batch-size",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
];

/// Classic queue mirroring (`rabbit_mirror_queue_misc`): checked, never applied.
fn ha_check(def: &Map<String, Value>) -> Result<(), String> {
    if !HA_KEYS.iter().any(|k| def.contains_key(*k)) {
        return Ok(());
    }
    let Some(mode) = def.get("ha-mode") else {
        return Err(
            "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown"
                .into(),
        );
    };
    let params = def.get("ha-params");
    let given = || params.map_or("none".to_string(), show);
    match mode.as_str() {
        Some("all") if params.is_some() => {
            return Err("ha-mode=\"all\" does not take parameters".into())
        }
        Some("all") => {}
        Some("exactly") if !params.is_some_and(|p| int_at_least(p, 1)) => {
            return Err(format!(
                "ha-mode=\"exactly\" takes an integer, {} given",
                given()
            ))
        }
        Some("exactly") => {}
        Some("nodes") => match params {
            Some(Value::Array(a)) if a.is_empty() => {
                return Err("ha-mode=\"nodes\" list must be non-empty".into())
            }
            Some(Value::Array(_)) => {}
            _ => return Err(format!("ha-mode=\"nodes\" takes a list, {} given", given())),
        },
        _ => return Err(format!("{} is not a valid ha-mode value", show(mode))),
    }
    if let Some(v) = def.get("ha-sync-mode") {
        if !one_of(v, &["manual", "automatic"]) {
            return Err(format!(
                "ha-sync-mode must be \"manual\" or \"automatic\", got {}",
                show(v)
            ));
        }
    }
    if let Some(v) = def.get("ha-sync-batch-size") {
        if !int_at_least(v, 1) {
            return Err(format!(
                "ha-sync-batch-size takes an integer greater than 0, {} given",
                show(v)
            ));
        }
    }
    for key in ["ha-promote-on-shutdown", "ha-promote-on-failure"] {
        if let Some(v) = def.get(key) {
            if !one_of(v, &["always", "when-synced"]) {
                return Err(format!(
                    "{key} must be \"always\" or \"when-synced\", got {}",
                    show(v)
                ));
            }
        }
    }
    Ok(())
}

/// The first thing wrong with `def` (a non-empty object), in RabbitMQ's words.
pub fn definition(def: &Map<String, Value>) -> Result<(), String> {
    let mut unknown = Vec::new();
    // serde_json keeps keys sorted, the order RabbitMQ checks them in.
    for (key, v) in def {
        match core_check(key, v) {
            Some(r) => r?,
            None if HA_KEYS.contains(&key.as_str()) || key == "queue-master-locator" => {}
            None => unknown.push(Term::Tuple(vec![
                Term::Bin(key.clone()),
                Term::from_json(v),
            ])),
        }
    }
    ha_check(def)?;
    if let Some(v) = def.get("queue-master-locator") {
        if !one_of(v, &["min-masters", "client-local", "random"]) {
            return Err(format!("{} invalid queue-master-locator value", show(v)));
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "{} are not recognised policy settings",
            Term::List(unknown).pretty(0)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(def: Value) -> Result<(), String> {
        definition(def.as_object().unwrap())
    }

    #[test]
    fn texts_as_rabbitmq() {
        // Recorded from RabbitMQ 3.10.8 (before its HTML escaping).
        let cases = [
            (json!({"max-length": "x"}), r#"<<"x">> is not a valid maximum length"#),
            (json!({"max-length": -1}), "-1 is not a valid maximum length"),
            (json!({"max-length": 1.5}), "1.5 is not a valid maximum length"),
            (json!({"max-length": true}), "true is not a valid maximum length"),
            (json!({"max-length": null}), "null is not a valid maximum length"),
            (json!({"max-length": [1, 2]}), "[1,2] is not a valid maximum length"),
            (
                json!({"max-length": {"a": 1}}),
                r#"#{<<"a">> => 1} is not a valid maximum length"#,
            ),
            (json!({"message-ttl": -1}), "-1 is not a valid message TTL"),
            (json!({"expires": 0}), "0 is not a valid queue expiry"),
            (
                json!({"max-length-bytes": "x"}),
                r#"<<"x">> is not a valid maximum length in bytes"#,
            ),
            (
                json!({"overflow": "foo"}),
                r#"<<"foo">> is not a valid overflow value"#,
            ),
            (
                json!({"dead-letter-exchange": 5}),
                "5 is not a valid dead letter exchange name",
            ),
            (
                json!({"dead-letter-routing-key": 5}),
                "5 is not a valid dead letter routing key",
            ),
            (
                json!({"alternate-exchange": 5}),
                "5 is not a valid alternate exchange name",
            ),
            (json!({"delivery-limit": -1}), "-1 is not a valid delivery limit"),
            (
                json!({"foo": 6}),
                r#"[{<<"foo">>,6}] are not recognised policy settings"#,
            ),
            (
                json!({"foo": 6, "bar": 1}),
                r#"[{<<"bar">>,1},{<<"foo">>,6}] are not recognised policy settings"#,
            ),
            // Known keys are checked before unknown ones are reported, in key order.
            (
                json!({"foo": "x", "max-length": "y"}),
                r#"<<"y">> is not a valid maximum length"#,
            ),
            (
                json!({"max-length": "y", "expires": "z"}),
                r#"<<"z">> is not a valid queue expiry"#,
            ),
            (
                json!({"alternate-exchange": "x", "message-ttl": -1, "ha-mode": "x"}),
                "-1 is not a valid message TTL",
            ),
            (
                json!({"ha-params": 2}),
                "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown",
            ),
            (
                json!({"ha-mode": "exactly"}),
                "ha-mode=\"exactly\" takes an integer, none given",
            ),
            (
                json!({"ha-mode": "all", "ha-params": 2}),
                "ha-mode=\"all\" does not take parameters",
            ),
            (
                json!({"ha-mode": "nodes", "ha-params": []}),
                "ha-mode=\"nodes\" list must be non-empty",
            ),
            (
                json!({"queue-version": 3}),
                "3 is not a valid queue-version value",
            ),
            (
                json!({"max-in-memory-length": -1}),
                "-1 is not a valid maximum memory in bytes",
            ),
        ];
        for (def, text) in cases {
            assert_eq!(check(def.clone()), Err(text.to_string()), "{def}");
        }
        for ok in [
            json!({"ha-mode": "all", "ha-sync-mode": "automatic"}),
            json!({"ha-mode": "exactly", "ha-params": 2}),
            json!({"queue-mode": "lazy", "max-length": 0, "message-ttl": 0}),
            json!({"max-age": "1D", "dead-letter-strategy": "at-least-once"}),
            json!({"queue-master-locator": "min-masters", "initial-cluster-size": 3}),
            json!({"dead-letter-exchange": "", "dead-letter-routing-key": "k"}),
        ] {
            assert_eq!(check(ok.clone()), Ok(()), "{ok}");
        }
    }
}
