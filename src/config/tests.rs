//! Configuration tests: defaults, files, and the environment variables of warren and RabbitMQ.
use super::*;

#[test]
fn warren_environment_variables_override_the_file() {
    let env: config::Map<String, String> = [
        ("WARREN_AMQP__HEARTBEAT", "30"),
        ("WARREN_AUTH__DEFAULT_PASS", "12345"),
        ("WARREN_MANAGEMENT__ENABLED", "false"),
        // Variables of the tools around warren are not settings.
        ("WARREN_LOG", "debug"),
        ("WARREN_TEST_URL", "amqp://x"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let c = Config::load_with_env(None, &Overrides::default(), Some(env)).unwrap();
    assert_eq!(c.amqp.heartbeat, 30);
    assert_eq!(c.auth.default_pass, "12345");
    assert!(!c.management.enabled);
    let bad: config::Map<String, String> = [("WARREN_AMQP__HEARTBEAT", "often")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(Config::load_with_env(None, &Overrides::default(), Some(bad)).is_err());
}

#[test]
fn rabbitmq_environment_variables_set_the_default_user_vhost_and_port() {
    let env = |k: &str| {
        match k {
            "RABBITMQ_DEFAULT_USER" => Some("app"),
            "RABBITMQ_DEFAULT_PASS" => Some("s3cret"),
            "RABBITMQ_DEFAULT_VHOST" => Some("orders"),
            "RABBITMQ_NODE_PORT" => Some("5999"),
            "RABBITMQ_NODE_IP_ADDRESS" => Some("127.0.0.1"),
            "RABBITMQ_CONFIG_FILE" => Some("/nonexistent/rabbitmq.conf"),
            "RABBITMQ_CONFIG_FILES" => Some("/nonexistent/conf.d"),
            _ => None,
        }
        .map(String::from)
    };
    let o = Overrides::default().with_rabbitmq_env(env).unwrap();
    let c = Config::load(None, &o).unwrap();
    assert_eq!(
        (c.auth.default_user.as_str(), c.auth.default_pass.as_str()),
        ("app", "s3cret")
    );
    assert_eq!(c.auth.default_vhost, "orders");
    assert_eq!(c.amqp.port, 5999);
    assert_eq!(c.amqp.bind, IpAddr::from([127, 0, 0, 1]));
    // The command line wins over the environment; empty variables are ignored.
    let cli = Overrides {
        amqp_port: Some(1234),
        ..Overrides::default()
    };
    let o = cli.with_rabbitmq_env(env).unwrap();
    assert_eq!(Config::load(None, &o).unwrap().amqp.port, 1234);
    let empty = |_: &str| Some(String::new());
    let c = Config::load(
        None,
        &Overrides::default().with_rabbitmq_env(empty).unwrap(),
    )
    .unwrap();
    assert_eq!(c.auth.default_user, "guest");
    let bad = |k: &str| (k == "RABBITMQ_NODE_PORT").then(|| "amqp".to_string());
    let err = Overrides::default().with_rabbitmq_env(bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration: RABBITMQ_NODE_PORT must be a port number, got \"amqp\""
    );
}

#[test]
fn defaults_match_rabbitmq() {
    let c = Config::defaults();
    assert_eq!(c.amqp.port, 5672);
    assert_eq!(c.amqp.frame_max, 131072);
    assert_eq!(c.amqp.channel_max, 2047);
    assert_eq!(c.amqp.heartbeat, 60);
    assert_eq!(c.amqp.consumer_timeout, 1_800_000);
    assert_eq!(c.amqp.timeout_action(), TimeoutAction::CloseChannel);
    assert_eq!(c.storage.data_dir, PathBuf::from("./data"));
    assert_eq!(c.auth.default_user, "guest");
    assert_eq!(c.prometheus.port, 15692);
    assert!(c.prometheus.enabled);
}

#[test]
fn overrides_win() {
    let o = Overrides {
        amqp_port: Some(0),
        data_dir: Some("/tmp/x".into()),
        mgmt_port: Some(15999),
        metrics_port: Some(0),
        ..Overrides::default()
    };
    let c = Config::load(None, &o).unwrap();
    assert_eq!(c.amqp.port, 0);
    assert_eq!(c.management.port, 15999);
    assert_eq!(c.prometheus.port, 0);
    assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/x"));
}

#[test]
fn file_overrides_defaults() {
    let dir = std::env::temp_dir().join(format!("warren-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("w.toml");
    std::fs::write(&f, "[amqp]\nheartbeat = 5\n").unwrap();
    let c = Config::load(Some(&f), &Overrides::default()).unwrap();
    assert_eq!(c.amqp.heartbeat, 5);
    assert_eq!(c.amqp.frame_max, 131072);
}

#[test]
fn unknown_timeout_action_is_refused() {
    let dir = std::env::temp_dir().join(format!("warren-cfg-action-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("w.toml");
    std::fs::write(&f, "[amqp]\nconsumer_timeout_action = \"explode\"\n").unwrap();
    let err = Config::load(Some(&f), &Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("consumer_timeout_action"), "{err}");
    std::fs::write(
        &f,
        "[amqp]\nconsumer_timeout_action = \"cancel-consumer\"\n",
    )
    .unwrap();
    let c = Config::load(Some(&f), &Overrides::default()).unwrap();
    assert_eq!(c.amqp.timeout_action(), TimeoutAction::CancelConsumer);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cli_port_follows_the_amqp_port_unless_set() {
    let env = |k: &str| (k == "RABBITMQ_NODE_PORT").then(|| "5999".to_string());
    let c = Config::load(None, &Overrides::default().with_rabbitmq_env(env).unwrap());
    assert_eq!(c.unwrap().cli_port(), 25999);
    let mut c = Config::defaults();
    assert_eq!(c.cli_port(), 25672);
    c.amqp.port = 50000;
    assert_eq!(c.cli_port(), 0, "past 65535: a free port");
    let env = |k: &str| (k == "RABBITMQ_DIST_PORT").then(|| "4000".to_string());
    let c = Config::load(None, &Overrides::default().with_rabbitmq_env(env).unwrap());
    assert_eq!(c.unwrap().cli_port(), 4000);
}
