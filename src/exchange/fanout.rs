//! Fanout exchange: every bound destination, whatever the key.

use super::Dest;

#[derive(Debug, Default)]
pub(super) struct Index(Vec<Dest>);

impl Index {
    pub(super) fn insert(&mut self, dest: &Dest) {
        if !self.0.contains(dest) {
            self.0.push(dest.clone());
        }
    }

    pub(super) fn remove(&mut self, dest: &Dest) {
        self.0.retain(|d| d != dest);
    }

    pub(super) fn route(&self, out: &mut Vec<Dest>) {
        out.extend(self.0.iter().cloned());
    }
}
