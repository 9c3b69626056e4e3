//! Direct exchange: a binding key equals the routing key.

use super::Dest;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub(super) struct Index(HashMap<String, Vec<Dest>>);

impl Index {
    pub(super) fn insert(&mut self, key: &str, dest: &Dest) {
        let v = self.0.entry(key.to_string()).or_default();
        if !v.contains(dest) {
            v.push(dest.clone());
        }
    }

    pub(super) fn remove(&mut self, key: &str, dest: &Dest) {
        if let Some(v) = self.0.get_mut(key) {
            v.retain(|d| d != dest);
            if v.is_empty() {
                self.0.remove(key);
            }
        }
    }

    pub(super) fn route(&self, key: &str, out: &mut Vec<Dest>) {
        if let Some(v) = self.0.get(key) {
            out.extend(v.iter().cloned());
        }
    }
}
