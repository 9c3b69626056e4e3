//! The operator commands of `rabbitmqctl` and `rabbitmq-diagnostics` that container and init
//! scripts run: policies, limits, definitions, closing connections, alarm limits, health
//! checks. Texts and exit codes recorded from RabbitMQ 3.10.8; the effects are checked
//! through AMQP.

mod common;

use common::cli::*;
use common::*;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::BasicProperties;

/// The reply code and text the connection is closed with.
fn closed_with(conn: &lapin::Connection) -> tokio::sync::mpsc::UnboundedReceiver<(u16, String)> {
    use futures_core::Stream;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut events = Box::pin(conn.events_listener());
    tokio::spawn(async move {
        while let Some(ev) = std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
            if let lapin::Event::Error(e) = ev {
                if let Some(c) = amqp_error(&e) {
                    let _ = tx.send(c);
                }
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_set_with_rabbitmqctl_expires_messages() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let r = t
        .run(
            "rabbitmqctl",
            &[
                "set_policy",
                "ttl",
                "^ttl\\.",
                r#"{"message-ttl":50}"#,
                "--priority",
                "3",
                "--apply-to",
                "queues",
            ],
        )
        .await;
    assert_eq!(
        (r.out.as_str(), r.code),
        ("Setting policy \"ttl\" for pattern \"^ttl\\.\" to \"{\"message-ttl\":50}\" with priority \"3\" for vhost \"/\" ...\n", 0)
    );
    let r = t.run("rabbitmqctl", &["list_policies"]).await;
    assert_eq!(
        r.out,
        "Listing policies for vhost \"/\" ...\nvhost\tname\tpattern\tapply-to\tdefinition\tpriority\n/\tttl\t^ttl\\.\tqueues\t{\"message-ttl\":50}\t3\n"
    );
    let r = t
        .run(
            "rabbitmqctl",
            &["-q", "list_policies", "--formatter", "json"],
        )
        .await;
    assert_eq!(
        r.out,
        "[\n{\"vhost\":\"/\",\"name\":\"ttl\",\"pattern\":\"^ttl\\\\.\",\"apply-to\":\"queues\",\"definition\":\"{\\\"message-ttl\\\":50}\",\"priority\":3}\n]\n"
    );
    let conn = b.connect().await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "ttl.q".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.basic_publish(
        "".into(),
        "ttl.q".into(),
        BasicPublishOptions::default(),
        b"m",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    eventually(5, || async {
        let got = ch
            .basic_get("ttl.q".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap();
        got.is_none().then_some(())
    })
    .await;
    let r = t
        .run("rabbitmqctl", &["set_policy", "bad", "^x", r#"{"foo":1}"#])
        .await;
    assert_eq!(
        (r.err.as_str(), r.code),
        (
            "Error:\nValidation failed\n\n[{<<\"foo\">>,1}] are not recognised policy settings\n\n",
            69
        )
    );
    let r = t
        .run("rabbitmqctl", &["-q", "set_policy", "bad", "^x", "notjson"])
        .await;
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error:\nJSON decoding error. Reason: badarg\n", 69)
    );
    let r = t
        .run(
            "rabbitmqctl",
            &["-q", "set_policy", "-p", "nov", "x", "^x", "{}"],
        )
        .await;
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Virtual host 'nov' does not exist\n", 65)
    );
    let r = t.run("rabbitmqctl", &["clear_policy", "ttl"]).await;
    assert_eq!(
        (r.out.as_str(), r.code),
        ("Clearing policy \"ttl\" on vhost \"/\" ...\n", 0)
    );
    let r = t.run("rabbitmqctl", &["clear_policy", "ttl"]).await;
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error:\nParameter does not exist\n", 69)
    );
    let r = t.run("rabbitmqctl", &["-q", "list_policies"]).await;
    assert_eq!(r.out, "\n");
    let r = t.run("rabbitmqctl", &["list_operator_policies"]).await;
    assert_eq!(
        r.out,
        "Listing operator policy overrides for vhost \"/\" ...\n\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_limits_refuse_connections() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let r = t
        .run(
            "rabbitmqctl",
            &["set_vhost_limits", r#"{"max-connections": 0}"#],
        )
        .await;
    assert_eq!(
        (r.out.as_str(), r.code),
        (
            "Setting vhost limits to \"{\"max-connections\": 0}\" for vhost \"/\" ...\n",
            0
        )
    );
    let err = within(10, lapin::Connection::connect(&b.url, Default::default()))
        .await
        .expect_err("refused");
    assert_eq!(
        amqp_error(&err),
        Some((530, "NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (0) is reached".into()))
    );
    let r = t.run("rabbitmqctl", &["list_vhost_limits"]).await;
    assert_eq!(
        r.out,
        "Listing limits for vhost \"/\" ...\n{\"max-connections\":0}\n"
    );
    let r = t
        .run("rabbitmqctl", &["-q", "list_vhost_limits", "--global"])
        .await;
    assert_eq!(r.out, "vhost\tlimits\n/\t{\"max-connections\":0}\n");
    let r = t.run("rabbitmqctl", &["-q", "list_parameters"]).await;
    assert_eq!(
        r.out,
        "component\tname\tvalue\nvhost-limits\tlimits\t{\"max-connections\":0}\n"
    );
    let r = t
        .run(
            "rabbitmqctl",
            &["set_vhost_limits", r#"{"bogus": 1}"#, "-q"],
        )
        .await;
    assert_eq!(
        (r.err.as_str(), r.code),
        (
            "Error:\nValidation failed\n\nUnrecognised terms [{<<\"bogus\">>,1}] in limits\n\n",
            69
        )
    );
    let r = t.run("rabbitmqctl", &["clear_vhost_limits"]).await;
    assert_eq!(
        (r.out.as_str(), r.code),
        ("Clearing vhost \"/\" limits ...\n", 0)
    );
    within(10, lapin::Connection::connect(&b.url, Default::default()))
        .await
        .expect("connects again");
    let r = t.run("rabbitmqctl", &["-q", "clear_vhost_limits"]).await;
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error:\nParameter does not exist\n", 69)
    );
    let r = t.run("rabbitmqctl", &["-q", "list_vhost_limits"]).await;
    assert_eq!(r.out, "\n");

    let user = unique("lim");
    t.run("rabbitmqctl", &["-q", "add_user", &user, "pw"]).await;
    let limits = r#"{"max-connections": 2, "max-channels": 3}"#;
    let r = t
        .run("rabbitmqctl", &["set_user_limits", &user, limits])
        .await;
    assert_eq!(
        r.out,
        format!("Setting user limits to \"{limits}\" for user \"{user}\" ...\n")
    );
    t.run(
        "rabbitmqctl",
        &["-q", "set_user_limits", &user, r#"{"max-channels": 4}"#],
    )
    .await;
    let r = t
        .run("rabbitmqctl", &["list_user_limits", "--user", &user])
        .await;
    assert_eq!(
        r.out,
        format!("Listing limits for user \"{user}\" ...\n{{\"max-channels\":4,\"max-connections\":2}}\n")
    );
    let r = t
        .run("rabbitmqctl", &["clear_user_limits", &user, "max-channels"])
        .await;
    assert_eq!(
        r.out,
        format!("Clearing \"max-channels\" limit for user \"{user}\" ...\n")
    );
    let r = t
        .run(
            "rabbitmqctl",
            &[
                "-q",
                "list_user_limits",
                "--user",
                &user,
                "--formatter",
                "json",
            ],
        )
        .await;
    assert_eq!(r.out, "{\"message\":\"{\\\"max-connections\\\":2}\"}\n");
    let r = t
        .run("rabbitmqctl", &["-q", "set_user_limits", "nouser", "{}"])
        .await;
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error:\n{:no_such_user, \"nouser\"}\n", 69)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_connections_with_a_reason() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let conn = b.connect().await;
    let mut closed = closed_with(&conn);
    let r = t
        .run("rabbitmqctl", &["close_all_connections", "maintenance"])
        .await;
    assert_eq!(
        (r.out.as_str(), r.code),
        (
            "Closing all connections in vhost /, reason: maintenance...\nClosed 1 connections\n",
            0
        )
    );
    assert_eq!(
        within(5, closed.recv()).await,
        Some((320, "CONNECTION_FORCED - maintenance".into()))
    );
    // By the name `list_connections name` shows.
    let conn = b.connect().await;
    let mut closed = closed_with(&conn);
    let name = eventually(5, || async {
        let r = t
            .run("rabbitmqctl", &["-q", "list_connections", "name"])
            .await;
        r.out.lines().nth(1).map(String::from)
    })
    .await;
    let r = t
        .run("rabbitmqctl", &["close_connection", &name, "go away"])
        .await;
    assert_eq!(
        r.out,
        format!("Closing connection {name}, reason: go away...\n")
    );
    assert_eq!(
        within(5, closed.recv()).await,
        Some((320, "CONNECTION_FORCED - go away".into()))
    );
    let r = t
        .run("rabbitmqctl", &["-q", "close_connection", "garbage", "x"])
        .await;
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error:\nError:\n{:invalid_pid_syntax, \"garbage\"}\n", 69)
    );
    let conn = b.connect().await;
    let mut closed = closed_with(&conn);
    let r = t
        .run(
            "rabbitmqctl",
            &["close_all_user_connections", "guest", "bye"],
        )
        .await;
    assert_eq!(r.out, "Closing connections of user guest, reason: bye...\n");
    assert_eq!(
        within(5, closed.recv()).await,
        Some((320, "CONNECTION_FORCED - bye".into()))
    );
    let r = t
        .run(
            "rabbitmqctl",
            &["-q", "close_all_connections", "--global", "x"],
        )
        .await;
    assert_eq!((r.out.as_str(), r.code), ("Closed 0 connections\n", 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_round_trip_through_files() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let conn = b.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("kept");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(q.as_str().into(), durable, FieldTable::default())
        .await
        .unwrap();
    let r = t.run("rabbitmqctl", &["export_definitions", "-"]).await;
    assert_eq!(r.code, 0);
    assert!(!r.out.ends_with('\n'), "no newline after the JSON");
    let defs: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert!(defs["queues"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == q.as_str()));
    let path = home.path.join("defs.json");
    let path = path.to_str().unwrap();
    let r = t.run("rabbitmqctl", &["export_definitions", path]).await;
    assert_eq!(
        r.out,
        format!("Exporting definitions in JSON to a file at \"{path}\" ...\n")
    );
    ch.queue_delete(q.as_str().into(), Default::default())
        .await
        .unwrap();
    let r = t.run("rabbitmqctl", &["import_definitions", path]).await;
    assert_eq!(
        (r.out, r.code),
        (format!("Importing definitions in JSON from a file at \"{path}\" ...\nSuccessfully started definition import. This process is asynchronous and can take some time.\n"), 0)
    );
    let passive = QueueDeclareOptions {
        passive: true,
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(q.as_str().into(), passive, FieldTable::default())
        .await
        .expect("the queue is back");
    let r = t
        .run(
            "rabbitmqctl",
            &["-q", "import_definitions", "/no/such.json"],
        )
        .await;
    assert_eq!(r.code, 65);
    assert!(r.err.starts_with(
        "Error (argument validation): Bad argument: File /no/such.json does not exist\n"
    ));
    std::fs::write(home.path.join("bad.json"), "{bad").unwrap();
    let bad = home.path.join("bad.json");
    let r = t
        .run(
            "rabbitmqctl",
            &["-q", "import_definitions", bad.to_str().unwrap()],
        )
        .await;
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error:\nFailed to deserialise input (format: JSON) (error: {:unexpected_token, \"bad\"})\n", 65)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_watermark_set_at_run_time_raises_the_alarm() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let node = &t.node;
    let r = t
        .run(
            "rabbitmqctl",
            &["set_vm_memory_high_watermark", "absolute", "1"],
        )
        .await;
    assert_eq!(
        r.out,
        format!("Setting memory threshold on {node} to 1 bytes ...\n")
    );
    let alarm = eventually(5, || async {
        let r = t.run("rabbitmq-diagnostics", &["-q", "check_alarms"]).await;
        (r.code == 69).then_some(r.err)
    })
    .await;
    assert_eq!(alarm, format!("Memory alarm on node {node}\n"));
    let r = t
        .run(
            "rabbitmqctl",
            &["-q", "set_vm_memory_high_watermark", "1.0"],
        )
        .await;
    assert_eq!(r.code, 0);
    eventually(5, || async {
        let r = t.run("rabbitmq-diagnostics", &["-q", "check_alarms"]).await;
        (r.code == 0).then_some(())
    })
    .await;
    // status shows the setting in effect, not the configured one.
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &["-q", "status", "--formatter", "json"],
        )
        .await;
    let status: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(
        status["vm_memory_high_watermark_setting"],
        serde_json::json!({"relative": 1.0})
    );
    let r = t
        .run("rabbitmqctl", &["set_vm_memory_high_watermark", "2"])
        .await;
    assert_eq!(r.code, 65);
    assert!(r.err.starts_with("Error (argument validation): Bad argument: The threshold should be a fraction between 0.0 and 1.0\n"));
    let r = t
        .run(
            "rabbitmqctl",
            &["set_disk_free_limit", "mem_relative", "0.1"],
        )
        .await;
    assert_eq!(
        r.out,
        format!("Setting disk free limit on {node} to 0.1 times the total RAM ...\n")
    );
    let r = t
        .run("rabbitmqctl", &["-q", "set_disk_free_limit", "50MB"])
        .await;
    assert_eq!(r.code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_for_probes() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let node = &t.node;
    let r = t.run("rabbitmq-diagnostics", &["is_running"]).await;
    assert_eq!(
        (r.out, r.code),
        (format!("Asking node {node} for its status ...\nRabbitMQ on node {node} is fully booted and running\n"), 0)
    );
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &["check_if_node_is_quorum_critical"],
        )
        .await;
    assert_eq!(
        r.out,
        format!("Checking if node {node} is critical for quorum of any quorum queues ...\nNode {node} seems to be the only one in a single node cluster, the check does not apply\n")
    );
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &[
                "check_if_node_is_mirror_sync_critical",
                "--formatter",
                "json",
            ],
        )
        .await;
    assert_eq!(
        r.out,
        "{\"message\":\"Target node seems to be the only one in a single node cluster, the check does not apply\",\"result\":\"ok\"}\n"
    );
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &["-q", "check_certificate_expiration"],
        )
        .await;
    assert_eq!(
        (r.out.as_str(), r.code),
        ("No certificates are expiring within 4 weeks.\n", 0)
    );
    use base64::Engine;
    let hash = base64::engine::general_purpose::STANDARD
        .encode(warren::cli::md5::digest(t.cookie.trim().as_bytes()));
    let r = t.run("rabbitmq-diagnostics", &["erlang_cookie_hash"]).await;
    assert_eq!(
        r.out,
        format!("Asking node {node} its Erlang cookie hash...\n{hash}\n")
    );
    let r = t
        .run(
            "rabbitmq-diagnostics",
            &["-q", "memory_breakdown", "--unit", "bytes"],
        )
        .await;
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 26, "{}", r.out);
    // RabbitMQ's 25 categories, largest first; warren measures two of them.
    assert!(lines[..25]
        .iter()
        .all(|l| l.contains(" bytes (") && l.ends_with("%)")));
    assert!(lines[0].starts_with("other_proc: "), "{}", r.out);
    assert!(lines.iter().any(|l| l.starts_with("queue_procs: ")));
    assert_eq!(lines[25], "");
    let r = t.run("rabbitmqctl", &["-q", "list_feature_flags"]).await;
    assert!(
        r.out.starts_with("name\tstate\n") && r.out.contains("quorum_queue\tenabled\n"),
        "{}",
        r.out
    );
    let r = t.run("rabbitmqctl", &["enable_feature_flag", "nope"]).await;
    assert_eq!(
        (r.err, r.code),
        (
            format!("Error:\nThis feature flag is not supported by node {node}\n"),
            64
        )
    );
    let r = t.run("rabbitmqctl", &["set_cluster_name", "ops"]).await;
    assert_eq!(r.out, "Setting cluster name to ops ...\n");
    let r = t
        .run("rabbitmqctl", &["-q", "list_global_parameters"])
        .await;
    assert_eq!(r.out, "name\tvalue\ncluster_name\t\"ops\"\n");
}
