//! Shared test support: a warren broker started in-process on a free port, and helpers to
//! connect real clients to it.
//!
//! Set `WARREN_TEST_URL=amqp://guest:guest@127.0.0.1:5673/%2f` to run a test file against
//! another broker instead (a real RabbitMQ, to check that the expectations are right).
#![allow(dead_code)]

pub mod cli;
pub mod http;

use lapin::{Connection, ConnectionProperties};
use std::future::Future;
use std::time::Duration;

/// A broker for one test: in-process warren on 127.0.0.1:0 with its own data directory,
/// or the broker named by `WARREN_TEST_URL`.
pub struct TestBroker {
    /// `amqp://guest:guest@host:port/%2f`
    pub url: String,
    /// host:port of the AMQP listener, for raw-socket tests.
    pub addr: std::net::SocketAddr,
    handle: Option<warren::server::ServerHandle>,
    /// The configuration it was started with, reused by `restart`.
    config: Option<warren::config::Config>,
    _dir: Option<TempDir>,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::start_with(|_| {}).await
    }

    /// Start with a tweaked configuration (ignored when `WARREN_TEST_URL` is set).
    pub async fn start_with(tweak: impl FnOnce(&mut warren::config::Config)) -> TestBroker {
        if let Ok(url) = std::env::var("WARREN_TEST_URL") {
            let hostport = url
                .split('@')
                .nth(1)
                .and_then(|s| s.split('/').next())
                .expect("WARREN_TEST_URL like amqp://u:p@host:port/vhost");
            let addr = tokio::net::lookup_host(hostport)
                .await
                .unwrap()
                .next()
                .unwrap();
            return TestBroker {
                url,
                addr,
                handle: None,
                config: None,
                _dir: None,
            };
        }
        let dir = TempDir::new();
        let mut cfg = warren::config::Config::for_test(dir.path.clone());
        tweak(&mut cfg);
        let handle = warren::server::start(cfg.clone())
            .await
            .expect("broker starts");
        let addr = handle.local_addr();
        TestBroker {
            url: format!("amqp://guest:guest@{addr}/%2f"),
            addr,
            handle: Some(handle),
            config: Some(cfg),
            _dir: Some(dir),
        }
    }

    /// A URL for another vhost or user: `url_for("guest", "guest", "/")`.
    pub fn url_for(&self, user: &str, pass: &str, vhost: &str) -> String {
        let vh = vhost.replace('%', "%25").replace('/', "%2f");
        format!("amqp://{user}:{pass}@{}/{vh}", self.addr)
    }

    pub async fn connect(&self) -> Connection {
        Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .expect("connect")
    }

    /// The in-process broker's state (None against an external broker).
    /// Where the in-process broker's management API listens.
    pub fn mgmt_addr(&self) -> Option<std::net::SocketAddr> {
        self.handle.as_ref().and_then(|h| h.mgmt_addr())
    }

    /// Where the in-process broker's control listener (of the CLI tools) listens.
    pub fn cli_addr(&self) -> Option<std::net::SocketAddr> {
        self.handle.as_ref().and_then(|h| h.cli_addr())
    }

    /// The configuration the in-process broker runs with.
    pub fn config(&self) -> Option<&warren::config::Config> {
        self.config.as_ref()
    }

    /// Where the in-process broker's Prometheus endpoint listens.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.handle.as_ref().and_then(|h| h.metrics_addr())
    }

    /// Where the in-process broker's AMQPS listener listens, when TLS is configured.
    pub fn broker_handle_tls_addr(&self) -> Option<std::net::SocketAddr> {
        self.handle.as_ref().and_then(|h| h.tls_addr())
    }

    pub fn broker(&self) -> Option<&std::sync::Arc<warren::broker::Broker>> {
        self.handle.as_ref().map(|h| h.broker())
    }

    /// Shut down cleanly and start again on the same data directory (a new port).
    pub async fn restart(mut self) -> TestBroker {
        let dir = self
            ._dir
            .take()
            .expect("restart needs an in-process broker");
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        let cfg = self.config.take().expect("an in-process broker");
        let handle = warren::server::start(cfg.clone())
            .await
            .expect("broker restarts");
        let addr = handle.local_addr();
        TestBroker {
            url: format!("amqp://guest:guest@{addr}/%2f"),
            addr,
            handle: Some(handle),
            config: Some(cfg),
            _dir: Some(dir),
        }
    }

    /// Stop the in-process broker (no-op against an external one).
    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "warren-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Await `fut`, failing the test if it takes longer than `secs` seconds.
pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("timed out")
}

/// Poll `check` every 10 ms until it returns Some, failing after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await; // poll interval
    }
}

/// A warren child process (the built binary), its AMQP port, and its log so far (stdout,
/// read continuously so the child never blocks on a full pipe).
pub struct ChildBroker {
    pub child: tokio::process::Child,
    pub port: u16,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ChildBroker {
    /// Stop it as `docker stop` does (SIGTERM) and wait until it has exited.
    #[allow(dead_code)]
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running") as libc::pid_t;
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        within(30, self.child.wait()).await.expect("exit status")
    }
}

/// Start `warren --amqp-port 0 --mgmt-port 0 --metrics-port 0 --data-dir DIR` with `env` and
/// wait until it is ready.
pub async fn spawn_warren(dir: &std::path::Path, env: &[(&str, &str)]) -> ChildBroker {
    let dir = dir.to_string_lossy();
    let args = [
        "--amqp-port",
        "0",
        "--mgmt-port",
        "0",
        "--metrics-port",
        "0",
        "--data-dir",
        &dir,
    ];
    spawn_warren_with(&args, env).await
}

/// `warren ARGS` as a child process with `env` added, ready once it logs "Server startup
/// complete". RabbitMQ's configuration files of the machine are kept out of it (point
/// `RABBITMQ_CONFIG_FILE`/`RABBITMQ_CONFIG_FILES` in `env` to use some).
pub async fn spawn_warren_with(args: &[&str], env: &[(&str, &str)]) -> ChildBroker {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.args(args)
        .env("RABBITMQ_CONFIG_FILE", "/nonexistent/rabbitmq.conf")
        .env("RABBITMQ_CONFIG_FILES", "/nonexistent/conf.d")
        .env(
            "RABBITMQ_ENABLED_PLUGINS_FILE",
            "/nonexistent/enabled_plugins",
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn warren");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let port = within(30, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.lock().unwrap().push(line.clone());
            if line.contains("Server startup complete") {
                let addr = line.rsplit("listening on ").next().unwrap().trim();
                return addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        }
        panic!("warren exited before it was ready");
    })
    .await;
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    ChildBroker { child, port, log }
}

/// A free TCP port on loopback (bound, then released), for a broker told its port.
#[allow(dead_code)]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A connection to `url` and a channel on it, each within 5 s.
#[allow(dead_code)]
pub async fn connect_url(url: &str) -> Result<(Connection, lapin::Channel), lapin::Error> {
    let conn = within(5, Connection::connect(url, ConnectionProperties::default())).await?;
    let ch = within(5, conn.create_channel()).await?;
    Ok((conn, ch))
}

/// `queue.declare` of `name` with `options` and no arguments, within 5 s.
#[allow(dead_code)]
pub async fn declare_queue(
    ch: &lapin::Channel,
    name: &str,
    options: lapin::options::QueueDeclareOptions,
) -> Result<lapin::Queue, lapin::Error> {
    within(
        5,
        ch.queue_declare(name.into(), options, lapin::types::FieldTable::default()),
    )
    .await
}

/// A unique name for a queue or exchange, so tests against a shared broker do not collide.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The reply code and text of a lapin error that carries an AMQP close, if any.
pub fn amqp_error(err: &lapin::Error) -> Option<(u16, String)> {
    match err.kind() {
        lapin::ErrorKind::ProtocolError(e) => Some((e.get_id(), e.get_message().to_string())),
        _ => None,
    }
}
