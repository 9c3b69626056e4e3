//! A connection from accept to end: the handshake, registration with the broker (where the
//! management API sees it), the main loop, and the cleanup of what it leaves behind.

use super::info::{ConnInfo, Opened};
use super::{
    handshake, ClientCaps, Conn, Io, Negotiated, Reader, TlsPeer, Writer, IDLE_READ_BUFFER,
};
use crate::broker::{Broker, ConnHandle};
use crate::codec::OutBuf;
use bytes::BytesMut;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Serve one accepted plain TCP socket until it closes.
pub async fn serve(broker: Arc<Broker>, socket: TcpStream, peer: SocketAddr) {
    let local = socket.local_addr().unwrap_or(peer);
    let (read, write) = socket.into_split();
    serve_stream(broker, Box::new(read), Box::new(write), peer, local, None).await;
}

/// Serve one client stream until it closes; `tls` is set for AMQPS clients.
pub async fn serve_stream(
    broker: Arc<Broker>,
    read: Reader,
    write: Writer,
    peer: SocketAddr,
    local: SocketAddr,
    tls: Option<TlsPeer>,
) {
    let id = broker.next_connection_id();
    let info = Arc::new(ConnInfo::new(id, peer, local));
    let mut io = Io {
        read,
        write,
        inbuf: BytesMut::with_capacity(IDLE_READ_BUFFER),
    };
    let (events, mut events_rx) = mpsc::unbounded_channel();
    let mut conn = Conn {
        broker: broker.clone(),
        id,
        peer,
        user: String::new(),
        client_name: String::new(),
        caps: ClientCaps::default(),
        tuned: Negotiated::default(),
        vhost: None,
        channels: HashMap::new(),
        out: OutBuf::default(),
        events: events.clone(),
        exclusive_queues: Vec::new(),
        closing: None,
        done: false,
        last_read: Instant::now(),
        last_read_size: 0,
        last_write: Instant::now(),
        published: false,
        blocked: false,
        tls,
        channel_gauge: Arc::default(),
        info: info.clone(),
        auth_mechanism: String::new(),
        client_properties: serde_json::Value::Null,
    };
    match conn.handshake(&mut io).await {
        Ok(()) => {}
        Err(handshake::Refused::Drop) => return,
        Err(handshake::Refused::Close(e)) => {
            conn.send_connection_close(&e);
            let _ = io.flush(&mut conn.out).await;
            // Give the client a moment to answer close-ok before the socket goes.
            let mut sink = [0u8; 512];
            let _ = tokio::time::timeout(Duration::from_secs(1), io.read.read(&mut sink)).await;
            return;
        }
    }
    let vhost_name = conn
        .vhost
        .as_ref()
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let _ = info.opened.set(Opened {
        user: conn.user.clone(),
        vhost: vhost_name.clone(),
        client_properties: std::mem::take(&mut conn.client_properties),
        auth_mechanism: std::mem::take(&mut conn.auth_mechanism),
        channel_max: conn.tuned.channel_max,
        frame_max: conn.tuned.frame_max,
        heartbeat: conn.tuned.heartbeat,
        tls: conn.tls.as_ref().map(|t| t.protocol.clone()),
    });
    broker.connections.insert(
        id,
        ConnHandle {
            channels: conn.channel_gauge.clone(),
            tx: events,
            peer,
            user: conn.user.clone(),
            vhost: vhost_name,
            info: info.clone(),
        },
    );
    broker.churn.connection_created.inc();
    tracing::debug!(peer = %peer, user = conn.user, client = conn.client_name, "connection open");
    let (wtx, wrx) = mpsc::channel(8);
    let writer = tokio::spawn(super::writer::run(io.write, wrx));
    conn.run(&mut io.read, io.inbuf, &mut events_rx, &wtx).await;
    conn.cleanup();
    broker.connections.remove(&id);
    broker.churn.connection_closed.inc();
    drop(wtx);
    let _ = writer.await;
}

impl Conn {
    /// Requeue every channel's unacked deliveries and cancel its consumers.
    pub(super) fn release_channels(&mut self) {
        let Some(vhost) = self.vhost.clone() else {
            return;
        };
        for (_, mut chan) in self.channels.drain() {
            chan.release(&vhost, self.id);
            vhost.retire_channel(chan.info());
            self.broker.churn.channel_closed.inc();
        }
        self.info
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        vhost.retire_io(&self.info.io);
    }

    pub(super) fn cleanup(&mut self) {
        self.release_channels();
        if let Some(vhost) = self.vhost.clone() {
            for q in self.exclusive_queues.drain(..) {
                let (_, consumers) = vhost.delete_queue(&q);
                crate::channel::notify_cancelled(consumers);
            }
        }
    }
}
