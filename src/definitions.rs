//! Definitions files, RabbitMQ's JSON export format: users (with their password hashes),
//! vhosts, permissions, policies, exchanges, queues and bindings, imported at boot from
//! `auth.load_definitions` (RabbitMQ's `load_definitions`) on every start, as RabbitMQ does.
//! Parameters other than vhost limits, and topic permissions, are read but not applied yet (a
//! warning says so). [`crate::broker::Broker::policies_json`] gives the `policies` of an
//! export.

use crate::access::{PermissionRecord, UserRecord};
use crate::broker::Broker;
use crate::exchange::Dest;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Definitions {
    pub users: Vec<DefUser>,
    pub vhosts: Vec<DefVhost>,
    pub permissions: Vec<PermissionRecord>,
    pub exchanges: Vec<DefExchange>,
    pub queues: Vec<DefQueue>,
    pub bindings: Vec<DefBinding>,
    pub policies: Vec<serde_json::Value>,
    pub parameters: Vec<serde_json::Value>,
    pub topic_permissions: Vec<serde_json::Value>,
}

/// Tags as 3.13+ writes them (a list) or as older versions did ("a,b").
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Tags {
    List(Vec<String>),
    Text(String),
}

impl Tags {
    fn into_vec(self) -> Vec<String> {
        match self {
            Tags::List(v) => v,
            Tags::Text(s) => s
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DefUser {
    pub name: String,
    #[serde(default)]
    pub password_hash: String,
    #[serde(default)]
    pub hashing_algorithm: Option<String>,
    #[serde(default)]
    pub tags: Option<Tags>,
    #[serde(default)]
    pub limits: crate::access::UserLimits,
}

#[derive(Debug, Deserialize)]
pub struct DefVhost {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct DefExchange {
    pub name: String,
    pub vhost: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub arguments: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct DefQueue {
    pub name: String,
    pub vhost: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub arguments: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct DefBinding {
    pub source: String,
    pub vhost: String,
    pub destination: String,
    pub destination_type: String,
    #[serde(default)]
    pub routing_key: String,
    #[serde(default)]
    pub arguments: BTreeMap<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// A JSON value as the AMQP field value RabbitMQ makes of it.
pub fn field_value(v: &serde_json::Value) -> AMQPValue {
    use serde_json::Value;
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(a) => AMQPValue::FieldArray(FieldArray::from(
            a.iter().map(field_value).collect::<Vec<_>>(),
        )),
        Value::Object(o) => {
            let mut t = FieldTable::default();
            for (k, v) in o {
                t.insert(k.as_str().into(), field_value(v));
            }
            AMQPValue::FieldTable(t)
        }
    }
}

fn table(args: &BTreeMap<String, serde_json::Value>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in args {
        t.insert(k.as_str().into(), field_value(v));
    }
    t
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub users: usize,
    pub vhosts: usize,
    pub permissions: usize,
    pub policies: usize,
    pub exchanges: usize,
    pub queues: usize,
    pub bindings: usize,
}

/// Parse a definitions document; the error names the line and column.
pub fn parse(json: &str) -> Result<Definitions, String> {
    serde_json::from_str(json).map_err(|e| format!("invalid definitions: {e}"))
}

/// Import `defs` into `broker`, in RabbitMQ's order: users, vhosts, permissions, policies,
/// exchanges, queues, bindings. An entity that cannot be created (an inequivalent redeclare, a binding
/// to something missing) fails the import with its reason.
pub fn import(broker: &Broker, defs: Definitions) -> Result<Imported, String> {
    let mut done = Imported::default();
    for u in defs.users {
        let record = UserRecord {
            name: u.name,
            password_hash: u.password_hash,
            hashing_algorithm: u
                .hashing_algorithm
                .unwrap_or_else(|| crate::access::SHA256.to_string()),
            tags: u.tags.map(Tags::into_vec).unwrap_or_default(),
            limits: u.limits,
        };
        broker.put_user(record).map_err(|e| e.to_string())?;
        done.users += 1;
    }
    for v in defs.vhosts {
        broker.add_vhost(&v.name).map_err(|e| e.to_string())?;
        done.vhosts += 1;
    }
    for p in defs.permissions {
        broker
            .set_permissions(&p.user, &p.vhost, &p.configure, &p.write, &p.read)
            .map_err(|e| format!("permissions of '{}' on '{}': {e}", p.user, p.vhost))?;
        done.permissions += 1;
    }
    let vhost = |name: &str| {
        broker
            .vhost(name)
            .ok_or_else(|| format!("vhost '{name}' does not exist"))
    };
    for p in &defs.policies {
        let field = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let (vh, name) = (field("vhost"), field("name"));
        let what = |e: &dyn std::fmt::Display| format!("policy '{name}' in vhost '{vh}': {e}");
        let policy = crate::policy::Policy::from_json(vh, name, p).map_err(|e| what(&e))?;
        vhost(vh)?.set_policy(policy).map_err(|e| what(&e))?;
        done.policies += 1;
    }
    for x in defs.exchanges {
        vhost(&x.vhost)?
            .declare_exchange(
                &x.name,
                &x.kind,
                false,
                x.durable,
                x.auto_delete,
                x.internal,
                table(&x.arguments),
            )
            .map_err(|e| format!("exchange '{}' in vhost '{}': {}", x.name, x.vhost, e.text))?;
        done.exchanges += 1;
    }
    for q in defs.queues {
        vhost(&q.vhost)?
            .declare_queue(
                &q.name,
                q.durable,
                false,
                q.auto_delete,
                table(&q.arguments),
                0,
            )
            .map_err(|e| format!("queue '{}' in vhost '{}': {}", q.name, q.vhost, e.text))?;
        done.queues += 1;
    }
    for b in defs.bindings {
        let dest = match b.destination_type.as_str() {
            "queue" => Dest::Queue(b.destination.clone()),
            "exchange" => Dest::Exchange(b.destination.clone()),
            other => return Err(format!("unknown destination_type '{other}'")),
        };
        vhost(&b.vhost)?
            .bind(&b.source, dest, &b.routing_key, table(&b.arguments))
            .map_err(|e| {
                format!(
                    "binding of '{}' to '{}' in vhost '{}': {}",
                    b.source, b.destination, b.vhost, e.text
                )
            })?;
        done.bindings += 1;
    }
    // Vhost limits are the one kind of parameter applied so far.
    let mut other_parameters = 0;
    for p in &defs.parameters {
        let component = p.get("component").and_then(|c| c.as_str());
        let vhost = p.get("vhost").and_then(|v| v.as_str());
        match (component, vhost, p.get("value")) {
            (Some("vhost-limits"), Some(vhost), Some(value)) => {
                let limits = serde_json::from_value(value.clone())
                    .map_err(|e| format!("vhost-limits of '{vhost}': {e}"))?;
                broker
                    .set_vhost_limits(vhost, limits)
                    .map_err(|e| e.to_string())?;
            }
            _ => other_parameters += 1,
        }
    }
    if other_parameters > 0 {
        tracing::warn!(
            parameters = other_parameters,
            "definitions: parameters other than vhost limits are not applied yet"
        );
    }
    Ok(done)
}
