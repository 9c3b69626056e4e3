//! RabbitMQ's `rabbitmq.conf` read as it is: the file a team mounts at
//! `/etc/rabbitmq/rabbitmq.conf` (or names with `RABBITMQ_CONFIG_FILE`), then the files of
//! `/etc/rabbitmq/conf.d/*.conf` (`RABBITMQ_CONFIG_FILES`), later files winning.
//!
//! The format is Cuttlefish's: one `key = value` per line, `#` starts a comment anywhere on a
//! line (RabbitMQ cuts `default_pass = pa#ss` to `pa` too), keys are dot-separated words. Each
//! setting warren has is translated into its own configuration key; settings warren does not
//! have are warned about and skipped; a line that is not a setting, or a value of the wrong
//! kind, stops the start with the file and line number.

use config::{Map, Value};
use std::path::{Path, PathBuf};

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    /// Where it was read, for messages: `file:line`.
    pub at: String,
}

/// A file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("syntax error in {0}: {1}")]
    Syntax(String, String),
    #[error("{0}: {1}")]
    Value(String, String),
}

/// Parse one file's text; `name` is used in messages.
pub fn parse(text: &str, name: &str) -> Result<Vec<Setting>, ConfError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let at = format!("{name}:{}", i + 1);
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ConfError::Syntax(
                at,
                format!("expected `key = value`, got {line:?}"),
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        let word_ok = |w: &str| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'))
        };
        if !key.split('.').all(word_ok) {
            return Err(ConfError::Syntax(at, format!("invalid key {key:?}")));
        }
        if value.is_empty() {
            return Err(ConfError::Syntax(at, format!("{key} has no value")));
        }
        out.push(Setting {
            key: key.to_string(),
            value: value.to_string(),
            at,
        });
    }
    Ok(out)
}

/// The files RabbitMQ would read, in order: the main file, then `conf.d`. `get` reads an
/// environment variable. Files that do not exist are skipped, as RabbitMQ does.
pub fn locate(get: &impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let set = |k: &str| get(k).filter(|v| !v.is_empty());
    let mut files = Vec::new();
    let main = match set("RABBITMQ_CONFIG_FILE") {
        // RabbitMQ 3.x accepts the name without its extension.
        Some(f) if Path::new(&f).extension().is_none() => PathBuf::from(format!("{f}.conf")),
        Some(f) => PathBuf::from(f),
        None => PathBuf::from("/etc/rabbitmq/rabbitmq.conf"),
    };
    if main.is_file() {
        files.push(main);
    }
    let extra = set("RABBITMQ_CONFIG_FILES").unwrap_or_else(|| "/etc/rabbitmq/conf.d".into());
    // A directory, or a pattern `DIR/*.conf` as RabbitMQ documents it.
    let dir = extra.strip_suffix("/*.conf").unwrap_or(&extra);
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut more: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
            .collect();
        more.sort();
        files.extend(more);
    } else if Path::new(&extra).is_file() {
        files.push(PathBuf::from(extra));
    }
    files
}

/// Warnings about RabbitMQ's `enabled_plugins` file (`RABBITMQ_ENABLED_PLUGINS_FILE`, else
/// `/etc/rabbitmq/enabled_plugins`, an Erlang list such as
/// `[rabbitmq_management,rabbitmq_prometheus].`): warren's plugins are built in and always
/// on, so only the plugins it lacks are worth a word.
pub fn enabled_plugins_warnings(get: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    let file = get("RABBITMQ_ENABLED_PLUGINS_FILE")
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "/etc/rabbitmq/enabled_plugins".into());
    let Ok(text) = std::fs::read_to_string(&file) else {
        return vec![];
    };
    let Some(list) = parse_plugin_list(&text) else {
        return vec![format!(
            "{file}: not an Erlang list of plugin names such as [rabbitmq_management]. ; ignored"
        )];
    };
    list.into_iter()
        .filter(|p| !crate::cli::plugins::is_builtin(p))
        .map(|p| format!("{file}: plugin {p} is not built into warren; ignored"))
        .collect()
}

/// `[a,b,'c'].` as names; None if it is not such a list.
fn parse_plugin_list(text: &str) -> Option<Vec<String>> {
    let body: String = text
        .lines()
        .map(|l| l.split('%').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    let inner = body
        .trim()
        .strip_suffix('.')?
        .trim()
        .strip_prefix('[')?
        .strip_suffix(']')?;
    let names: Vec<String> = inner
        .split(',')
        .map(|n| n.trim().trim_matches('\'').to_string())
        .filter(|n| !n.is_empty())
        .collect();
    names
        .iter()
        .all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(names)
}

/// What the files say, as warren configuration keys, plus the warnings to log.
#[derive(Debug, Default, Clone)]
pub struct Translated {
    pub values: Map<String, Value>,
    pub warnings: Vec<String>,
    pub files: Vec<PathBuf>,
}

/// Read and translate `files`. `loopback_users` starts from `defaults` (warren's own list).
pub fn load(files: &[PathBuf], loopback_defaults: &[String]) -> Result<Translated, ConfError> {
    let mut settings = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| ConfError::Read(f.display().to_string(), e))?;
        settings.extend(parse(&text, &f.display().to_string())?);
    }
    let mut t = translate(&settings, loopback_defaults)?;
    t.files = files.to_vec();
    Ok(t)
}

/// Settings RabbitMQ has that warren takes without a word because warren already behaves
/// so: statistics are always collected, no log file is written (so its level and directory
/// do not matter).
const ACCEPTED: &[&str] = &[
    "management_agent.disable_metrics_collector",
    "management.rates_mode",
    "log.file.level",
    "log.dir",
];

/// Turn settings into warren's keys; later settings win over earlier ones.
pub fn translate(
    settings: &[Setting],
    loopback_defaults: &[String],
) -> Result<Translated, ConfError> {
    let mut t = Translated::default();
    let mut loopback: Vec<String> = loopback_defaults.to_vec();
    let mut perms = [".*".to_string(), ".*".to_string(), ".*".to_string()];
    let (mut perms_set, mut loopback_set) = (false, false);
    let mut listeners: Vec<&Setting> = Vec::new();
    // A relative disk limit is a fraction of this, wherever the line stands.
    let total_override = settings
        .iter()
        .rev()
        .find(|s| s.key == "total_memory_available_override_value")
        .and_then(|s| bytes(&s.value));
    let mut tags: Vec<String> = vec!["administrator".into()];
    let mut tags_set = false;
    for s in settings {
        let (k, v) = (s.key.as_str(), s.value.as_str());
        let bad = |what: &str| ConfError::Value(s.at.clone(), format!("{k}: {what}, got {v:?}"));
        let mut put = |key: &str, value: Value| {
            t.values.insert(key.to_string(), value);
        };
        match k {
            _ if listener_name(k).is_some() => listeners.push(s),
            "default_user" => put("auth.default_user", Value::from(v)),
            "default_pass" => put("auth.default_pass", Value::from(v)),
            "default_vhost" => put("auth.default_vhost", Value::from(v)),
            "default_permissions.configure" | "default_permissions.write" | "default_permissions.read" => {
                let i = match k.rsplit('.').next() {
                    Some("configure") => 0,
                    Some("write") => 1,
                    _ => 2,
                };
                perms[i] = v.to_string();
                perms_set = true;
            }
            "loopback_users" if v == "none" => {
                loopback.clear();
                loopback_set = true;
            }
            _ if k.starts_with("loopback_users.") => {
                let user = &k["loopback_users.".len()..];
                loopback.retain(|u| u != user);
                if boolean(v).ok_or_else(|| bad("expected true or false"))? {
                    loopback.push(user.to_string());
                }
                loopback_set = true;
            }
            "heartbeat" => put("amqp.heartbeat", int(v, u16::MAX as u64).ok_or_else(|| bad("expected seconds"))?),
            "frame_max" => put("amqp.frame_max", int(v, u32::MAX as u64).ok_or_else(|| bad("expected bytes"))?),
            "channel_max" => put("amqp.channel_max", int(v, u16::MAX as u64).ok_or_else(|| bad("expected a number"))?),
            "connection_max" if v == "infinity" => put("amqp.connection_max", Value::from(0i64)),
            "connection_max" => put("amqp.connection_max", int(v, u32::MAX as u64).ok_or_else(|| bad("expected a number or infinity"))?),
            "max_message_size" => put("amqp.max_message_size", int(v, 1 << 40).ok_or_else(|| bad("expected bytes"))?),
            "handshake_timeout" => {
                // Milliseconds in RabbitMQ, seconds in warren.
                let ms = v.parse::<u64>().map_err(|_| bad("expected milliseconds"))?;
                put("amqp.handshake_timeout", Value::from(ms.div_ceil(1000) as i64));
            }
            "consumer_timeout" if v == "undefined" || v == "infinity" => put("amqp.consumer_timeout", Value::from(0i64)),
            "consumer_timeout" => put("amqp.consumer_timeout", int(v, i64::MAX as u64).ok_or_else(|| bad("expected milliseconds"))?),
            "collect_statistics_interval" => put("management.collect_statistics_interval", int(v, i64::MAX as u64).ok_or_else(|| bad("expected milliseconds"))?),
            "vm_memory_high_watermark.relative" => {
                let f = v.parse::<f64>().ok().filter(|f| *f > 0.0 && *f <= 1.0).ok_or_else(|| bad("expected a fraction in (0, 1]"))?;
                put("resources.memory_high_watermark", Value::from(f));
                put("resources.memory_high_watermark_absolute", Value::from(0i64));
            }
            "vm_memory_high_watermark.absolute" => {
                let b = bytes(v).ok_or_else(|| bad("expected bytes, e.g. 2GB or 1024MiB"))?;
                put("resources.memory_high_watermark_absolute", Value::from(b as i64));
            }
            "disk_free_limit.absolute" => {
                let b = bytes(v).ok_or_else(|| bad("expected bytes, e.g. 50MB or 1GiB"))?;
                put("resources.disk_free_limit", Value::from(b as i64));
            }
            "disk_free_limit.relative" => {
                let f = v.parse::<f64>().ok().filter(|f| *f >= 0.0).ok_or_else(|| bad("expected a ratio to the memory size"))?;
                let total = total_override.unwrap_or_else(crate::memory::total_bytes);
                put("resources.disk_free_limit", Value::from((total as f64 * f) as i64));
            }
            "total_memory_available_override_value" => {
                let b = bytes(v).ok_or_else(|| bad("expected bytes, e.g. 4GB or 4096MiB"))?;
                put("resources.total_memory", Value::from(b as i64));
            }
            "management.tcp.port" => put("management.port", int(v, u16::MAX as u64).ok_or_else(|| bad("expected a port"))?),
            "management.tcp.ip" | "prometheus.tcp.ip" => {
                let ip: std::net::IpAddr = v.parse().map_err(|_| bad("expected an IP address"))?;
                let key = if k.starts_with("management") { "management.bind" } else { "prometheus.bind" };
                put(key, Value::from(ip.to_string()));
            }
            "prometheus.tcp.port" => put("prometheus.port", int(v, u16::MAX as u64).ok_or_else(|| bad("expected a port"))?),
            "management.http.max_body_size" => put("management.max_body_size", int(v, i64::MAX as u64).ok_or_else(|| bad("expected bytes"))?),
            // 3.9+ spells it definitions.local.path with the local_filesystem backend.
            "load_definitions" | "management.load_definitions" | "definitions.local.path" => {
                put("auth.load_definitions", Value::from(v))
            }
            "definitions.import_backend" => {
                if !matches!(v, "local_filesystem" | "rabbit_definitions_import_local_filesystem") {
                    t.warnings.push(format!(
                        "{}: {k}: warren imports definitions from a local file only; ignored",
                        s.at
                    ));
                }
            }
            // warren imports the file at every start; importing it again changes nothing.
            "definitions.skip_if_unchanged" => {
                boolean(v).ok_or_else(|| bad("expected true or false"))?;
            }
            _ if k.starts_with("default_user_tags.") => {
                let tag = &k["default_user_tags.".len()..];
                tags.retain(|x| x != tag);
                if boolean(v).ok_or_else(|| bad("expected true or false"))? {
                    tags.push(tag.to_string());
                }
                tags_set = true;
            }
            "log.console" => put("logging.console", Value::from(boolean(v).ok_or_else(|| bad("expected true or false"))?)),
            "log.console.level" | "log.default.level" => {
                let level = log_level(v).ok_or_else(|| bad("expected debug, info, notice, warning, error, critical or none"))?;
                put("logging.level", Value::from(level));
            }
            "ssl_options.certfile" => put("tls.certfile", Value::from(v)),
            "ssl_options.keyfile" => put("tls.keyfile", Value::from(v)),
            "ssl_options.cacertfile" => put("tls.cacertfile", Value::from(v)),
            "ssl_options.verify" => {
                if !matches!(v, "verify_none" | "verify_peer") {
                    return Err(bad("expected verify_none or verify_peer"));
                }
                put("tls.verify", Value::from(v));
            }
            "ssl_options.fail_if_no_peer_cert" => put("tls.fail_if_no_peer_cert", Value::from(boolean(v).ok_or_else(|| bad("expected true or false"))?)),
            _ if ACCEPTED.contains(&k) => {}
            // No log file is what warren does anyway.
            "log.file" if v == "false" => {}
            _ if k.starts_with("ssl_options.") => t.warnings.push(format!(
                "{}: {k} is not supported by warren (rustls picks TLS versions and ciphers); ignored",
                s.at
            )),
            _ if k.starts_with("listeners.") => t.warnings.push(format!(
                "{}: {k}: warren always has its AMQP listener; ignored",
                s.at
            )),
            _ => t.warnings.push(format!("{}: unknown or unsupported setting {k}; ignored", s.at)),
        }
    }
    for (kind, port_key) in [("tcp", "amqp.port"), ("ssl", "tls.port")] {
        choose_listener(&listeners, kind, port_key, &mut t)?;
    }
    if tags_set {
        t.values.insert(
            "auth.default_user_tags".into(),
            Value::from(
                tags.iter()
                    .map(|x| Value::from(x.as_str()))
                    .collect::<Vec<_>>(),
            ),
        );
    }
    if perms_set {
        t.values.insert(
            "auth.default_permissions".into(),
            Value::from(
                perms
                    .iter()
                    .map(|p| Value::from(p.as_str()))
                    .collect::<Vec<_>>(),
            ),
        );
    }
    if loopback_set {
        t.values.insert(
            "auth.loopback_users".into(),
            Value::from(
                loopback
                    .iter()
                    .map(|u| Value::from(u.as_str()))
                    .collect::<Vec<_>>(),
            ),
        );
    }
    Ok(t)
}

/// `(tcp|ssl, NAME)` of a listener setting `listeners.tcp.NAME` / `listeners.ssl.NAME`.
fn listener_name(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("listeners.")?;
    let (kind, name) = rest.split_once('.')?;
    (matches!(kind, "tcp" | "ssl") && !name.contains('.')).then_some((kind, name))
}

/// warren has one listener of each kind: RabbitMQ's `default` one, else the first one named
/// (`listeners.tcp.1 = ...`); the others are warned about.
fn choose_listener(
    listeners: &[&Setting],
    kind: &str,
    port_key: &str,
    t: &mut Translated,
) -> Result<(), ConfError> {
    let of_kind: Vec<&&Setting> = listeners
        .iter()
        .filter(|s| listener_name(&s.key).is_some_and(|(k, _)| k == kind))
        .collect();
    let chosen = of_kind
        .iter()
        .find(|s| listener_name(&s.key).is_some_and(|(_, n)| n == "default"))
        .or(of_kind.first());
    let Some(chosen) = chosen else {
        return Ok(());
    };
    let (ip, port) = listener(&chosen.value).ok_or_else(|| {
        ConfError::Value(
            chosen.at.clone(),
            format!(
                "{}: expected PORT or IP:PORT, got {:?}",
                chosen.key, chosen.value
            ),
        )
    })?;
    t.values.insert(port_key.into(), Value::from(port as i64));
    if let Some(ip) = ip {
        t.values.insert("amqp.bind".into(), Value::from(ip));
    }
    for other in of_kind.iter().filter(|s| s.at != chosen.at) {
        t.warnings.push(format!(
            "{}: {}: warren has one {} listener ({} is used); ignored",
            other.at,
            other.key,
            if kind == "tcp" { "AMQP" } else { "AMQPS" },
            chosen.key
        ));
    }
    Ok(())
}

/// `5672`, `127.0.0.1:5672`, `::1:5672` or `[::1]:5672`.
fn listener(v: &str) -> Option<(Option<String>, u16)> {
    if let Ok(port) = v.parse::<u16>() {
        return Some((None, port));
    }
    let (ip, port) = v.rsplit_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = ip.parse().ok()?;
    Some((Some(ip.to_string()), port.parse().ok()?))
}

fn int(v: &str, max: u64) -> Option<Value> {
    v.parse::<u64>()
        .ok()
        .filter(|n| *n <= max)
        .map(|n| Value::from(n as i64))
}

fn boolean(v: &str) -> Option<bool> {
    match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// RabbitMQ's level names, as tracing filter directives.
pub fn log_level(v: &str) -> Option<&'static str> {
    Some(match v {
        "debug" => "debug",
        "info" | "notice" => "info",
        "warning" => "warn",
        "error" | "critical" | "alert" | "emergency" => "error",
        "none" => "off",
        _ => return None,
    })
}

/// An amount of memory as RabbitMQ writes it: bytes, or a number with a unit. `kB`, `MB`,
/// `GB`, `TB` are powers of 1000; `k`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB` powers of 1024.
pub fn bytes(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "k" | "K" | "KiB" | "kiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests;
