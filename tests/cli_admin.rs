//! `rabbitmqctl` changing and listing what the broker holds: users, permissions and vhosts
//! made with it are the ones clients log in with; queue listings show what clients did, and
//! purge and delete act on them (texts and exit codes recorded from RabbitMQ 3.10.8).

mod common;

use common::cli::*;
use common::*;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::BasicProperties;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_permissions_made_with_rabbitmqctl_log_in() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let user = unique("dave");
    let r = t.run("rabbitmqctl", &["add_user", &user, "pw"]).await;
    assert_eq!(
        r.out,
        format!("Adding user \"{user}\" ...\nDone. Don't forget to grant the user permissions to some virtual hosts! See 'rabbitmqctl help set_permissions' to learn more.\n")
    );
    assert_eq!(r.code, 0);
    let r = t.run("rabbitmqctl", &["add_user", &user, "pw"]).await;
    assert_eq!(
        (r.err.clone(), r.code),
        (format!("Error:\nUser \"{user}\" already exists\n"), 70)
    );
    // No permissions yet: the login is refused access to the vhost.
    let url = b.url_for(&user, "pw", "/");
    let props = lapin::ConnectionProperties::default;
    assert!(within(5, lapin::Connection::connect(&url, props()))
        .await
        .is_err());
    let r = t
        .run(
            "rabbitmqctl",
            &["set_permissions", "-p", "/", &user, ".*", ".*", ".*"],
        )
        .await;
    assert_eq!(
        r.out,
        format!("Setting permissions for user \"{user}\" in vhost \"/\" ...\n")
    );
    let conn = within(5, lapin::Connection::connect(&url, props()))
        .await
        .expect("logs in");
    let r = t
        .run("rabbitmqctl", &["-q", "list_user_permissions", &user])
        .await;
    assert_eq!(r.out, "vhost\tconfigure\twrite\tread\n/\t.*\t.*\t.*\n");
    let r = t
        .run(
            "rabbitmqctl",
            &["set_user_tags", &user, "administrator", "management"],
        )
        .await;
    assert_eq!(
        r.out,
        format!("Setting tags for user \"{user}\" to [administrator, management] ...\n")
    );
    let r = t.run("rabbitmqctl", &["-s", "list_users"]).await;
    assert!(
        r.out
            .contains(&format!("{user}\t[administrator, management]\n")),
        "{}",
        r.out
    );
    let r = t
        .run("rabbitmqctl", &["authenticate_user", &user, "wrong"])
        .await;
    assert_eq!(r.code, 65);
    assert_eq!(r.err, format!("Error:\nError: failed to authenticate user \"{user}\"\nuser '{user}' - invalid credentials\n"));
    let r = t
        .run("rabbitmqctl", &["-q", "authenticate_user", &user, "pw"])
        .await;
    assert_eq!((r.out.as_str(), r.code), ("Success\n", 0));
    let r = t
        .run("rabbitmqctl", &["change_password", &user, "pw2"])
        .await;
    assert_eq!(r.code, 0);
    assert_eq!(
        t.run("rabbitmqctl", &["-q", "authenticate_user", &user, "pw2"])
            .await
            .code,
        0
    );
    let r = t.run("rabbitmqctl", &["clear_permissions", &user]).await;
    assert_eq!(
        r.out,
        format!("Clearing permissions for user \"{user}\" in vhost \"/\" ...\n")
    );
    let r = t.run("rabbitmqctl", &["delete_user", &user]).await;
    assert_eq!(
        (r.out.clone(), r.code),
        (format!("Deleting user \"{user}\" ...\n"), 0)
    );
    let r = t.run("rabbitmqctl", &["delete_user", &user]).await;
    assert_eq!(
        (r.err.clone(), r.code),
        (format!("Error:\nUser \"{user}\" does not exist\n"), 67)
    );
    let r = t
        .run(
            "rabbitmqctl",
            &["set_permissions", "-p", "nov", "guest", ".*", ".*", ".*"],
        )
        .await;
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error:\nVirtual host nov does not exist\n", 69)
    );
    // A vhost made by the tool grants nobody anything, as rabbitmqctl's.
    let vhost = unique("v");
    assert_eq!(t.run("rabbitmqctl", &["add_vhost", &vhost]).await.code, 0);
    let r = t
        .run("rabbitmqctl", &["-q", "list_permissions", "-p", &vhost])
        .await;
    assert_eq!(r.out, "");
    assert_eq!(
        t.run("rabbitmqctl", &["delete_vhost", &vhost]).await.code,
        0
    );
    let r = t.run("rabbitmqctl", &["delete_vhost", &vhost]).await;
    assert_eq!(
        (r.err.clone(), r.code),
        (format!("Virtual host '{vhost}' does not exist\n"), 65)
    );
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_listed_purged_and_deleted() {
    let Some((b, home)) = broker().await else {
        return;
    };
    let t = Target::of(&b, &home);
    let conn = b.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-message-ttl".into(),
        lapin::types::AMQPValue::LongUInt(60000),
    );
    for (q, a) in [("busy", FieldTable::default()), ("ttl", args)] {
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(q.into(), opts, a).await.unwrap();
    }
    for _ in 0..3 {
        ch.basic_publish(
            "".into(),
            "ttl".into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    // Kept: a dropped lapin consumer is cancelled.
    let _consumer = ch
        .basic_consume(
            "busy".into(),
            "c1".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let r = t
        .run(
            "rabbitmqctl",
            &["-q", "list_queues", "name", "messages", "consumers"],
        )
        .await;
    assert_eq!(r.out, "name\tmessages\tconsumers\nbusy\t0\t1\nttl\t3\t0\n");
    // The arguments as the management API shows them (with x-queue-type, as RabbitMQ 4).
    let r = t
        .run(
            "rabbitmqctl",
            &["list_queues", "name", "arguments", "durable", "auto_delete"],
        )
        .await;
    assert_eq!(
        r.out,
        "Timeout: 60.0 seconds ...\nListing queues for vhost / ...\nname\targuments\tdurable\tauto_delete\n\
         busy\t[{\"x-queue-type\",\"classic\"}]\ttrue\tfalse\n\
         ttl\t[{\"x-message-ttl\",60000},{\"x-queue-type\",\"classic\"}]\ttrue\tfalse\n"
    );
    let r = t
        .run("rabbitmqctl", &["-q", "list_queues", "--formatter", "json"])
        .await;
    assert_eq!(
        r.out,
        "[\n{\"name\":\"busy\",\"messages\":0}\n,{\"name\":\"ttl\",\"messages\":3}\n]\n"
    );
    let r = t
        .run(
            "rabbitmqctl",
            &[
                "-s",
                "list_consumers",
                "queue_name",
                "consumer_tag",
                "ack_required",
            ],
        )
        .await;
    assert_eq!(r.out, "busy\tc1\ttrue\n");
    let r = t
        .run(
            "rabbitmqctl",
            &[
                "-q",
                "list_bindings",
                "source_name",
                "destination_name",
                "routing_key",
            ],
        )
        .await;
    assert_eq!(
        r.out,
        "source_name\tdestination_name\trouting_key\n\tbusy\tbusy\n\tttl\tttl\n"
    );
    // Channels and consumers by their default columns; a pid is the node and the name.
    let r = t.run("rabbitmqctl", &["-q", "list_channels"]).await;
    let pid = format!("<{}.", t.node);
    assert!(
        r.out.starts_with(&format!(
            "pid\tuser\tconsumer_count\tmessages_unacknowledged\n{pid}"
        )),
        "{}",
        r.out
    );
    assert!(r.out.ends_with(">\tguest\t1\t0\n"), "{}", r.out);
    let r = t.run("rabbitmqctl", &["-q", "list_consumers"]).await;
    let header =
        "queue_name\tchannel_pid\tconsumer_tag\tack_required\tprefetch_count\tactive\targuments\n";
    assert!(
        r.out.starts_with(&format!("{header}busy\t{pid}")),
        "{}",
        r.out
    );
    assert!(r.out.ends_with(">\tc1\ttrue\t0\ttrue\t[]\n"), "{}", r.out);
    let r = t
        .run("rabbitmqctl", &["-q", "list_connections", "user", "state"])
        .await;
    assert_eq!(r.out, "user\tstate\nguest\trunning\n");
    let r = t
        .run("rabbitmqctl", &["delete_queue", "ttl", "--if-empty"])
        .await;
    assert_eq!(
        r.out,
        "Deleting queue 'ttl' on vhost '/' if queue is empty ...\n"
    );
    assert_eq!(
        (r.err.as_str(), r.code),
        ("Error:\nQueue is not empty\n", 64)
    );
    let r = t.run("rabbitmqctl", &["purge_queue", "ttl"]).await;
    assert_eq!(
        (r.out.as_str(), r.code),
        ("Purging queue 'ttl' in vhost '/' ...\n", 0)
    );
    let r = t
        .run("rabbitmqctl", &["-q", "delete_queue", "ttl", "-e"])
        .await;
    assert_eq!(
        (r.out.as_str(), r.code),
        ("Queue was successfully deleted with 0 ready messages\n", 0)
    );
    let r = t.run("rabbitmqctl", &["delete_queue", "ttl"]).await;
    assert_eq!((r.err.as_str(), r.code), ("Error:\nQueue not found\n", 64));
    let r = t.run("rabbitmqctl", &["purge_queue", "ttl"]).await;
    assert_eq!((r.err.as_str(), r.code), ("Error:\nnot_found\n", 69));
    let r = t.run("rabbitmqctl", &["-s", "list_queues"]).await;
    assert_eq!(r.out, "busy\t0\n");
}
