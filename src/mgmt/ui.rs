//! The web page on the management port: `/` and the files under `/ui/`, embedded in the binary
//! and served without authentication. The page asks for a user and password itself and sends
//! them as basic authentication on each call to `/api`, so the API stays the only thing that
//! checks credentials.
//!
//! The files are plain HTML, CSS and JavaScript with no build step; they put every value from
//! the API into the page as text, never as markup. The content security policy below backs
//! that up: no inline script, nothing loaded from elsewhere, no framing (the page has a purge
//! button, so it must not be clickjacked).

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// `(name under /ui/, content type, body)`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("ui/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("ui/favicon.svg"),
    ),
];

const INDEX: &str = include_str!("ui/index.html");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The page's routes; they carry no state and no authentication.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(asset))
}

async fn index() -> Response {
    let mut r = serve("text/html; charset=utf-8", INDEX);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    r
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => serve(kind, body),
        None => super::ApiError::not_found().into_response(),
    }
}

/// `no-cache`: a browser revalidates, so a new warren binary's page is picked up at once.
fn serve(kind: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, kind),
        (header::CACHE_CONTROL, "no-cache"),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
    ];
    (StatusCode::OK, headers, body).into_response()
}
