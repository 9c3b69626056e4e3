//! Topic exchange: a trie over dot-separated words, where `*` matches exactly one word and
//! `#` matches zero or more. Words may be empty (`a..b` has three words, the middle one empty).

use super::Dest;
use std::collections::HashMap;

/// The words of a key: "" has none (so `*` does not match it), "a..b" has three.
fn words(key: &str) -> impl Iterator<Item = &str> {
    let n = if key.is_empty() { 0 } else { usize::MAX };
    key.split('.').take(n)
}

#[derive(Debug, Default)]
pub(super) struct Trie {
    children: HashMap<String, Trie>,
    /// Destinations whose binding key ends at this node.
    dests: Vec<Dest>,
}

impl Trie {
    pub(super) fn insert(&mut self, key: &str, dest: &Dest) {
        let mut node = self;
        for w in words(key) {
            node = node.children.entry(w.to_string()).or_default();
        }
        if !node.dests.contains(dest) {
            node.dests.push(dest.clone());
        }
    }

    pub(super) fn remove(&mut self, key: &str, dest: &Dest) {
        let words: Vec<&str> = words(key).collect();
        self.remove_at(&words, dest);
    }

    /// Returns true when this node became empty and can be pruned.
    fn remove_at(&mut self, words: &[&str], dest: &Dest) -> bool {
        match words.split_first() {
            None => self.dests.retain(|d| d != dest),
            Some((w, rest)) => {
                if let Some(child) = self.children.get_mut(*w) {
                    if child.remove_at(rest, dest) {
                        self.children.remove(*w);
                    }
                }
            }
        }
        self.dests.is_empty() && self.children.is_empty()
    }

    pub(super) fn route(&self, key: &str, out: &mut Vec<Dest>) {
        let words: Vec<&str> = words(key).collect();
        self.walk(&words, out);
    }

    fn walk(&self, words: &[&str], out: &mut Vec<Dest>) {
        if let Some(hash) = self.children.get("#") {
            // `#` swallows zero, one, ... or all remaining words.
            for skip in 0..=words.len() {
                hash.walk(&words[skip..], out);
            }
        }
        let Some((w, rest)) = words.split_first() else {
            out.extend(self.dests.iter().cloned());
            return;
        };
        if let Some(child) = self.children.get(*w) {
            if *w != "#" && *w != "*" {
                child.walk(rest, out);
            }
        }
        if let Some(star) = self.children.get("*") {
            star.walk(rest, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(binding: &str, key: &str) -> bool {
        let mut t = Trie::default();
        t.insert(binding, &Dest::Queue("q".into()));
        let mut out = vec![];
        t.route(key, &mut out);
        !out.is_empty()
    }

    #[test]
    fn words_and_wildcards() {
        assert!(matches("a.b.c", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
        assert!(matches("a.*.c", "a.x.c"));
        assert!(!matches("a.*.c", "a.c"));
        assert!(matches("a.#", "a"));
        assert!(matches("a.#", "a.b.c"));
        assert!(matches("#", ""));
        assert!(matches("#", "a.b"));
        assert!(matches("#.c", "c"));
        assert!(matches("a.#.c", "a.c"));
        assert!(matches("a.#.c", "a.b.b.c"));
        assert!(!matches("a.#.c", "a.b.b.d"));
        assert!(!matches("*", ""));
        assert!(!matches("*", "a.b"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("a..b", "a..b"));
        assert!(matches("a.*.b", "a..b"));
        assert!(matches("#.#", "a"));
        assert!(matches("*.#", "a"));
        assert!(!matches("*.*", "a"));
    }

    #[test]
    fn literal_star_key_is_not_a_wildcard_in_routing_key() {
        // A routing key containing '*' only matches a '*' or '#' binding.
        assert!(!matches("a", "*"));
        assert!(matches("*", "*"));
    }

    #[test]
    fn remove_prunes() {
        let mut t = Trie::default();
        let q = Dest::Queue("q".into());
        t.insert("a.*.c", &q);
        t.insert("a.#", &q);
        t.remove("a.*.c", &q);
        let mut out = vec![];
        t.route("a.b.c", &mut out);
        assert_eq!(out.len(), 1);
        t.remove("a.#", &q);
        assert!(t.children.is_empty());
    }
}
