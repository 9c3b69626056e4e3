//! Prometheus' text exposition format 0.0.4, written the way RabbitMQ's plugin writes it:
//! each family opens with `# TYPE` then `# HELP`, its samples follow, label values are
//! escaped (`\\`, `\"`, `\n`), integers are written as integers.

use std::fmt::Write;

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// RabbitMQ writes its info metrics (`rabbitmq_build_info`) and alarms as untyped.
    Untyped,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
        }
    }
}

/// A metric family: its name without the prefix, its type and its help text (RabbitMQ's).
#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

/// A shorthand for the tables of definitions.
pub const fn def(name: &'static str, kind: Kind, help: &'static str) -> Def {
    Def { name, kind, help }
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v.into())
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v as u64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// The text of one scrape.
#[derive(Debug)]
pub struct Writer {
    out: String,
    /// `rabbitmq_` or `rabbitmq_detailed_` (or `rabbitmq_cluster_`), put before every name.
    pub prefix: &'static str,
}

impl Writer {
    pub fn new(prefix: &'static str) -> Writer {
        Writer {
            out: String::with_capacity(16 * 1024),
            prefix,
        }
    }

    /// Open a family; its samples follow through the returned handle.
    pub fn family(&mut self, d: &Def) -> Family<'_> {
        let _ = writeln!(
            self.out,
            "# TYPE {}{} {}",
            self.prefix,
            d.name,
            d.kind.as_str()
        );
        let _ = write!(self.out, "# HELP {}{} ", self.prefix, d.name);
        escape_into(&mut self.out, d.help, false);
        self.out.push('\n');
        Family {
            out: &mut self.out,
            prefix: self.prefix,
            name: d.name,
        }
    }

    /// A family with one sample and no labels.
    pub fn single(&mut self, d: &Def, v: impl Into<Value>) {
        self.family(d).sample(&[], v);
    }

    /// Write some families under another prefix (`rabbitmq_cluster_`).
    pub fn with_prefix(&mut self, prefix: &'static str, f: impl FnOnce(&mut Writer)) {
        let old = std::mem::replace(&mut self.prefix, prefix);
        f(self);
        self.prefix = old;
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The family being written.
pub struct Family<'a> {
    out: &'a mut String,
    prefix: &'static str,
    name: &'static str,
}

impl Family<'_> {
    pub fn sample(&mut self, labels: &[(&str, &str)], v: impl Into<Value>) {
        self.sample_suffixed("", labels, v.into());
    }

    /// A sample of `<name><suffix>` (a histogram's `_bucket`, `_sum`, `_count`).
    pub fn sample_suffixed(&mut self, suffix: &str, labels: &[(&str, &str)], v: Value) {
        let out = &mut *self.out;
        out.push_str(self.prefix);
        out.push_str(self.name);
        out.push_str(suffix);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_into(out, val, true);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        write_value(out, v);
        out.push('\n');
    }
}

/// Backslash and newline are escaped everywhere; double quotes in label values only.
fn escape_into(out: &mut String, s: &str, quotes: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, v: Value) {
    match v {
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(f) if f.is_nan() => out.push_str("NaN"),
        Value::Float(f) if f.is_infinite() => out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" }),
        // Debug keeps a ".0" on whole numbers, as RabbitMQ writes floats ("0.0").
        Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes_as_rabbitmq_writes_them() {
        let mut w = Writer::new("rabbitmq_");
        w.single(&def("queues", Kind::Gauge, "Queues available"), 3u64);
        let d = def("identity_info", Kind::Untyped, "a \\ b\nc \"q\"");
        let mut f = w.family(&d);
        f.sample(&[("vhost", "/"), ("queue", "a\"b\\c\nd")], 1u64);
        f.sample(&[], 2.5);
        f.sample(&[], f64::NAN);
        f.sample(&[], 0.0);
        f.sample_suffixed("_bucket", &[("le", "+Inf")], Value::Float(f64::INFINITY));
        assert_eq!(
            w.finish(),
            "# TYPE rabbitmq_queues gauge\n\
             # HELP rabbitmq_queues Queues available\n\
             rabbitmq_queues 3\n\
             # TYPE rabbitmq_identity_info untyped\n\
             # HELP rabbitmq_identity_info a \\\\ b\\nc \"q\"\n\
             rabbitmq_identity_info{vhost=\"/\",queue=\"a\\\"b\\\\c\\nd\"} 1\n\
             rabbitmq_identity_info 2.5\n\
             rabbitmq_identity_info NaN\n\
             rabbitmq_identity_info 0.0\n\
             rabbitmq_identity_info_bucket{le=\"+Inf\"} +Inf\n"
        );
    }
}
