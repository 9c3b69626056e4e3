//! The command-line look-alikes (`rabbitmqctl`, `rabbitmq-diagnostics`, `rabbitmq-plugins`):
//! the warren binary, called by those names, talks to a broker's control listener with the
//! Erlang cookie and prints what RabbitMQ 3.10's tools print, with their exit codes (texts
//! recorded from RabbitMQ 3.10.8). Node checks, usage errors, diagnostics and plugins here;
//! users, permissions and queues in `cli_admin.rs`.

mod common;

use common::cli::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_with_and_without_the_banner() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let r = t.run("rabbitmq-diagnostics", &["-q", "ping"]).await;
    assert_eq!(
        (r.out.as_str(), r.err.as_str(), r.code),
        ("Ping succeeded\n", "", 0)
    );
    let r = t.run("rabbitmq-diagnostics", &["ping"]).await;
    let banner = format!(
        "Will ping {}. This only checks if the OS process is running and registered with epmd. \
         Timeout: 60000 ms.\nPing succeeded\n",
        t.node
    );
    assert_eq!((r.out.as_str(), r.code), (banner.as_str(), 0));
    // rabbitmqctl has it too, and `warren diagnostics` is the same tool without a symlink.
    assert_eq!(
        t.run("rabbitmqctl", &["-q", "ping"]).await.out,
        "Ping succeeded\n"
    );
    let r = t.run("warren", &["diagnostics", "-q", "ping"]).await;
    assert_eq!((r.out.as_str(), r.code), ("Ping succeeded\n", 0));
    let r = t
        .run("rabbitmq-diagnostics", &["-q", "check_running"])
        .await;
    let running = format!("RabbitMQ on node {} is fully booted and running\n", t.node);
    assert_eq!((r.out.as_str(), r.code), (running.as_str(), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_a_wrong_cookie_or_no_node_is_unreachable() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &["-n", "nonexistent@localhost", "-q", "ping"],
        )
        .await;
    assert_eq!(r.out, "");
    assert_eq!(
        r.err,
        "Error:\nFailed to connect and authenticate to nonexistent@localhost in 60000 ms\n"
    );
    assert_eq!(r.code, 69);
    let r = t
        .run_env(
            "rabbitmqctl",
            &["list_users"],
            &[("RABBITMQ_ERLANG_COOKIE", "WRONG")],
        )
        .await;
    assert_eq!(r.code, 69, "{r:?}");
    let expected = format!(
        "Error: unable to perform an operation on node '{}'.",
        t.node
    );
    assert!(r.err.starts_with(&expected), "{}", r.err);
    assert!(
        r.err.contains("refused the CLI tool's Erlang cookie"),
        "{}",
        r.err
    );
    // The cookie file in $HOME, as RabbitMQ's tools read it.
    std::fs::write(home.path.join(".erlang.cookie"), &t.cookie).unwrap();
    let r = t
        .run_env("rabbitmq-diagnostics", &["-q", "ping"], &[])
        .await;
    assert_eq!((r.out.as_str(), r.code), ("Ping succeeded\n", 0));
    let r = t
        .run_env(
            "rabbitmqctl",
            &["--erlang-cookie", "WRONG", "-q", "ping"],
            &[],
        )
        .await;
    assert_eq!(r.code, 69);
    // A stopped node: nothing listens on the port.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stopped = Target { port: free, ..t };
    let r = stopped.run("rabbitmq-diagnostics", &["-q", "ping"]).await;
    assert_eq!(r.code, 69);
    let r = stopped.run("rabbitmqctl", &["list_queues"]).await;
    assert_eq!((r.out.as_str(), r.code), ("", 69));
    assert!(r.err.contains("suggestion: start the node"), "{}", r.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_64() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let r = t.run("rabbitmqctl", &["frobnicate"]).await;
    assert_eq!(r.code, 64);
    assert!(
        r.err.starts_with("\nCommand 'frobnicate' not found. \n"),
        "{}",
        r.err
    );
    let r = t.run("rabbitmqctl", &["add_user", "a", "b", "c"]).await;
    assert_eq!(r.code, 64);
    assert_eq!(
        r.err,
        "Error (argument validation): too many arguments.\nArguments given:\n\tadd_user a b c\n\n\
         \x1b[1mUsage\x1b[0m\n\nrabbitmqctl [--node <node>] [--longnames] [--quiet] add_user <username> <password>\n"
    );
    let r = t.run("rabbitmqctl", &["delete_queue"]).await;
    assert!(
        r.err
            .starts_with("Error (argument validation): not enough arguments."),
        "{}",
        r.err
    );
    let r = t
        .run("rabbitmqctl", &["list_queues", "name", "bogus"])
        .await;
    assert_eq!(r.code, 64);
    assert!(r
        .err
        .starts_with("Error (argument validation): Info key(s) bogus are not supported\n"));
    let r = t.run("rabbitmq-diagnostics", &["ping", "extra"]).await;
    assert_eq!(r.code, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_report_listeners_and_alarms() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let node = &t.node;
    let amqp = b.addr.port();
    let r = t
        .run("rabbitmq-diagnostics", &["-q", "check_port_connectivity"])
        .await;
    let mut ports = [
        amqp,
        b.mgmt_addr().unwrap().port(),
        b.metrics_addr().unwrap().port(),
        t.port,
    ];
    ports.sort_unstable();
    let list = ports.map(|p| p.to_string()).join(", ");
    assert_eq!(
        r.out,
        format!("Successfully connected to ports {list} on node {node}.\n")
    );
    let r = t.run("rabbitmq-diagnostics", &["-q", "listeners"]).await;
    assert!(r.out.contains(&format!("Interface: 127.0.0.1, port: {amqp}, protocol: amqp, purpose: AMQP 0-9-1 and AMQP 1.0\n")), "{}", r.out);
    assert!(r.out.contains(&format!(
        "port: {}, protocol: clustering, purpose: inter-node and CLI tool communication\n",
        t.port
    )));
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &["-q", "check_protocol_listener", "amqp"],
        )
        .await;
    assert_eq!(
        r.out,
        format!("A listener for protocol amqp is running on node {node}.\n")
    );
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &["-q", "check_protocol_listener", "mqtt"],
        )
        .await;
    assert_eq!(r.code, 69);
    assert_eq!(r.err, format!("Error:\nNo listener for protocol mqtt is active on node {node}. Found listeners for the following protocols: amqp, clustering, http, http/prometheus\n"));
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &["-q", "check_port_listener", &amqp.to_string()],
        )
        .await;
    assert_eq!(
        (r.out.clone(), r.code),
        (
            format!("A listener for port {amqp} is running on node {node}.\n"),
            0
        )
    );
    assert_eq!(
        t.run("rabbitmq-diagnostics", &["-q", "check_port_listener", "1"])
            .await
            .code,
        69
    );
    let r = t
        .run("rabbitmq-diagnostics", &["-q", "check_virtual_hosts"])
        .await;
    assert_eq!(
        r.out,
        format!("Node {node} reported all vhosts as running\n")
    );
    let r = t
        .run("rabbitmq-diagnostics", &["-q", "server_version"])
        .await;
    assert_eq!(r.out, format!("{}\n", warren::mgmt::VERSION));
    let r = t
        .run("rabbitmq-diagnostics", &["-q", "check_local_alarms"])
        .await;
    assert_eq!(
        (r.out.clone(), r.code),
        (format!("Node {node} reported no local alarms\n"), 0)
    );
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &["-q", "status", "--formatter", "json"],
        )
        .await;
    let status: serde_json::Value = serde_json::from_str(&r.out).expect("status is JSON");
    assert_eq!(status["listeners"].as_array().unwrap().len(), 4);
    assert_eq!(status["alarms"], serde_json::json!([]));
    let r = t.run("rabbitmqctl", &["status"]).await;
    assert!(
        r.out.starts_with(&format!(
            "Status of node {node} ...\n\x1b[1mRuntime\x1b[0m\n\nOS PID: {}\n",
            std::process::id()
        )),
        "{}",
        r.out
    );
    b.broker().unwrap().alarms.set_memory_limit(1);
    let alarm = format!("Error:\nMemory alarm on node {node}\n");
    let r = eventually(5, || async {
        let r = t
            .run("rabbitmq-diagnostics", &["-q", "check_local_alarms"])
            .await;
        (r.code == 69).then_some(r)
    })
    .await;
    assert_eq!((r.out.as_str(), r.err.as_str()), ("", alarm.as_str()));
    let r = t.run("rabbitmq-diagnostics", &["-q", "alarms"]).await;
    assert_eq!(
        (r.out.clone(), r.code),
        (format!("Memory alarm on node {node}\n"), 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_lists_the_built_in_ones() {
    let Some((b, home)) = broker().await else {
        return;
    };
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
    let r = t
        .run("rabbitmq-plugins", &["-q", "list", "-m", "prom"])
        .await;
    assert_eq!(r.out, "rabbitmq_prometheus\n");
    let r = t
        .run("rabbitmq-plugins", &["enable", "rabbitmq_management"])
        .await;
    assert_eq!(r.code, 0);
    assert!(r.out.starts_with(&format!(
        "Enabling plugins on node {node}:\nrabbitmq_management\n"
    )));
    assert!(
        r.out.ends_with("Plugin configuration unchanged.\n"),
        "{}",
        r.out
    );
    let r = t.run("rabbitmq-plugins", &["enable", "nonesuch"]).await;
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error:\n{:plugins_not_found, [:nonesuch]}\n", 70)
    );
}

#[tokio::test]
async fn shutdown_stops_a_warren_process() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return;
    }
    let dir = TempDir::new();
    let home = dir.path.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let env = [
        ("HOME", home.to_str().unwrap()),
        ("RABBITMQ_NODENAME", "stopme@localhost"),
    ];
    let mut child = spawn_warren(&dir.path.join("data"), &env).await;
    let port: u16 = {
        let log = child.log.lock().unwrap();
        let line = log
            .iter()
            .find(|l| l.contains("CLI tool listener started on"))
            .expect("logged");
        line.rsplit(':').next().unwrap().trim().parse().unwrap()
    };
    let cookie =
        std::fs::read_to_string(home.join(".erlang.cookie")).expect("the broker made the cookie");
    assert_eq!(cookie.len(), 20);
    let t = Target {
        port,
        node: "stopme@localhost".into(),
        cookie,
        home,
    };
    let r = t.run("rabbitmqctl", &["await_startup"]).await;
    assert_eq!((r.out.as_str(), r.code), ("", 0));
    let r = t.run("rabbitmqctl", &["-q", "shutdown"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let status = within(10, child.child.wait()).await.unwrap();
    assert!(status.success());
}
