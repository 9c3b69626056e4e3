//! Policies, as RabbitMQ has them: per vhost, a named regular expression on queue and/or
//! exchange names whose definition gives the matching entities settings they were not
//! declared with. Of the policies that match an entity, the one with the highest priority
//! applies (on a tie, the one whose name sorts last, as RabbitMQ 3.10 picks it); the others
//! do not combine with it.
//!
//! This module is pure: the record, its validation with RabbitMQ's texts, and matching. The
//! queue and exchange sides (what a definition does to them) live with them, and the vhost
//! keeps each vhost's policies and applies them.

mod erl;
mod pattern;
mod validate;

use erl::Term;
use serde_json::{json, Map, Number, Value};
use std::sync::Arc;

/// What a policy may apply to (`apply-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyTo {
    Queues,
    Exchanges,
    All,
}

impl ApplyTo {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyTo::Queues => "queues",
            ApplyTo::Exchanges => "exchanges",
            ApplyTo::All => "all",
        }
    }

    fn parse(s: &str) -> Option<ApplyTo> {
        match s {
            "queues" => Some(ApplyTo::Queues),
            "exchanges" => Some(ApplyTo::Exchanges),
            "all" => Some(ApplyTo::All),
            _ => None,
        }
    }
}

/// The kind of entity a policy is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Queue,
    Exchange,
}

/// One policy. Its JSON shape is RabbitMQ's (`GET /api/policies`, definitions files).
#[derive(Debug, Clone)]
pub struct Policy {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    pub apply_to: ApplyTo,
    /// The settings it gives, validated.
    pub definition: Map<String, Value>,
    /// A number, as RabbitMQ takes it (a fraction is allowed).
    pub priority: Number,
    /// `pattern`, compiled once.
    regex: regex::Regex,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Policy) -> bool {
        self.vhost == other.vhost
            && self.name == other.name
            && self.pattern == other.pattern
            && self.apply_to == other.apply_to
            && self.definition == other.definition
            && self.priority == other.priority
    }
}

/// RabbitMQ's shape and key order: `vhost`, `name`, `pattern`, `apply-to`, `definition`,
/// `priority`.
impl serde::Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Policy", 6)?;
        st.serialize_field("vhost", &self.vhost)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("pattern", &self.pattern)?;
        st.serialize_field("apply-to", self.apply_to.as_str())?;
        st.serialize_field("definition", &self.definition)?;
        st.serialize_field("priority", &self.priority)?;
        st.end()
    }
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// The body is not a JSON object.
    NotJson,
    /// Mandatory keys (`pattern`, `definition`) are missing.
    Missing(Vec<&'static str>),
    /// What validation found, in RabbitMQ's order and words.
    Failed(Vec<String>),
}

impl Invalid {
    /// The reason RabbitMQ gives (the management API HTML-escapes it, see [`html_escape`]).
    pub fn reason(&self) -> String {
        match self {
            Invalid::NotJson => "not_json".into(),
            Invalid::Missing(keys) => {
                let items: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{{key_missing,{k}}}"))
                    .collect();
                format!("[{}]", items.join(","))
            }
            Invalid::Failed(errors) => format!("Validation failed\n\n{}\n", errors.join("\n")),
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason().trim_end())
    }
}

/// `<`, `>` and `&` as RabbitMQ's management API escapes them in error reasons.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Policy {
    /// A policy from its JSON (a `PUT /api/policies/{vhost}/{name}` body or a definitions
    /// entry): `pattern` and `definition` are required, `apply-to` defaults to `all` and
    /// `priority` to 0. Other keys (`vhost`, `name` in a body) are ignored.
    pub fn from_json(vhost: &str, name: &str, body: &Value) -> Result<Policy, Invalid> {
        let Some(body) = body.as_object() else {
            return Err(Invalid::NotJson);
        };
        let missing: Vec<&'static str> = ["pattern", "definition"]
            .into_iter()
            .filter(|k| !body.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(Invalid::Missing(missing));
        }
        // RabbitMQ reports every failed property, last checked first.
        let mut errors = Vec::new();
        let definition = match &body["definition"] {
            Value::Object(d) if d.is_empty() => {
                errors.push("no policy provided".to_string());
                None
            }
            Value::Object(d) => match validate::definition(d) {
                Ok(()) => Some(d.clone()),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            other => {
                let prefix = "definition must be a dictionary: ";
                let term = Term::from_json(other).pretty(prefix.len());
                errors.push(format!("{prefix}{term}"));
                None
            }
        };
        let apply_to = match body.get("apply-to") {
            None => Some(ApplyTo::All),
            Some(v) => {
                let text = v
                    .as_str()
                    .map_or_else(|| Term::from_json(v).flat(), str::to_string);
                let parsed = v.as_str().and_then(ApplyTo::parse);
                if parsed.is_none() {
                    errors.push(format!(
                        "apply-to '{text}' unrecognised; should be 'queues', 'exchanges' or 'all'"
                    ));
                }
                parsed
            }
        };
        let regex = match &body["pattern"] {
            Value::String(p) => match pattern::compile(p) {
                Ok(r) => Some((p.clone(), r)),
                Err(_) => {
                    errors.extend(pattern::invalid_text(p));
                    None
                }
            },
            other => {
                let prefix = "pattern should be a binary but was ";
                let term = Term::from_json(other).pretty(prefix.len());
                errors.push(format!("{prefix}{term}"));
                None
            }
        };
        let priority = match body.get("priority") {
            None => Some(Number::from(0)),
            Some(Value::Number(n)) => Some(n.clone()),
            Some(other) => {
                let prefix = "priority should be a number, actually was ";
                let term = Term::from_json(other).pretty(prefix.len());
                errors.push(format!("{prefix}{term}"));
                None
            }
        };
        match (definition, apply_to, regex, priority) {
            (Some(definition), Some(apply_to), Some((pattern, regex)), Some(priority))
                if errors.is_empty() =>
            {
                Ok(Policy {
                    vhost: vhost.to_string(),
                    name: name.to_string(),
                    pattern,
                    apply_to,
                    definition,
                    priority,
                    regex,
                })
            }
            _ => Err(Invalid::Failed(errors)),
        }
    }

    /// The policy as RabbitMQ lists it (as a `Value`, whose keys are sorted; serialize the
    /// policy itself for RabbitMQ's key order).
    pub fn to_json(&self) -> Value {
        json!({
            "vhost": self.vhost,
            "name": self.name,
            "pattern": self.pattern,
            "apply-to": self.apply_to.as_str(),
            "definition": self.definition,
            "priority": self.priority,
        })
    }

    /// Whether it applies to the `kind` entity called `name`.
    pub fn applies(&self, kind: Kind, name: &str) -> bool {
        let kind_ok = matches!(
            (self.apply_to, kind),
            (ApplyTo::All, _)
                | (ApplyTo::Queues, Kind::Queue)
                | (ApplyTo::Exchanges, Kind::Exchange)
        );
        kind_ok && self.regex.is_match(name)
    }

    fn rank(&self) -> f64 {
        self.priority.as_f64().unwrap_or(0.0)
    }

    /// A non-negative integer setting.
    pub fn uint(&self, key: &str) -> Option<u64> {
        self.definition.get(key).and_then(Value::as_u64)
    }

    /// A string setting.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.definition.get(key).and_then(Value::as_str)
    }
}

/// The policy that applies to the `kind` entity called `name`, if any.
pub fn choose<'a>(
    policies: impl IntoIterator<Item = &'a Arc<Policy>>,
    kind: Kind,
    name: &str,
) -> Option<Arc<Policy>> {
    let mut best: Option<&Arc<Policy>> = None;
    for p in policies {
        if !p.applies(kind, name) {
            continue;
        }
        let better =
            best.is_none_or(|b| p.rank() > b.rank() || (p.rank() == b.rank() && p.name > b.name));
        if better {
            best = Some(p);
        }
    }
    best.cloned()
}

/// Sort for listing as RabbitMQ does: by priority, lowest first (then by vhost and name).
pub fn sort_for_listing(policies: &mut [Arc<Policy>]) {
    policies.sort_by(|a, b| {
        a.rank()
            .total_cmp(&b.rank())
            .then_with(|| a.vhost.cmp(&b.vhost))
            .then_with(|| a.name.cmp(&b.name))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(body: Value) -> Result<Policy, Invalid> {
        Policy::from_json("/", "p", &body)
    }

    #[test]
    fn bodies_as_rabbitmq_takes_them() {
        let p = policy(json!({"pattern": "^q\\.", "definition": {"max-length": 5}})).unwrap();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"vhost":"/","name":"p","pattern":"^q\\.","apply-to":"all","definition":{"max-length":5},"priority":0}"#
        );
        assert_eq!(
            p.to_json(),
            json!({"vhost": "/", "name": "p", "pattern": "^q\\.", "apply-to": "all",
                   "definition": {"max-length": 5}, "priority": 0})
        );
        let p = policy(json!({"pattern": "a", "definition": {"max-length": 1},
                              "priority": 1.5, "apply-to": "exchanges", "name": "x"}))
        .unwrap();
        assert_eq!(p.to_json()["priority"], json!(1.5));
        assert_eq!(p.apply_to, ApplyTo::Exchanges);
        assert_eq!(policy(json!([1])), Err(Invalid::NotJson));
        assert_eq!(
            policy(json!({})).unwrap_err().reason(),
            "[{key_missing,pattern},{key_missing,definition}]"
        );
        assert_eq!(
            policy(json!({"pattern": "a"})).unwrap_err().reason(),
            "[{key_missing,definition}]"
        );
    }

    #[test]
    fn every_failure_reported_in_rabbitmq_order() {
        // Recorded from RabbitMQ 3.10.8.
        let e = policy(json!({"pattern": "(", "definition": {"max-length": "x"},
                              "priority": "x", "apply-to": "q"}))
        .unwrap_err();
        assert_eq!(
            e.reason(),
            "Validation failed\n\n<<\"x\">> is not a valid maximum length\n\
             apply-to 'q' unrecognised; should be 'queues', 'exchanges' or 'all'\n\
             pattern should be regular expression but is invalid: {\"missing )\",1}\n\
             priority should be a number, actually was <<\"x\">>\n"
        );
        let e = policy(json!({"pattern": 5, "definition": {}, "apply-to": null})).unwrap_err();
        assert_eq!(
            e.reason(),
            "Validation failed\n\nno policy provided\n\
             apply-to 'null' unrecognised; should be 'queues', 'exchanges' or 'all'\n\
             pattern should be a binary but was 5\n"
        );
        assert_eq!(
            html_escape(&e.reason()).len(),
            e.reason().len(),
            "nothing to escape"
        );
        assert_eq!(html_escape("<<\"a&b\">>"), "&lt;&lt;\"a&amp;b\"&gt;&gt;");
    }

    #[test]
    fn highest_priority_then_last_name_wins() {
        let mk = |name: &str, pattern: &str, prio: i64, to: &str| {
            Arc::new(
                Policy::from_json(
                    "/",
                    name,
                    &json!({"pattern": pattern, "definition": {"max-length": 1},
                            "priority": prio, "apply-to": to}),
                )
                .unwrap(),
            )
        };
        let ps = vec![
            mk("a", "^q", 0, "all"),
            mk("z", "^q", 0, "all"),
            mk("m", "^q", 0, "all"),
            mk("hi", "^q\\.hi", 5, "queues"),
            mk("x", "^q", 9, "exchanges"),
        ];
        let name = |p: Option<Arc<Policy>>| p.map(|p| p.name.clone());
        assert_eq!(name(choose(&ps, Kind::Queue, "q.1")), Some("z".into()));
        assert_eq!(name(choose(&ps, Kind::Queue, "q.hi")), Some("hi".into()));
        assert_eq!(name(choose(&ps, Kind::Exchange, "q.hi")), Some("x".into()));
        assert_eq!(name(choose(&ps, Kind::Queue, "other")), None);
    }
}
