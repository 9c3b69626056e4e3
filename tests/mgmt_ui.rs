//! The web page on the management port: `/` and its assets are served without credentials,
//! with their content types and `cache-control: no-cache`, while everything under `/api`
//! still asks for them. The page itself is driven in a browser by `interop/ui`. In-process
//! broker only.

mod common;

use common::http::{http, Reply, GUEST};
use common::*;
use serde_json::{json, Value};

async fn get(b: &TestBroker, path: &str, auth: Option<(&str, &str)>) -> Reply {
    http(b, "GET", path, auth, None).await
}

const NOT_FOUND: fn() -> Value = || json!({"error": "Object Not Found", "reason": "Not Found"});

#[tokio::test]
async fn page_and_assets_are_served_without_credentials() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    let files = [
        (
            "/",
            "text/html; charset=utf-8",
            include_str!("../src/mgmt/ui/index.html"),
        ),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            include_str!("../src/mgmt/ui/app.js"),
        ),
        (
            "/ui/style.css",
            "text/css; charset=utf-8",
            include_str!("../src/mgmt/ui/style.css"),
        ),
        (
            "/ui/favicon.svg",
            "image/svg+xml",
            include_str!("../src/mgmt/ui/favicon.svg"),
        ),
    ];
    for (path, kind, body) in files {
        let r = get(&b, path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.headers);
        assert!(
            r.headers.contains(&format!("\r\ncontent-type: {kind}\r\n")),
            "{path}: {}",
            r.headers
        );
        assert!(
            r.headers.contains("\r\ncache-control: no-cache\r\n"),
            "{path}: {}",
            r.headers
        );
        assert!(
            r.headers
                .contains("\r\nx-content-type-options: nosniff\r\n"),
            "{path}: {}",
            r.headers
        );
        assert!(!r.headers.contains("www-authenticate"), "{path}");
        assert_eq!(r.body, body, "{path}");
    }
    // The page may run only its own script, and may not be framed.
    let r = get(&b, "/", None).await;
    assert!(
        r.headers
            .contains("content-security-policy: default-src 'self'; script-src 'self';"),
        "{}",
        r.headers
    );
    assert!(
        r.headers.contains("frame-ancestors 'none'"),
        "{}",
        r.headers
    );
    b.stop().await;
}

#[tokio::test]
async fn unknown_paths_outside_the_api_are_404_without_a_challenge() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    for path in ["/ui/nope.js", "/favicon.ico", "/index.html", "/ui/"] {
        let r = get(&b, path, None).await;
        assert_eq!((r.status, r.json()), (404, NOT_FOUND()), "{path}");
        assert!(!r.headers.contains("www-authenticate"), "{path}");
    }
    b.stop().await;
}

#[tokio::test]
async fn the_api_still_needs_credentials() {
    let b = TestBroker::start().await;
    if b.broker().is_none() {
        return;
    }
    // Known and unknown API paths alike: the challenge first, then 200 or the 404 body.
    for path in [
        "/api/overview",
        "/api/queues",
        "/api/whoami",
        "/api/no-such-thing",
        "/api",
    ] {
        let r = get(&b, path, None).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(
            r.headers
                .contains("\r\nwww-authenticate: basic realm=\"rabbitmq management\""),
            "{path}: {}",
            r.headers
        );
        assert_eq!(r.body, "", "{path}");
        let r = get(&b, path, Some(("guest", "wrong"))).await;
        assert_eq!(
            (r.status, r.json()),
            (
                401,
                json!({"error": "not_authorized", "reason": "Login failed"})
            ),
            "{path}"
        );
    }
    let r = get(&b, "/api/whoami", GUEST).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"name": "guest", "tags": ["administrator"]}))
    );
    assert!(r.headers.contains("\r\ncache-control: no-cache\r\n"));
    for path in ["/api/no-such-thing", "/api"] {
        let r = get(&b, path, GUEST).await;
        assert_eq!((r.status, r.json()), (404, NOT_FOUND()), "{path}");
    }
    b.stop().await;
}

/// Names and payloads reach the page only as text; the script has no way to parse HTML.
#[test]
fn the_script_never_parses_markup() {
    let js = include_str!("../src/mgmt/ui/app.js");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(!js.contains(sink), "app.js uses {sink}");
    }
}
