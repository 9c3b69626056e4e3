"""AMQPS with pika: warren started with a [tls] configuration and certificates this test
generates (a CA, a server certificate for localhost, a client certificate whose CN is
"guest"). Publish and consume over TLS, a required client certificate, and SASL EXTERNAL.
Runs only against a warren this test starts itself."""

import datetime
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import pika
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import conftest

pytestmark = pytest.mark.skipif(
    conftest.EXTERNAL_URL is not None, reason="starts its own warren with a TLS configuration"
)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject_cn, issuer_cn, key, issuer_key, ca=False, sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn))
        .issuer_name(_name(issuer_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, cert=None, key=None):
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


@pytest.fixture(scope="module")
def tls_warren():
    d = Path(tempfile.mkdtemp(prefix="warren-tls-"))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("warren test CA", "warren test CA", ca_key, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("localhost", "warren test CA", server_key, ca_key, sans=["localhost"])
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert("guest", "warren test CA", client_key, ca_key)
    _write(d / "ca.pem", cert=ca)
    _write(d / "server.pem", cert=server)
    _write(d / "server.key", key=server_key)
    _write(d / "client.pem", cert=client)
    _write(d / "client.key", key=client_key)
    (d / "warren.toml").write_text(
        "[tls]\nport = 0\n"
        f'certfile = "{d / "server.pem"}"\nkeyfile = "{d / "server.key"}"\n'
        f'cacertfile = "{d / "ca.pem"}"\nverify = "verify_peer"\nfail_if_no_peer_cert = true\n'
    )
    data = d / "data"
    data.mkdir()
    proc, log = conftest._spawn_warren(
        conftest._default_bin(), str(data), 0, extra=["--config", str(d / "warren.toml")]
    )
    tls_port = None
    for line in list(log):
        if "AMQPS (TLS) listener started on" in line:
            tls_port = int(line.rsplit(":", 1)[1])
    assert tls_port, "\n".join(log)
    yield d, tls_port
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    shutil.rmtree(d, ignore_errors=True)


def _params(d, port, with_cert=True, external=False):
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    if with_cert:
        ctx.load_cert_chain(str(d / "client.pem"), str(d / "client.key"))
    creds = pika.credentials.ExternalCredentials() if external else pika.PlainCredentials("guest", "guest")
    return pika.ConnectionParameters(
        host="localhost",
        port=port,
        credentials=creds,
        ssl_options=pika.SSLOptions(ctx, "localhost"),
        connection_attempts=1,
        socket_timeout=5,
    )


def test_publish_and_consume_over_tls(tls_warren):
    d, port = tls_warren
    conn = pika.BlockingConnection(_params(d, port))
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    bodies = [f"m{i}".encode() for i in range(50)] + [b"x" * 300_000]
    for body in bodies:
        ch.basic_publish("", q, body)
    got = []
    for _, _, body in ch.consume(q, auto_ack=True, inactivity_timeout=5):
        assert body is not None, f"only {len(got)} of {len(bodies)} arrived"
        got.append(body)
        if len(got) == len(bodies):
            break
    assert got == bodies
    conn.close()


def test_a_client_without_a_certificate_is_refused(tls_warren):
    d, port = tls_warren
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(_params(d, port, with_cert=False))


def test_external_logs_in_as_the_certificate_cn(tls_warren):
    d, port = tls_warren
    conn = pika.BlockingConnection(_params(d, port, external=True))
    ch = conn.channel()
    ch.queue_declare("", exclusive=True)
    conn.close()
