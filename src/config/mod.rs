//! Configuration: the embedded `config/default.toml`, overridden by an optional file and then
//! by command-line flags. Validation happens once, here, so the rest of the broker can trust it.

use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The defaults shipped with warren, compiled into the binary so that it runs with no files.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Everything warren reads at startup.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub amqp: AmqpConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub resources: ResourceConfig,
    pub tls: TlsConfig,
    pub management: ManagementConfig,
    pub prometheus: PrometheusConfig,
    pub logging: LogConfig,
    /// The control listener of the command-line tools (absent from older files: defaults).
    #[serde(default)]
    pub cli: CliConfig,
    /// The configuration files read (RabbitMQ's `rabbitmq.conf` and `conf.d`, the `--config`
    /// file), for `rabbitmqctl status`. Filled in by whoever loads the files.
    #[serde(skip)]
    pub config_files: Vec<PathBuf>,
}

/// Logging (RabbitMQ's `log.console` and `log.console.level`).
#[derive(Debug, Clone, Deserialize)]
pub struct LogConfig {
    /// Log to standard output at all.
    pub console: bool,
    /// A tracing filter: `debug`, `info`, `warn`, `error`, `off`, or per-module directives.
    /// `WARREN_LOG` wins over it.
    pub level: String,
}

/// The listener `rabbitmqctl`, `rabbitmq-diagnostics` and `rabbitmq-plugins` talk to
/// (RabbitMQ's "inter-node and CLI tool communication" port, 25672), authenticated with the
/// Erlang cookie.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CliConfig {
    /// Serve the control listener at all.
    pub enabled: bool,
    /// Port on `amqp.bind`; absent: `amqp.port + 20000`, as RabbitMQ's distribution port.
    pub port: Option<u16>,
    /// The cookie file; absent: `$HOME/.erlang.cookie`, else `<data_dir>/.erlang.cookie`.
    pub cookie_file: Option<PathBuf>,
}

impl Default for CliConfig {
    fn default() -> CliConfig {
        CliConfig {
            enabled: true,
            port: None,
            cookie_file: None,
        }
    }
}

impl Config {
    /// The control listener's port: `cli.port`, else `amqp.port + 20000`; 0 (a free port) when
    /// the AMQP port is 0 or the sum is not a port.
    pub fn cli_port(&self) -> u16 {
        self.cli.port.unwrap_or_else(|| match self.amqp.port {
            0 => 0,
            p => p.checked_add(20000).unwrap_or(0),
        })
    }
}

/// The Prometheus endpoint (RabbitMQ's `prometheus.tcp.port`).
#[derive(Debug, Clone, Deserialize)]
pub struct PrometheusConfig {
    /// Port on `bind`; 0 picks a free port.
    pub port: u16,
    /// Interface; absent: `amqp.bind` (RabbitMQ's `prometheus.tcp.ip`).
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Serve the metrics at all.
    pub enabled: bool,
}

/// The management HTTP API (RabbitMQ's `management.tcp.port`).
#[derive(Debug, Clone, Deserialize)]
pub struct ManagementConfig {
    /// Port on `bind`; 0 picks a free port.
    pub port: u16,
    /// Interface; absent: `amqp.bind` (RabbitMQ's `management.tcp.ip`).
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Serve the API at all.
    pub enabled: bool,
    /// Milliseconds between samples of message rates.
    pub collect_statistics_interval: u64,
    /// Largest request body accepted, in bytes (RabbitMQ's `management.http.max_body_size`).
    pub max_body_size: usize,
}

/// The AMQP listener and the limits it negotiates.
#[derive(Debug, Clone, Deserialize)]
pub struct AmqpConfig {
    pub bind: IpAddr,
    /// 0 asks the OS for a free port; the chosen one is logged.
    pub port: u16,
    /// Offered in connection.tune; a client may only lower it.
    pub frame_max: u32,
    /// Offered in connection.tune; a client may only lower it.
    pub channel_max: u16,
    /// Seconds; offered in connection.tune, 0 disables heartbeats.
    pub heartbeat: u16,
    /// A content header announcing a larger body is refused with 406.
    pub max_message_size: u64,
    /// Seconds from accept to connection.open before the socket is dropped.
    pub handshake_timeout: u64,
    /// Most client connections at once (0: no limit).
    pub connection_max: usize,
    /// Milliseconds a delivery may stay unacknowledged (RabbitMQ's `consumer_timeout`);
    /// 0 disables the timeout (RabbitMQ's `undefined`). Queues override it with
    /// `x-consumer-timeout`, consumers with the consume argument of the same name.
    pub consumer_timeout: u64,
    /// What a consumer timeout does unless the queue says otherwise
    /// (`x-consumer-timeout-action`): `close-channel` or `cancel-consumer`.
    pub consumer_timeout_action: String,
}

/// What happens when a delivery stays unacknowledged longer than its consumer timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutAction {
    /// RabbitMQ's behaviour: the channel is closed with 406 and every delivery on it is
    /// requeued.
    CloseChannel,
    /// Only the late consumer is cancelled (basic.cancel) and its deliveries requeued.
    CancelConsumer,
}

impl TimeoutAction {
    pub fn parse(s: &str) -> Option<TimeoutAction> {
        match s {
            "close-channel" => Some(TimeoutAction::CloseChannel),
            "cancel-consumer" => Some(TimeoutAction::CancelConsumer),
            _ => None,
        }
    }
}

impl AmqpConfig {
    /// `consumer_timeout_action`, validated at load.
    pub fn timeout_action(&self) -> TimeoutAction {
        TimeoutAction::parse(&self.consumer_timeout_action).unwrap_or(TimeoutAction::CloseChannel)
    }
}

/// Where durable state lives.
#[derive(Debug, Clone, Deserialize)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// Bytes of queued persistent messages held in RAM; beyond it, their bodies stay on disk
    /// until delivered.
    pub memory_budget: u64,
    /// Bytes of queued transient messages held in RAM; beyond it, they are paged out to the
    /// store. 0: a fifth of the machine's memory, where RabbitMQ starts paging (its memory
    /// high watermark, 0.4, times its paging ratio, 0.5).
    pub transient_budget: u64,
    /// Size of the segment files holding large message bodies.
    pub segment_size: u64,
    /// A file to write the process id to (RabbitMQ's `RABBITMQ_PID_FILE`, which
    /// `rabbitmqctl wait` watches); empty: none.
    #[serde(default)]
    pub pid_file: PathBuf,
}

impl StorageConfig {
    /// `transient_budget` with 0 resolved against the machine's memory.
    pub fn transient_budget(&self) -> u64 {
        match self.transient_budget {
            0 => crate::memory::total_bytes() / 5,
            n => n,
        }
    }
}

/// AMQPS: the TLS listener (RabbitMQ's `listeners.ssl.default` and `ssl_options.*`). Off
/// while `certfile` is empty.
#[derive(Debug, Clone, Deserialize)]
pub struct TlsConfig {
    /// Port of the TLS listener, on `amqp.bind` (0 picks a free port).
    pub port: u16,
    /// PEM certificate chain of the server, leaf first.
    pub certfile: PathBuf,
    /// PEM private key of the server (PKCS#8, PKCS#1 or SEC1).
    pub keyfile: PathBuf,
    /// PEM certificates of the authorities client certificates must chain to.
    pub cacertfile: PathBuf,
    /// `verify_none` (no client certificate asked for) or `verify_peer`.
    pub verify: String,
    /// With `verify_peer`: refuse clients without a certificate.
    pub fail_if_no_peer_cert: bool,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.certfile.as_os_str().is_empty()
    }

    pub fn verify_peer(&self) -> bool {
        self.verify == "verify_peer"
    }
}

/// Resource limits: past them, publishing connections are blocked (RabbitMQ's memory and disk
/// alarms).
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceConfig {
    /// Fraction of the machine's (or container's) memory the broker may use before the memory
    /// alarm (RabbitMQ 4.x: `vm_memory_high_watermark.relative`, 0.6).
    pub memory_high_watermark: f64,
    /// Bytes; overrides the fraction when not 0 (`vm_memory_high_watermark.absolute`).
    pub memory_high_watermark_absolute: u64,
    /// Bytes of free disk under the data directory below which the disk alarm is set
    /// (`disk_free_limit.absolute`, 50 MB).
    pub disk_free_limit: u64,
    /// The memory size the relative limits are fractions of, in bytes, instead of the
    /// machine's or container's (RabbitMQ's `total_memory_available_override_value`); 0:
    /// measured.
    #[serde(default)]
    pub total_memory: u64,
}

impl ResourceConfig {
    /// The memory limit in bytes.
    pub fn memory_limit(&self) -> u64 {
        match self.memory_high_watermark_absolute {
            0 => {
                let total = crate::memory::total_bytes();
                (total as f64 * self.memory_high_watermark) as u64
            }
            n => n,
        }
    }
}

/// The user and vhost that exist on a fresh data directory.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthConfig {
    pub default_user: String,
    pub default_pass: String,
    pub default_vhost: String,
    /// Users refused unless they connect from a loopback address (RabbitMQ's `loopback_users`).
    pub loopback_users: Vec<String>,
    /// A definitions file (RabbitMQ's JSON export) imported at every start; empty: none.
    #[serde(default)]
    pub load_definitions: PathBuf,
    /// Configure, write and read patterns the default user gets on the default vhost.
    pub default_permissions: [String; 3],
    /// Tags of the default user (RabbitMQ's `default_user_tags.*`).
    pub default_user_tags: Vec<String>,
}

/// Values given on the command line or by RabbitMQ's environment variables; each overrides
/// the file and the defaults.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub amqp_port: Option<u16>,
    /// The interface of the listeners (`RABBITMQ_NODE_IP_ADDRESS`).
    pub amqp_bind: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
    /// `RABBITMQ_PID_FILE`, or `DATA_DIR.pid` when the data directory is RabbitMQ's.
    pub pid_file: Option<PathBuf>,
    pub mgmt_port: Option<u16>,
    pub metrics_port: Option<u16>,
    /// The user (and password, vhost) created on first start.
    pub default_user: Option<String>,
    pub default_pass: Option<String>,
    pub default_vhost: Option<String>,
    /// The control listener's port (`RABBITMQ_DIST_PORT`).
    pub cli_port: Option<u16>,
    /// Settings read from RabbitMQ's `rabbitmq.conf` and `conf.d`, below the `--config` file.
    pub rabbitmq_conf: crate::rabbitmq_conf::Translated,
}

/// A fixed set of values as a configuration source (the translated `rabbitmq.conf`).
#[derive(Debug, Clone)]
struct Layer(config::Map<String, config::Value>);

impl config::Source for Layer {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        Ok(self.0.clone())
    }
}

impl Overrides {
    /// Add what RabbitMQ's container image reads from its environment, where the command line
    /// did not say: `RABBITMQ_DEFAULT_USER`, `RABBITMQ_DEFAULT_PASS`, `RABBITMQ_DEFAULT_VHOST`
    /// (the user, password and vhost made on first start) and `RABBITMQ_NODE_PORT` (the AMQP
    /// port). `get` reads a variable (`std::env::var(..).ok()` in the binary).
    pub fn with_rabbitmq_env(
        mut self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Overrides, ConfigError> {
        let set = |v: Option<String>| v.filter(|s| !s.is_empty());
        self.default_user = self.default_user.or(set(get("RABBITMQ_DEFAULT_USER")));
        self.default_pass = self.default_pass.or(set(get("RABBITMQ_DEFAULT_PASS")));
        self.default_vhost = self.default_vhost.or(set(get("RABBITMQ_DEFAULT_VHOST")));
        if self.data_dir.is_none() {
            // RabbitMQ keeps a node's data in RABBITMQ_MNESIA_DIR, by default
            // RABBITMQ_MNESIA_BASE/NODENAME, and its pid file beside it.
            self.data_dir = set(get("RABBITMQ_MNESIA_DIR"))
                .map(PathBuf::from)
                .or_else(|| {
                    set(get("RABBITMQ_MNESIA_BASE"))
                        .map(|base| Path::new(&base).join(crate::broker::node_name_from(&get)))
                });
            if let Some(dir) = &self.data_dir {
                self.pid_file = Some(PathBuf::from(format!("{}.pid", dir.display())));
            }
        }
        if let Some(f) = set(get("RABBITMQ_PID_FILE")) {
            self.pid_file = Some(PathBuf::from(f));
        }
        let files = crate::rabbitmq_conf::locate(&get);
        let loopback = Config::defaults().auth.loopback_users;
        self.rabbitmq_conf = crate::rabbitmq_conf::load(&files, &loopback)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let plugins = crate::rabbitmq_conf::enabled_plugins_warnings(&get);
        self.rabbitmq_conf.warnings.extend(plugins);
        if let Some(ip) = set(get("RABBITMQ_NODE_IP_ADDRESS")) {
            self.amqp_bind = Some(ip.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "RABBITMQ_NODE_IP_ADDRESS must be an IP address, got {ip:?}"
                ))
            })?);
        }
        if self.amqp_port.is_none() {
            if let Some(p) = set(get("RABBITMQ_NODE_PORT")) {
                let port = p.trim().parse().map_err(|_| {
                    ConfigError::Invalid(format!(
                        "RABBITMQ_NODE_PORT must be a port number, got {p:?}"
                    ))
                })?;
                self.amqp_port = Some(port);
            }
        }
        if self.cli_port.is_none() {
            if let Some(p) = set(get("RABBITMQ_DIST_PORT")) {
                let port = p.trim().parse().map_err(|_| {
                    ConfigError::Invalid(format!(
                        "RABBITMQ_DIST_PORT must be a port number, got {p:?}"
                    ))
                })?;
                self.cli_port = Some(port);
            }
        }
        Ok(self)
    }
}

/// A configuration problem found at startup.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` if given, then `WARREN_SECTION__KEY` environment variables (for
    /// example `WARREN_AMQP__HEARTBEAT=30`), then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::load_with_env(file, overrides, None)
    }

    /// `load`, with `env` standing in for the process environment when given.
    fn load_with_env(
        file: Option<&Path>,
        overrides: &Overrides,
        env: Option<config::Map<String, String>>,
    ) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        builder = builder.add_source(Layer(overrides.rabbitmq_conf.values.clone()));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("WARREN")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(env),
        );
        if let Some(ip) = overrides.amqp_bind {
            builder = builder.set_override("amqp.bind", ip.to_string())?;
        }
        if let Some(port) = overrides.amqp_port {
            builder = builder.set_override("amqp.port", port as i64)?;
        }
        if let Some(port) = overrides.mgmt_port {
            builder = builder.set_override("management.port", port as i64)?;
        }
        if let Some(port) = overrides.metrics_port {
            builder = builder.set_override("prometheus.port", port as i64)?;
        }
        if let Some(port) = overrides.cli_port {
            builder = builder.set_override("cli.port", port as i64)?;
        }
        if let Some(f) = &overrides.pid_file {
            builder = builder.set_override("storage.pid_file", f.to_string_lossy().as_ref())?;
        }
        if let Some(dir) = &overrides.data_dir {
            builder = builder.set_override("storage.data_dir", dir.to_string_lossy().as_ref())?;
        }
        for (key, value) in [
            ("auth.default_user", &overrides.default_user),
            ("auth.default_pass", &overrides.default_pass),
            ("auth.default_vhost", &overrides.default_vhost),
        ] {
            if let Some(v) = value {
                builder = builder.set_override(key, v.as_str())?;
            }
        }
        let cfg: Config = builder.build()?.try_deserialize()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The embedded defaults alone (what `warren` with no arguments uses).
    pub fn defaults() -> Config {
        Config::load(None, &Overrides::default()).expect("embedded default.toml is valid")
    }

    /// A configuration for tests and embedding: defaults, loopback, port 0, the given data dir.
    pub fn for_test(data_dir: impl Into<PathBuf>) -> Config {
        let mut cfg = Config::defaults();
        cfg.amqp.bind = IpAddr::from([127, 0, 0, 1]);
        cfg.amqp.port = 0;
        cfg.tls.port = 0;
        cfg.management.port = 0;
        cfg.prometheus.port = 0;
        cfg.storage.data_dir = data_dir.into();
        cfg.cli.port = Some(0);
        cfg.cli.cookie_file = Some(cfg.storage.data_dir.join(".erlang.cookie"));
        cfg
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.amqp.frame_max < 4096 {
            return Err(ConfigError::Invalid(format!(
                "amqp.frame_max must be at least 4096, got {}",
                self.amqp.frame_max
            )));
        }
        if self.amqp.channel_max == 0 {
            return Err(ConfigError::Invalid(
                "amqp.channel_max must be at least 1".into(),
            ));
        }
        if TimeoutAction::parse(&self.amqp.consumer_timeout_action).is_none() {
            return Err(ConfigError::Invalid(format!(
                "amqp.consumer_timeout_action must be \"close-channel\" or \"cancel-consumer\", got {:?}",
                self.amqp.consumer_timeout_action
            )));
        }
        let w = self.resources.memory_high_watermark;
        if !(w > 0.0 && w <= 1.0) {
            return Err(ConfigError::Invalid(format!(
                "resources.memory_high_watermark must be a fraction in (0, 1], got {w}"
            )));
        }
        let tls = &self.tls;
        if !matches!(tls.verify.as_str(), "verify_none" | "verify_peer") {
            return Err(ConfigError::Invalid(format!(
                "tls.verify must be \"verify_none\" or \"verify_peer\", got {:?}",
                tls.verify
            )));
        }
        if tls.enabled() && tls.keyfile.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "tls.certfile is set but tls.keyfile is not".into(),
            ));
        }
        if tls.enabled() && tls.verify_peer() && tls.cacertfile.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "tls.verify = \"verify_peer\" needs tls.cacertfile".into(),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.logging.level).is_err() {
            return Err(ConfigError::Invalid(format!(
                "logging.level must be a level (debug, info, warn, error, off) or tracing directives, got {:?}",
                self.logging.level
            )));
        }
        if self.auth.default_vhost.is_empty() {
            return Err(ConfigError::Invalid(
                "auth.default_vhost must not be empty".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
