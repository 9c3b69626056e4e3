//! Running the CLI look-alikes (the warren binary called as `rabbitmqctl`,
//! `rabbitmq-diagnostics`, `rabbitmq-plugins`) against a test broker.

use super::{within, TempDir, TestBroker};
use std::os::unix::process::CommandExt;

/// A tool's answer.
#[derive(Debug)]
pub struct Ran {
    pub out: String,
    pub err: String,
    pub code: i32,
}

/// Where and how the tools reach the broker under test.
pub struct Target {
    pub port: u16,
    pub node: String,
    pub cookie: String,
    pub home: std::path::PathBuf,
}

impl Target {
    pub fn of(b: &TestBroker, home: &TempDir) -> Target {
        let cookie_file = b.config().unwrap().cli.cookie_file.clone().unwrap();
        Target {
            port: b.cli_addr().expect("the control listener is on").port(),
            node: warren::broker::node_name(),
            cookie: std::fs::read_to_string(cookie_file).unwrap(),
            home: home.path.clone(),
        }
    }

    /// Run `tool` (rabbitmqctl, rabbitmq-diagnostics, rabbitmq-plugins) with `args`, in a
    /// clean environment holding only the node, its port and the cookie.
    pub async fn run(&self, tool: &str, args: &[&str]) -> Ran {
        self.run_env(tool, args, &[("RABBITMQ_ERLANG_COOKIE", &self.cookie)])
            .await
    }

    pub async fn run_env(&self, tool: &str, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.arg0(tool)
            .args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("RABBITMQ_DIST_PORT", self.port.to_string())
            .env("RABBITMQ_NODENAME", &self.node)
            .stdin(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = within(30, async {
            tokio::task::spawn_blocking(move || cmd.output()).await
        })
        .await
        .unwrap()
        .expect("the tool runs");
        Ran {
            out: String::from_utf8_lossy(&out.stdout).into(),
            err: String::from_utf8_lossy(&out.stderr).into(),
            code: out.status.code().unwrap_or(-1),
        }
    }
}

/// An in-process broker (None against an external one: these tests need its control port).
pub async fn broker() -> Option<(TestBroker, TempDir)> {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return None;
    }
    Some((TestBroker::start().await, TempDir::new()))
}
