//! Values as Erlang's `~p` prints them, for the validation texts RabbitMQ writes with it: a JSON
//! string is the binary `<<"x">>`, `null` the atom `null`, an object a map `#{<<"k">> => 1}`.
//! A term that does not fit in the line (78 columns, counted from where it starts) is broken
//! as `io_lib_pretty` breaks it: the elements of a tuple, map or list of compound terms one
//! per line, a list of simple terms filled line by line, each continuation line indented to
//! just after the opening bracket.

use serde_json::Value;

/// The last column a printed line may reach.
const WIDTH: usize = 78;

/// An Erlang term, as far as RabbitMQ's texts need them.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Atom(String),
    Int(String),
    Float(f64),
    /// A binary (`<<"...">>`): how RabbitMQ holds a JSON string.
    Bin(String),
    /// A character list (`"..."`).
    Str(String),
    List(Vec<Term>),
    Tuple(Vec<Term>),
    Map(Vec<(Term, Term)>),
}

impl Term {
    /// A JSON value as RabbitMQ's JSON decoder hands it over.
    pub fn from_json(v: &Value) -> Term {
        match v {
            Value::Null => Term::Atom("null".into()),
            Value::Bool(b) => Term::Atom(b.to_string()),
            Value::Number(n) if n.is_f64() => Term::Float(n.as_f64().unwrap_or(0.0)),
            Value::Number(n) => Term::Int(n.to_string()),
            Value::String(s) => Term::Bin(s.clone()),
            Value::Array(a) => Term::List(a.iter().map(Term::from_json).collect()),
            // serde_json keeps keys sorted, as an Erlang map of binaries prints them.
            Value::Object(o) => Term::Map(
                o.iter()
                    .map(|(k, v)| (Term::Bin(k.clone()), Term::from_json(v)))
                    .collect(),
            ),
        }
    }

    fn is_compound(&self) -> bool {
        matches!(self, Term::List(_) | Term::Tuple(_) | Term::Map(_))
    }

    /// The term on one line.
    pub fn flat(&self) -> String {
        let join = |items: &[Term]| items.iter().map(Term::flat).collect::<Vec<_>>().join(",");
        match self {
            Term::Atom(a) | Term::Int(a) => a.clone(),
            Term::Float(f) => float(*f),
            Term::Bin(s) => format!("<<\"{}\">>", escape(s)),
            Term::Str(s) => format!("\"{}\"", escape(s)),
            Term::List(items) => format!("[{}]", join(items)),
            Term::Tuple(items) => format!("{{{}}}", join(items)),
            Term::Map(pairs) => {
                let inner: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{} => {}", k.flat(), v.flat()))
                    .collect();
                format!("#{{{}}}", inner.join(","))
            }
        }
    }

    /// The term printed starting at column `col`, broken over lines if it does not fit.
    pub fn pretty(&self, col: usize) -> String {
        let flat = self.flat();
        if col + flat.chars().count() <= WIDTH {
            return flat;
        }
        match self {
            Term::List(items) if !items.iter().any(Term::is_compound) => fill(items, col),
            Term::List(items) => stacked("[", items, "]", col),
            Term::Tuple(items) => stacked("{", items, "}", col),
            Term::Map(pairs) => {
                let indent = col + 2;
                let lines: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| {
                        let key = k.flat();
                        let at = indent + key.chars().count() + 4;
                        format!("{key} => {}", v.pretty(at))
                    })
                    .collect();
                format!("#{{{}}}", lines.join(&format!(",\n{}", " ".repeat(indent))))
            }
            _ => flat,
        }
    }
}

/// One element per line, each indented to just after `open`.
fn stacked(open: &str, items: &[Term], close: &str, col: usize) -> String {
    let indent = col + open.len();
    let lines: Vec<String> = items.iter().map(|t| t.pretty(indent)).collect();
    format!(
        "{open}{}{close}",
        lines.join(&format!(",\n{}", " ".repeat(indent)))
    )
}

/// Simple elements packed on as few lines as fit.
fn fill(items: &[Term], col: usize) -> String {
    let indent = col + 1;
    let mut out = String::from("[");
    let mut at = indent;
    for (i, t) in items.iter().enumerate() {
        let piece = t.flat();
        let len = piece.chars().count() + 1; // with its "," or "]"
        if i > 0 {
            out.push(',');
            if at + len > WIDTH {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                at = indent;
            }
        }
        out.push_str(&piece);
        at += len;
    }
    out.push(']');
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{:o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A float as Erlang prints it: the shortest digits that read back the same, in plain or
/// exponent notation, whichever is shorter (`0.1`, `100.0`, `1.0e10`).
pub fn float(f: f64) -> String {
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let f = f.abs();
    if f == 0.0 {
        return format!("{sign}0.0");
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.5e0", "1e10", "1e-1".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i64 = exp.parse().unwrap_or(0);
    // value = 0.DIGITS * 10^place
    let place = exp + 1;
    let len = digits.len() as i64;
    let body = if place == 0 {
        format!("0.{digits}")
    } else if place < 0 || place >= len {
        let exp_text = (place - 1).to_string();
        let exp_dot = if len == 1 { 2 } else { 1 };
        let exp_cost = exp_text.len() as i64 + 1 + exp_dot;
        let with_exp = || match digits.len() {
            1 => format!("{digits}.0e{exp_text}"),
            _ => format!("{}.{}e{exp_text}", &digits[..1], &digits[1..]),
        };
        if place < 0 {
            if 2 - place <= exp_cost {
                format!("0.{}{digits}", "0".repeat((-place) as usize))
            } else {
                with_exp()
            }
        } else if place - len + 2 <= exp_cost {
            format!("{digits}{}.0", "0".repeat((place - len) as usize))
        } else {
            with_exp()
        }
    } else {
        let (a, b) = digits.split_at(place as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_as_erlang_prints_them() {
        for (f, text) in [
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e10, "1.0e10"),
            (1e300, "1.0e300"),
            (100.0, "100.0"),
            (-0.0, "-0.0"),
            (123.456, "123.456"),
            (0.001, "0.001"),
            (1.25e-7, "1.25e-7"),
        ] {
            assert_eq!(float(f), text, "{f}");
        }
    }

    #[test]
    fn json_values_as_terms() {
        let t = Term::from_json(&json!({"a": {"x": [1, 2]}, "b": [true, false, null]}));
        assert_eq!(
            t.flat(),
            r#"#{<<"a">> => #{<<"x">> => [1,2]},<<"b">> => [true,false,null]}"#
        );
        assert_eq!(Term::from_json(&json!("q\"\\")).flat(), r#"<<"q\"\\">>"#);
    }

    #[test]
    fn long_terms_break_as_io_lib_pretty() {
        // Recorded from RabbitMQ 3.10.8.
        let t = Term::Tuple(vec![
            Term::Str("unmatched parentheses".into()),
            Term::Int("0".into()),
        ]);
        assert_eq!(
            t.pretty(53),
            format!("{{\"unmatched parentheses\",\n{}0}}", " ".repeat(54))
        );
        let t = Term::Tuple(vec![
            Term::Str("nothing to repeat".into()),
            Term::Int("101".into()),
        ]);
        assert_eq!(t.pretty(53), "{\"nothing to repeat\",101}");
        let nums: Vec<Value> = (1..=29).map(|n| json!(n)).collect();
        assert_eq!(
            Term::from_json(&Value::Array(nums)).pretty(0),
            "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,\n 29]"
        );
        let pairs = Term::List(vec![Term::Tuple(vec![
            Term::Bin("a".repeat(84)),
            Term::Bin("x".into()),
        ])]);
        assert_eq!(
            pairs.pretty(0),
            format!("[{{<<\"{}\">>,\n  <<\"x\">>}}]", "a".repeat(84))
        );
    }
}
