//! How a tool reaches its node: the node name, the control port, the cookie, and a small
//! blocking HTTP/1.1 client over `std::net::TcpStream` for the control listener.

use super::args::Args;
use crate::config::{Config, Overrides};
use crate::mgmt::control::COOKIE_HEADER;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The node a tool talks to.
#[derive(Debug, Clone)]
pub struct Node {
    /// `name@host`, as the node calls itself.
    pub name: String,
    /// Host part of the name.
    pub host: String,
    /// The control listener's port.
    pub port: u16,
    /// None: no cookie could be found (the node will refuse the tool).
    pub cookie: Option<String>,
    pub timeout: Duration,
}

/// Why a node could not be asked.
#[derive(Debug)]
pub enum Unreachable {
    /// Nothing answered at the address.
    Connect(String),
    /// Something answered, but refused the cookie.
    Cookie,
    /// A node answered under another name.
    OtherNode(String),
    /// The answer made no sense.
    Protocol(String),
}

/// A reply of the node: status and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Node {
    /// The node named by `-n` (or `RABBITMQ_NODENAME`, or this host's default), on the port
    /// of `RABBITMQ_DIST_PORT` or of the configuration the broker would load.
    pub fn from_args(args: &Args, env: impl Fn(&str) -> Option<String>) -> Node {
        let default = crate::broker::node_name();
        let default_host = default.split_once('@').map_or("localhost", |(_, h)| h);
        let name = match args.node.as_deref().filter(|n| !n.is_empty()) {
            Some(n) if n.contains('@') => n.to_string(),
            Some(n) => format!("{n}@{default_host}"),
            None => default.clone(),
        };
        let host = name
            .split_once('@')
            .map_or("localhost", |(_, h)| h)
            .to_string();
        let config = Overrides::default()
            .with_rabbitmq_env(&env)
            .and_then(|o| Config::load(None, &o))
            .unwrap_or_else(|_| Config::defaults());
        let port = match config.cli_port() {
            0 => 25672,
            p => p,
        };
        let cookie = args
            .cookie
            .clone()
            .or_else(|| super::cookie::from_env(&env))
            .or_else(|| {
                let path = super::cookie::path(&config, env("HOME").as_deref());
                super::cookie::read(&path).ok()
            });
        Node {
            name,
            host,
            port,
            cookie,
            timeout: Duration::from_secs(args.timeout_secs().max(1)),
        }
    }

    /// The addresses of the control listener: the host's, or loopback when it does not
    /// resolve (a node name's host is often just this machine's name).
    pub fn addrs(&self, port: u16) -> Vec<SocketAddr> {
        match (self.host.as_str(), port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(_) => ("localhost", port)
                .to_socket_addrs()
                .map(|a| a.collect())
                .unwrap_or_default(),
        }
    }

    /// Check that the node answers, accepts the cookie and has the expected name; return
    /// its status.
    pub fn connect(&self) -> Result<Value, Unreachable> {
        let r = self.request("GET", "/api/cli/status", None)?;
        let name = r.body.get("node").and_then(Value::as_str).unwrap_or("");
        if !r.ok() {
            return Err(Unreachable::Protocol(format!("status {}", r.status)));
        }
        if name != self.name {
            return Err(Unreachable::OtherNode(name.to_string()));
        }
        Ok(r.body)
    }

    /// One request to the control listener.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, Unreachable> {
        let mut stream = self.open(self.port)?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{COOKIE_HEADER}: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            self.cookie.as_deref().unwrap_or(""),
            body.len()
        );
        let io = |e: std::io::Error| Unreachable::Protocol(e.to_string());
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(io)?;
        let reply = parse_response(&raw).map_err(Unreachable::Protocol)?;
        if reply.status == 401 {
            return Err(Unreachable::Cookie);
        }
        Ok(reply)
    }

    /// A TCP connection to `port` of the node's host, within the timeout.
    pub fn open(&self, port: u16) -> Result<TcpStream, Unreachable> {
        let mut last = format!("cannot resolve {}", self.host);
        for addr in self.addrs(port) {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(self.timeout));
                    let _ = s.set_write_timeout(Some(self.timeout));
                    return Ok(s);
                }
                Err(e) => last = format!("TCP connection to {addr} failed: {e}"),
            }
        }
        Err(Unreachable::Connect(last))
    }
}

/// Split an HTTP/1.1 response into status and JSON body (chunked or not).
fn parse_response(raw: &[u8]) -> Result<Reply, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("truncated HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("bad HTTP status line")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(Reply { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// Percent-encode one path segment (a vhost, user or queue name).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_plain_and_chunked() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!((r.status, r.body["a"].as_i64()), (200, Some(1)));
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, serde_json::json!([1, 2]));
        assert_eq!(seg("/"), "%2F");
        assert_eq!(seg("a b"), "a%20b");
    }
}
