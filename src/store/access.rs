//! Users, permissions and vhosts in the store, in the `access` tree: `u\0NAME` -> user,
//! `p\0USER\0VHOST` -> permissions, `v\0NAME` -> a vhost; as JSON (the shapes definitions
//! files use); and `c\0id` -> the cluster id. Flushed on every change: they are rare, and an
//! operator expects a created user to survive a crash.

use super::{Store, StoreResult};
use crate::access::{PermissionRecord, UserRecord, VhostLimits};

fn user_key(name: &str) -> Vec<u8> {
    [b"u\0", name.as_bytes()].concat()
}

fn permission_key(user: &str, vhost: &str) -> Vec<u8> {
    [b"p\0", user.as_bytes(), b"\0", vhost.as_bytes()].concat()
}

/// A new cluster id as RabbitMQ makes them: `rabbitmq-cluster-id-` and 16 random bytes in
/// URL-safe base64. The randomness is std's: `RandomState` is seeded by the OS.
pub fn new_cluster_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for (i, half) in bytes.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(crate::stats::now_ms() as u128);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    format!("rabbitmq-cluster-id-{b64}")
}

impl Store {
    fn access_tree(&self) -> StoreResult<sled::Tree> {
        self.db.open_tree("access")
    }

    pub fn put_user(&self, user: &UserRecord) -> StoreResult<()> {
        let json = serde_json::to_vec(user).expect("a user serializes");
        self.access_tree()?.insert(user_key(&user.name), json)?;
        self.db.flush()?;
        Ok(())
    }

    /// Delete a user and its permissions.
    pub fn delete_user(&self, name: &str) -> StoreResult<()> {
        let tree = self.access_tree()?;
        tree.remove(user_key(name))?;
        let prefix = [b"p\0", name.as_bytes(), b"\0"].concat();
        for key in tree.scan_prefix(&prefix).keys() {
            tree.remove(key?)?;
        }
        self.db.flush()?;
        Ok(())
    }

    pub fn put_permissions(&self, p: &PermissionRecord) -> StoreResult<()> {
        let json = serde_json::to_vec(p).expect("permissions serialize");
        self.access_tree()?
            .insert(permission_key(&p.user, &p.vhost), json)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn delete_permissions(&self, user: &str, vhost: &str) -> StoreResult<()> {
        self.access_tree()?.remove(permission_key(user, vhost))?;
        self.db.flush()?;
        Ok(())
    }

    /// This broker's permanent cluster id, made and recorded on first use.
    pub fn cluster_id(&self) -> StoreResult<String> {
        let tree = self.access_tree()?;
        if let Some(id) = tree.get(b"c\0id")? {
            return Ok(String::from_utf8_lossy(&id).into_owned());
        }
        let id = super::new_cluster_id();
        tree.insert(b"c\0id", id.as_bytes())?;
        self.db.flush()?;
        Ok(id)
    }

    /// Record a vhost (its exchanges and queues are stored with their own records).
    pub fn put_vhost(&self, name: &str) -> StoreResult<()> {
        self.access_tree()?
            .insert([b"v\0", name.as_bytes()].concat(), &b""[..])?;
        self.db.flush()?;
        Ok(())
    }

    /// The cluster name set by an operator, if any (`g\0cluster_name`).
    pub fn cluster_name(&self) -> StoreResult<Option<String>> {
        let v = self.access_tree()?.get(b"g\0cluster_name")?;
        Ok(v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn put_cluster_name(&self, name: &str) -> StoreResult<()> {
        self.access_tree()?
            .insert(b"g\0cluster_name", name.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Forget a vhost's record and its limits.
    pub fn delete_vhost(&self, name: &str) -> StoreResult<()> {
        let tree = self.access_tree()?;
        tree.remove([b"v\0", name.as_bytes()].concat())?;
        tree.remove([b"l\0", name.as_bytes()].concat())?;
        self.db.flush()?;
        Ok(())
    }

    /// The vhosts recorded with `put_vhost`.
    pub fn vhost_names(&self) -> StoreResult<Vec<String>> {
        let mut names = Vec::new();
        for key in self.access_tree()?.scan_prefix(b"v\0").keys() {
            names.push(String::from_utf8_lossy(&key?[2..]).into_owned());
        }
        Ok(names)
    }

    pub fn put_vhost_limits(&self, vhost: &str, limits: &VhostLimits) -> StoreResult<()> {
        let json = serde_json::to_vec(limits).expect("limits serialize");
        self.access_tree()?
            .insert([b"l\0", vhost.as_bytes()].concat(), json)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn vhost_limits(&self) -> StoreResult<Vec<(String, VhostLimits)>> {
        let mut out = Vec::new();
        for item in self.access_tree()?.scan_prefix(b"l\0") {
            let (key, value) = item?;
            if let Ok(limits) = serde_json::from_slice(&value) {
                out.push((String::from_utf8_lossy(&key[2..]).into_owned(), limits));
            }
        }
        Ok(out)
    }

    /// Every stored user and permission (records that do not decode are skipped and logged).
    pub fn load_access(&self) -> StoreResult<(Vec<UserRecord>, Vec<PermissionRecord>)> {
        let tree = self.access_tree()?;
        let mut users = Vec::new();
        for item in tree.scan_prefix(b"u\0") {
            let (key, value) = item?;
            match serde_json::from_slice(&value) {
                Ok(u) => users.push(u),
                Err(e) => tracing::error!(key = ?key, error = %e, "unreadable user record skipped"),
            }
        }
        let mut permissions = Vec::new();
        for item in tree.scan_prefix(b"p\0") {
            let (key, value) = item?;
            match serde_json::from_slice(&value) {
                Ok(p) => permissions.push(p),
                Err(e) => {
                    tracing::error!(key = ?key, error = %e, "unreadable permission record skipped")
                }
            }
        }
        Ok((users, permissions))
    }
}
