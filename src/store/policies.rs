//! Policies in the store, in the `policies` tree: `VHOST\0NAME` -> the policy as JSON (the
//! shape definitions files use). Flushed on every change, like users: they are rare, and an
//! operator expects a policy that was set to survive a crash.

use super::{Store, StoreResult};
use crate::policy::Policy;

fn key(vhost: &str, name: &str) -> Vec<u8> {
    [vhost.as_bytes(), b"\0", name.as_bytes()].concat()
}

impl Store {
    fn policies_tree(&self) -> StoreResult<sled::Tree> {
        self.db.open_tree("policies")
    }

    pub fn put_policy(&self, p: &Policy) -> StoreResult<()> {
        let json = serde_json::to_vec(&p.to_json()).expect("a policy serializes");
        self.policies_tree()?.insert(key(&p.vhost, &p.name), json)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn delete_policy(&self, vhost: &str, name: &str) -> StoreResult<()> {
        self.policies_tree()?.remove(key(vhost, name))?;
        self.db.flush()?;
        Ok(())
    }

    /// Delete every policy of a vhost (the vhost is being deleted).
    pub fn delete_policies_of(&self, vhost: &str) -> StoreResult<()> {
        let tree = self.policies_tree()?;
        for k in tree.scan_prefix([vhost.as_bytes(), b"\0"].concat()).keys() {
            tree.remove(k?)?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// Every stored policy; records that no longer decode or validate are skipped and logged.
    pub fn policies(&self) -> StoreResult<Vec<Policy>> {
        let mut out = Vec::new();
        for item in self.policies_tree()?.iter() {
            let (k, value) = item?;
            let text = String::from_utf8_lossy(&k).into_owned();
            let Some((vhost, name)) = text.split_once('\0') else {
                continue;
            };
            let parsed = serde_json::from_slice(&value)
                .map_err(|e| e.to_string())
                .and_then(|v| Policy::from_json(vhost, name, &v).map_err(|e| e.to_string()));
            match parsed {
                Ok(p) => out.push(p),
                Err(e) => tracing::error!(vhost, name, error = %e, "unreadable policy skipped"),
            }
        }
        Ok(out)
    }
}
