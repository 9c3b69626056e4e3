//! The listener, the accept loop and graceful shutdown.

use crate::broker::Broker;
use crate::config::Config;
use crate::connection::{self, ConnEvent};
use crate::error::{BrokerError, ReplyCode};
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A running broker: where it listens, and how to stop it.
pub struct ServerHandle {
    addr: SocketAddr,
    broker: Arc<Broker>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    /// The AMQPS listener, when TLS is configured.
    tls: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    /// The management HTTP API, when enabled.
    mgmt: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    /// The Prometheus endpoint, when enabled.
    metrics: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    /// The control listener of the command-line tools, when enabled.
    cli: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    /// Notified when a tool asks the node to stop (`rabbitmqctl stop`).
    stop_request: crate::mgmt::control::StopRequest,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the management API listens, when enabled.
    pub fn mgmt_addr(&self) -> Option<SocketAddr> {
        self.mgmt.as_ref().map(|(a, _)| *a)
    }

    /// Where the Prometheus endpoint listens, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(a, _)| *a)
    }

    /// Where the control listener of the command-line tools listens, when enabled.
    pub fn cli_addr(&self) -> Option<SocketAddr> {
        self.cli.as_ref().map(|(a, _)| *a)
    }

    /// Resolves when a tool asks the node to stop.
    pub async fn stop_requested(&self) {
        self.stop_request.0.notified().await
    }

    /// Where the AMQPS listener listens, when TLS is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|(a, _)| *a)
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stop accepting, close every connection with 320 CONNECTION_FORCED, wait for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        if let Some((_, accept)) = self.tls {
            let _ = accept.await;
        }
        if let Some((_, api)) = self.mgmt {
            let _ = api.await;
        }
        if let Some((_, metrics)) = self.metrics {
            let _ = metrics.await;
        }
        if let Some((_, cli)) = self.cli {
            let _ = cli.await;
        }
        // Aborted connection tasks drop their references on the runtime a moment later: wait
        // for them, so that the store (and its lock on the data directory) is released when
        // this returns and the broker can start again in the same process.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.broker) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Err(e) = self.broker.store.close() {
            tracing::error!(error = %e, "flushing the store at shutdown failed");
        }
    }
}

/// Bind the AMQP listener. The default `::` takes IPv6 and IPv4 connections on one socket
/// (as RabbitMQ listens on both); where the host has no IPv6 it falls back to `0.0.0.0`.
async fn bind(ip: std::net::IpAddr, port: u16) -> std::io::Result<TcpListener> {
    match TcpListener::bind((ip, port)).await {
        Err(e) if ip == std::net::Ipv6Addr::UNSPECIFIED => {
            tracing::debug!(error = %e, "no IPv6 listener; falling back to 0.0.0.0");
            TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).await
        }
        other => other,
    }
}

/// Open the store, bind the listener and start accepting.
pub async fn start(config: Config) -> Result<ServerHandle, BrokerError> {
    if config.resources.total_memory > 0 {
        crate::memory::override_total(config.resources.total_memory);
    }
    let store = Store::open(&config.storage)?;
    let listener = bind(config.amqp.bind, config.amqp.port).await?;
    let addr = listener.local_addr()?;
    let tls = match crate::tls::acceptor(&config.tls)? {
        Some(acceptor) => {
            let l = bind(config.amqp.bind, config.tls.port).await?;
            Some((l.local_addr()?, l, acceptor))
        }
        None => None,
    };
    let mgmt_listener = if config.management.enabled {
        let l = bind(
            config.management.bind.unwrap_or(config.amqp.bind),
            config.management.port,
        )
        .await?;
        Some((l.local_addr()?, l))
    } else {
        None
    };
    let metrics_listener = if config.prometheus.enabled {
        let l = bind(
            config.prometheus.bind.unwrap_or(config.amqp.bind),
            config.prometheus.port,
        )
        .await?;
        Some((l.local_addr()?, l))
    } else {
        None
    };
    let cli_listener = match control_cookie(&config) {
        Some(cookie) => match bind(config.amqp.bind, config.cli_port()).await {
            Ok(l) => Some((l.local_addr()?, l, cookie)),
            // The port derived from the AMQP port (+20000) may be taken on a shared host: the
            // broker serves its clients anyway. A port set on purpose must be free.
            Err(e) if config.cli.port.is_none() => {
                tracing::error!(
                    port = config.cli_port(),
                    error = %e,
                    "no listener for rabbitmqctl and rabbitmq-diagnostics (set cli.port or RABBITMQ_DIST_PORT)"
                );
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let broker = Broker::new(config, store);
    broker.add_listener("amqp", addr.port());
    if let Some((a, _, _)) = &tls {
        broker.add_listener("amqp/ssl", a.port());
    }
    if let Some((a, _)) = &mgmt_listener {
        broker.add_listener("http", a.port());
    }
    if let Some((a, _)) = &metrics_listener {
        // RabbitMQ's name for the listener of its rabbitmq_prometheus plugin.
        broker.add_listener("http/prometheus", a.port());
    }
    if let Some((a, _, _)) = &cli_listener {
        broker.add_listener("clustering", a.port());
    }
    let started = std::time::Instant::now();
    tracing::debug!(rss_kib = crate::memory::rss_kib(), "store opened");
    let (queues, messages) = broker.recover()?;
    let defs = &broker.config.auth.load_definitions;
    if !defs.as_os_str().is_empty() {
        let text = std::fs::read_to_string(defs).map_err(|e| {
            BrokerError::Invalid(format!("cannot read definitions {}: {e}", defs.display()))
        })?;
        let parsed = crate::definitions::parse(&text)
            .map_err(|e| BrokerError::Invalid(format!("{}: {e}", defs.display())))?;
        let done = crate::definitions::import(&broker, parsed)
            .map_err(|e| BrokerError::Invalid(format!("{}: {e}", defs.display())))?;
        tracing::info!(file = %defs.display(), ?done, "definitions imported");
    }
    crate::memory::trim();
    tracing::info!(
        queues,
        messages,
        elapsed_ms = started.elapsed().as_millis() as u64,
        rss_kib = crate::memory::rss_kib(),
        "recovered durable state"
    );
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(housekeeping(stop_rx.clone()));
    tokio::spawn(broker.alarms.clone().run(stop_rx.clone()));
    tokio::spawn(crate::stats::run_sampler(
        Arc::downgrade(&broker),
        stop_rx.clone(),
    ));
    let accept = tokio::spawn(accept_loop(listener, None, broker.clone(), stop_rx.clone()));
    let tls = tls.map(|(tls_addr, l, acceptor)| {
        tracing::info!("AMQPS (TLS) listener started on {tls_addr}");
        let task = tokio::spawn(accept_loop(
            l,
            Some(acceptor),
            broker.clone(),
            stop_rx.clone(),
        ));
        (tls_addr, task)
    });
    let mgmt = mgmt_listener.map(|(mgmt_addr, l)| {
        tracing::info!("Management API started on {mgmt_addr}");
        let task = tokio::spawn(crate::mgmt::serve(l, broker.clone(), stop_rx.clone()));
        (mgmt_addr, task)
    });
    let metrics = metrics_listener.map(|(metrics_addr, l)| {
        tracing::info!("Prometheus metrics started on {metrics_addr}");
        let task = tokio::spawn(crate::mgmt::prometheus::serve(
            l,
            broker.clone(),
            stop_rx.clone(),
        ));
        (metrics_addr, task)
    });
    let stop_request = crate::mgmt::control::StopRequest::default();
    let cli = cli_listener.map(|(cli_addr, l, cookie)| {
        tracing::info!("CLI tool listener started on {cli_addr}");
        let app = crate::mgmt::control::router(broker.clone(), cookie, stop_request.clone());
        let task = tokio::spawn(crate::mgmt::control::serve(l, app, stop_rx.clone()));
        (cli_addr, task)
    });
    tracing::info!("Server startup complete; AMQP listening on {addr}");
    Ok(ServerHandle {
        addr,
        broker,
        stop,
        accept,
        tls,
        mgmt,
        metrics,
        cli,
        stop_request,
    })
}

/// The cookie the control listener expects (`RABBITMQ_ERLANG_COOKIE`, else the cookie file,
/// created when missing); None when the listener is disabled or no cookie can be had, which
/// leaves the broker running without it.
fn control_cookie(config: &Config) -> Option<crate::mgmt::control::ControlCookie> {
    use crate::cli::cookie;
    if !config.cli.enabled {
        return None;
    }
    let cookie = match cookie::from_env(|k| std::env::var(k).ok()) {
        Some(c) => c,
        None => {
            let path = cookie::path(config, std::env::var("HOME").ok().as_deref());
            match cookie::read_or_create(&path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e,
                        "no Erlang cookie: the CLI tool listener stays off");
                    return None;
                }
            }
        }
    };
    Some(crate::mgmt::control::ControlCookie(cookie.into()))
}

/// Periodic chores until shutdown: hand freed memory back to the system.
async fn housekeeping(mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(crate::memory::TRIM_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let _ = tokio::task::spawn_blocking(crate::memory::trim).await;
            }
            _ = stop.changed() => return,
        }
    }
}

/// Accept clients until `stop`; with `tls`, each connection first completes a TLS handshake.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        // At amqp.connection_max, stop accepting until a connection ends (as RabbitMQ's
        // listener does): new clients wait in the kernel's backlog.
        let slot = match &broker.connection_slots {
            None => None,
            Some(slots) => tokio::select! {
                permit = slots.clone().acquire_owned() => permit.ok(),
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                _ = stop.changed() => break,
            },
        };
        tokio::select! {
            res = listener.accept() => match res {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let broker = broker.clone();
                    match &tls {
                        None => conns.spawn(async move {
                            connection::serve(broker, socket, peer).await;
                            drop(slot);
                        }),
                        Some(acceptor) => {
                            let acceptor = acceptor.clone();
                            conns.spawn(async move {
                                serve_tls(broker, acceptor, socket, peer).await;
                                drop(slot);
                            })
                        }
                    };
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    for c in broker.connections.iter() {
        let _ = c.tx.send(ConnEvent::Close {
            code: ReplyCode::ConnectionForced,
            text: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
                .into(),
        });
    }
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

/// Complete the TLS handshake (within the handshake timeout), then serve AMQP over it.
async fn serve_tls(
    broker: Arc<Broker>,
    acceptor: tokio_rustls::TlsAcceptor,
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let timeout = Duration::from_secs(broker.config.amqp.handshake_timeout.max(1));
    let stream = match tokio::time::timeout(timeout, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(peer = %peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::warn!(peer = %peer, "TLS handshake timed out");
            return;
        }
    };
    let cert_user = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| crate::tls::common_name(leaf));
    let protocol = match stream.get_ref().1.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "tlsv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "tlsv1.2",
        _ => "tls",
    };
    let local = stream.get_ref().0.local_addr().unwrap_or(peer);
    let (read, write) = tokio::io::split(stream);
    let tls = connection::TlsPeer {
        cert_user,
        protocol: protocol.to_string(),
    };
    connection::serve_stream(
        broker,
        Box::new(read),
        Box::new(write),
        peer,
        local,
        Some(tls),
    )
    .await;
}

/// Run until SIGTERM or SIGINT, then shut down gracefully.
pub async fn run_until_signal(config: Config) -> Result<(), BrokerError> {
    // RabbitMQ's pid file (RABBITMQ_PID_FILE): `rabbitmqctl wait` watches it. Written before
    // the listeners open, as RabbitMQ writes its own before booting, removed on a clean stop.
    let pid_file = config.storage.pid_file.clone();
    if !pid_file.as_os_str().is_empty() {
        if let Some(dir) = pid_file.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(&pid_file, format!("{}\n", std::process::id())).map_err(|e| {
            BrokerError::Invalid(format!(
                "cannot write the pid file {}: {e}",
                pid_file.display()
            ))
        })?;
    }
    let handle = start(config).await?;
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = handle.stop_requested() => {}
    }
    tracing::info!("shutting down");
    handle.shutdown().await;
    if !pid_file.as_os_str().is_empty() {
        let _ = std::fs::remove_file(&pid_file);
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
