//! What the tools print: RabbitMQ's exit codes, error texts, tables and value formatting.

use super::args::Args;
use super::client::{Node, Unreachable};
use serde_json::Value;

/// sysexits codes, as RabbitMQ's tools use them.
pub const EX_USAGE: i32 = 64;
pub const EX_DATAERR: i32 = 65;
pub const EX_NOUSER: i32 = 67;
pub const EX_UNAVAILABLE: i32 = 69;
pub const EX_SOFTWARE: i32 = 70;

/// The outcome of a command: what goes to stdout, to stderr, and the exit code.
#[derive(Debug, Default)]
pub struct Outcome {
    pub out: String,
    pub err: String,
    pub code: i32,
}

impl Outcome {
    /// Add a line to stdout.
    pub fn line(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }

    /// Add a banner line (not with `-q`/`-s`).
    pub fn banner(&mut self, args: &Args, s: impl AsRef<str>) {
        if args.banner() {
            self.line(s);
        }
    }

    /// Fail with `Error:\n<text>` on stderr.
    pub fn fail(mut self, code: i32, text: impl AsRef<str>) -> Outcome {
        self.err.push_str("Error:\n");
        self.err.push_str(text.as_ref());
        self.err.push('\n');
        self.code = code;
        self
    }

    /// Fail with a bare message on stderr (no `Error:` line).
    pub fn fail_bare(mut self, code: i32, text: impl AsRef<str>) -> Outcome {
        self.err.push_str(text.as_ref());
        self.err.push('\n');
        self.code = code;
        self
    }
}

/// "Error (argument validation): ..." with the command's usage; exit 64.
pub fn usage_error(tool: &str, args: &Args, reason: &str, usage: &str) -> Outcome {
    let err = format!(
        "Error (argument validation): {reason}\nArguments given:\n\t{}\n\n\x1b[1mUsage\x1b[0m\n\n{}\n",
        args.given.join(" "),
        usage_line(tool, usage)
    );
    Outcome {
        err,
        code: EX_USAGE,
        ..Outcome::default()
    }
}

/// "Error (argument validation): Bad argument..." with the usage: RabbitMQ gives these exit
/// 65 (data error), not 64.
pub fn bad_argument(tool: &str, args: &Args, reason: &str, usage: &str) -> Outcome {
    Outcome {
        code: EX_DATAERR,
        ..usage_error(tool, args, reason, usage)
    }
}

/// The usage line of a command: `tool [--node <node>] [--longnames] [--quiet] <usage>`.
pub fn usage_line(tool: &str, usage: &str) -> String {
    format!("{tool} [--node <node>] [--longnames] [--quiet] {usage}")
}

/// Check the positional argument count against `min..=max`.
pub fn arity(
    tool: &str,
    args: &Args,
    min: usize,
    max: usize,
    usage: &str,
) -> Result<(), Box<Outcome>> {
    let n = args.positional.len();
    if n < min {
        Err(Box::new(usage_error(
            tool,
            args,
            "not enough arguments.",
            usage,
        )))
    } else if n > max {
        Err(Box::new(usage_error(
            tool,
            args,
            "too many arguments.",
            usage,
        )))
    } else {
        Ok(())
    }
}

/// An unknown command: RabbitMQ's text, then the commands this tool has; exit 64.
pub fn unknown_command(tool: &str, name: &str, commands: &[(&str, &str)]) -> Outcome {
    // Without a command at all, just the usage.
    let missing = if name.is_empty() {
        String::new()
    } else {
        format!("\nCommand '{name}' not found. \n")
    };
    let mut err = format!(
        "{missing}\n\x1b[1mUsage\x1b[0m\n\n{tool} [--node <node>] \
         [--timeout <timeout>] [--longnames] [--quiet] <command> [<command options>]\n\n\
         Available commands:\n\n"
    );
    let width = commands.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    for (c, what) in commands {
        err.push_str(&format!("   {c:width$}  {what}\n"));
    }
    err.push_str(&format!(
        "\nUse '{tool} help <command>' to learn more about a specific command\n"
    ));
    Outcome {
        err,
        code: EX_USAGE,
        ..Outcome::default()
    }
}

/// The node could not be asked: RabbitMQ's explanation, with what warren found; exit 69.
pub fn unreachable(node: &Node, why: &Unreachable) -> Outcome {
    let (found, suggestion) = match why {
        Unreachable::Connect(e) => (e.clone(), "start the node"),
        Unreachable::Cookie => (
            format!(
                "TCP connection to port {} succeeded but the node refused the CLI tool's Erlang cookie",
                node.port
            ),
            "check if the Erlang cookie is identical for all server nodes and CLI tools",
        ),
        Unreachable::OtherNode(other) => (
            format!("the node listening on port {} is named '{other}'", node.port),
            "check the node name (-n) and the port (RABBITMQ_DIST_PORT)",
        ),
        Unreachable::Protocol(e) => (
            format!("TCP connection succeeded but the exchange failed: {e}"),
            "check that the port belongs to a warren node",
        ),
    };
    let n = &node.name;
    let err = format!(
        "Error: unable to perform an operation on node '{n}'. Please see diagnostics information and suggestions below.\n\n\
Most common reasons for this are:\n\n \
* Target node is unreachable (e.g. due to hostname resolution, TCP connection or firewall issues)\n \
* CLI tool fails to authenticate with the server (e.g. due to CLI tool's Erlang cookie not matching that of the server)\n \
* Target node is not running\n\n\
In addition to the diagnostics info below:\n\n \
* See the CLI, clustering and networking guides on https://rabbitmq.com/documentation.html to learn more\n \
* Consult server logs on node {n}\n \
* If target node is configured to use long node names, don't forget to use --longnames with CLI tools\n\n\
DIAGNOSTICS\n===========\n\n\
attempted to contact: [{n}]\n\n\
{n}:\n  * {found}\n  * suggestion: {suggestion}\n"
    );
    Outcome {
        err,
        code: EX_UNAVAILABLE,
        ..Outcome::default()
    }
}

/// A value in a table cell, as RabbitMQ's table formatter prints Erlang terms.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => term(other),
    }
}

/// A nested value: strings quoted, objects as lists of `{"key",value}` tuples.
fn term(v: &Value) -> String {
    match v {
        Value::Null => "undefined".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("[{}]", a.iter().map(term).collect::<Vec<_>>().join(",")),
        Value::Object(m) => format!(
            "[{}]",
            m.iter()
                .map(|(k, v)| format!("{{{k:?},{}}}", term(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A list of names as RabbitMQ prints tags: `[administrator, management]`.
pub fn name_list(v: &Value) -> String {
    let names: Vec<String> = match v {
        Value::Array(a) => a.iter().map(cell).collect(),
        Value::String(s) if !s.is_empty() => s.split(',').map(|t| t.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    format!("[{}]", names.join(", "))
}

/// Rows of cells under `columns`: a tab-separated table (the header unless `-s` or
/// `--no-table-headers`, and nothing at all without rows), or with `--formatter json` a
/// JSON array of objects, as RabbitMQ prints them.
pub fn table(o: &mut Outcome, args: &Args, columns: &[String], rows: &[Vec<Value>]) {
    if args.json() {
        o.line("[");
        for (i, row) in rows.iter().enumerate() {
            // In column order (a serde_json map would sort the keys).
            let fields: Vec<String> = columns
                .iter()
                .zip(row)
                .map(|(c, v)| format!("{}:{v}", Value::String(c.clone())))
                .collect();
            let sep = if i == 0 { "" } else { "," };
            o.line(format!("{sep}{{{}}}", fields.join(",")));
        }
        o.line("]");
        return;
    }
    if rows.is_empty() {
        return;
    }
    if !args.silent && !args.flag("no-table-headers") {
        o.line(columns.join("\t"));
    }
    for row in rows {
        o.line(row.iter().map(cell).collect::<Vec<_>>().join("\t"));
    }
}

/// A table that, without rows, is a blank line (or `[]` in JSON), as RabbitMQ prints the
/// listings of policies, parameters and limits.
pub fn table_or_blank(o: &mut Outcome, args: &Args, columns: &[String], rows: &[Vec<Value>]) {
    if rows.is_empty() {
        o.line(if args.json() { "[]" } else { "" });
    } else {
        table(o, args, columns, rows);
    }
}

/// Key-value pairs as Erlang prints a proplist of a decoded JSON object, in error texts:
/// `[{<<"bogus">>,1}]`.
pub fn proplist(pairs: &[(&String, &Value)]) -> String {
    let term = |v: &Value| match v {
        Value::String(s) => format!("<<{s:?}>>"),
        other => other.to_string(),
    };
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{{<<{k:?}>>,{}}}", term(v)))
        .collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_as_rabbitmq_prints_them() {
        assert_eq!(
            cell(&json!({"x-message-ttl": 60000})),
            "[{\"x-message-ttl\",60000}]"
        );
        assert_eq!(cell(&json!({})), "[]");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(
            name_list(&json!(["administrator", "management"])),
            "[administrator, management]"
        );
        assert_eq!(name_list(&json!([])), "[]");
    }
}
