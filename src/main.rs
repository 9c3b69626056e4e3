//! The `warren` binary: flags -> configuration -> logging -> server.

use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use warren::cli::Tool;
use warren::config::{Config, Overrides};

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// mimalloc instead of glibc's malloc: a message is allocated on the thread that reads its
/// publisher and freed on the thread that writes it to its consumer, and glibc's per-arena
/// locks made that cross-thread free the broker's most contended lock (22% of the time in a
/// perf profile of 1 producer / 1 consumer at full rate).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An AMQP 0-9-1 message broker, a drop-in replacement for RabbitMQ.
#[derive(Parser, Debug)]
#[command(name = "warren", version)]
struct Cli {
    /// AMQP port (0 picks a free port and logs it).
    #[arg(long)]
    amqp_port: Option<u16>,
    /// Management HTTP API port (0 picks a free port and logs it).
    #[arg(long)]
    mgmt_port: Option<u16>,
    /// Prometheus metrics port (0 picks a free port and logs it).
    #[arg(long)]
    metrics_port: Option<u16>,
    /// Directory for durable state.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A TOML file overriding the embedded defaults.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    // A multi-call binary: called as rabbitmqctl, rabbitmq-diagnostics or rabbitmq-plugins
    // (a symlink), or as `warren ctl|diagnostics|plugins ...`, it is that tool; called as
    // rabbitmq-server or warren, the broker.
    let argv: Vec<String> = std::env::args().collect();
    let program = argv
        .first()
        .map(|a| {
            Path::new(a)
                .file_name()
                .map_or(a.clone(), |f| f.to_string_lossy().into())
        })
        .unwrap_or_default();
    if let Some(tool) = Tool::from_program(&program) {
        return exit(warren::cli::main(tool, &argv[1..]));
    }
    if let Some(tool) = argv.get(1).and_then(|a| Tool::from_subcommand(a)) {
        return exit(warren::cli::main(tool, &argv[2..]));
    }
    let cli = if program == "rabbitmq-server" {
        // RabbitMQ's rabbitmq-server takes flags warren does not have (-detached, erl
        // arguments): warren's own are used, anything else is ignored with a warning.
        match Cli::try_parse_from(&argv) {
            Ok(cli) => cli,
            Err(e)
                if e.kind() == clap::error::ErrorKind::DisplayVersion
                    || e.kind() == clap::error::ErrorKind::DisplayHelp =>
            {
                e.exit()
            }
            Err(_) => {
                eprintln!("rabbitmq-server: ignoring arguments {:?}", &argv[1..]);
                Cli::parse_from(argv.iter().take(1))
            }
        }
    } else {
        Cli::parse()
    };
    let overrides = Overrides {
        amqp_port: cli.amqp_port,
        data_dir: cli.data_dir,
        mgmt_port: cli.mgmt_port,
        metrics_port: cli.metrics_port,
        ..Overrides::default()
    }
    .with_rabbitmq_env(|k| std::env::var(k).ok());
    let (mut cfg, conf) = match overrides
        .and_then(|o| Config::load(cli.config.as_deref(), &o).map(|c| (c, o.rabbitmq_conf)))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warren: {e}");
            return ExitCode::from(2);
        }
    };
    cfg.config_files = conf.files.clone();
    cfg.config_files.extend(cli.config.clone());
    let level = if cfg.logging.console {
        cfg.logging.level.as_str()
    } else {
        "off"
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, reload, EnvFilter};
    let filter = EnvFilter::try_from_env("WARREN_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Behind a reload handle, so that `rabbitmqctl set_log_level` can change it.
    let (filter, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        // Colour only on a terminal: logs piped to a file or a supervisor stay plain text.
        .with(fmt::layer().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())))
        .init();
    warren::logging::install(move |directives| {
        let filter = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    });
    for f in &conf.files {
        tracing::info!(file = %f.display(), "RabbitMQ configuration file read");
    }
    for w in &conf.warnings {
        tracing::warn!("{w}");
    }
    let fds = warren::fd::raise_limit(1 << 20);
    tracing::debug!(limit = fds, "open files");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(warren::memory::on_park)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(warren::server::run_until_signal(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren: {e}");
            ExitCode::FAILURE
        }
    }
}
