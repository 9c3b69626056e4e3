//! The command-line look-alikes (`rabbitmqctl`, `rabbitmq-diagnostics`, `rabbitmq-plugins`):
//! the warren binary, called by those names, talks to a broker's control listener with the
//! Erlang cookie and prints what RabbitMQ 3.10's tools print, with their exit codes (texts
//! recorded from RabbitMQ 3.10.8).

mod common;

use common::*;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::os::unix::process::CommandExt;

/// A tool's answer.
#[derive(Debug)]
struct Ran {
    out: String,
    err: String,
    code: i32,
}

/// Where and how the tools reach the broker under test.
struct Target {
    port: u16,
    node: String,
    cookie: String,
    home: std::path::PathBuf,
}

impl Target {
    fn of(b: &TestBroker, home: &TempDir) -> Target {
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
    async fn run(&self, tool: &str, args: &[&str]) -> Ran {
        self.run_env(tool, args, &[("RABBITMQ_ERLANG_COOKIE", &self.cookie)]).await
    }

    async fn run_env(&self, tool: &str, args: &[&str], env: &[(&str, &str)]) -> Ran {
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
        let out = within(30, async { tokio::task::spawn_blocking(move || cmd.output()).await })
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
async fn broker() -> Option<(TestBroker, TempDir)> {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return None;
    }
    Some((TestBroker::start().await, TempDir::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_with_and_without_the_banner() {
    let Some((b, home)) = broker().await else { return };
    let t = Target::of(&b, &home);
    let r = t.run("rabbitmq-diagnostics", &["-q", "ping"]).await;
    assert_eq!((r.out.as_str(), r.err.as_str(), r.code), ("Ping succeeded\n", "", 0));
    let r = t.run("rabbitmq-diagnostics", &["ping"]).await;
    let banner = format!(
        "Will ping {}. This only checks if the OS process is running and registered with epmd. \
         Timeout: 60000 ms.\nPing succeeded\n",
        t.node
    );
    assert_eq!((r.out.as_str(), r.code), (banner.as_str(), 0));
    // rabbitmqctl has it too, and `warren diagnostics` is the same tool without a symlink.
    assert_eq!(t.run("rabbitmqctl", &["-q", "ping"]).await.out, "Ping succeeded\n");
    let r = t.run("warren", &["diagnostics", "-q", "ping"]).await;
    assert_eq!((r.out.as_str(), r.code), ("Ping succeeded\n", 0));
    let r = t.run("rabbitmq-diagnostics", &["-q", "check_running"]).await;
    let running = format!("RabbitMQ on node {} is fully booted and running\n", t.node);
    assert_eq!((r.out.as_str(), r.code), (running.as_str(), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_a_wrong_cookie_or_no_node_is_unreachable() {
    let Some((b, home)) = broker().await else { return };
    let t = Target::of(&b, &home);
    let r = t.run("rabbitmq-diagnostics", &["-n", "nonexistent@localhost", "-q", "ping"]).await;
    assert_eq!(r.out, "");
    assert_eq!(r.err, "Error:\nFailed to connect and authenticate to nonexistent@localhost in 60000 ms\n");
    assert_eq!(r.code, 69);
    let r = t.run_env("rabbitmqctl", &["list_users"], &[("RABBITMQ_ERLANG_COOKIE", "WRONG")]).await;
    assert_eq!(r.code, 69, "{r:?}");
    let expected = format!("Error: unable to perform an operation on node '{}'.", t.node);
    assert!(r.err.starts_with(&expected), "{}", r.err);
    assert!(r.err.contains("refused the CLI tool's Erlang cookie"), "{}", r.err);
    // The cookie file in $HOME, as RabbitMQ's tools read it.
    std::fs::write(home.path.join(".erlang.cookie"), &t.cookie).unwrap();
    let r = t.run_env("rabbitmq-diagnostics", &["-q", "ping"], &[]).await;
    assert_eq!((r.out.as_str(), r.code), ("Ping succeeded\n", 0));
    let r = t.run_env("rabbitmqctl", &["--erlang-cookie", "WRONG", "-q", "ping"], &[]).await;
    assert_eq!(r.code, 69);
    // A stopped node: nothing listens on the port.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stopped = Target { port: free, ..t };
    let r = stopped.run("rabbitmq-diagnostics", &["-q", "ping"]).await;
    assert_eq!(r.code, 69);
    let r = stopped.run("rabbitmqctl", &["list_queues"]).await;
    assert_eq!((r.out.as_str(), r.code), ("", 69));
    assert!(r.err.contains("suggestion: start the node"), "{}", r.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_64() {
    let Some((b, home)) = broker().await else { return };
    let t = Target::of(&b, &home);
    let r = t.run("rabbitmqctl", &["frobnicate"]).await;
    assert_eq!(r.code, 64);
    assert!(r.err.starts_with("\nCommand 'frobnicate' not found. \n"), "{}", r.err);
    let r = t.run("rabbitmqctl", &["add_user", "a", "b", "c"]).await;
    assert_eq!(r.code, 64);
    assert_eq!(
        r.err,
        "Error (argument validation): too many arguments.\nArguments given:\n\tadd_user a b c\n\n\
         \x1b[1mUsage\x1b[0m\n\nrabbitmqctl [--node <node>] [--longnames] [--quiet] add_user <username> <password>\n"
    );
    let r = t.run("rabbitmqctl", &["delete_queue"]).await;
    assert!(r.err.starts_with("Error (argument validation): not enough arguments."), "{}", r.err);
    let r = t.run("rabbitmqctl", &["list_queues", "name", "bogus"]).await;
    assert_eq!(r.code, 64);
    assert!(r.err.starts_with("Error (argument validation): Info key(s) bogus are not supported\n"));
    let r = t.run("rabbitmq-diagnostics", &["ping", "extra"]).await;
    assert_eq!(r.code, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_permissions_made_with_rabbitmqctl_log_in() {
    let Some((b, home)) = broker().await else { return };
    let t = Target::of(&b, &home);
    let user = unique("dave");
    let r = t.run("rabbitmqctl", &["add_user", &user, "pw"]).await;
    assert_eq!(
        r.out,
        format!("Adding user \"{user}\" ...\nDone. Don't forget to grant the user permissions to some virtual hosts! See 'rabbitmqctl help set_permissions' to learn more.\n")
    );
    assert_eq!(r.code, 0);
    let r = t.run("rabbitmqctl", &["add_user", &user, "pw"]).await;
    assert_eq!((r.err.clone(), r.code), (format!("Error:\nUser \"{user}\" already exists\n"), 70));
    // No permissions yet: the login is refused access to the vhost.
    let url = b.url_for(&user, "pw", "/");
    let props = lapin::ConnectionProperties::default;
    assert!(within(5, lapin::Connection::connect(&url, props())).await.is_err());
    let r = t.run("rabbitmqctl", &["set_permissions", "-p", "/", &user, ".*", ".*", ".*"]).await;
    assert_eq!(r.out, format!("Setting permissions for user \"{user}\" in vhost \"/\" ...\n"));
    let conn = within(5, lapin::Connection::connect(&url, props())).await.expect("logs in");
    let r = t.run("rabbitmqctl", &["-q", "list_user_permissions", &user]).await;
    assert_eq!(r.out, "vhost\tconfigure\twrite\tread\n/\t.*\t.*\t.*\n");
    let r = t.run("rabbitmqctl", &["set_user_tags", &user, "administrator", "management"]).await;
    assert_eq!(r.out, format!("Setting tags for user \"{user}\" to [administrator, management] ...\n"));
    let r = t.run("rabbitmqctl", &["-s", "list_users"]).await;
    assert!(r.out.contains(&format!("{user}\t[administrator, management]\n")), "{}", r.out);
    let r = t.run("rabbitmqctl", &["authenticate_user", &user, "wrong"]).await;
    assert_eq!(r.code, 65);
    assert_eq!(r.err, format!("Error:\nError: failed to authenticate user \"{user}\"\nuser '{user}' - invalid credentials\n"));
    let r = t.run("rabbitmqctl", &["-q", "authenticate_user", &user, "pw"]).await;
    assert_eq!((r.out.as_str(), r.code), ("Success\n", 0));
    let r = t.run("rabbitmqctl", &["change_password", &user, "pw2"]).await;
    assert_eq!(r.code, 0);
    assert_eq!(t.run("rabbitmqctl", &["-q", "authenticate_user", &user, "pw2"]).await.code, 0);
    let r = t.run("rabbitmqctl", &["clear_permissions", &user]).await;
    assert_eq!(r.out, format!("Clearing permissions for user \"{user}\" in vhost \"/\" ...\n"));
    let r = t.run("rabbitmqctl", &["delete_user", &user]).await;
    assert_eq!((r.out.clone(), r.code), (format!("Deleting user \"{user}\" ...\n"), 0));
    let r = t.run("rabbitmqctl", &["delete_user", &user]).await;
    assert_eq!((r.err.clone(), r.code), (format!("Error:\nUser \"{user}\" does not exist\n"), 67));
    let r = t.run("rabbitmqctl", &["set_permissions", "-p", "nov", "guest", ".*", ".*", ".*"]).await;
    assert_eq!((r.err.as_str(), r.code), ("Error:\nVirtual host nov does not exist\n", 69));
    // A vhost made by the tool grants nobody anything, as rabbitmqctl's.
    let vhost = unique("v");
    assert_eq!(t.run("rabbitmqctl", &["add_vhost", &vhost]).await.code, 0);
    let r = t.run("rabbitmqctl", &["-q", "list_permissions", "-p", &vhost]).await;
    assert_eq!(r.out, "");
    assert_eq!(t.run("rabbitmqctl", &["delete_vhost", &vhost]).await.code, 0);
    let r = t.run("rabbitmqctl", &["delete_vhost", &vhost]).await;
    assert_eq!((r.err.clone(), r.code), (format!("Virtual host '{vhost}' does not exist\n"), 65));
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_listed_purged_and_deleted() {
    let Some((b, home)) = broker().await else { return };
    let t = Target::of(&b, &home);
    let conn = b.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), lapin::types::AMQPValue::LongUInt(60000));
    for (q, a) in [("busy", FieldTable::default()), ("ttl", args)] {
        let opts = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare(q.into(), opts, a).await.unwrap();
    }
    for _ in 0..3 {
        ch.basic_publish("".into(), "ttl".into(), BasicPublishOptions::default(), b"m", BasicProperties::default())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    ch.basic_consume("busy".into(), "c1".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let r = t.run("rabbitmqctl", &["-q", "list_queues", "name", "messages", "consumers"]).await;
    assert_eq!(r.out, "name\tmessages\tconsumers\nbusy\t0\t1\nttl\t3\t0\n");
    let r = t.run("rabbitmqctl", &["list_queues", "name", "arguments", "durable", "auto_delete"]).await;
    assert_eq!(
        r.out,
        "Timeout: 60.0 seconds ...\nListing queues for vhost / ...\nname\targuments\tdurable\tauto_delete\n\
         busy\t[]\ttrue\tfalse\nttl\t[{\"x-message-ttl\",60000}]\ttrue\tfalse\n"
    );
    let r = t.run("rabbitmqctl", &["-q", "list_queues", "--formatter", "json"]).await;
    assert_eq!(r.out, "[\n{\"name\":\"busy\",\"messages\":0}\n,{\"name\":\"ttl\",\"messages\":3}\n]\n");
    let r = t.run("rabbitmqctl", &["-s", "list_consumers", "queue_name", "consumer_tag", "ack_required"]).await;
    assert_eq!(r.out, "busy\tc1\ttrue\n");
    let r = t.run("rabbitmqctl", &["-q", "list_bindings", "source_name", "destination_name", "routing_key"]).await;
    assert_eq!(r.out, "source_name\tdestination_name\trouting_key\n\tbusy\tbusy\n\tttl\tttl\n");
    let r = t.run("rabbitmqctl", &["-q", "list_connections", "user", "state"]).await;
    assert_eq!(r.out, "user\tstate\nguest\trunning\n");
    let r = t.run("rabbitmqctl", &["delete_queue", "ttl", "--if-empty"]).await;
    assert_eq!(r.out, "Deleting queue 'ttl' on vhost '/' if queue is empty ...\n");
    assert_eq!((r.err.as_str(), r.code), ("Error:\nQueue is not empty\n", 64));
    let r = t.run("rabbitmqctl", &["purge_queue", "ttl"]).await;
    assert_eq!((r.out.as_str(), r.code), ("Purging queue 'ttl' in vhost '/' ...\n", 0));
    let r = t.run("rabbitmqctl", &["-q", "delete_queue", "ttl", "-e"]).await;
    assert_eq!((r.out.as_str(), r.code), ("Queue was successfully deleted with 0 ready messages\n", 0));
    let r = t.run("rabbitmqctl", &["delete_queue", "ttl"]).await;
    assert_eq!((r.err.as_str(), r.code), ("Error:\nQueue not found\n", 64));
    let r = t.run("rabbitmqctl", &["purge_queue", "ttl"]).await;
    assert_eq!((r.err.as_str(), r.code), ("Error:\nnot_found\n", 69));
    let r = t.run("rabbitmqctl", &["-s", "list_queues"]).await;
    assert_eq!(r.out, "busy\t0\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_report_listeners_and_alarms() {
    let Some((b, home)) = broker().await else { return };
    let t = Target::of(&b, &home);
    let node = &t.node;
    let amqp = b.addr.port();
    let r = t.run("rabbitmq-diagnostics", &["-q", "check_port_connectivity"]).await;
    let mut ports = [amqp, b.mgmt_addr().unwrap().port(), b.metrics_addr().unwrap().port(), t.port];
    ports.sort_unstable();
    let list = ports.map(|p| p.to_string()).join(", ");
    assert_eq!(r.out, format!("Successfully connected to ports {list} on node {node}.\n"));
    let r = t.run("rabbitmq-diagnostics", &["-q", "listeners"]).await;
    assert!(r.out.contains(&format!("Interface: 127.0.0.1, port: {amqp}, protocol: amqp, purpose: AMQP 0-9-1 and AMQP 1.0\n")), "{}", r.out);
    assert!(r.out.contains(&format!("port: {}, protocol: clustering, purpose: inter-node and CLI tool communication\n", t.port)));
    let r = t.run("rabbitmq-diagnostics", &["-q", "check_protocol_listener", "amqp"]).await;
    assert_eq!(r.out, format!("A listener for protocol amqp is running on node {node}.\n"));
    let r = t.run("rabbitmq-diagnostics", &["-q", "check_protocol_listener", "mqtt"]).await;
    assert_eq!(r.code, 69);
    assert_eq!(r.err, format!("Error:\nNo listener for protocol mqtt is active on node {node}. Found listeners for the following protocols: amqp, clustering, http, http/prometheus\n"));
    let r = t.run("rabbitmq-diagnostics", &["-q", "check_port_listener", &amqp.to_string()]).await;
    assert_eq!((r.out.clone(), r.code), (format!("A listener for port {amqp} is running on node {node}.\n"), 0));
    assert_eq!(t.run("rabbitmq-diagnostics", &["-q", "check_port_listener", "1"]).await.code, 69);
    let r = t.run("rabbitmq-diagnostics", &["-q", "check_virtual_hosts"]).await;
    assert_eq!(r.out, format!("Node {node} reported all vhosts as running\n"));
    let r = t.run("rabbitmq-diagnostics", &["-q", "server_version"]).await;
    assert_eq!(r.out, format!("{}\n", warren::mgmt::VERSION));
    let r = t.run("rabbitmq-diagnostics", &["-q", "check_local_alarms"]).await;
    assert_eq!((r.out.clone(), r.code), (format!("Node {node} reported no local alarms\n"), 0));
    let r = t.run("rabbitmq-diagnostics", &["-q", "status", "--formatter", "json"]).await;
    let status: serde_json::Value = serde_json::from_str(&r.out).expect("status is JSON");
    assert_eq!(status["listeners"].as_array().unwrap().len(), 4);
    assert_eq!(status["alarms"], serde_json::json!([]));
    let r = t.run("rabbitmqctl", &["status"]).await;
    assert!(r.out.starts_with(&format!("Status of node {node} ...\n\x1b[1mRuntime\x1b[0m\n\nOS PID: {}\n", std::process::id())), "{}", r.out);
    b.broker().unwrap().alarms.set_memory_limit(1);
    let alarm = format!("Error:\nMemory alarm on node {node}\n");
    let mut last = None;
    for _ in 0..100 {
        let r = t.run("rabbitmq-diagnostics", &["-q", "check_local_alarms"]).await;
        if r.code == 69 {
            last = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await; // poll interval
    }
    let r = last.expect("the alarm is reported");
    assert_eq!((r.out.as_str(), r.err.as_str()), ("", alarm.as_str()));
    let r = t.run("rabbitmq-diagnostics", &["-q", "alarms"]).await;
    assert_eq!((r.out.clone(), r.code), (format!("Memory alarm on node {node}\n"), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_lists_the_built_in_ones() {
    let Some((b, home)) = broker().await else { return };
    let t = Target::of(&b, &home);
    let r = t.run("rabbitmq-plugins", &["list"]).await;
    let node = &t.node;
    assert_eq!(
        r.out,
        format!(
            "Listing plugins with pattern \".*\" ...\n Configured: E = explicitly enabled; e = implicitly enabled\n \
             | Status: * = running on {node}\n |/\n\
             [E*] rabbitmq_consistent_hash_exchange 4.1.0\n\
             [E*] rabbitmq_delayed_message_exchange 4.1.0\n\
             [E*] rabbitmq_management               4.1.0\n\
             [e*] rabbitmq_management_agent         4.1.0\n\
             [E*] rabbitmq_prometheus               4.1.0\n\
             [e*] rabbitmq_web_dispatch             4.1.0\n"
        )
    );
    let r = t.run("rabbitmq-plugins", &["-q", "list", "-m", "prom"]).await;
    assert_eq!(r.out, "rabbitmq_prometheus\n");
    let r = t.run("rabbitmq-plugins", &["enable", "rabbitmq_management"]).await;
    assert_eq!(r.code, 0);
    assert!(r.out.starts_with(&format!("Enabling plugins on node {node}:\nrabbitmq_management\n")));
    assert!(r.out.ends_with("Plugin configuration unchanged.\n"), "{}", r.out);
    let r = t.run("rabbitmq-plugins", &["enable", "nonesuch"]).await;
    assert_eq!((r.err.as_str(), r.code), ("Error:\n{:plugins_not_found, [:nonesuch]}\n", 70));
}

#[tokio::test]
async fn shutdown_stops_a_warren_process() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    let dir = TempDir::new();
    let home = dir.path.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let env = [("HOME", home.to_str().unwrap()), ("RABBITMQ_NODENAME", "stopme@localhost")];
    let mut child = spawn_warren(&dir.path.join("data"), &env).await;
    let port: u16 = {
        let log = child.log.lock().unwrap();
        let line = log.iter().find(|l| l.contains("CLI tool listener started on")).expect("logged");
        line.rsplit(':').next().unwrap().trim().parse().unwrap()
    };
    let cookie = std::fs::read_to_string(home.join(".erlang.cookie")).expect("the broker made the cookie");
    assert_eq!(cookie.len(), 20);
    let t = Target { port, node: "stopme@localhost".into(), cookie, home };
    let r = t.run("rabbitmqctl", &["await_startup"]).await;
    assert_eq!((r.out.as_str(), r.code), ("", 0));
    let r = t.run("rabbitmqctl", &["-q", "shutdown"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let status = within(10, child.child.wait()).await.unwrap();
    assert!(status.success());
}
