//! Comparing arguments on redeclare, and the texts RabbitMQ uses when they differ.

use crate::error::{AmqpError, AmqpResult};
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
