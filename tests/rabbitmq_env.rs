//! RabbitMQ's container environment: a warren started with `RABBITMQ_DEFAULT_USER`,
//! `RABBITMQ_DEFAULT_PASS` and `RABBITMQ_DEFAULT_VHOST` creates that user and vhost on first
//! start instead of guest, and a client logs in with them unchanged.

mod common;

use common::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

#[tokio::test]
async fn the_default_user_and_vhost_come_from_the_environment() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return; // starts its own warren
    }
    let dir = std::env::temp_dir().join(unique("warren-rmqenv"));
    let env = [
        ("RABBITMQ_DEFAULT_USER", "app"),
        ("RABBITMQ_DEFAULT_PASS", "s3cret"),
        ("RABBITMQ_DEFAULT_VHOST", "orders"),
    ];
    let child = spawn_warren(&dir, &env).await;
    let url = format!("amqp://app:s3cret@127.0.0.1:{}/orders", child.port);
    let conn = within(
        5,
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()),
    )
    .await
    .expect("the configured user logs in to the configured vhost");
    let ch = within(5, conn.create_channel()).await.unwrap();
    within(
        5,
        ch.queue_declare(
            "work".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("with full permissions there");
    // guest was not created.
    let guest = format!("amqp://guest:guest@127.0.0.1:{}/%2f", child.port);
    let err = within(
        5,
        lapin::Connection::connect(&guest, lapin::ConnectionProperties::default()),
    )
    .await
    .expect_err("no guest user");
    assert_eq!(amqp_error(&err).map(|(c, _)| c), Some(403), "{err:?}");
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// GET `path` from the management API of a child warren (its address is in its log), as
/// `user:pass`; the JSON body.
async fn mgmt_get(child: &ChildBroker, path: &str, user_pass: &str) -> serde_json::Value {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = {
        let log = child.log.lock().unwrap();
        log.iter()
            .find_map(|l| {
                l.split("Management API started on ")
                    .nth(1)
                    .map(|a| a.trim().to_string())
            })
            .expect("the management address is logged")
    };
    let port = addr.rsplit(':').next().unwrap();
    let mut s = within(
        5,
        tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")),
    )
    .await
    .unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(user_pass);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {auth}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    within(5, s.read_to_string(&mut raw)).await.unwrap();
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

#[tokio::test]
async fn the_node_is_named_by_rabbitmq_nodename() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(unique("warren-nodename"));
    let child = spawn_warren(&dir, &[("RABBITMQ_NODENAME", "rabbit@broker-1")]).await;
    assert_eq!(
        mgmt_get(
            &child,
            "/api/overview?columns=node,cluster_name",
            "guest:guest"
        )
        .await,
        serde_json::json!({"node": "rabbit@broker-1", "cluster_name": "rabbit@broker-1"})
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn rabbitmq_conf_and_conf_d_are_read_as_rabbitmq_reads_them() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(unique("warren-rmqconf"));
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("rabbitmq.conf"),
        format!(
            "# as a team mounts it\nlisteners.tcp.default = 127.0.0.1:{port}\n\
             management.tcp.port = 0\nmanagement.tcp.ip = 127.0.0.1\nprometheus.tcp.port = 0\n\
             default_user = app\ndefault_pass = s3cret # a comment ends the value\n\
             default_vhost = orders\ndefault_permissions.read = ^$\n\
             heartbeat = 7\nqueue_master_locator = min-masters\n\
             total_memory_available_override_value = 1GB\n\
             vm_memory_high_watermark.relative = 0.5\n\
             definitions.import_backend = local_filesystem\n\
             definitions.local.path = {defs}\n",
            defs = dir.join("definitions.json").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("definitions.json"),
        r#"{"queues": [{"name": "imported", "vhost": "orders", "durable": true,
            "auto_delete": false, "arguments": {}}]}"#,
    )
    .unwrap();
    // What RabbitMQ's image ships in conf.d.
    std::fs::write(
        dir.join("conf.d/10-defaults.conf"),
        "loopback_users.guest = false\nlog.console = true\n",
    )
    .unwrap();
    let data = dir.join("data").display().to_string();
    let conf = dir.join("rabbitmq").display().to_string(); // without .conf, as 3.x allows
    let confd = dir.join("conf.d").display().to_string();
    let child = spawn_warren_with(
        &["--data-dir", &data],
        &[
            ("RABBITMQ_CONFIG_FILE", &conf),
            ("RABBITMQ_CONFIG_FILES", &confd),
        ],
    )
    .await;
    assert_eq!(child.port, port, "listeners.tcp.default");
    let url = format!("amqp://app:s3cret@127.0.0.1:{port}/orders");
    let (conn, ch) = connect_url(&url)
        .await
        .expect("default_user, default_pass and default_vhost");
    assert_eq!(conn.configuration().heartbeat(), 7, "heartbeat");
    declare_queue(&ch, "work", QueueDeclareOptions::default())
        .await
        .expect("configure is .*");
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    declare_queue(&ch, "imported", passive)
        .await
        .expect("definitions.local.path was imported");
    let node = warren::broker::node_name();
    let limit = mgmt_get(&child, &format!("/api/nodes/{node}"), "app:s3cret").await;
    assert_eq!(
        limit["mem_limit"], 500_000_000,
        "half of total_memory_available_override_value"
    );
    let err = within(
        5,
        ch.basic_get("work".into(), lapin::options::BasicGetOptions::default()),
    )
    .await
    .expect_err("read is ^$");
    assert_eq!(amqp_error(&err).map(|(c, _)| c), Some(403), "{err:?}");
    let log = child.log.lock().unwrap().join("\n");
    assert!(
        log.contains("unknown or unsupported setting queue_master_locator; ignored")
            && log.contains("rabbitmq.conf:11"),
        "unknown keys are warned about with their line: {log}"
    );
    assert!(
        log.contains("Management API started on 127.0.0.1:"),
        "management.tcp.ip: {log}"
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_malformed_rabbitmq_conf_stops_the_start_with_its_line_number() {
    let dir = std::env::temp_dir().join(unique("warren-badconf"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("rabbitmq.conf");
    std::fs::write(&conf, "heartbeat = 30\nthis line is wrong\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["--data-dir"])
        .arg(dir.join("data"))
        .env("RABBITMQ_CONFIG_FILE", &conf)
        .env("RABBITMQ_CONFIG_FILES", dir.join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "warren: configuration: syntax error in {}:2: expected `key = value`, got \"this line is wrong\"\n",
            conf.display()
        )
    );
    std::fs::write(&conf, "vm_memory_high_watermark.absolute = lots\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .env("RABBITMQ_CONFIG_FILE", &conf)
        .env("RABBITMQ_CONFIG_FILES", dir.join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "warren: configuration: {}:1: vm_memory_high_watermark.absolute: expected bytes, e.g. 2GB or 1024MiB, got \"lots\"\n",
            conf.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn data_lives_in_rabbitmq_mnesia_base_under_the_node_name() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(unique("warren-mnesia"));
    let base = dir.join("mnesia").display().to_string();
    let env = [
        ("RABBITMQ_MNESIA_BASE", base.as_str()),
        ("RABBITMQ_NODENAME", "rabbit@box"),
    ];
    let args = [
        "--amqp-port",
        "0",
        "--mgmt-port",
        "0",
        "--metrics-port",
        "0",
    ];
    let child = spawn_warren_with(&args, &env).await;
    let url = |port| format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let (conn, ch) = connect_url(&url(child.port)).await.unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    declare_queue(&ch, "kept", durable).await.unwrap();
    drop(conn);
    assert!(child.stop().await.success());
    // Started again with the same environment, it finds its queue there.
    let child = spawn_warren_with(&args, &env).await;
    assert!(
        dir.join("mnesia/rabbit@box").is_dir(),
        "RABBITMQ_MNESIA_BASE/NODENAME"
    );
    assert!(
        dir.join("mnesia/rabbit@box.pid").is_file(),
        "the pid file beside it, as RabbitMQ's"
    );
    let (_conn, ch) = connect_url(&url(child.port)).await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    declare_queue(&ch, "kept", passive)
        .await
        .expect("the durable queue is in the same data directory");
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_taken_default_cli_port_does_not_stop_the_broker() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    // Hold a port Q and start warren on Q - 20000, whose derived CLI port is Q.
    let (held, amqp) = loop {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let q = l.local_addr().unwrap().port();
        if q > 21024 && std::net::TcpListener::bind(("0.0.0.0", q - 20000)).is_ok() {
            break (l, q - 20000);
        }
    };
    let dir = std::env::temp_dir().join(unique("warren-cliport"));
    let data = dir.display().to_string();
    let amqp_s = amqp.to_string();
    let args = [
        "--amqp-port",
        &amqp_s,
        "--mgmt-port",
        "0",
        "--metrics-port",
        "0",
        "--data-dir",
        &data,
    ];
    std::fs::create_dir_all(dir.join("home")).unwrap();
    let home = dir.join("home").display().to_string();
    let child = spawn_warren_with(&args, &[("HOME", home.as_str())]).await;
    assert_eq!(child.port, amqp);
    let log = child.log.lock().unwrap().join("\n");
    assert!(
        log.contains("no listener for rabbitmqctl and rabbitmq-diagnostics"),
        "{log}"
    );
    let url = format!("amqp://guest:guest@127.0.0.1:{amqp}/%2f");
    connect_url(&url).await.expect("AMQP is served");
    drop(held);
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The init-script pattern: start the server in the background, `rabbitmqctl wait PIDFILE`,
/// then configure it with rabbitmqctl.
#[tokio::test]
async fn rabbitmqctl_wait_follows_the_pid_file_and_set_log_level_changes_the_filter() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let dir = std::env::temp_dir().join(unique("warren-pidfile"));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("run/warren.pid");
    let dist = free_port().to_string();
    let home = dir.display().to_string();
    let pid_s = pid_file.display().to_string();
    let env = [
        ("HOME", home.as_str()),
        ("RABBITMQ_PID_FILE", pid_s.as_str()),
        ("RABBITMQ_DIST_PORT", dist.as_str()),
        ("RABBITMQ_NODENAME", "rabbit@init"),
    ];
    let ctl = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.arg0("rabbitmqctl")
            .args(args)
            .env_clear()
            .envs(env)
            .env("RABBITMQ_CONFIG_FILE", "/nonexistent/rabbitmq.conf")
            .env("RABBITMQ_CONFIG_FILES", "/nonexistent/conf.d");
        cmd
    };
    let waiting = ctl(&["wait", "--timeout", "30", &pid_s])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let child = spawn_warren(&dir.join("data"), &env).await;
    let pid = child.child.id().unwrap();
    let out = tokio::task::spawn_blocking(move || waiting.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "Waiting for pid file '{pid_s}' to appear\npid is {pid}\n\
             Waiting for erlang distribution on node 'rabbit@init' while OS process '{pid}' is running\n\
             Waiting for applications 'rabbit_and_plugins' to start on node 'rabbit@init'\n\
             Applications 'rabbit_and_plugins' are running on node 'rabbit@init'\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{pid}\n")
    );
    // set_log_level changes the running node's filter: a connection is now logged at debug.
    let out = ctl(&["set_log_level", "debug"]).output().unwrap();
    assert_eq!(
        (out.status.code(), String::from_utf8(out.stdout).unwrap()),
        (Some(0), "Setting log level to \"debug\" ...\n".to_string())
    );
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", child.port);
    let _conn = connect_url(&url).await.unwrap();
    let logged = || {
        child
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("DEBUG") && l.contains("connection open"))
    };
    eventually(5, || async { logged().then_some(()) }).await;
    let out = ctl(&["set_log_level", "loud"]).output().unwrap();
    assert_eq!(
        (out.status.code(), String::from_utf8(out.stderr).unwrap()),
        (
            Some(69),
            "Error:\nlevel loud is not supported. Try one of debug, info, warning, error, critical, none\n"
                .to_string()
        )
    );
    // A clean stop removes the file; waiting for it then times out with RabbitMQ's text.
    assert!(child.stop().await.success());
    assert!(!pid_file.exists());
    let out = ctl(&["wait", "-t", "1", &pid_s]).output().unwrap();
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "Error: operation wait on node rabbit@init timed out. Timeout value used: 1000\n"
    );
    let out = ctl(&["wait"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .starts_with("Error (argument validation): \"No pid or pidfile specified\"\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
