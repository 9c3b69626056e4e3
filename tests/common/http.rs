//! Plain HTTP/1.1 over a socket to the management API (and the Prometheus endpoint), so that
//! no HTTP client library stands between a test and the wire.

use super::{within, TestBroker};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Reply {
    pub status: u16,
    /// The head, lowercased.
    pub headers: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub async fn http(
    b: &TestBroker,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<Value>,
) -> Reply {
    let s = connect(b.mgmt_addr().expect("management API")).await;
    let body = body.map(|v| v.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some((u, p)) = auth {
        req += &format!("Authorization: Basic {}\r\n", b64(&format!("{u}:{p}")));
    }
    if !body.is_empty() {
        req += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    req += "\r\n";
    req += &body;
    send(s, &req).await
}

pub const GUEST: Option<(&str, &str)> = Some(("guest", "guest"));

/// `http` with a raw body sent as it is (an empty one too), for bodies that are not JSON.
pub async fn http_raw(
    b: &TestBroker,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: &str,
) -> Reply {
    let s = connect(b.mgmt_addr().expect("management API")).await;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some((u, p)) = auth {
        req += &format!("Authorization: Basic {}\r\n", b64(&format!("{u}:{p}")));
    }
    req += &format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    send(s, &req).await
}

async fn connect(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    within(5, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
}

/// Write a whole request, read the whole answer (the request says `Connection: close`).
async fn send(mut s: tokio::net::TcpStream, req: &str) -> Reply {
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    within(10, s.read_to_end(&mut raw)).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        headers: head.to_lowercase(),
        body: rest.to_string(),
    }
}

/// `GET path` without credentials on another listener (the Prometheus endpoint).
pub async fn get_at(addr: std::net::SocketAddr, path: &str) -> Reply {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    send(connect(addr).await, &req).await
}
