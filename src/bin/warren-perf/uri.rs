//! The broker URI: amqp://user:password@host:port/vhost (percent-encoded).

// ---------------------------------------------------------------------------------------------
// URI
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Uri {
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) vhost: String,
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

pub(crate) fn parse_uri(s: &str) -> Result<Uri, String> {
    let rest = s
        .strip_prefix("amqp://")
        .ok_or_else(|| format!("unsupported URI {s:?}: only amqp:// (no TLS) is supported"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (percent_decode(u)?, percent_decode(p)?),
            None => (percent_decode(ui)?, "guest".to_string()),
        },
        None => ("guest".to_string(), "guest".to_string()),
    };
    // host, [v6 host], host:port or [v6 host]:port
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("bad IPv6 address in {s:?}"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() => p.parse().map_err(|_| format!("bad port in {s:?}"))?,
        _ => 5672,
    };
    let host = match percent_decode(&host)? {
        h if h.is_empty() => "localhost".to_string(),
        h => h,
    };
    let vhost = match path {
        None => "/".to_string(),
        Some(p) => percent_decode(p)?,
    };
    Ok(Uri {
        user,
        password,
        host,
        port,
        vhost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri() {
        let u = parse_uri("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(
            u,
            Uri {
                user: "guest".into(),
                password: "guest".into(),
                host: "127.0.0.1".into(),
                port: 5672,
                vhost: "/".into(),
            }
        );
        let u = parse_uri("amqp://a%40b:p%3Aw@[::1]:5800/v%2Fh").unwrap();
        assert_eq!((u.user.as_str(), u.password.as_str()), ("a@b", "p:w"));
        assert_eq!(
            (u.host.as_str(), u.port, u.vhost.as_str()),
            ("::1", 5800, "v/h")
        );
        let u = parse_uri("amqp://localhost").unwrap();
        assert_eq!((u.port, u.vhost.as_str()), (5672, "/"));
        assert!(parse_uri("amqps://x").is_err());
    }
}
