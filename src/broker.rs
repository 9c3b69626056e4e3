//! The state every connection shares: configuration, users, vhosts, live connections.

use crate::config::Config;
use crate::connection::ConnEvent;
use crate::store::Store;
use crate::vhost::VHost;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// A live connection, as the broker needs to reach it (to close it on shutdown).
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub tx: UnboundedSender<ConnEvent>,
    /// Channels open on it (for per-user channel limits).
    pub channels: Arc<std::sync::atomic::AtomicUsize>,
    pub peer: std::net::SocketAddr,
    pub user: String,
    pub vhost: String,
    /// What the management API shows of it.
    pub info: Arc<crate::connection::info::ConnInfo>,
}

#[derive(Debug)]
pub struct Broker {
    pub config: Config,
    pub vhosts: DashMap<String, Arc<VHost>>,
    /// Users and their permissions.
    pub access: crate::access::Access,
    /// (protocol, port) of every listener: "amqp", "amqp/ssl", "http".
    listeners: std::sync::RwLock<Vec<(&'static str, u16)>>,
    /// Limits set on vhosts.
    pub vhost_limits: DashMap<String, crate::access::VhostLimits>,
    pub connections: DashMap<u64, ConnHandle>,
    next_conn_id: AtomicU64,
    pub store: Store,
    /// Memory and disk alarms, which block publishers.
    pub alarms: Arc<crate::alarm::Alarms>,
    /// One permit per client connection when `amqp.connection_max` is set.
    pub connection_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Connections and channels opened and closed.
    pub churn: crate::stats::Churn,
    /// When the broker started (the nodes' `uptime`).
    pub started: std::time::Instant,
    /// Login attempts over AMQP and over the management API (Prometheus'
    /// `rabbitmq_auth_attempts_*`).
    pub auth_amqp: crate::stats::AuthStats,
    pub auth_http: crate::stats::AuthStats,
    /// RabbitMQ's persistent cluster id (`rabbitmq-cluster-id-...`): made on the first start
    /// and kept in the store, so that it survives restarts.
    pub cluster_id: String,
    /// What deleted vhosts had counted (closed channels and connections, deleted queues,
    /// queue churn), for Prometheus' totals over the broker's lifetime.
    pub deleted_vhosts: crate::vhost::stats::VhostMetrics,
}

impl Broker {
    pub fn new(config: Config, store: Store) -> Arc<Broker> {
        let b = Broker {
            vhosts: DashMap::new(),
            access: crate::access::Access::default(),
            vhost_limits: DashMap::new(),
            listeners: Default::default(),
            connections: DashMap::new(),
            next_conn_id: AtomicU64::new(1),
            store,
            connection_slots: match config.amqp.connection_max {
                0 => None,
                n => Some(Arc::new(tokio::sync::Semaphore::new(n))),
            },
            alarms: crate::alarm::Alarms::new(&config.resources, config.storage.data_dir.clone()),
            churn: Default::default(),
            started: std::time::Instant::now(),
            auth_amqp: Default::default(),
            auth_http: Default::default(),
            cluster_id: String::new(),
            deleted_vhosts: Default::default(),
            config,
        };
        let vh = b.config.auth.default_vhost.clone();
        b.vhosts
            .insert(vh.clone(), VHost::new(&vh, b.store.clone()));
        if let Err(e) = b.load_access() {
            tracing::error!(error = %e, "cannot read users and permissions from the store");
        }
        if let Err(e) = b.load_policies() {
            tracing::error!(error = %e, "cannot read policies from the store");
        }
        let mut b = b;
        b.cluster_id = b.store.cluster_id().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot keep the cluster id in the store");
            crate::store::new_cluster_id()
        });
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
    /// address is a loopback one. Passwords are checked against their salted hash in
    /// constant time.
    pub fn authenticate(&self, user: &str, pass: Option<&str>, loopback: bool) -> bool {
        let Some(u) = self.access.user(user) else {
            return false;
        };
        if let Some(pass) = pass {
            if !crate::access::verify_password(&u, pass) {
                return false;
            }
        }
        loopback || !self.config.auth.loopback_users.iter().any(|l| l == user)
    }

    /// Users and permissions from the store; on a store that has none (a first start), the
    /// default user (tagged administrator) with all permissions on the default vhost, as
    /// RabbitMQ creates them.
    fn load_access(&self) -> Result<(), crate::error::BrokerError> {
        for name in self.store.vhost_names()? {
            self.vhosts
                .entry(name.clone())
                .or_insert_with(|| VHost::new(&name, self.store.clone()));
        }
        for (vhost, limits) in self.store.vhost_limits()? {
            self.vhost_limits.insert(vhost, limits);
        }
        let (users, permissions) = self.store.load_access()?;
        if users.is_empty() {
            let auth = &self.config.auth;
            self.store.put_vhost(&auth.default_vhost)?;
            let tags: Vec<&str> = auth.default_user_tags.iter().map(String::as_str).collect();
            self.add_user(&auth.default_user, &auth.default_pass, &tags)?;
            let [c, w, r] = &auth.default_permissions;
            self.set_permissions(&auth.default_user, &auth.default_vhost, c, w, r)?;
            return Ok(());
        }
        for u in users {
            self.access.put_user(u);
        }
        for p in permissions {
            let (user, vhost) = (p.user.clone(), p.vhost.clone());
            if let Err(e) = self.access.put_permissions(p) {
                tracing::error!(user, vhost, error = e, "stored permissions skipped");
            }
        }
        Ok(())
    }

    /// Policies from the store, into their vhosts (before queues and exchanges are restored,
    /// which get theirs as they come back).
    fn load_policies(&self) -> Result<(), crate::error::BrokerError> {
        let mut by_vhost: std::collections::BTreeMap<String, Vec<_>> = Default::default();
        for p in self.store.policies()? {
            by_vhost.entry(p.vhost.clone()).or_default().push(p);
        }
        for (name, list) in by_vhost {
            self.vhosts
                .entry(name.clone())
                .or_insert_with(|| VHost::new(&name, self.store.clone()))
                .load_policies(list);
        }
        Ok(())
    }

    /// Every vhost's policies, ordered as RabbitMQ lists them (by priority).
    pub fn policies(&self) -> Vec<Arc<crate::policy::Policy>> {
        let mut all: Vec<_> = self.vhosts.iter().flat_map(|v| v.policies()).collect();
        crate::policy::sort_for_listing(&mut all);
        all
    }

    /// The `policies` of a definitions export: `[{"vhost", "name", "pattern", "apply-to",
    /// "definition", "priority"}, ...]`.
    pub fn policies_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.policies().iter().map(|p| p.to_json()).collect())
    }

    /// Create a vhost (with its default exchanges) and record it; an existing one is kept.
    pub fn add_vhost(&self, name: &str) -> Result<(), crate::error::BrokerError> {
        self.store.put_vhost(name)?;
        self.vhosts
            .entry(name.to_string())
            .or_insert_with(|| VHost::new(name, self.store.clone()));
        Ok(())
    }

    /// Set (or, with no limit in it, clear) a vhost's limits.
    pub fn set_vhost_limits(
        &self,
        vhost: &str,
        limits: crate::access::VhostLimits,
    ) -> Result<(), crate::error::BrokerError> {
        self.store.put_vhost_limits(vhost, &limits)?;
        self.vhost_limits.insert(vhost.to_string(), limits);
        Ok(())
    }

    /// Record a listener once it is bound (health checks report them).
    pub fn add_listener(&self, protocol: &'static str, port: u16) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((protocol, port));
    }

    pub fn listeners(&self) -> Vec<(&'static str, u16)> {
        self.listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Set a user's limits; false if there is no such user.
    pub fn set_user_limits(
        &self,
        user: &str,
        limits: crate::access::UserLimits,
    ) -> Result<bool, crate::error::BrokerError> {
        let Some(mut record) = self.access.user(user) else {
            return Ok(false);
        };
        record.limits = limits;
        self.put_user(record)?;
        Ok(true)
    }

    /// Connections open now on `vhost` and by `user` (counted only when a limit needs it).
    pub fn connections_of(&self, vhost: Option<&str>, user: Option<&str>) -> usize {
        self.connections
            .iter()
            .filter(|c| vhost.is_none_or(|v| c.vhost == v) && user.is_none_or(|u| c.user == u))
            .count()
    }

    /// Channels open now on `user`'s connections.
    pub fn channels_of(&self, user: &str) -> usize {
        self.connections
            .iter()
            .filter(|c| c.user == user)
            .map(|c| c.channels.load(Ordering::Relaxed))
            .sum()
    }

    /// Create or replace a user from its record (definitions carry the hash, not the password).
    pub fn put_user(
        &self,
        user: crate::access::UserRecord,
    ) -> Result<(), crate::error::BrokerError> {
        self.store.put_user(&user)?;
        self.access.put_user(user);
        Ok(())
    }

    /// Create or replace a user (`rabbitmqctl add_user`, the HTTP API, definitions).
    pub fn add_user(
        &self,
        name: &str,
        password: &str,
        tags: &[&str],
    ) -> Result<(), crate::error::BrokerError> {
        let user = crate::access::UserRecord {
            name: name.to_string(),
            password_hash: crate::access::hash_password(password),
            hashing_algorithm: crate::access::SHA256.to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            limits: Default::default(),
        };
        self.store.put_user(&user)?;
        self.access.put_user(user);
        Ok(())
    }

    /// Delete a user and its permissions; false if there was none.
    pub fn delete_user(&self, name: &str) -> Result<bool, crate::error::BrokerError> {
        self.store.delete_user(name)?;
        Ok(self.access.delete_user(name))
    }

    /// Set a user's configure / write / read patterns on a vhost.
    pub fn set_permissions(
        &self,
        user: &str,
        vhost: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> Result<(), crate::error::BrokerError> {
        let p = crate::access::PermissionRecord {
            user: user.to_string(),
            vhost: vhost.to_string(),
            configure: configure.to_string(),
            write: write.to_string(),
            read: read.to_string(),
        };
        // Validated before it is stored.
        self.access
            .put_permissions(p.clone())
            .map_err(crate::error::BrokerError::Invalid)?;
        self.store.put_permissions(&p)?;
        Ok(())
    }

    /// Remove a user's permissions on a vhost.
    pub fn clear_permissions(
        &self,
        user: &str,
        vhost: &str,
    ) -> Result<bool, crate::error::BrokerError> {
        self.store.delete_permissions(user, vhost)?;
        Ok(self.access.delete_permissions(user, vhost))
    }
}

/// This node's name, as RabbitMQ names it: `rabbit@HOST` (the short host name), or
/// `RABBITMQ_NODENAME` (a name without `@` gets `@HOST`). Worked out once per process.
pub fn node_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(compute_node_name).clone()
}

fn compute_node_name() -> String {
    node_name_from(&|k| std::env::var(k).ok())
}

/// The node name that the environment `get` reads gives.
pub fn node_name_from(get: &impl Fn(&str) -> Option<String>) -> String {
    let host = || {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .and_then(|h| h.trim().split('.').next().map(str::to_string))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    };
    match get("RABBITMQ_NODENAME") {
        Some(n) if n.contains('@') => n,
        Some(n) if !n.is_empty() => format!("{n}@{}", host()),
        _ => format!("rabbit@{}", host()),
    }
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
        b.add_user("alice", "pw", &[]).unwrap();
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
        // Users and permissions survive a restart; the default user is not created again.
        b.set_permissions("alice", "/", "^a", "", ".*").unwrap();
        b.store.close().unwrap();
        drop(b);
        let b = Broker::new(
            Config::for_test(&dir),
            Store::open(&Config::for_test(&dir).storage).unwrap(),
        );
        assert!(b.authenticate("alice", Some("pw"), false));
        assert!(b.access.may_open("alice", "/"));
        assert_eq!(b.access.users().len(), 2);
        b.store.close().unwrap();
        drop(b);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
