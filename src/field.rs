//! Helpers over AMQP field values shared by routing and argument checks.

use amq_protocol::types::AMQPValue;

/// The value of any integer-typed field (clients differ in the width they send: pika sends
/// `l`, the Java client `I`, for the same argument).
pub fn as_i64(v: &AMQPValue) -> Option<i64> {
    Some(match v {
        AMQPValue::ShortShortInt(x) => *x as i64,
        AMQPValue::ShortShortUInt(x) => *x as i64,
        AMQPValue::ShortInt(x) => *x as i64,
        AMQPValue::ShortUInt(x) => *x as i64,
        AMQPValue::LongInt(x) => *x as i64,
        AMQPValue::LongUInt(x) => *x as i64,
        AMQPValue::LongLongInt(x) => *x,
        _ => return None,
    })
}

/// A string-typed field as text (invalid UTF-8 replaced).
pub fn as_text(v: &AMQPValue) -> Option<String> {
    as_bytes(v).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// The strings of header `name` when it is an array (as `CC` and `BCC` are); other element
/// types are skipped, and anything but an array gives none.
pub fn string_array(headers: Option<&amq_protocol::types::FieldTable>, name: &str) -> Vec<String> {
    match headers.and_then(|h| h.inner().get(name)) {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().iter().filter_map(as_text).collect(),
        _ => Vec::new(),
    }
}

/// The bytes of a string-typed field (short or long string, or a byte array).
pub fn as_bytes(v: &AMQPValue) -> Option<&[u8]> {
    match v {
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ByteArray(b) => Some(b.as_slice()),
        _ => None,
    }
}

/// Whether two field values are equal as RabbitMQ compares them in header matching and
/// argument equivalence: integers by value whatever their width, short and long strings by
/// their bytes, anything else by type and value.
pub fn same_value(a: &AMQPValue, b: &AMQPValue) -> bool {
    if let (Some(x), Some(y)) = (as_i64(a), as_i64(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (as_bytes(a), as_bytes(b)) {
        return x == y;
    }
    a == b
}

/// A field value as the management API shows it in JSON (arguments, client properties,
/// headers): numbers as numbers, strings as text, tables as objects, arrays as arrays,
/// timestamps as integers, void as null.
pub fn to_json(v: &AMQPValue) -> serde_json::Value {
    use serde_json::Value;
    if let Some(i) = as_i64(v) {
        return i.into();
    }
    if let Some(t) = as_text(v) {
        return t.into();
    }
    match v {
        AMQPValue::Boolean(b) => (*b).into(),
        AMQPValue::Float(f) => {
            serde_json::Number::from_f64(*f as f64).map_or(Value::Null, Value::Number)
        }
        AMQPValue::Double(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        AMQPValue::DecimalValue(d) => {
            let f = d.value as f64 / 10f64.powi(d.scale as i32);
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        AMQPValue::Timestamp(t) => (*t).into(),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(to_json).collect()),
        AMQPValue::FieldTable(t) => table_json(t),
        _ => Value::Null,
    }
}

/// A field table as a JSON object.
pub fn table_json(t: &amq_protocol::types::FieldTable) -> serde_json::Value {
    serde_json::Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_by_value_strings_by_bytes_others_by_type() {
        assert!(same_value(
            &AMQPValue::LongInt(5),
            &AMQPValue::ShortShortUInt(5)
        ));
        assert!(same_value(
            &AMQPValue::ShortString("a".into()),
            &AMQPValue::LongString("a".into())
        ));
        assert!(!same_value(
            &AMQPValue::LongString("42".into()),
            &AMQPValue::LongInt(42)
        ));
        assert!(!same_value(
            &AMQPValue::Boolean(true),
            &AMQPValue::LongInt(1)
        ));
    }
}
