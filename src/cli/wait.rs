//! `rabbitmqctl wait PIDFILE`: what init scripts run after starting the server in the
//! background. It waits for the pid file to name a running process, then for the node to
//! answer and be booted, as RabbitMQ's does, with its texts and its exit code 75 on timeout.

use super::output::Outcome;
use super::{Ctx, Done};
use std::path::Path;
use std::time::{Duration, Instant};

/// sysexits' EX_TEMPFAIL: RabbitMQ's exit code for a timed-out operation.
const EX_TEMPFAIL: i32 = 75;

const USAGE: &str = "wait [<pidfile>] [--pid|-P <pid>] [--timeout <timeout>]";

pub(super) fn wait(ctx: &Ctx) -> Done {
    if ctx.args.positional.is_empty() {
        return Err(Box::new(
            ctx.usage_error("\"No pid or pidfile specified\"", USAGE),
        ));
    }
    ctx.arity(1, 1, USAGE)?;
    let file = &ctx.args.positional[0];
    let node = &ctx.node.name;
    let timeout = Duration::from_secs(ctx.args.timeout_secs());
    let deadline = Instant::now() + timeout;
    let mut o = Outcome::default();
    let timed_out = |o: Outcome| {
        Box::new(o.fail_bare(
            EX_TEMPFAIL,
            format!(
                "Error: operation wait on node {node} timed out. Timeout value used: {}",
                timeout.as_millis()
            ),
        ))
    };
    o.banner(
        &ctx.args,
        format!("Waiting for pid file '{file}' to appear"),
    );
    let pid = loop {
        // A pid file left by an earlier run names a process that is gone: keep waiting.
        if let Some(pid) = running_pid(Path::new(file)) {
            break pid;
        }
        if Instant::now() >= deadline {
            return Err(timed_out(o));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    o.banner(&ctx.args, format!("pid is {pid}"));
    o.banner(
        &ctx.args,
        format!(
            "Waiting for erlang distribution on node '{node}' while OS process '{pid}' is running"
        ),
    );
    loop {
        // A first start creates the cookie file after the tool looked for it.
        let node = match ctx.node.cookie {
            Some(_) => ctx.node.clone(),
            None => super::client::Node::from_args(&ctx.args, |k| std::env::var(k).ok()),
        };
        if node.connect().is_ok() {
            break;
        }
        if Instant::now() >= deadline || !alive(pid) {
            return Err(timed_out(o));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    o.banner(
        &ctx.args,
        format!("Waiting for applications 'rabbit_and_plugins' to start on node '{node}'"),
    );
    o.banner(
        &ctx.args,
        format!("Applications 'rabbit_and_plugins' are running on node '{node}'"),
    );
    Ok(o)
}

/// The pid in `file`, if the file exists and names a running process.
fn running_pid(file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
