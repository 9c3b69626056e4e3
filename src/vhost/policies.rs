//! A vhost's policies: kept here, stored, and applied to its queues and exchanges whenever a
//! policy is set or deleted and whenever a queue or exchange is created or restored.
//!
//! Lock order: the policy list's lock, then a registry shard, then a queue's or an exchange's
//! own lock. A change holds the list's write lock while it re-applies, and a declare holds
//! its read lock from before the new entity is registered until its policy is applied, so an
//! entity never keeps a policy that was replaced meanwhile.

use super::VHost;
use crate::policy::{choose, Kind, Policy};
use std::sync::{Arc, RwLockReadGuard};

impl VHost {
    pub(super) fn policies_read(&self) -> RwLockReadGuard<'_, Vec<Arc<Policy>>> {
        self.policies.read().unwrap_or_else(|p| p.into_inner())
    }

    /// This vhost's policies.
    pub fn policies(&self) -> Vec<Arc<Policy>> {
        self.policies_read().clone()
    }

    pub fn policy(&self, name: &str) -> Option<Arc<Policy>> {
        self.policies_read()
            .iter()
            .find(|p| p.name == name)
            .cloned()
    }

    /// Create or replace a policy (stored first), and apply the vhost's policies again.
    /// Returns whether one of that name existed.
    pub fn set_policy(&self, policy: Policy) -> Result<bool, sled::Error> {
        // Stored under the lock, so that the store and the list agree on the last writer.
        let mut list = self.policies.write().unwrap_or_else(|p| p.into_inner());
        self.store.put_policy(&policy)?;
        let existed = match list.iter().position(|p| p.name == policy.name) {
            Some(i) => {
                list[i] = Arc::new(policy);
                true
            }
            None => {
                list.push(Arc::new(policy));
                false
            }
        };
        self.reapply(&list);
        Ok(existed)
    }

    /// Delete a policy; false if there was none. Entities it applied to get the next policy
    /// that matches them, or their own arguments back.
    pub fn delete_policy(&self, name: &str) -> Result<bool, sled::Error> {
        let mut list = self.policies.write().unwrap_or_else(|p| p.into_inner());
        let Some(i) = list.iter().position(|p| p.name == name) else {
            return Ok(false);
        };
        self.store.delete_policy(&self.name, name)?;
        list.remove(i);
        self.reapply(&list);
        Ok(true)
    }

    /// Policies read from the store at startup, before entities are restored.
    pub(crate) fn load_policies(&self, loaded: Vec<Policy>) {
        let mut list = self.policies.write().unwrap_or_else(|p| p.into_inner());
        list.extend(loaded.into_iter().map(Arc::new));
        self.reapply(&list);
    }

    /// Give every queue and exchange the policy that applies to it now, where it changed.
    fn reapply(&self, list: &[Arc<Policy>]) {
        let same = |a: &Option<Arc<Policy>>, b: &Option<Arc<Policy>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        // Snapshots: applying may dead-letter into other queues, which reads the registry.
        let queues: Vec<_> = self.queues.iter().map(|q| q.value().clone()).collect();
        for q in queues {
            let p = choose(list, Kind::Queue, &q.name);
            if !same(&q.policy(), &p) {
                q.apply_policy(p);
            }
        }
        let exchanges: Vec<_> = self.exchanges.iter().map(|x| x.value().clone()).collect();
        for x in exchanges {
            let p = choose(list, Kind::Exchange, &x.name);
            if !same(&x.policy(), &p) {
                x.apply_policy(p);
            }
        }
    }
}
