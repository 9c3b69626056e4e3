//! AMQPS: AMQP over TLS on its own listener (RabbitMQ's port 5671), with rustls and the ring
//! provider. Certificates and keys come from PEM files named in the `[tls]` configuration;
//! with `verify = "verify_peer"` clients are asked for a certificate, which must chain to
//! `cacertfile`, and a verified client may log in with SASL EXTERNAL as the user its
//! certificate's common name names (RabbitMQ's `rabbitmq_auth_mechanism_ssl` with
//! `ssl_cert_login_from = common_name`).

use crate::config::TlsConfig;
use crate::error::BrokerError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The acceptor for `cfg`, or None when TLS is off.
pub fn acceptor(cfg: &TlsConfig) -> Result<Option<TlsAcceptor>, BrokerError> {
    if !cfg.enabled() {
        return Ok(None);
    }
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        BrokerError::Tls(format!("{what} {}: {e}", path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.certfile)
        .map_err(|e| bad("cannot read tls.certfile", &cfg.certfile, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("cannot read tls.certfile", &cfg.certfile, &e))?;
    if certs.is_empty() {
        return Err(bad("no certificate in", &cfg.certfile, &"empty"));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.keyfile).map_err(|e| {
        bad(
            "cannot read a private key from tls.keyfile",
            &cfg.keyfile,
            &e,
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BrokerError::Tls(e.to_string()))?;
    let builder = if cfg.verify_peer() {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&cfg.cacertfile)
            .map_err(|e| bad("cannot read tls.cacertfile", &cfg.cacertfile, &e))?
        {
            let ca = ca.map_err(|e| bad("cannot read tls.cacertfile", &cfg.cacertfile, &e))?;
            roots
                .add(ca)
                .map_err(|e| bad("bad certificate in tls.cacertfile", &cfg.cacertfile, &e))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if cfg.fail_if_no_peer_cert {
            verifier
        } else {
            verifier.allow_unauthenticated()
        };
        builder.with_client_cert_verifier(
            verifier
                .build()
                .map_err(|e| BrokerError::Tls(format!("tls.cacertfile: {e}")))?,
        )
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| BrokerError::Tls(format!("tls.certfile and tls.keyfile: {e}")))?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// The common name (CN) in the subject of a DER certificate, if it has one as a string.
/// The certificate was verified by rustls before this is called; the walk still checks every
/// length and never panics.
pub fn common_name(cert: &[u8]) -> Option<String> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
    //   serialNumber, signature, issuer, validity, subject, ... }, ... }
    let (_, cert_body, _) = tlv(cert)?;
    let (_, mut tbs, _) = tlv(cert_body)?;
    let mut fields = Vec::new();
    while !tbs.is_empty() && fields.len() < 6 {
        let (tag, value, rest) = tlv(tbs)?;
        fields.push((tag, value));
        tbs = rest;
    }
    // Without the explicit version ([0], tag 0xA0) the subject is the fifth field.
    let subject_at = if fields.first()?.0 == 0xA0 { 5 } else { 4 };
    let (tag, mut rdns) = *fields.get(subject_at)?;
    if tag != 0x30 {
        return None;
    }
    const CN: &[u8] = &[0x55, 0x04, 0x03]; // 2.5.4.3
    let mut found = None;
    while !rdns.is_empty() {
        let (_, mut set, rest) = tlv(rdns)?;
        rdns = rest;
        while !set.is_empty() {
            let (_, attr, more) = tlv(set)?;
            set = more;
            let (oid_tag, oid, value) = tlv(attr)?;
            if oid_tag == 0x06 && oid == CN {
                let (string_tag, text, _) = tlv(value)?;
                // UTF8String, PrintableString, IA5String, T61String
                if matches!(string_tag, 0x0C | 0x13 | 0x16 | 0x14) {
                    found = String::from_utf8(text.to_vec()).ok();
                }
            }
        }
    }
    found
}

/// One DER tag-length-value: (tag, value, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "warren tests");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()).as_deref(), Some("alice"));
    }

    #[test]
    fn garbage_has_no_common_name_and_does_not_panic() {
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
        assert_eq!(common_name(&[0x30, 0x03, 0x30, 0x01]), None);
        for n in 0..64u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = common_name(&bytes);
        }
    }
}
