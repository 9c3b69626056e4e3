//! AMQPS: a TLS listener beside the plain one, tested with lapin against certificates the test
//! generates (a CA, a server certificate for localhost, client certificates): publish and
//! consume over TLS, client certificates required or optional, SASL EXTERNAL as the
//! certificate's common name. These tests configure the in-process broker, so they do not
//! apply to an external broker (`WARREN_TEST_URL`).

mod common;
mod support;

use common::*;
use lapin::options::*;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::{Connection, ConnectionProperties};
use std::path::PathBuf;
use support::*;

/// A CA, and certificates it signed: the server's (localhost, 127.0.0.1) and clients' by CN.
struct Pki {
    ca_pem: String,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    dir: PathBuf,
}

impl Pki {
    fn new(dir: PathBuf) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "warren test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        let ca_pem = ca.pem();
        std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
        Pki {
            ca_pem,
            ca,
            ca_key,
            dir,
        }
    }

    /// (certificate PEM, PKCS#8 key PEM) signed by the CA.
    fn issue(&self, cn: &str, names: &[&str]) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Configure the broker's TLS listener with a server certificate.
    fn server(&self, cfg: &mut warren::config::Config, verify_peer: bool, require: bool) {
        let (cert, key) = self.issue("localhost", &["localhost", "127.0.0.1"]);
        std::fs::write(self.dir.join("server.pem"), cert).unwrap();
        std::fs::write(self.dir.join("server.key"), key).unwrap();
        cfg.tls.certfile = self.dir.join("server.pem");
        cfg.tls.keyfile = self.dir.join("server.key");
        cfg.tls.cacertfile = self.dir.join("ca.pem");
        cfg.tls.verify = if verify_peer {
            "verify_peer"
        } else {
            "verify_none"
        }
        .into();
        cfg.tls.fail_if_no_peer_cert = require;
    }
}

async fn tls_broker(verify_peer: bool, require: bool) -> Option<(TestBroker, Pki, TempDir)> {
    if std::env::var("WARREN_TEST_URL").is_ok() {
        return None;
    }
    let dir = TempDir::new();
    let pki = Pki::new(dir.path.clone());
    let b = TestBroker::start_with(|c| pki.server(c, verify_peer, require)).await;
    Some((b, pki, dir))
}

fn tls_port(b: &TestBroker) -> u16 {
    b.broker_handle_tls_addr().expect("TLS listener").port()
}

async fn connect_tls(
    b: &TestBroker,
    pki: &Pki,
    query: &str,
    identity: Option<(String, String)>,
) -> lapin::Result<Connection> {
    let uri = format!("amqps://guest:guest@localhost:{}/%2f{query}", tls_port(b));
    let config = OwnedTLSConfig {
        identity: identity.map(|(pem, key)| OwnedIdentity::PKCS8 {
            pem: pem.into_bytes(),
            key: key.into_bytes(),
        }),
        cert_chain: Some(pki.ca_pem.clone()),
    };
    let runtime = lapin::runtime::default_runtime().expect("runtime");
    within(
        10,
        Connection::connect_with_config(&uri, ConnectionProperties::default(), config, runtime),
    )
    .await
}

#[tokio::test]
async fn lapin_publishes_and_consumes_over_tls() {
    let Some((b, pki, _dir)) = tls_broker(false, false).await else {
        return;
    };
    let conn = connect_tls(&b, &pki, "", None)
        .await
        .expect("TLS connection");
    let ch = open(&conn).await;
    let name = unique("tls");
    queue(&ch, &name).await;
    let mut inbox = consume(&ch, &name, "c", BasicConsumeOptions::default()).await;
    for i in 0..100u32 {
        publish(&ch, "", &name, format!("m{i}").as_bytes()).await;
    }
    // A body larger than one TLS record and than frame_max.
    let big = vec![7u8; 300_000];
    publish(&ch, "", &name, &big).await;
    for i in 0..100u32 {
        assert_eq!(inbox.next().await.data, format!("m{i}").as_bytes());
    }
    assert_eq!(inbox.next().await.data, big);
    // The plain listener still works beside it.
    let plain = b.connect().await;
    let pch = open(&plain).await;
    publish(&pch, "", &name, b"plain").await;
    assert_eq!(inbox.next().await.data, b"plain");
    b.stop().await;
}

#[tokio::test]
async fn plain_amqp_on_the_tls_port_gets_no_amqp_answer() {
    let Some((b, _pki, _dir)) = tls_broker(false, false).await else {
        return;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], tls_port(&b)));
    let mut s = within(5, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap();
    s.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    let mut buf = Vec::new();
    let _ = within(10, s.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"AMQP"), "{buf:?}");
    assert!(buf.len() < 64, "a TLS alert at most: {buf:?}");
    b.stop().await;
}

#[tokio::test]
async fn a_required_client_certificate_is_checked() {
    let Some((b, pki, _dir)) = tls_broker(true, true).await else {
        return;
    };
    assert!(
        connect_tls(&b, &pki, "", None).await.is_err(),
        "no client certificate"
    );
    // A certificate from another CA.
    let other = Pki::new(TempDir::new().path.clone());
    assert!(
        connect_tls(&b, &pki, "", Some(other.issue("guest", &[])))
            .await
            .is_err(),
        "a certificate the CA did not sign"
    );
    let conn = connect_tls(&b, &pki, "", Some(pki.issue("someone", &[])))
        .await
        .expect("a certificate the CA signed, and PLAIN");
    let ch = open(&conn).await;
    queue(&ch, &unique("mtls")).await;
    b.stop().await;
}

#[tokio::test]
async fn external_logs_in_as_the_certificate_common_name() {
    let Some((b, pki, _dir)) = tls_broker(true, false).await else {
        return;
    };
    let conn = connect_tls(
        &b,
        &pki,
        "?auth_mechanism=external",
        Some(pki.issue("guest", &[])),
    )
    .await
    .expect("EXTERNAL as guest");
    let ch = open(&conn).await;
    queue(&ch, &unique("external")).await;
    // A CN that names no user is refused with 403.
    let err = connect_tls(
        &b,
        &pki,
        "?auth_mechanism=external",
        Some(pki.issue("nobody", &[])),
    )
    .await
    .expect_err("no such user");
    assert_eq!(amqp_error(&err).map(|(code, _)| code), Some(403), "{err:?}");
    // Without a certificate there is no EXTERNAL, but PLAIN works (verify_peer without
    // fail_if_no_peer_cert).
    assert!(connect_tls(&b, &pki, "?auth_mechanism=external", None)
        .await
        .is_err());
    connect_tls(&b, &pki, "", None)
        .await
        .expect("PLAIN without a certificate");
    b.stop().await;
}
