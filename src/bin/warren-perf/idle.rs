//! `--idle N`: open N idle connections (one channel each), hold them for -z seconds (or until
//! Ctrl-C), close them; for measuring the broker's memory per connection.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::uri::Uri;
use crate::wire::Conn;

/// With the lean client (the handshake opens channel 1).
pub(crate) async fn lean(uri: Uri, n: usize, seconds: u64) -> Result<(), String> {
    let conns = hold(n, seconds, move |i| {
        let uri = uri.clone();
        async move { Conn::open(&uri, format!("idle connection {i}")).await }
    })
    .await?;
    for c in conns {
        c.close().await;
    }
    eprintln!("warren-perf: {n} idle connections closed");
    Ok(())
}

/// With lapin.
pub(crate) async fn lapin(uri: &str, n: usize, seconds: u64) -> Result<(), String> {
    let uri = uri.to_string();
    let conns = hold(n, seconds, move |i| {
        let uri = uri.clone();
        async move { crate::lapin_path::connect(&uri, &format!("idle connection {i}")).await }
    })
    .await?;
    for (conn, _channel) in conns {
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.close(200, "OK".into())).await;
    }
    eprintln!("warren-perf: {n} idle connections closed");
    Ok(())
}

/// Opens `n` connections with `open`, at most 100 handshakes at a time, and holds them for
/// `seconds` (0: until Ctrl-C); returns them for closing.
async fn hold<T, F>(n: usize, seconds: u64, open: impl Fn(usize) -> F) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Future<Output = Result<T, String>> + Send + 'static,
{
    warren::fd::raise_limit(n as u64 + 64);
    let start = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(100));
    let opening: Vec<JoinHandle<Result<T, String>>> = (0..n)
        .map(|i| {
            let (gate, opened) = (gate.clone(), open(i));
            tokio::spawn(async move {
                let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
                opened.await
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(n);
    for h in opening {
        conns.push(h.await.map_err(|e| format!("idle connection: {e}"))??);
    }
    eprintln!(
        "warren-perf: {n} idle connections open (in {:.1} s); holding them for {seconds} s",
        start.elapsed().as_secs_f64()
    );
    if seconds == 0 {
        let _ = tokio::signal::ctrl_c().await;
    } else {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
    Ok(conns)
}
