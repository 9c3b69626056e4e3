//! The command-line tools of RabbitMQ, as one multi-call binary: `rabbitmqctl`,
//! `rabbitmq-diagnostics` and `rabbitmq-plugins` (by the name the binary is called with, or
//! `warren ctl|diagnostics|plugins ...`). They talk to the broker's control listener
//! ([`crate::mgmt::control`]) over HTTP, authenticated with the Erlang cookie, and print
//! what RabbitMQ 3.10's tools print, with their exit codes.
//!
//! - [`args`]: options before or after the command, as RabbitMQ takes them.
//! - [`client`]: which node, which port, which cookie; a blocking HTTP/1.1 client.
//! - [`output`]: exit codes, error texts, tables.
//! - [`ctl`] and [`list`]: `rabbitmqctl`, with [`policies`] (policies and parameters),
//!   [`limits`] (vhost and user limits) and [`admin`] (definitions, connections, cluster
//!   name, feature flags, alarm limits); [`diagnostics`] and [`health`]:
//!   `rabbitmq-diagnostics`; [`status`]: the `status` report both print; [`plugins`]:
//!   `rabbitmq-plugins`; [`md5`]: for the cookie's hash.

mod admin;
pub mod args;
pub mod client;
pub mod cookie;
mod ctl;
mod diagnostics;
mod health;
mod limits;
mod list;
pub mod md5;
pub mod output;
pub mod plugins;
mod policies;
mod status;
mod wait;

use args::Args;
use client::{Node, Reply};
use output::Outcome;
use serde_json::Value;

/// Which tool the binary acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Ctl,
    Diagnostics,
    Plugins,
}

impl Tool {
    /// The tool a program name (argv[0]'s file name) stands for.
    pub fn from_program(name: &str) -> Option<Tool> {
        match name {
            "rabbitmqctl" => Some(Tool::Ctl),
            "rabbitmq-diagnostics" => Some(Tool::Diagnostics),
            "rabbitmq-plugins" => Some(Tool::Plugins),
            _ => None,
        }
    }

    /// The tool a `warren` subcommand stands for.
    pub fn from_subcommand(name: &str) -> Option<Tool> {
        match name {
            "ctl" | "rabbitmqctl" => Some(Tool::Ctl),
            "diagnostics" | "rabbitmq-diagnostics" => Some(Tool::Diagnostics),
            "plugins" | "rabbitmq-plugins" => Some(Tool::Plugins),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::Ctl => "rabbitmqctl",
            Tool::Diagnostics => "rabbitmq-diagnostics",
            Tool::Plugins => "rabbitmq-plugins",
        }
    }

    /// (command, description) of every command the tool has.
    fn commands(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Tool::Ctl => ctl::COMMANDS,
            Tool::Diagnostics => diagnostics::COMMANDS,
            Tool::Plugins => plugins::COMMANDS,
        }
    }
}

/// Run `tool` with `argv` (without the program name), print, and return the exit code.
pub fn main(tool: Tool, argv: &[String]) -> i32 {
    use std::io::Write;
    let o = run(tool, argv, |k| std::env::var(k).ok());
    let _ = std::io::stdout().write_all(o.out.as_bytes());
    let _ = std::io::stderr().write_all(o.err.as_bytes());
    o.code
}

/// Run `tool` with `argv`, reading the environment through `env`.
pub fn run(tool: Tool, argv: &[String], env: impl Fn(&str) -> Option<String>) -> Outcome {
    let name = tool.name();
    let args = match args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            let a = Args {
                given: argv.to_vec(),
                ..Args::default()
            };
            return output::usage_error(name, &a, &e, "<command> [<command options>]");
        }
    };
    let Some(command) = args.command.clone() else {
        return output::unknown_command(name, "", tool.commands());
    };
    if command == "help" || command == "version" {
        let mut o = Outcome::default();
        if command == "version" {
            o.line(crate::mgmt::VERSION);
        } else {
            let usage = output::unknown_command(name, "", tool.commands());
            o.out = usage.err.trim_start().to_string();
        }
        return o;
    }
    if !tool.commands().iter().any(|(c, _)| *c == command) {
        return output::unknown_command(name, &command, tool.commands());
    }
    let ctx = Ctx {
        tool: name,
        node: Node::from_args(&args, &env),
        args,
    };
    match tool {
        Tool::Ctl => ctl::run(&ctx, &command),
        Tool::Diagnostics => diagnostics::run(&ctx, &command),
        Tool::Plugins => plugins::run(&ctx, &command),
    }
}

/// What a command returns: its outcome, or the outcome of the failure that ended it.
type Done = Result<Outcome, Box<Outcome>>;

/// What a command works with.
pub(crate) struct Ctx {
    pub tool: &'static str,
    pub args: Args,
    pub node: Node,
}

impl Ctx {
    /// Connect and check the node; on failure, RabbitMQ's "unable to perform an operation".
    fn connect(&self) -> Result<Value, Box<Outcome>> {
        self.node
            .connect()
            .map_err(|e| Box::new(output::unreachable(&self.node, &e)))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, Box<Outcome>> {
        self.node
            .request(method, path, body)
            .map_err(|e| Box::new(output::unreachable(&self.node, &e)))
    }

    /// A GET that must succeed; its JSON body.
    fn get(&self, path: &str) -> Result<Value, Box<Outcome>> {
        let r = self.request("GET", path, None)?;
        if !r.ok() {
            return Err(Box::new(
                Outcome::default().fail(output::EX_SOFTWARE, reason(&r)),
            ));
        }
        Ok(r.body)
    }

    /// Check the positional argument count.
    fn arity(&self, min: usize, max: usize, usage: &str) -> Result<(), Box<Outcome>> {
        output::arity(self.tool, &self.args, min, max, usage)
    }

    fn usage_error(&self, reason: &str, usage: &str) -> Outcome {
        output::usage_error(self.tool, &self.args, reason, usage)
    }
}

/// The reason of an API error body.
fn reason(r: &Reply) -> String {
    r.body
        .get("reason")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| format!("the node answered {}", r.status))
}

/// Run a command body that returns early with `Err(outcome)`.
fn settle(r: Result<Outcome, Box<Outcome>>) -> Outcome {
    r.unwrap_or_else(|o| *o)
}
