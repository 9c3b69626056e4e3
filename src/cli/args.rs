//! The command line of the tools: options may come before or after the command, in short
//! (`-n NODE`), long (`--node NODE`) or `--node=NODE` form, as RabbitMQ's tools take them.

use std::collections::{HashMap, HashSet};

/// The parsed command line.
#[derive(Debug, Default, Clone)]
pub struct Args {
    /// Everything as given, for "Arguments given:" in usage errors.
    pub given: Vec<String>,
    /// The command name (first positional argument).
    pub command: Option<String>,
    /// Positional arguments after the command.
    pub positional: Vec<String>,
    pub node: Option<String>,
    pub vhost: Option<String>,
    /// Seconds.
    pub timeout: Option<u64>,
    pub formatter: Option<String>,
    pub cookie: Option<String>,
    pub quiet: bool,
    pub silent: bool,
    /// Boolean switches by long name (`if-empty`, `offline`, `no-table-headers`, ...).
    pub flags: HashSet<String>,
    /// The values of the other valued options, by long name (`priority`, `apply-to`, ...).
    pub values: HashMap<String, String>,
    /// Options this parser does not know, for the command to refuse.
    pub unknown: Vec<String>,
}

impl Args {
    pub fn flag(&self, name: &str) -> bool {
        self.flags.contains(name)
    }

    /// The value of a valued option given by its long name.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The vhost (`-p`), `/` by default.
    pub fn vhost(&self) -> &str {
        self.vhost.as_deref().unwrap_or("/")
    }

    /// Banners and info lines are printed unless `-q` or `-s`.
    pub fn banner(&self) -> bool {
        !self.quiet && !self.silent
    }

    pub fn json(&self) -> bool {
        self.formatter.as_deref() == Some("json")
    }

    /// The timeout in seconds (60 unless `-t`).
    pub fn timeout_secs(&self) -> u64 {
        self.timeout.unwrap_or(60)
    }
}

/// Options taking a value: (short, long).
const VALUED: &[(&str, &str)] = &[
    ("-n", "node"),
    ("-p", "vhost"),
    ("-t", "timeout"),
    ("", "formatter"),
    ("", "erlang-cookie"),
    ("", "description"),
    ("", "tags"),
    ("", "default-queue-type"),
    ("", "unit"),
    ("", "priority"),
    ("", "apply-to"),
    ("", "limit"),
    ("", "user"),
    ("", "within"),
    ("", "per-connection-delay"),
    ("", "format"),
];

/// Switches: (short, long).
const SWITCHES: &[(&str, &str)] = &[
    ("-q", "quiet"),
    ("-s", "silent"),
    ("-l", "longnames"),
    ("-e", "if-empty"),
    ("-u", "if-unused"),
    ("-E", "enabled"),
    ("-m", "minimal"),
    ("-v", "verbose"),
    ("", "implicitly-enabled"),
    ("", "offline"),
    ("", "online"),
    ("", "local"),
    ("", "no-table-headers"),
    ("", "all"),
    ("", "idempotent"),
    ("", "wait"),
    ("", "global"),
    ("", "skip-if-unchanged"),
];

/// Parse `argv` (without the program name). Errors are messages for a usage error.
pub fn parse(argv: &[String]) -> Result<Args, String> {
    let mut a = Args {
        given: argv.to_vec(),
        ..Args::default()
    };
    let mut it = argv.iter().peekable();
    let mut only_positional = false;
    while let Some(arg) = it.next() {
        if only_positional || !arg.starts_with('-') || arg == "-" {
            match a.command {
                None => a.command = Some(arg.clone()),
                Some(_) => a.positional.push(arg.clone()),
            }
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let long = |table: &[(&str, &'static str)]| {
            table
                .iter()
                .find(|(s, l)| (!s.is_empty() && *s == key) || key.strip_prefix("--") == Some(l))
                .map(|(_, l)| *l)
        };
        if let Some(name) = long(VALUED) {
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("option {key} needs a value"))?,
            };
            match name {
                "node" => a.node = Some(value),
                "vhost" => a.vhost = Some(value),
                "timeout" => {
                    a.timeout = Some(
                        value
                            .parse()
                            .map_err(|_| format!("invalid timeout {value:?}"))?,
                    )
                }
                "formatter" => a.formatter = Some(value),
                "erlang-cookie" => a.cookie = Some(value),
                _ => {
                    a.flags.insert(name.to_string());
                    a.values.insert(name.to_string(), value);
                }
            }
        } else if let Some(name) = long(SWITCHES) {
            match name {
                "quiet" => a.quiet = true,
                "silent" => a.silent = true,
                _ => {
                    a.flags.insert(name.to_string());
                }
            }
        } else {
            a.unknown.push(arg.clone());
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Args {
        parse(&s.split(' ').map(String::from).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn options_go_anywhere() {
        let a = p("-n rabbit@h set_permissions -p /x dave .* .* .* -q");
        assert_eq!(a.command.as_deref(), Some("set_permissions"));
        assert_eq!(a.node.as_deref(), Some("rabbit@h"));
        assert_eq!(a.vhost(), "/x");
        assert_eq!(a.positional, ["dave", ".*", ".*", ".*"]);
        assert!(a.quiet && !a.banner());
        let a = p("delete_queue q1 --if-empty -u --formatter=json -t 5");
        assert!(a.flag("if-empty") && a.flag("if-unused") && a.json());
        assert_eq!(a.timeout_secs(), 5);
        assert_eq!(p("list --bogus").unknown, ["--bogus"]);
        let a = p("set_policy --priority 3 --apply-to=queues n p {}");
        assert_eq!(
            (a.value("priority"), a.value("apply-to")),
            (Some("3"), Some("queues"))
        );
    }
}
