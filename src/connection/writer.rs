//! The writer task: takes batches of encoded frames and writes them with vectored writes, so
//! the connection task never waits on a slow socket unless eight batches are queued (that
//! bound is the back-pressure on a connection that does not read).

use bytes::{Buf, Bytes};
use std::io::IoSlice;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

pub(super) async fn run(mut w: super::Writer, mut rx: mpsc::Receiver<Vec<Bytes>>) {
    let mut pending: Vec<Bytes> = Vec::new();
    while let Some(batch) = rx.recv().await {
        pending.extend(batch);
        while let Ok(more) = rx.try_recv() {
            pending.extend(more);
        }
        if write_all(&mut w, &mut pending).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

async fn write_all(w: &mut super::Writer, chunks: &mut Vec<Bytes>) -> std::io::Result<()> {
    let mut start = 0;
    while start < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[start..]
            .iter()
            .take(64)
            .map(|c| IoSlice::new(c))
            .collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let c = &mut chunks[start];
            if n >= c.len() {
                n -= c.len();
                start += 1;
            } else {
                c.advance(n);
                n = 0;
            }
        }
    }
    chunks.clear();
    Ok(())
}
