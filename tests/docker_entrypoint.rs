//! The container image, without a container engine: `docker/docker-entrypoint.sh` is run the
//! way the image runs it (`rabbitmq-server` as its command, the tools on PATH under RabbitMQ's
//! names, the image's `conf.d`, a mounted `rabbitmq.conf`, RabbitMQ's environment variables),
//! and a client connects with the configured user and vhost.

mod common;

use common::*;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A directory of symlinks, as the image's /usr/local/bin.
fn tools(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in [
        "warren",
        "rabbitmq-server",
        "rabbitmqctl",
        "rabbitmq-diagnostics",
        "rabbitmq-plugins",
    ] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_warren"), bin.join(name)).unwrap();
    }
    bin
}

/// Every directory from `dir` up may be entered by others: the entrypoint run as root hands
/// the broker to the `rabbitmq` user where one exists.
fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for d in dir.ancestors().take(2) {
        let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777));
    }
}

#[tokio::test]
async fn the_entrypoint_starts_warren_as_the_image_does() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = std::env::temp_dir().join(unique("warren-image"));
    let etc = dir.join("etc/rabbitmq");
    std::fs::create_dir_all(&etc).unwrap();
    open_up(&dir);
    let bin = tools(&dir);
    let (amqp, mgmt, metrics) = (free_port(), free_port(), free_port());
    // The example's rabbitmq.conf, plus ports that are free on this machine.
    let example = std::fs::read_to_string(repo().join("docker/example-app/rabbitmq.conf")).unwrap();
    std::fs::write(
        etc.join("rabbitmq.conf"),
        format!(
            "{example}listeners.tcp.default = {amqp}\nmanagement.tcp.port = {mgmt}\n\
             prometheus.tcp.port = {metrics}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        etc.join("enabled_plugins"),
        "[rabbitmq_management,rabbitmq_prometheus,rabbitmq_delayed_message_exchange].\n",
    )
    .unwrap();
    let home = dir.join("var/lib/rabbitmq");
    // A read-only cookie left by an earlier run with another cookie.
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".erlang.cookie"), "OLDCOOKIE").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = std::fs::Permissions::from_mode(0o400);
        std::fs::set_permissions(home.join(".erlang.cookie"), ro).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env: Vec<(String, String)> = [
        ("PATH", path),
        ("HOME", home.display().to_string()),
        ("RABBITMQ_DATA_DIR", home.display().to_string()),
        (
            "RABBITMQ_MNESIA_BASE",
            home.join("mnesia").display().to_string(),
        ),
        (
            "RABBITMQ_CONFIG_FILE",
            etc.join("rabbitmq.conf").display().to_string(),
        ),
        (
            "RABBITMQ_CONFIG_FILES",
            repo().join("docker/conf.d").display().to_string(),
        ),
        ("RABBITMQ_NODENAME", "rabbit@shop-broker".into()),
        // As a team mounts it beside rabbitmq.conf.
        (
            "RABBITMQ_ENABLED_PLUGINS_FILE",
            etc.join("enabled_plugins").display().to_string(),
        ),
        ("RABBITMQ_DEFAULT_USER", "shop".into()),
        ("RABBITMQ_DEFAULT_PASS", "shop-secret".into()),
        ("RABBITMQ_DEFAULT_VHOST", "shop".into()),
        ("RABBITMQ_DIST_PORT", free_port().to_string()),
        ("RABBITMQ_ERLANG_COOKIE", "SHOPCOOKIE".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(repo().join("docker/docker-entrypoint.sh"))
        .arg("rabbitmq-server")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("bash runs the entrypoint");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = Vec::new();
    within(30, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push(line.clone());
            if line.contains("Server startup complete") {
                return;
            }
        }
        let mut err = String::new();
        let _ =
            tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut err).await;
        panic!("the entrypoint exited before warren was ready: {log:?} {err}");
    })
    .await;
    let log_text = log.join("\n");
    assert!(
        log_text.contains("rabbitmq.conf") && log_text.contains("10-defaults.conf"),
        "the mounted file and the image's conf.d are read: {log_text}"
    );
    assert!(
        !log_text.contains("WARN"),
        "the image's own files raise no warning: {log_text}"
    );

    // A client connects with the configured user and vhost, and publishes with confirms.
    let url = format!("amqp://shop:shop-secret@127.0.0.1:{amqp}/shop");
    let (conn, ch) = connect_url(&url)
        .await
        .expect("RABBITMQ_DEFAULT_USER/PASS/VHOST log in");
    assert_eq!(
        conn.configuration().heartbeat(),
        30,
        "heartbeat from rabbitmq.conf"
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    declare_queue(&ch, "stock", durable).await.unwrap();
    within(5, ch.confirm_select(ConfirmSelectOptions::default()))
        .await
        .unwrap();
    let confirm = within(
        5,
        ch.basic_publish(
            "".into(),
            "stock".into(),
            BasicPublishOptions::default(),
            b"order paid",
            lapin::BasicProperties::default().with_delivery_mode(2),
        ),
    )
    .await
    .unwrap();
    assert!(within(5, confirm).await.unwrap().is_ack());
    // The image's HEALTHCHECK, and what compose files and harnesses run with `docker exec`,
    // with the container's environment.
    // `docker exec` without RABBITMQ_ERLANG_COOKIE: the entrypoint wrote it to the file.
    assert_eq!(
        std::fs::read_to_string(home.join(".erlang.cookie")).unwrap(),
        "SHOPCOOKIE"
    );
    let tool = |name: &str, args: &[&str]| {
        let out = std::process::Command::new(bin.join(name))
            .args(args)
            .env_clear()
            .envs(
                env.iter()
                    .filter(|(k, _)| k != "RABBITMQ_ERLANG_COOKIE")
                    .map(|(k, v)| (k, v)),
            )
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        tool("rabbitmq-diagnostics", &["-q", "ping"]),
        (Some(0), "Ping succeeded\n".to_string())
    );
    assert_eq!(tool("rabbitmqctl", &["await_startup"]).0, Some(0));
    assert_eq!(
        tool(
            "rabbitmqctl",
            &["-q", "list_queues", "-p", "shop", "name", "messages"]
        ),
        (Some(0), "name\tmessages\nstock\t1\n".to_string())
    );
    assert_eq!(
        tool("rabbitmq-diagnostics", &["-q", "check_running"]),
        (
            Some(0),
            "RabbitMQ on node rabbit@shop-broker is fully booted and running\n".to_string()
        )
    );
    let (code, status) = tool(
        "rabbitmq-diagnostics",
        &["-q", "status", "--formatter", "json"],
    );
    assert_eq!(code, Some(0));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let conf_d = repo().join("docker/conf.d");
    assert_eq!(
        status["config_files"],
        serde_json::json!([etc.join("rabbitmq.conf"), conf_d.join("10-defaults.conf"),]),
        "status lists the files read"
    );
    assert_eq!(
        status["data_directory"],
        serde_json::json!(home.join("mnesia/rabbit@shop-broker"))
    );
    // The data is where the image's volume is.
    assert!(
        home.join("mnesia/rabbit@shop-broker").is_dir(),
        "data under the volume"
    );
    drop(conn);

    // `docker stop`: SIGTERM to PID 1, which is warren itself (the entrypoint execs it).
    let pid = child.id().unwrap() as libc::pid_t;
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = within(30, child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_dockerfile_has_rabbitmqs_image_contract() {
    let file = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let has = |line: &str| file.lines().any(|l| l.trim() == line);
    assert!(has("EXPOSE 5672 5671 15672 15692 25672"), "ports");
    assert!(has("VOLUME /var/lib/rabbitmq"), "volume");
    assert!(has("CMD rabbitmq-diagnostics -q ping"), "healthcheck");
    assert!(has("ENTRYPOINT [\"docker-entrypoint.sh\"]"));
    assert!(has("CMD [\"rabbitmq-server\"]"));
    for tool in [
        "rabbitmq-server",
        "rabbitmqctl",
        "rabbitmq-diagnostics",
        "rabbitmq-plugins",
    ] {
        assert!(file.contains(tool), "{tool} installed");
    }
    // What the image copies exists.
    for copied in [
        "docker/docker-entrypoint.sh",
        "docker/conf.d/10-defaults.conf",
    ] {
        assert!(repo().join(copied).is_file(), "{copied}");
    }
    // The image's conf.d parses without warnings: it is read with warren's own parser.
    let files = warren::rabbitmq_conf::locate(&|k: &str| match k {
        "RABBITMQ_CONFIG_FILE" => Some("/nonexistent/rabbitmq.conf".into()),
        "RABBITMQ_CONFIG_FILES" => Some(repo().join("docker/conf.d").display().to_string()),
        _ => None,
    });
    assert_eq!(files.len(), 1);
    let t = warren::rabbitmq_conf::load(&files, &["guest".to_string()]).unwrap();
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(
        t.values["auth.loopback_users"]
            .clone()
            .into_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn flags_go_to_the_server_and_other_commands_run_as_given() {
    let dir = std::env::temp_dir().join(unique("warren-image-cmd"));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = tools(&dir);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new("bash")
            .arg(repo().join("docker/docker-entrypoint.sh"))
            .args(args)
            .env("PATH", &path)
            .env("HOME", &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // `docker run IMAGE --version` is `rabbitmq-server --version`.
    assert_eq!(
        run(&["--version"]),
        format!("warren {}\n", env!("CARGO_PKG_VERSION"))
    );
    // `docker run IMAGE echo hi` runs the command itself.
    assert_eq!(run(&["echo", "hi"]), "hi\n");
    let _ = std::fs::remove_dir_all(&dir);
}
