//! Headers exchange: a binding's arguments are matched against the message headers.
//! `x-match` is `all` (the default), `any`, `all-with-x` or `any-with-x`; keys starting with
//! `x-` take part only in the `-with-x` forms. A binding value of type void matches on the key's
//! presence alone. Values compare as RabbitMQ compares them: numbers by value across integer
//! widths, strings by bytes whether short or long.

use super::{Binding, Dest};
use crate::field::same_value;
use amq_protocol::types::{AMQPValue, FieldTable};

pub(super) fn route(bindings: &[Binding], headers: Option<&FieldTable>, out: &mut Vec<Dest>) {
    let empty = FieldTable::default();
    let headers = headers.unwrap_or(&empty);
    for b in bindings {
        if matches(&b.arguments, headers) {
            out.push(b.dest.clone());
        }
    }
}

fn matches(args: &FieldTable, headers: &FieldTable) -> bool {
    let mode = match args.inner().get("x-match") {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.as_str().to_string(),
        _ => "all".to_string(),
    };
    let (any, with_x) = match mode.as_str() {
        "any" => (true, false),
        "any-with-x" => (true, true),
        "all-with-x" => (false, true),
        _ => (false, false),
    };
    let mut relevant = args
        .inner()
        .iter()
        .filter(|(k, _)| k.as_str() != "x-match" && (with_x || !k.as_str().starts_with("x-")));
    let one = |(k, v): (&amq_protocol::types::ShortString, &AMQPValue)| match headers
        .inner()
        .get(k.as_str())
    {
        None => false,
        Some(h) => matches!(v, AMQPValue::Void) || same_value(v, h),
    };
    if any {
        relevant.any(one)
    } else {
        relevant.all(one)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn ls(s: &str) -> AMQPValue {
        AMQPValue::LongString(s.into())
    }

    #[test]
    fn all_and_any() {
        let all = table(&[("a", ls("1")), ("b", ls("2"))]);
        let any = table(&[("x-match", ls("any")), ("a", ls("1")), ("b", ls("2"))]);
        let h = table(&[("a", ls("1"))]);
        assert!(!matches(&all, &h));
        assert!(matches(&any, &h));
        let h2 = table(&[("a", ls("1")), ("b", ls("2")), ("c", ls("3"))]);
        assert!(matches(&all, &h2));
    }

    #[test]
    fn void_matches_presence_and_numbers_compare_by_value() {
        let args = table(&[("a", AMQPValue::Void), ("n", AMQPValue::LongInt(5))]);
        let h = table(&[("a", ls("anything")), ("n", AMQPValue::ShortShortUInt(5))]);
        assert!(matches(&args, &h));
    }

    #[test]
    fn x_keys_ignored_unless_with_x() {
        let args = table(&[("x-foo", ls("1"))]);
        assert!(matches(&args, &FieldTable::default()));
        let args = table(&[("x-match", ls("all-with-x")), ("x-foo", ls("1"))]);
        assert!(!matches(&args, &FieldTable::default()));
        assert!(matches(&args, &table(&[("x-foo", ls("1"))])));
    }

    #[test]
    fn empty_any_matches_nothing_empty_all_matches_everything() {
        assert!(matches(&table(&[]), &FieldTable::default()));
        assert!(!matches(
            &table(&[("x-match", ls("any"))]),
            &FieldTable::default()
        ));
    }
}
