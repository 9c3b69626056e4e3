//! The state every connection shares: configuration, users, vhosts, live connections.

use crate::config::Config;
use crate::connection::ConnEvent;
use crate::store::Store;
use crate::vhost::VHost;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// A user that may log in.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
}

/// A live connection, as the broker needs to reach it (to close it on shutdown).
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub tx: UnboundedSender<ConnEvent>,
    pub peer: std::net::SocketAddr,
    pub user: String,
    pub vhost: String,
}

#[derive(Debug)]
pub struct Broker {
    pub config: Config,
    pub vhosts: DashMap<String, Arc<VHost>>,
    pub users: DashMap<String, User>,
    pub connections: DashMap<u64, ConnHandle>,
    next_conn_id: AtomicU64,
    pub store: Store,
    /// Memory and disk alarms, which block publishers.
    pub alarms: Arc<crate::alarm::Alarms>,
    /// One permit per client connection when `amqp.connection_max` is set.
    pub connection_slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl Broker {
    pub fn new(config: Config, store: Store) -> Arc<Broker> {
        let b = Broker {
            vhosts: DashMap::new(),
            users: DashMap::new(),
            connections: DashMap::new(),
            next_conn_id: AtomicU64::new(1),
            store,
            connection_slots: match config.amqp.connection_max {
                0 => None,
                n => Some(Arc::new(tokio::sync::Semaphore::new(n))),
            },
            alarms: crate::alarm::Alarms::new(&config.resources, config.storage.data_dir.clone()),
            config,
        };
        let vh = b.config.auth.default_vhost.clone();
        b.vhosts
            .insert(vh.clone(), VHost::new(&vh, b.store.clone()));
        let u = b.config.auth.default_user.clone();
        b.users.insert(
            u.clone(),
            User {
                name: u,
                password: b.config.auth.default_pass.clone(),
            },
        );
        Arc::new(b)
    }

    /// Bring back what the store holds: durable exchanges, queues with their messages, and
    /// bindings. Returns (queues, messages) recovered.
    pub fn recover(&self) -> Result<(usize, usize), crate::error::BrokerError> {
        let r = self.store.recover()?;
        if r.corrupt > 0 {
            tracing::warn!(
                records = r.corrupt,
                "skipped unreadable records in the store"
            );
        }
        let vhost = |name: &str| {
            self.vhosts
                .entry(name.to_string())
                .or_insert_with(|| VHost::new(name, self.store.clone()))
                .clone()
        };
        for x in r.exchanges {
            vhost(&x.vhost).restore_exchange(x);
        }
        let (queues, mut messages) = (r.queues.len(), 0);
        for q in r.queues {
            messages += vhost(&q.vhost).restore_queue(q)?;
        }
        for b in r.bindings {
            vhost(&b.vhost).restore_binding(b);
        }
        let unreadable = self
            .store
            .recover_delayed(|d| vhost(&d.vhost).restore_delayed(d))?;
        if unreadable > 0 {
            tracing::warn!(records = unreadable, "dropped unreadable delayed messages");
        }
        self.store.finish_recovery();
        Ok((queues, messages))
    }

    pub fn next_connection_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.get(name).map(|v| v.clone())
    }

    /// Check a login. `pass` is None when the user was already authenticated otherwise (a
    /// verified TLS client certificate, SASL EXTERNAL). `loopback` says whether the peer
    /// address is a loopback one. Passwords are compared in constant time.
    pub fn authenticate(&self, user: &str, pass: Option<&str>, loopback: bool) -> bool {
        let Some(u) = self.users.get(user) else {
            return false;
        };
        if let Some(pass) = pass {
            if !constant_time_eq(u.password.as_bytes(), pass.as_bytes()) {
                return false;
            }
        }
        loopback || !self.config.auth.loopback_users.iter().any(|l| l == user)
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ: a client
/// timing failed logins learns nothing about the password.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_only_from_loopback_others_from_anywhere() {
        let dir = std::env::temp_dir().join(format!("warren-broker-{}", std::process::id()));
        let b = Broker::new(
            Config::for_test(&dir),
            Store::open(&Config::for_test(&dir).storage).unwrap(),
        );
        b.users.insert(
            "alice".into(),
            User {
                name: "alice".into(),
                password: "pw".into(),
            },
        );
        assert!(b.authenticate("guest", Some("guest"), true));
        assert!(!b.authenticate("guest", Some("guest"), false));
        assert!(!b.authenticate("guest", Some("wrong"), true));
        assert!(!b.authenticate("guest", Some("guest!"), true));
        assert!(b.authenticate("alice", Some("pw"), false));
        assert!(!b.authenticate("nobody", Some("pw"), true));
        // A certificate-authenticated user must exist; the loopback rule still applies.
        assert!(b.authenticate("alice", None, false));
        assert!(!b.authenticate("nobody", None, true));
        assert!(!b.authenticate("guest", None, false));
        drop(b);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
