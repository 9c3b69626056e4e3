//! Tests of the rabbitmq.conf reader: syntax, translation, files, plugins, units.
use super::*;

fn guest() -> Vec<String> {
    vec!["guest".to_string()]
}

#[test]
fn comments_and_blank_lines_are_skipped_and_hash_ends_a_value() {
    let s = parse(
        "# a comment\n\n  default_pass = pa#ss # trailing\nheartbeat=30\n",
        "r.conf",
    )
    .unwrap();
    assert_eq!(
        s,
        vec![
            Setting {
                key: "default_pass".into(),
                value: "pa".into(),
                at: "r.conf:3".into()
            },
            Setting {
                key: "heartbeat".into(),
                value: "30".into(),
                at: "r.conf:4".into()
            },
        ]
    );
}

#[test]
fn a_malformed_line_is_an_error_with_its_line_number() {
    let e = parse(
        "heartbeat = 30\nthis line is wrong\n",
        "/etc/rabbitmq/rabbitmq.conf",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "syntax error in /etc/rabbitmq/rabbitmq.conf:2: expected `key = value`, got \"this line is wrong\""
    );
    let e = parse("\n\nbad key = 1\n", "r.conf").unwrap_err();
    assert_eq!(
        e.to_string(),
        "syntax error in r.conf:3: invalid key \"bad key\""
    );
    let e = parse("heartbeat =\n", "r.conf").unwrap_err();
    assert_eq!(
        e.to_string(),
        "syntax error in r.conf:1: heartbeat has no value"
    );
}

#[test]
fn settings_become_warren_keys() {
    let text = "listeners.tcp.default = 127.0.0.1:5679\nlisteners.ssl.default = 5670\n\
        default_user = app\ndefault_pass = s3cret\ndefault_vhost = orders\n\
        default_permissions.configure = ^app-.*\nloopback_users.guest = false\n\
        loopback_users.admin = true\nheartbeat = 15\nframe_max = 65536\nchannel_max = 100\n\
        max_message_size = 1048576\nvm_memory_high_watermark.absolute = 2GB\n\
        disk_free_limit.absolute = 1GiB\nconsumer_timeout = 900000\n\
        management.tcp.port = 15999\nprometheus.tcp.port = 15998\n\
            management.tcp.ip = 127.0.0.1\nprometheus.tcp.ip = ::1\n\
        management.load_definitions = /etc/rabbitmq/definitions.json\n\
        log.console = true\nlog.console.level = warning\n\
        ssl_options.certfile = /c.pem\nssl_options.keyfile = /k.pem\n\
        ssl_options.cacertfile = /ca.pem\nssl_options.verify = verify_peer\n\
        ssl_options.fail_if_no_peer_cert = true\nhandshake_timeout = 10001\n";
    let t = translate(&parse(text, "r.conf").unwrap(), &guest()).unwrap();
    let get = |k: &str| {
        t.values
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing"))
            .to_string()
    };
    assert_eq!(get("amqp.port"), "5679");
    assert_eq!(get("amqp.bind"), "127.0.0.1");
    assert_eq!(get("tls.port"), "5670");
    assert_eq!(get("auth.default_user"), "app");
    assert_eq!(get("auth.default_pass"), "s3cret");
    assert_eq!(get("auth.default_vhost"), "orders");
    let perms = t.values["auth.default_permissions"]
        .clone()
        .into_array()
        .unwrap();
    let perms: Vec<String> = perms.into_iter().map(|v| v.to_string()).collect();
    assert_eq!(perms, ["^app-.*", ".*", ".*"]);
    let lb = t.values["auth.loopback_users"]
        .clone()
        .into_array()
        .unwrap();
    assert_eq!(
        lb.into_iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        ["admin"]
    );
    assert_eq!(get("amqp.heartbeat"), "15");
    assert_eq!(get("amqp.frame_max"), "65536");
    assert_eq!(get("amqp.channel_max"), "100");
    assert_eq!(get("amqp.max_message_size"), "1048576");
    assert_eq!(
        get("resources.memory_high_watermark_absolute"),
        "2000000000"
    );
    assert_eq!(get("resources.disk_free_limit"), "1073741824");
    assert_eq!(get("amqp.consumer_timeout"), "900000");
    assert_eq!(get("management.port"), "15999");
    assert_eq!(get("prometheus.port"), "15998");
    assert_eq!(get("management.bind"), "127.0.0.1");
    assert_eq!(get("prometheus.bind"), "::1");
    assert_eq!(
        get("auth.load_definitions"),
        "/etc/rabbitmq/definitions.json"
    );
    assert_eq!(get("logging.console"), "true");
    assert_eq!(get("logging.level"), "warn");
    assert_eq!(get("tls.certfile"), "/c.pem");
    assert_eq!(get("tls.verify"), "verify_peer");
    assert_eq!(get("tls.fail_if_no_peer_cert"), "true");
    assert_eq!(get("amqp.handshake_timeout"), "11");
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn definitions_as_3_9_spells_them_and_default_user_tags() {
    let s = parse(
        "definitions.import_backend = local_filesystem\n\
         definitions.local.path = /etc/rabbitmq/defs.json\n\
         definitions.skip_if_unchanged = true\n\
         default_user_tags.administrator = false\ndefault_user_tags.monitoring = true\n\
         definitions.import_backend = https\n",
        "r.conf",
    )
    .unwrap();
    let t = translate(&s, &guest()).unwrap();
    assert_eq!(
        t.values["auth.load_definitions"].to_string(),
        "/etc/rabbitmq/defs.json"
    );
    let tags = t.values["auth.default_user_tags"]
        .clone()
        .into_array()
        .unwrap();
    let tags: Vec<String> = tags.into_iter().map(|v| v.to_string()).collect();
    assert_eq!(tags, ["monitoring"]);
    assert_eq!(
        t.warnings,
        ["r.conf:6: definitions.import_backend: warren imports definitions from a local file only; ignored"]
    );
}

#[test]
fn a_memory_size_override_is_what_relative_limits_are_taken_of() {
    let s = parse(
        "disk_free_limit.relative = 1.5\ntotal_memory_available_override_value = 2GB\n",
        "r.conf",
    )
    .unwrap();
    let t = translate(&s, &guest()).unwrap();
    assert_eq!(t.values["resources.total_memory"].to_string(), "2000000000");
    assert_eq!(
        t.values["resources.disk_free_limit"].to_string(),
        "3000000000"
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn the_default_listener_or_else_the_first_named_one_is_used() {
    let s = parse(
        "listeners.tcp.1 = 127.0.0.1:5680\nlisteners.tcp.2 = 5681\nlisteners.ssl.1 = 5690\n",
        "r.conf",
    )
    .unwrap();
    let t = translate(&s, &guest()).unwrap();
    assert_eq!(t.values["amqp.port"].to_string(), "5680");
    assert_eq!(t.values["amqp.bind"].to_string(), "127.0.0.1");
    assert_eq!(t.values["tls.port"].to_string(), "5690");
    assert_eq!(
        t.warnings,
        ["r.conf:2: listeners.tcp.2: warren has one AMQP listener (listeners.tcp.1 is used); ignored"]
    );
    let s = parse(
        "listeners.tcp.1 = 5680\nlisteners.tcp.default = 5682\n",
        "r.conf",
    )
    .unwrap();
    let t = translate(&s, &guest()).unwrap();
    assert_eq!(t.values["amqp.port"].to_string(), "5682");
    assert_eq!(
        t.warnings,
        ["r.conf:1: listeners.tcp.1: warren has one AMQP listener (listeners.tcp.default is used); ignored"]
    );
    let s = parse("listeners.tcp.default = five\n", "r.conf").unwrap();
    assert_eq!(
        translate(&s, &guest()).unwrap_err().to_string(),
        "r.conf:1: listeners.tcp.default: expected PORT or IP:PORT, got \"five\""
    );
}

#[test]
fn unknown_keys_are_warned_about_and_bad_values_are_errors() {
    let s = parse(
        "queue_master_locator = min-masters\nlisteners.tcp = none\nloopback_users = none\n\
         log.file = false\nlog.file = /var/log/rabbitmq/r.log\n",
        "r.conf",
    )
    .unwrap();
    let t = translate(&s, &guest()).unwrap();
    assert_eq!(
        t.warnings,
        [
            "r.conf:1: unknown or unsupported setting queue_master_locator; ignored",
            "r.conf:2: listeners.tcp: warren always has its AMQP listener; ignored",
            "r.conf:5: unknown or unsupported setting log.file; ignored",
        ]
    );
    assert!(t.values["auth.loopback_users"]
        .clone()
        .into_array()
        .unwrap()
        .is_empty());
    let s = parse("\nheartbeat = often\n", "r.conf").unwrap();
    assert_eq!(
        translate(&s, &guest()).unwrap_err().to_string(),
        "r.conf:2: heartbeat: expected seconds, got \"often\""
    );
    let s = parse("vm_memory_high_watermark.relative = 1.5\n", "r.conf").unwrap();
    assert!(translate(&s, &guest()).is_err());
}

#[test]
fn enabled_plugins_lacking_in_warren_are_warned_about() {
    assert_eq!(
        parse_plugin_list("% comment\n[rabbitmq_management, 'rabbitmq_shovel'].\n"),
        Some(vec!["rabbitmq_management".into(), "rabbitmq_shovel".into()])
    );
    assert_eq!(parse_plugin_list("[]."), Some(vec![]));
    assert_eq!(parse_plugin_list("rabbitmq_management"), None);
    let dir = std::env::temp_dir().join(format!("warren-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("enabled_plugins");
    std::fs::write(
        &f,
        "[rabbitmq_management,rabbitmq_prometheus,rabbitmq_mqtt].",
    )
    .unwrap();
    let path = f.display().to_string();
    let env = |k: &str| (k == "RABBITMQ_ENABLED_PLUGINS_FILE").then(|| path.clone());
    assert_eq!(
        enabled_plugins_warnings(&env),
        [format!(
            "{path}: plugin rabbitmq_mqtt is not built into warren; ignored"
        )]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn memory_units_as_rabbitmq_reads_them() {
    assert_eq!(bytes("1024"), Some(1024));
    assert_eq!(bytes("50MB"), Some(50_000_000));
    assert_eq!(bytes("2GB"), Some(2_000_000_000));
    assert_eq!(bytes("512MiB"), Some(512 << 20));
    assert_eq!(bytes("1G"), Some(1 << 30));
    assert_eq!(bytes("1 GB"), Some(1_000_000_000));
    assert_eq!(bytes("lots"), None);
    assert_eq!(bytes("3XB"), None);
}

#[test]
fn files_are_found_as_rabbitmq_finds_them() {
    let dir = std::env::temp_dir().join(format!("warren-rconf-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(dir.join("rabbitmq.conf"), "heartbeat = 1\n").unwrap();
    std::fs::write(dir.join("conf.d/20-b.conf"), "heartbeat = 3\n").unwrap();
    std::fs::write(dir.join("conf.d/10-a.conf"), "heartbeat = 2\n").unwrap();
    std::fs::write(dir.join("conf.d/notes.txt"), "x").unwrap();
    let base = dir.join("rabbitmq").display().to_string();
    let extra = dir.join("conf.d").display().to_string();
    let env = |k: &str| match k {
        "RABBITMQ_CONFIG_FILE" => Some(base.clone()),
        "RABBITMQ_CONFIG_FILES" => Some(format!("{extra}/*.conf")),
        _ => None,
    };
    let files = locate(&env);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["rabbitmq.conf", "10-a.conf", "20-b.conf"]);
    let t = load(&files, &guest()).unwrap();
    assert_eq!(t.values["amqp.heartbeat"].to_string(), "3");
    let _ = std::fs::remove_dir_all(&dir);
}
