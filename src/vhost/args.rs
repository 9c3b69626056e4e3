//! Comparing arguments on redeclare, and the texts RabbitMQ uses when they differ.

use crate::error::{AmqpError, AmqpResult};
use crate::exchange::ExchangeKind;
use amq_protocol::types::{AMQPValue, FieldTable};

/// RabbitMQ's name for a field value's type, as it appears in "inequivalent arg" texts.
fn type_name(v: &AMQPValue) -> &'static str {
    match v {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) | AMQPValue::ShortShortUInt(_) => "byte",
        AMQPValue::ShortInt(_) | AMQPValue::ShortUInt(_) => "short",
        AMQPValue::LongInt(_) | AMQPValue::LongUInt(_) => "signedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::ShortString(_) | AMQPValue::LongString(_) => "longstr",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
    }
}

fn show(v: &AMQPValue) -> String {
    match v {
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(x) => x.to_string(),
        AMQPValue::ShortShortUInt(x) => x.to_string(),
        AMQPValue::ShortInt(x) => x.to_string(),
        AMQPValue::ShortUInt(x) => x.to_string(),
        AMQPValue::LongInt(x) => x.to_string(),
        AMQPValue::LongUInt(x) => x.to_string(),
        AMQPValue::LongLongInt(x) => x.to_string(),
        other => format!("{other:?}"),
    }
}

pub(super) fn compare_args(
    have: &FieldTable,
    got: &FieldTable,
    keys: &[&str],
    kind: &str,
    name: &str,
    vhost: &str,
) -> AmqpResult<()> {
    for key in keys {
        let (h, g) = (have.inner().get(*key), got.inner().get(*key));
        let same = match (h, g) {
            (None, None) => true,
            (Some(a), Some(b)) => crate::field::same_value(a, b),
            _ => false,
        };
        if !same {
            let same_type = matches!((h, g), (Some(a), Some(b)) if type_name(a) == type_name(b));
            let describe = |v: Option<&AMQPValue>| match v {
                Some(v) if same_type => format!("'{}'", show(v)),
                Some(v) => format!("the value '{}' of type '{}'", show(v), type_name(v)),
                None => "none".to_string(),
            };
            return Err(AmqpError::precondition(format!(
                "inequivalent arg '{key}' for {kind} '{name}' in vhost '{vhost}': received {} but current is {}",
                describe(g),
                describe(h)
            )));
        }
    }
    Ok(())
}

/// Check the arguments of a queue being created, with RabbitMQ's reply texts.
pub(super) fn validate_queue_args(args: &FieldTable, queue: &str, vhost: &str) -> AmqpResult<()> {
    let invalid = |key: &str, why: String| {
        AmqpError::precondition(format!(
            "invalid arg '{key}' for queue '{queue}' in vhost '{vhost}': {why}"
        ))
    };
    let int = |key: &str, v: &AMQPValue| -> AmqpResult<i64> {
        crate::field::as_i64(v)
            .ok_or_else(|| invalid(key, format!("\"expected integer, got {}\"", type_name(v))))
    };
    let text = |key: &str, v: &AMQPValue| -> AmqpResult<String> {
        match v {
            AMQPValue::LongString(s) => Ok(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Ok(s.to_string()),
            other => Err(invalid(
                key,
                format!("{{unacceptable_type,{}}}", type_name(other)),
            )),
        }
    };
    let map = args.inner();
    for (key, v) in map {
        let key = key.as_str();
        match key {
            "x-message-ttl" | "x-max-length" | "x-max-length-bytes" | "x-expires"
            | "x-max-priority" | "x-delivery-limit" | "x-consumer-timeout" => {
                let n = int(key, v)?;
                // A negative delivery limit means none (RabbitMQ 4.x).
                if n < 0 && key != "x-delivery-limit" {
                    return Err(invalid(key, format!("{{value_negative,{n}}}")));
                }
                if key == "x-expires" && n == 0 {
                    return Err(invalid(key, "{value_zero,0}".into()));
                }
                if key == "x-max-priority" && n > 255 {
                    return Err(invalid(key, format!("{{max_value_exceeded,{n}}}")));
                }
            }
            "x-overflow" => {
                let mode = text(key, v)?;
                if !["drop-head", "reject-publish", "reject-publish-dlx"].contains(&mode.as_str()) {
                    return Err(invalid(key, "invalid_overflow".into()));
                }
            }
            "x-dead-letter-exchange"
                if crate::field::as_bytes(v).is_none() || matches!(v, AMQPValue::ByteArray(_)) =>
            {
                return Err(AmqpError::precondition(format!(
                    "invalid type '{}' for arg '{key}' in queue '{queue}' in vhost '{vhost}'",
                    type_name(v)
                )));
            }
            "x-dead-letter-routing-key" => {
                text(key, v)?;
                if !map.contains_key("x-dead-letter-exchange") {
                    return Err(invalid(key, "routing_key_but_no_dlx_defined".into()));
                }
            }
            "x-consumer-timeout-action" => {
                let action = text(key, v)?;
                if crate::config::TimeoutAction::parse(&action).is_none() {
                    return Err(invalid(key, "invalid_consumer_timeout_action".into()));
                }
            }
            "x-queue-mode" => {
                let mode = text(key, v)?;
                if mode != "default" && mode != "lazy" {
                    return Err(invalid(key, format!("\"unsupported queue mode '{mode}'\"")));
                }
            }
            "x-queue-type" => {
                let kind = text(key, v)?;
                if !["classic", "quorum", "stream"].contains(&kind.as_str()) {
                    return Err(invalid(key, format!("\"unsupported queue type '{kind}'\"")));
                }
            }
            "x-single-active-consumer" if !matches!(v, AMQPValue::Boolean(_)) => {
                return Err(invalid(
                    key,
                    format!("{{unacceptable_type,{}}}", type_name(v)),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Arguments of other queue types that RabbitMQ 4.x refuses on a quorum queue.
const NOT_QUORUM: &[&str] = &[
    "x-max-priority",
    "x-queue-mode",
    "x-queue-version",
    "x-queue-master-locator",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-stream-filter-size-bytes",
    "x-initial-cluster-size",
];

/// Arguments of other queue types that RabbitMQ 4.x refuses on a classic queue
/// (`x-delivery-limit` is not among them: warren gives every queue type a delivery limit).
const NOT_CLASSIC: &[&str] = &[
    "x-dead-letter-strategy",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-quorum-initial-group-size",
    "x-member-placement-tag",
    "x-delayed-retry-type",
    "x-delayed-retry-min",
    "x-delayed-retry-max",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-stream-filter-size-bytes",
    "x-initial-cluster-size",
];

/// The checks of a queue's type (`x-queue-type`, already validated and present) at creation,
/// in RabbitMQ's order: arguments the type does not take, then the properties a quorum queue
/// cannot have.
pub(super) fn validate_queue_type(
    args: &FieldTable,
    queue: &str,
    vhost: &str,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
) -> AmqpResult<()> {
    let kind = args
        .inner()
        .get("x-queue-type")
        .and_then(crate::field::as_text)
        .unwrap_or_default();
    let (refused, module) = match kind.as_str() {
        "quorum" => (NOT_QUORUM, "rabbit_quorum_queue"),
        "stream" => {
            return Err(AmqpError::precondition(format!(
                "cannot declare queue '{queue}' in vhost '{vhost}': streams are not supported by warren"
            )))
        }
        _ => (NOT_CLASSIC, "rabbit_classic_queue"),
    };
    for key in args.inner().keys() {
        if refused.contains(&key.as_str()) {
            return Err(AmqpError::precondition(format!(
                "invalid arg '{key}' for queue '{queue}' in vhost '{vhost}' of queue type {module}"
            )));
        }
    }
    if kind == "quorum" {
        let property = if auto_delete {
            Some("auto-delete")
        } else if exclusive {
            Some("exclusive-owner")
        } else if !durable {
            Some("non-durable")
        } else {
            None
        };
        if let Some(p) = property {
            return Err(AmqpError::precondition(format!(
                "invalid property '{p}' for queue '{queue}' in vhost '{vhost}'"
            )));
        }
    }
    Ok(())
}

/// Check the arguments of an exchange being created, in RabbitMQ's order and words:
/// `alternate-exchange` must be a string; a delayed exchange needs an existing
/// `x-delayed-type` (the plugin's texts); a consistent-hash exchange (or a delayed one routing
/// as one) takes `hash-header` or `hash-property`, not both.
pub(super) fn validate_exchange_args(
    kind: ExchangeKind,
    args: &FieldTable,
    name: &str,
    vhost: &str,
) -> AmqpResult<()> {
    let map = args.inner();
    if let Some(v) = map.get("alternate-exchange") {
        if !matches!(v, AMQPValue::LongString(_) | AMQPValue::ShortString(_)) {
            return Err(AmqpError::precondition(format!(
                "invalid type '{}' for arg 'alternate-exchange' in exchange '{name}' in vhost '{vhost}'",
                type_name(v)
            )));
        }
    }
    let mut routing = kind;
    if kind == ExchangeKind::Delayed {
        let inner = map
            .get("x-delayed-type")
            .and_then(crate::field::as_text)
            .ok_or_else(|| {
                AmqpError::precondition(
                    "Invalid argument, 'x-delayed-type' must be an existing exchange type",
                )
            })?;
        routing = match ExchangeKind::parse(&inner) {
            Some(ExchangeKind::Delayed) => {
                return Err(AmqpError::precondition(
                    "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'",
                ))
            }
            Some(k) => k,
            None => {
                return Err(AmqpError::precondition(format!(
                    "unknown exchange type '{inner}'"
                )))
            }
        };
    }
    if routing == ExchangeKind::ConsistentHash {
        let text = |k: &str| match map.get(k) {
            Some(v @ (AMQPValue::LongString(_) | AMQPValue::ShortString(_))) => {
                crate::field::as_text(v)
            }
            _ => None,
        };
        match (text("hash-header"), text("hash-property")) {
            (Some(_), Some(_)) => {
                return Err(AmqpError::precondition(
                    "hash-header and hash-property are mutually exclusive",
                ))
            }
            (None, Some(p)) if !crate::exchange::chash::PROPERTIES.contains(&p.as_str()) => {
                return Err(AmqpError::precondition(format!(
                    "Unsupported property: {p}"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Check the arguments of a basic.consume (beyond `x-priority`), with RabbitMQ's texts:
/// `x-consumer-timeout` is a non-negative integer.
pub(crate) fn validate_consume_args(
    args: &FieldTable,
    queue: &str,
    vhost: &str,
) -> AmqpResult<Option<u64>> {
    let Some(v) = args.inner().get("x-consumer-timeout") else {
        return Ok(None);
    };
    let invalid = |why: String| {
        AmqpError::precondition(format!(
            "invalid arg 'x-consumer-timeout' for queue '{queue}' in vhost '{vhost}': {why}"
        ))
    };
    let n = crate::field::as_i64(v)
        .ok_or_else(|| invalid(format!("\"expected integer, got {}\"", type_name(v))))?;
    u64::try_from(n)
        .map(Some)
        .map_err(|_| invalid(format!("{{value_negative,{n}}}")))
}

/// Check the arguments of a binding to a headers exchange as RabbitMQ does: `x-match`, when
/// present, is one of the four modes, as a string.
pub(super) fn validate_headers_binding(args: &FieldTable) -> AmqpResult<()> {
    let Some(v) = args.inner().get("x-match") else {
        return Ok(());
    };
    match v {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
            let mode = show(v);
            if matches!(mode.as_str(), "all" | "any" | "all-with-x" | "any-with-x") {
                Ok(())
            } else {
                Err(AmqpError::precondition(format!(
                    "Invalid x-match field value <<\"{mode}\">>; expected all, any, all-with-x, or any-with-x"
                )))
            }
        }
        other => Err(AmqpError::precondition(format!(
            "Invalid x-match field type {} (value {}); expected longstr",
            type_name(other),
            show(other)
        ))),
    }
}
