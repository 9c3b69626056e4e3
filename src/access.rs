//! Users, their passwords and tags, and their permissions per vhost, as RabbitMQ has them:
//! passwords hashed as `rabbit_password_hashing_sha256` (base64 of a 4-byte salt followed by
//! SHA-256 of salt and password, the form definitions files carry), and configure / write /
//! read permissions as regular expressions matched against queue and exchange names, checked
//! on every AMQP method that touches a resource (403 ACCESS_REFUSED with RabbitMQ's text).
//! A user without any permission on a vhost cannot open it (530). Users and permissions are
//! kept in the store.

use crate::error::{AmqpError, AmqpResult};
use base64::Engine;
use dashmap::DashMap;
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The hashing algorithm name definitions files use for the one warren writes.
pub const SHA256: &str = "rabbit_password_hashing_sha256";
/// The other algorithm RabbitMQ offers, accepted in definitions.
pub const SHA512: &str = "rabbit_password_hashing_sha512";

/// A user as stored and as definitions files describe it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub password_hash: String,
    #[serde(default = "sha256_name")]
    pub hashing_algorithm: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub limits: UserLimits,
}

/// A user's limits (`rabbitmqctl set_user_limits`; `limits` in definitions). A negative
/// value means no limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserLimits {
    #[serde(
        rename = "max-connections",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connections: Option<i64>,
    #[serde(
        rename = "max-channels",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_channels: Option<i64>,
}

/// A vhost's limits (`rabbitmqctl set_vhost_limits`; the `vhost-limits` parameter in
/// definitions). A negative value means no limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct VhostLimits {
    #[serde(
        rename = "max-connections",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connections: Option<i64>,
    #[serde(
        rename = "max-queues",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_queues: Option<i64>,
}

/// A limit in force: Some(n) with n >= 0.
pub fn limit(v: Option<i64>) -> Option<usize> {
    v.and_then(|n| usize::try_from(n).ok())
}

fn sha256_name() -> String {
    SHA256.to_string()
}

/// A user's permissions on a vhost, as stored and as definitions files describe them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PermissionRecord {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// What an operation needs on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Configure,
    Write,
    Read,
}

/// The kind of resource, as it appears in RabbitMQ's refusal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Queue,
    Exchange,
}

#[derive(Debug)]
struct Compiled {
    configure: Regex,
    write: Regex,
    read: Regex,
}

/// RabbitMQ treats an empty pattern as `^$` (only the empty name); the others are matched
/// anywhere in the name, as Erlang's `re:run` does.
fn compile(pattern: &str) -> Result<Regex, String> {
    let p = if pattern.is_empty() { "^$" } else { pattern };
    Regex::new(p).map_err(|e| format!("invalid permission pattern {pattern:?}: {e}"))
}

/// Hash `password` with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 4];
    crate::vhost::random_bytes(&mut salt);
    hash_with_salt(&salt, password)
}

fn hash_with_salt(salt: &[u8], password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    let mut out = salt.to_vec();
    out.extend_from_slice(&h.finalize());
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Whether `password` matches a stored hash (SHA-256, or SHA-512 as definitions from
/// nodes configured with `rabbit_password_hashing_sha512` carry); constant time in the
/// password's bytes. An empty hash (a user without a password) never matches.
pub fn verify_password(user: &UserRecord, password: &str) -> bool {
    let Ok(stored) = base64::engine::general_purpose::STANDARD.decode(&user.password_hash) else {
        return false;
    };
    let computed = match (user.hashing_algorithm.as_str(), stored.len()) {
        (SHA256, 36) => base64::engine::general_purpose::STANDARD
            .decode(hash_with_salt(&stored[..4], password))
            .unwrap_or_default(),
        (SHA512, 68) => {
            let mut h = sha2::Sha512::new();
            h.update(&stored[..4]);
            h.update(password.as_bytes());
            [&stored[..4], &h.finalize()[..]].concat()
        }
        _ => return false,
    };
    constant_time_eq(&stored, &computed)
}

/// Equality whose time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Users and permissions in memory (the store keeps them across restarts).
#[derive(Debug, Default)]
pub struct Access {
    users: DashMap<String, UserRecord>,
    permissions: DashMap<(String, String), (PermissionRecord, Arc<Compiled>)>,
}

impl Access {
    pub fn user(&self, name: &str) -> Option<UserRecord> {
        self.users.get(name).map(|u| u.clone())
    }

    pub fn users(&self) -> Vec<UserRecord> {
        let mut v: Vec<UserRecord> = self.users.iter().map(|u| u.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn put_user(&self, user: UserRecord) {
        self.users.insert(user.name.clone(), user);
    }

    /// Remove a user and its permissions.
    pub fn delete_user(&self, name: &str) -> bool {
        self.permissions.retain(|(u, _), _| u != name);
        self.users.remove(name).is_some()
    }

    pub fn permissions(&self) -> Vec<PermissionRecord> {
        let mut v: Vec<PermissionRecord> = self
            .permissions
            .iter()
            .map(|p| p.value().0.clone())
            .collect();
        v.sort_by(|a, b| (&a.user, &a.vhost).cmp(&(&b.user, &b.vhost)));
        v
    }

    /// Set a user's permissions on a vhost; the patterns must be valid regular expressions.
    pub fn put_permissions(&self, p: PermissionRecord) -> Result<(), String> {
        let compiled = Compiled {
            configure: compile(&p.configure)?,
            write: compile(&p.write)?,
            read: compile(&p.read)?,
        };
        self.permissions
            .insert((p.user.clone(), p.vhost.clone()), (p, Arc::new(compiled)));
        Ok(())
    }

    pub fn delete_permissions(&self, user: &str, vhost: &str) -> bool {
        self.permissions
            .remove(&(user.to_string(), vhost.to_string()))
            .is_some()
    }

    /// Drop every permission on a deleted vhost.
    pub fn forget_vhost(&self, vhost: &str) {
        self.permissions.retain(|(_, v), _| v != vhost);
    }

    /// May `user` open `vhost`: it has permissions there (possibly empty ones).
    pub fn may_open(&self, user: &str, vhost: &str) -> bool {
        self.permissions
            .contains_key(&(user.to_string(), vhost.to_string()))
    }

    /// Check `perm` on a resource; the default exchange is `amq.default` here, as in
    /// RabbitMQ's texts.
    pub fn check(
        &self,
        user: &str,
        vhost: &str,
        perm: Perm,
        kind: Resource,
        name: &str,
    ) -> AmqpResult<()> {
        let name = if kind == Resource::Exchange && name.is_empty() {
            "amq.default"
        } else {
            name
        };
        let allowed = self
            .permissions
            .get(&(user.to_string(), vhost.to_string()))
            .is_some_and(|p| {
                let c = &p.value().1;
                match perm {
                    Perm::Configure => c.configure.is_match(name),
                    Perm::Write => c.write.is_match(name),
                    Perm::Read => c.read.is_match(name),
                }
            });
        if allowed {
            return Ok(());
        }
        let kind = match kind {
            Resource::Queue => "queue",
            Resource::Exchange => "exchange",
        };
        Err(AmqpError::access_refused(format!(
            "access to {kind} '{name}' in vhost '{vhost}' refused for user '{user}'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_rabbitmqs() {
        // RabbitMQ's own example from its docs: salt 0x908DC60A, password "test12".
        let salt = [0x90, 0x8D, 0xC6, 0x0A];
        let hash = hash_with_salt(&salt, "test12");
        assert_eq!(hash, "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR");
        let user = UserRecord {
            name: "u".into(),
            password_hash: hash,
            hashing_algorithm: SHA256.into(),
            tags: vec![],
            limits: UserLimits::default(),
        };
        // A hash RabbitMQ 3.10.8 made for user bob, password "bob".
        let bob = UserRecord {
            password_hash: "kpAOiN2PhLO+V1Fkt76uWKvoH7sfzePryE+uSL57m2APgT5i".into(),
            ..user.clone()
        };
        assert!(verify_password(&bob, "bob"));
        assert!(!verify_password(&bob, "Bob"));
        assert!(verify_password(&user, "test12"));
        assert!(!verify_password(&user, "test13"));
        let fresh = UserRecord {
            password_hash: hash_password("pw"),
            ..user
        };
        assert!(verify_password(&fresh, "pw"));
    }

    #[test]
    fn patterns_match_anywhere_and_empty_means_nothing() {
        let a = Access::default();
        a.put_permissions(PermissionRecord {
            user: "bob".into(),
            vhost: "/".into(),
            configure: "^bob-".into(),
            write: "".into(),
            read: "x".into(),
        })
        .unwrap();
        assert!(a
            .check("bob", "/", Perm::Configure, Resource::Queue, "bob-q")
            .is_ok());
        let e = a
            .check("bob", "/", Perm::Configure, Resource::Queue, "q-bob")
            .unwrap_err();
        assert_eq!(e.code as u16, 403);
        assert_eq!(
            e.text,
            "ACCESS_REFUSED - access to queue 'q-bob' in vhost '/' refused for user 'bob'"
        );
        assert!(a
            .check("bob", "/", Perm::Write, Resource::Exchange, "amq.direct")
            .is_err());
        assert!(a
            .check("bob", "/", Perm::Read, Resource::Queue, "a-x-b")
            .is_ok());
        let e = a
            .check("bob", "/", Perm::Write, Resource::Exchange, "")
            .unwrap_err();
        assert!(e.text.contains("exchange 'amq.default'"), "{}", e.text);
        assert!(!a.may_open("bob", "other"));
        assert!(a
            .put_permissions(PermissionRecord {
                user: "bob".into(),
                vhost: "/".into(),
                configure: "(".into(),
                write: "".into(),
                read: "".into(),
            })
            .is_err());
    }
}
