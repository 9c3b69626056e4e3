//! Consistent-hash exchange (`x-consistent-hash`, as the rabbitmq_consistent_hash_exchange
//! plugin defines it): a binding's key is its weight, a positive integer; each message goes to
//! exactly one destination, chosen by hashing its routing key (or the header named by the
//! exchange argument `hash-header`, or the property named by `hash-property`). The same value
//! always reaches the same destination while the bindings stay the same, and destinations get
//! shares of the values proportional to their weights.
//!
//! The choice is weighted rendezvous hashing: every destination scores the value (a hash of
//! the value and the destination's name, weighted) and the highest score wins. It does not
//! depend on the order of the bindings, so a restart (which reads bindings back in another
//! order) routes every value as before; adding a destination only moves values to it, and
//! removing one only moves the values it had.

use super::Dest;
use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::types::AMQPValue;

/// The properties `hash-property` may name, as the plugin accepts them.
pub const PROPERTIES: &[&str] = &["correlation_id", "message_id", "timestamp"];

/// Weights are capped here so that sums never overflow (the plugin keeps one ring point per
/// unit of weight, so weights this large are unusable there anyway).
const MAX_WEIGHT: u64 = 1 << 32;

/// What a consistent-hash exchange hashes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HashOn {
    #[default]
    RoutingKey,
    Header(String),
    Property(String),
}

/// The destinations of a consistent-hash exchange with their weights. One destination counts
/// once, with the weight of the binding that put it on the ring, as in the plugin.
#[derive(Debug, Default)]
pub(super) struct Ring {
    members: Vec<(Dest, u64, u64)>,
}

/// Why a binding key is not a weight, in the plugin's words (sent as 406 PRECONDITION_FAILED).
pub fn check_weight(key: &str) -> Result<u64, String> {
    let digits = key.strip_prefix('+').unwrap_or(key);
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(d) if !key.starts_with('+') => (true, d),
        _ => (false, digits),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "The binding key must be an integer: {}",
            erlang_binary(key.as_bytes())
        ));
    }
    let zero = digits.bytes().all(|b| b == b'0');
    if negative || zero {
        return Err("The binding key must be greater than 0".into());
    }
    // Beyond u64 the value saturates: it is capped anyway.
    Ok(digits
        .parse::<u64>()
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_WEIGHT))
}

/// A binary as Erlang's `~tp` prints it in the plugin's message: `<<"abc">>`, with escapes,
/// or a list of byte values when it is not printable text.
fn erlang_binary(b: &[u8]) -> String {
    let printable = |c: char| !c.is_control() || matches!(c, '\n' | '\t' | '\r');
    match std::str::from_utf8(b) {
        Ok("") => "<<>>".into(),
        Ok(s) if s.chars().all(printable) => {
            // Current RabbitMQ prints with `~tp`: non-ASCII text gets the `/utf8` suffix.
            let mut out = String::from("<<\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
            out.push('"');
            if !s.is_ascii() {
                out.push_str("/utf8");
            }
            out.push_str(">>");
            out
        }
        _ => {
            let bytes: Vec<String> = b.iter().map(|x| x.to_string()).collect();
            format!("<<{}>>", bytes.join(","))
        }
    }
}

impl Ring {
    pub(super) fn insert(&mut self, key: &str, dest: &Dest) {
        let Ok(weight) = check_weight(key) else {
            return;
        };
        if self.members.iter().any(|(d, _, _)| d == dest) {
            return;
        }
        let seed = match dest {
            Dest::Queue(n) => hash64(b"q", n.as_bytes()),
            Dest::Exchange(n) => hash64(b"e", n.as_bytes()),
        };
        self.members.push((dest.clone(), weight, seed));
    }

    /// Unbinding a destination takes it off the ring, even if another binding to it remains
    /// (as the plugin does); binding it again puts it back.
    pub(super) fn remove(&mut self, dest: &Dest) {
        self.members.retain(|(d, _, _)| d != dest);
    }

    /// Append the one destination `value` maps to (nothing when nothing is bound).
    pub(super) fn route(&self, value: &[u8], out: &mut Vec<Dest>) {
        let h = hash64(b"v", value);
        let mut best: Option<(f64, &Dest)> = None;
        for (dest, weight, seed) in &self.members {
            let u = unit(fmix64(h ^ seed.rotate_left(17)).wrapping_add(*seed));
            // Weighted rendezvous: P(dest wins) = weight / total weight.
            let score = *weight as f64 / -u.ln();
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, dest));
            }
        }
        if let Some((_, d)) = best {
            out.push(d.clone());
        }
    }
}

/// The bytes a message is hashed on; a missing header or property hashes as one fixed value
/// (all such messages go to the same destination, as with the plugin).
pub(super) fn hash_value(on: &HashOn, keys: &[String], props: &AMQPProperties) -> Vec<u8> {
    const MISSING: &[u8] = b"\xffundefined";
    match on {
        HashOn::RoutingKey => keys.first().map_or(Vec::new(), |k| k.as_bytes().to_vec()),
        HashOn::Header(name) => props
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(name.as_str()))
            .map_or(MISSING.to_vec(), field_bytes),
        HashOn::Property(p) => {
            let v = match p.as_str() {
                "message_id" => props
                    .message_id()
                    .as_ref()
                    .map(|s| s.as_str().as_bytes().to_vec()),
                "correlation_id" => props
                    .correlation_id()
                    .as_ref()
                    .map(|s| s.as_str().as_bytes().to_vec()),
                "timestamp" => props.timestamp().map(|t| t.to_string().into_bytes()),
                _ => None,
            };
            v.unwrap_or_else(|| MISSING.to_vec())
        }
    }
}

/// A header value as hashed: strings by their bytes, integers by their decimal digits,
/// anything else by its type and value.
fn field_bytes(v: &AMQPValue) -> Vec<u8> {
    if let Some(b) = crate::field::as_bytes(v) {
        return b.to_vec();
    }
    if let Some(i) = crate::field::as_i64(v) {
        return i.to_string().into_bytes();
    }
    format!("{v:?}").into_bytes()
}

/// FNV-1a over a domain tag and the bytes, then a finalizer: fixed across runs and builds.
fn hash64(tag: &[u8], bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.iter().chain([0u8].iter()).chain(bytes) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix64(h)
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// A hash as a number strictly between 0 and 1.
fn unit(h: u64) -> f64 {
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: &str) -> Dest {
        Dest::Queue(n.into())
    }

    fn pick(r: &Ring, v: &str) -> Dest {
        let mut out = Vec::new();
        r.route(v.as_bytes(), &mut out);
        out.pop().unwrap()
    }

    #[test]
    fn weights_as_the_plugin_checks_them() {
        assert_eq!(check_weight("3"), Ok(3));
        assert_eq!(check_weight("+7"), Ok(7));
        assert_eq!(check_weight("007"), Ok(7));
        let int = |s: &str| format!("The binding key must be an integer: {s}");
        assert_eq!(check_weight("abc"), Err(int("<<\"abc\">>")));
        assert_eq!(check_weight(""), Err(int("<<>>")));
        assert_eq!(check_weight("1.5"), Err(int("<<\"1.5\">>")));
        assert_eq!(check_weight(" 1"), Err(int("<<\" 1\">>")));
        assert_eq!(check_weight("a\"b"), Err(int("<<\"a\\\"b\">>")));
        assert_eq!(check_weight("é"), Err(int("<<\"é\"/utf8>>")));
        assert_eq!(check_weight("a\nb"), Err(int("<<\"a\\nb\">>")));
        let positive = Err("The binding key must be greater than 0".to_string());
        assert_eq!(check_weight("0"), positive);
        assert_eq!(check_weight("-2"), positive);
        assert_eq!(check_weight("99999999999999999999999"), Ok(MAX_WEIGHT));
    }

    #[test]
    fn shares_follow_weights_and_adding_a_member_only_moves_values_to_it() {
        let mut r = Ring::default();
        r.insert("1", &q("a"));
        r.insert("3", &q("b"));
        r.insert("5", &q("a")); // a second binding to the same queue does not count
        let n = 20_000;
        let before: Vec<Dest> = (0..n).map(|i| pick(&r, &format!("k{i}"))).collect();
        let a = before.iter().filter(|d| **d == q("a")).count();
        // Expected 5000, standard deviation 61: 5 sigma.
        assert!((4700..=5300).contains(&a), "{a}");
        r.insert("2", &q("c"));
        for (i, old) in before.iter().enumerate() {
            let new = pick(&r, &format!("k{i}"));
            assert!(new == *old || new == q("c"));
        }
        r.remove(&q("a"));
        assert!((0..1000).all(|i| pick(&r, &format!("k{i}")) != q("a")));
    }
}
