//! Delayed exchanges (`x-delayed-message`, the contract of the community
//! rabbitmq_delayed_message_exchange plugin): a message whose `x-delay` header asks for a
//! delay (milliseconds, more than 0 and at most 2^32-1) is held by the exchange and routed,
//! with the rules of its `x-delayed-type`, once the delay has passed. Released messages carry
//! `x-delay` negated, as the plugin delivers them, so that no further delayed exchange holds
//! them again. Messages without a positive `x-delay` are routed at once.
//!
//! Unlike the plugin, a durable exchange keeps its persistent messages in the store (confirmed
//! once written and synced) so that they are released on time after a restart; other held
//! messages live in memory only. Held messages are released in due order (publish order for
//! equal due times) by one timer thread for the whole process.

use super::VHost;
use crate::error::AmqpResult;
use crate::exchange::Exchange;
use crate::message::Message;
use amq_protocol::types::{AMQPValue, FieldTable};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest delay honoured (Erlang's timer limit, which the plugin applies); a longer one
/// routes the message at once, as the plugin does.
const MAX_DELAY: i64 = u32::MAX as i64;

/// The messages one vhost's delayed exchanges hold, by (due time in ms, sequence).
#[derive(Debug, Default)]
pub(super) struct Held {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pending: BTreeMap<(u64, u64), Holding>,
    /// The due time the timer will wake this vhost at.
    wake_at: Option<u64>,
}

#[derive(Debug)]
struct Holding {
    exchange: String,
    msg: Arc<Message>,
    /// Its key in the store, for a persistent message of a durable exchange.
    stored: Option<Vec<u8>>,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `x-delay` header as the plugin reads it: any integer type, a string of digits, or a
/// float (truncated).
fn requested_delay(headers: Option<&FieldTable>) -> Option<i64> {
    let v = headers?.inner().get("x-delay")?;
    if let Some(i) = crate::field::as_i64(v) {
        return Some(i);
    }
    match v {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
            crate::field::as_text(v)?.parse().ok()
        }
        AMQPValue::Float(f) => Some(f.trunc() as i64),
        AMQPValue::Double(f) => Some(f.trunc() as i64),
        AMQPValue::DecimalValue(d) => {
            Some((d.value as i64) / 10i64.checked_pow(u32::from(d.scale))?)
        }
        _ => None,
    }
}

/// How long a delayed exchange holds `msg`: None routes it now.
pub(super) fn hold_for(msg: &Message) -> Option<u64> {
    requested_delay(msg.properties.headers().as_ref())
        .filter(|d| *d > 0 && *d <= MAX_DELAY)
        .map(|d| d as u64)
}

/// The message as released: `x-delay` negated (a signed 32-bit integer when it fits), the
/// rest unchanged.
fn released(msg: &Message) -> Arc<Message> {
    let mut props = msg.properties.clone();
    if let Some(d) = requested_delay(props.headers().as_ref()) {
        let mut h = props.headers().clone().unwrap_or_default();
        let v = match i32::try_from(-d) {
            Ok(x) => AMQPValue::LongInt(x),
            Err(_) => AMQPValue::LongLongInt(-d),
        };
        h.insert("x-delay".into(), v);
        props = props.with_headers(h);
    }
    Message::with_properties(
        msg.exchange.clone(),
        msg.routing_key.clone(),
        props,
        msg.body.clone(),
    )
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl VHost {
    /// Hold `msg` at the delayed exchange `x` for `delay` ms. Returns the store ticket to wait
    /// on before confirming, when it was written to disk.
    pub(super) fn hold(
        &self,
        x: &Exchange,
        msg: &Arc<Message>,
        delay: u64,
    ) -> AmqpResult<Option<u64>> {
        // Rounded up: a message is never released before its delay has fully passed.
        let now = since_epoch();
        let partial_ms = u64::from(!now.subsec_nanos().is_multiple_of(1_000_000));
        let due = now.as_millis() as u64 + partial_ms + delay;
        let seq = self.store.next_delayed_seq();
        let (stored, ticket) = if x.durable && msg.is_persistent() {
            let (k, t) = super::stored(self.store.put_delayed(&self.name, &x.name, due, seq, msg))?;
            (Some(k), Some(t))
        } else {
            (None, None)
        };
        self.hold_until(
            due,
            seq,
            Holding {
                exchange: x.name.clone(),
                msg: msg.clone(),
                stored,
            },
        );
        Ok(ticket)
    }

    fn hold_until(&self, due: u64, seq: u64, h: Holding) {
        let mut st = self.held.lock();
        st.pending.insert((due, seq), h);
        if st.wake_at.is_none_or(|w| due < w) {
            st.wake_at = Some(due);
            schedule(due, self.me.clone());
        }
    }

    /// A held message read back from the store at startup; dropped if its exchange is gone.
    pub fn restore_delayed(&self, r: crate::store::RecoveredDelayed) {
        let holds = self
            .exchange(&r.exchange)
            .is_some_and(|x| x.kind == crate::exchange::ExchangeKind::Delayed && x.durable);
        if !holds {
            self.store.remove_delayed(r.key);
            return;
        }
        let h = Holding {
            exchange: r.exchange,
            msg: r.msg,
            stored: Some(r.key),
        };
        self.hold_until(r.due, r.seq, h);
    }

    /// Drop what the (deleted) exchange `name` holds.
    pub(super) fn drop_held(&self, name: &str) {
        let gone: Vec<Holding> = {
            let mut st = self.held.lock();
            let keys: Vec<(u64, u64)> = st
                .pending
                .iter()
                .filter(|(_, h)| h.exchange == name)
                .map(|(k, _)| *k)
                .collect();
            keys.iter().filter_map(|k| st.pending.remove(k)).collect()
        };
        for h in gone {
            if let Some(k) = h.stored {
                self.store.remove_delayed(k);
            }
        }
    }

    /// Messages held across this vhost (for tests and metrics).
    pub fn held_count(&self) -> usize {
        self.held.lock().pending.len()
    }

    /// Route every held message that is due, in due order. `fired` is the due time the
    /// timer was set for: if it is the one this vhost waits for, wait for the next one (a
    /// wake made stale by an earlier message schedules nothing).
    fn release_due(&self, fired: u64) {
        let due: Vec<Holding> = {
            let mut st = self.held.lock();
            let now = since_epoch().as_millis() as u64;
            let later = st.pending.split_off(&(now + 1, 0));
            let due = std::mem::replace(&mut st.pending, later);
            if st.wake_at.is_none_or(|w| w == fired) {
                st.wake_at = st.pending.keys().next().map(|k| k.0);
                if let Some(at) = st.wake_at {
                    schedule(at, self.me.clone());
                }
            }
            due.into_values().collect()
        };
        for h in due {
            if let Some(x) = self.exchange(&h.exchange) {
                // Not returned to anyone if unroutable; the alternate exchange still applies.
                if let Err(e) = self.publish(&x, released(&h.msg)) {
                    tracing::error!(exchange = h.exchange, error = %e, "cannot release a delayed message");
                }
            }
            if let Some(k) = h.stored {
                self.store.remove_delayed(k);
            }
        }
    }
}

static RELEASE: crate::timer::Timer = crate::timer::Timer::new("warren-delayed");

/// Wake `vhost` when the wall clock reaches `due` (ms since the epoch).
fn schedule(due: u64, vhost: Weak<VHost>) {
    let wait = Duration::from_millis(due).saturating_sub(since_epoch());
    RELEASE.schedule(Instant::now() + wait, move || {
        if let Some(v) = vhost.upgrade() {
            v.release_due(due);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::basic::AMQPProperties;
    use amq_protocol::types::{DecimalValue, LongString};

    fn with_delay(v: AMQPValue) -> Arc<Message> {
        let mut h = FieldTable::default();
        h.insert("x-delay".into(), v);
        h.insert("a".into(), AMQPValue::LongString(LongString::from("b")));
        Message::with_properties(
            "x".into(),
            "k".into(),
            AMQPProperties::default().with_headers(h),
            bytes::Bytes::from_static(b"body"),
        )
    }

    #[test]
    fn delays_are_read_as_the_plugin_reads_them() {
        let d = |v| hold_for(&with_delay(v));
        assert_eq!(d(AMQPValue::LongInt(1500)), Some(1500));
        assert_eq!(d(AMQPValue::ShortShortUInt(7)), Some(7));
        assert_eq!(d(AMQPValue::LongString("250".into())), Some(250));
        assert_eq!(d(AMQPValue::Double(99.9)), Some(99));
        let dec = DecimalValue {
            scale: 1,
            value: 25,
        };
        assert_eq!(d(AMQPValue::DecimalValue(dec)), Some(2));
        assert_eq!(d(AMQPValue::LongInt(0)), None);
        assert_eq!(d(AMQPValue::LongInt(-5)), None);
        assert_eq!(d(AMQPValue::LongString("soon".into())), None);
        assert_eq!(d(AMQPValue::Boolean(true)), None);
        assert_eq!(d(AMQPValue::LongLongInt(MAX_DELAY)), Some(u32::MAX as u64));
        assert_eq!(d(AMQPValue::LongLongInt(MAX_DELAY + 1)), None);
    }

    #[test]
    fn released_messages_carry_the_delay_negated() {
        let m = released(&with_delay(AMQPValue::LongString("250".into())));
        let h = m.properties.headers().clone().unwrap();
        assert_eq!(h.inner().get("x-delay"), Some(&AMQPValue::LongInt(-250)));
        assert_eq!(
            h.inner().get("a"),
            Some(&AMQPValue::LongString(LongString::from("b")))
        );
        assert_eq!(hold_for(&m), None);
        let big = released(&with_delay(AMQPValue::LongLongInt(MAX_DELAY)));
        let h = big.properties.headers().clone().unwrap();
        assert_eq!(
            h.inner().get("x-delay"),
            Some(&AMQPValue::LongLongInt(-MAX_DELAY))
        );
    }
}
