//! Authentication failures: a burst of failed logins is refused one by one (403 with
//! `authentication_failure_close`) while a healthy client keeps publishing with confirms, and
//! no password ever reaches the log, even at debug level.

mod common;
mod raw;
mod support;

use amq_protocol::frame::{AMQPFrame, ProtocolVersion};
use common::*;
use raw::{start_ok, Raw};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_failed_logins_is_refused_while_a_healthy_client_works() {
    let b = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&b).await;
    let name = unique("healthy");
    queue(&ch, &name).await;
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..300 {
        let addr = b.addr;
        attempts.spawn(async move {
            let mut raw = Raw {
                sock: within(5, tokio::net::TcpStream::connect(addr))
                    .await
                    .unwrap(),
                buf: Vec::new(),
            };
            raw.send(&AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()))
                .await;
            assert!(raw.recv().await.is_some(), "connection.start");
            let response = format!("\0guest\0wrong-{i}");
            raw.send(&start_ok("PLAIN", response.as_bytes())).await;
            raw.connection_close().await
        });
    }
    for i in 0..300u32 {
        publish_confirmed(&ch, "", &name, &i.to_be_bytes()).await;
    }
    let mut refused = 0;
    while let Some(r) = attempts.join_next().await {
        let (code, text, _, _) = r.expect("attempt task");
        assert_eq!(code, 403, "{text}");
        refused += 1;
    }
    assert_eq!(refused, 300);
    assert_eq!(counts(&ch, &name).await.0, 300);
    b.stop().await;
}

#[tokio::test]
async fn no_password_reaches_the_log() {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return; // reads the log of a warren child process
    }
    let dir = TempDir::new();
    let ChildBroker {
        mut child,
        port,
        log,
    } = spawn_warren(&dir.path, &[("WARREN_LOG", "trace")]).await;
    let url = |pass: &str| format!("amqp://guest:{pass}@127.0.0.1:{port}/%2f");
    // A refused login, and a good one.
    assert!(
        lapin::Connection::connect(&url("Wr0ng-Pa55word"), Default::default())
            .await
            .is_err()
    );
    let conn = lapin::Connection::connect(&url("guest"), Default::default())
        .await
        .expect("guest logs in");
    let _ = conn.close(200, "bye".into()).await;
    // Until the refusal has been logged, then the log is complete enough to judge.
    eventually(10, || async {
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("login refused"))
            .then_some(())
    })
    .await;
    child.kill().await.unwrap();
    let all = log.lock().unwrap().join("\n");
    assert!(
        all.contains("login refused"),
        "the refusal is logged:\n{all}"
    );
    assert!(
        !all.contains("Wr0ng-Pa55word"),
        "a password in the log:\n{all}"
    );
    assert!(
        !all.contains("\0guest\0"),
        "a SASL response in the log:\n{all}"
    );
}
