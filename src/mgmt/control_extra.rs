//! More routes only the command-line tools use (`/api/cli/*`, beside those of
//! [`super::control`]): closing connections with a reason, changing the alarm limits at run
//! time, the cookie's hash, what the node knows of its memory, and its feature flags.

use super::{Api, ApiError};
use crate::alarm::Watermark;
use crate::broker::node_name;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

/// RabbitMQ 3.10's feature flags whose behaviour warren has, all enabled: warren has no
/// mixed-version clusters for a flag to guard. (name, description.)
pub const FEATURE_FLAGS: &[(&str, &str)] = &[
    (
        "drop_unroutable_metric",
        "Count unroutable publishes to be dropped in stats",
    ),
    (
        "empty_basic_get_metric",
        "Count AMQP `basic.get` on empty queues in stats",
    ),
    (
        "implicit_default_bindings",
        "Default bindings are now implicit, instead of being stored in the database",
    ),
    ("maintenance_mode_status", "Maintenance mode status"),
    ("quorum_queue", "Support queues of type `quorum`"),
    (
        "user_limits",
        "Configure connection and channel limits for a user",
    ),
    (
        "virtual_host_metadata",
        "Virtual host metadata (description, tags, etc)",
    ),
];

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/cli/close-connections", post(close_connections))
        .route("/cli/memory-high-watermark", put(set_memory_limit))
        .route("/cli/disk-free-limit", put(set_disk_free_limit))
        .route("/cli/cookie-hash", get(cookie_hash))
        .route("/cli/memory", get(memory))
        .route("/cli/feature-flags", get(feature_flags))
        .route("/cli/certificates", get(certificates))
        .route("/cli/log-level", put(set_log_level))
}

#[derive(Deserialize)]
struct Level {
    level: String,
}

/// `set_log_level`: one of RabbitMQ's level names, in effect at once (until a restart).
async fn set_log_level(Json(l): Json<Level>) -> Result<Json<Value>, ApiError> {
    let Some(directives) = crate::rabbitmq_conf::log_level(&l.level)
        .filter(|_| !matches!(l.level.as_str(), "notice" | "alert" | "emergency"))
    else {
        return Err(ApiError::bad_request(format!(
            "level {} is not supported. Try one of debug, info, warning, error, critical, none",
            l.level
        )));
    };
    crate::logging::set_filter(directives).map_err(ApiError::internal)?;
    tracing::info!(level = l.level, "log level changed");
    Ok(Json(json!({"level": l.level})))
}

/// Which connections to close: one by name (or by the pid `list_connections` shows), or
/// those of a vhost or a user, or all; at most `limit` of them, oldest first.
#[derive(Deserialize)]
struct Close {
    name: Option<String>,
    vhost: Option<String>,
    user: Option<String>,
    limit: Option<usize>,
    reason: String,
}

/// `{"closed": N}`; 404 when a connection named is not there.
async fn close_connections(
    State(api): State<Api>,
    Json(c): Json<Close>,
) -> Result<Json<Value>, ApiError> {
    let b = &api.broker;
    let node = node_name();
    let mut ids: Vec<u64> = b
        .connections
        .iter()
        .filter(|h| c.vhost.as_ref().is_none_or(|v| *v == h.vhost))
        .filter(|h| c.user.as_ref().is_none_or(|u| *u == h.user))
        .filter(|h| {
            c.name.as_ref().is_none_or(|n| {
                let name = h.info.name();
                *n == name || *n == format!("<{node}.{name}>")
            })
        })
        .map(|h| *h.key())
        .collect();
    if c.name.is_some() && ids.is_empty() {
        return Err(ApiError::not_found());
    }
    ids.sort_unstable();
    ids.truncate(c.limit.unwrap_or(usize::MAX));
    let closed = ids
        .into_iter()
        .filter(|id| b.close_connection(*id, &c.reason))
        .count();
    Ok(Json(json!({"closed": closed})))
}

/// A limit as a fraction of the machine's memory, or in bytes.
#[derive(Deserialize)]
struct Limit {
    relative: Option<f64>,
    absolute: Option<u64>,
}

fn total_memory() -> u64 {
    crate::memory::total_bytes()
}

fn bytes_of(l: &Limit) -> Result<u64, ApiError> {
    match (l.relative, l.absolute) {
        (_, Some(n)) => Ok(n),
        (Some(f), None) if f >= 0.0 => Ok((total_memory() as f64 * f) as u64),
        _ => Err(ApiError::bad_request("relative or absolute limit expected")),
    }
}

/// `set_vm_memory_high_watermark`: takes effect at once (until the node restarts).
async fn set_memory_limit(
    State(api): State<Api>,
    Json(l): Json<Limit>,
) -> Result<Json<Value>, ApiError> {
    let w = match (l.relative, l.absolute) {
        (_, Some(n)) => Watermark::Absolute(n),
        (Some(f), None) if f >= 0.0 => Watermark::Relative(f),
        _ => return Err(ApiError::bad_request("relative or absolute limit expected")),
    };
    let bytes = api.broker.alarms.set_watermark(w);
    Ok(Json(json!({"limit": bytes})))
}

/// `set_disk_free_limit` (`relative`: times the machine's memory, RabbitMQ's `mem_relative`).
async fn set_disk_free_limit(
    State(api): State<Api>,
    Json(l): Json<Limit>,
) -> Result<Json<Value>, ApiError> {
    let bytes = bytes_of(&l)?;
    api.broker.alarms.set_disk_free_limit(bytes);
    Ok(Json(json!({"limit": bytes})))
}

/// Base64 of the MD5 of the node's cookie, as `erlang_cookie_hash` prints it.
async fn cookie_hash(Extension(cookie): Extension<super::control::ControlCookie>) -> Json<Value> {
    let digest = crate::cli::md5::digest(cookie.0.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest);
    Json(json!({"hash": hash}))
}

/// What the node knows of its memory: the resident size, and the part of it queues account
/// for (message bodies and a per-message overhead, as the queue listing's `memory`).
async fn memory(State(api): State<Api>) -> Json<Value> {
    let b = &api.broker;
    let mut queues = 0u64;
    for vh in b.vhosts.iter() {
        for q in vh.value().queues() {
            let s = q.snapshot();
            queues += s.ready_bytes + s.unacked_bytes + 64 * (s.ready + s.unacked) as u64;
        }
    }
    Json(json!({
        "total": crate::memory::rss_kib() * 1024,
        "queue_procs": queues,
        "connections": b.connections.len(),
    }))
}

async fn feature_flags() -> (StatusCode, Json<Value>) {
    let flags: Vec<Value> = FEATURE_FLAGS
        .iter()
        .map(|(name, desc)| json!({"name": name, "state": "enabled", "desc": desc, "stability": "stable"}))
        .collect();
    (StatusCode::OK, Json(Value::Array(flags)))
}

/// The TLS listener's certificate (the leaf of `certfile`) and when it expires, for
/// `check_certificate_expiration`; `[]` without TLS.
async fn certificates(State(api): State<Api>) -> Json<Value> {
    let tls = &api.broker.config.tls;
    if !tls.enabled() {
        return Json(json!([]));
    }
    let file = tls.certfile.display().to_string();
    let not_after = std::fs::read_to_string(&tls.certfile)
        .ok()
        .and_then(|pem| leaf_der(&pem))
        .and_then(|der| not_after(&der));
    Json(
        json!([{"file": file, "port": tls.port, "not_after": not_after,
                 "expires": not_after.map(utc_text)}]),
    )
}

/// The first certificate of a PEM file, decoded.
fn leaf_der(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + 27;
    let end = start + pem[start..].find("-----END CERTIFICATE-----")?;
    let b64: String = pem[start..end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// One DER element: (tag, content, the bytes after it).
fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, d) = d.split_first()?;
    let (&first, mut d) = d.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 || d.len() < n {
            return None;
        }
        let len = d[..n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        d = &d[n..];
        len
    };
    (d.len() >= len).then(|| (tag, &d[..len], &d[len..]))
}

/// `notAfter` of an X.509 certificate (RFC 5280 4.1), in seconds since the epoch.
fn not_after(der: &[u8]) -> Option<u64> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    // [0] version (optional), serialNumber, signature, issuer, then validity.
    let (tag, _, r) = tlv(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (_, validity, _) = tlv(rest)?;
    let (_, _, r) = tlv(validity)?;
    let (tag, time, _) = tlv(r)?;
    let t = std::str::from_utf8(time).ok()?;
    let (year, t) = match tag {
        0x17 => {
            let yy: i64 = t.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &t[2..])
        }
        0x18 => (t.get(..4)?.parse().ok()?, &t[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { t.get(i..i + 2)?.parse().ok() };
    let days = days_from_civil(year, field(0)?, field(2)?);
    let secs = days * 86_400 + field(4)? * 3600 + field(6)? * 60 + field(8)?;
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of seconds since the epoch.
fn utc_text(secs: u64) -> String {
    let rem = secs % 86_400;
    let (y, m, d) = super::views::civil_date((secs / 86_400) as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_both_ways() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(utc_text(951_868_800 + 3661), "2000-03-01 01:01:01");
    }
}
