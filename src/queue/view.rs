//! A queue as the management API shows it: its depth, bytes and consumers, read under the
//! queue's lock in one go.

use super::{Queue, QueueKind};
use amq_protocol::types::FieldTable;
use std::sync::Arc;

/// A consistent picture of a queue.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub ready: usize,
    pub ready_bytes: u64,
    pub unacked: usize,
    pub unacked_bytes: u64,
    pub consumers: Vec<ConsumerView>,
    /// Single active consumer: the tag of the one receiving.
    pub active_tag: Option<Arc<str>>,
}

/// One consumer of a queue.
#[derive(Debug, Clone)]
pub struct ConsumerView {
    pub conn: u64,
    pub channel: u16,
    pub tag: Arc<str>,
    pub ack_required: bool,
    pub exclusive: bool,
    pub prefetch: u32,
    pub arguments: FieldTable,
    /// False for a waiting single-active-consumer.
    pub active: bool,
}

/// A queue's depth, bytes and consumer count, without copies of its consumers (what a
/// Prometheus scrape reads of every queue).
#[derive(Debug, Clone, Copy, Default)]
pub struct Levels {
    pub ready: usize,
    pub ready_bytes: u64,
    pub unacked: usize,
    pub unacked_bytes: u64,
    pub consumers: usize,
}

impl Queue {
    pub fn levels(&self) -> Levels {
        let mut st = self.lock();
        self.drop_expired(&mut st);
        Levels {
            ready: st.ready.len(),
            ready_bytes: st.ready.bytes(),
            unacked: st.unacked,
            unacked_bytes: st.unacked_bytes,
            consumers: st.consumers.len(),
        }
    }

    /// (ready, unacked) messages.
    pub fn depth(&self) -> (usize, usize) {
        let mut st = self.lock();
        self.drop_expired(&mut st);
        (st.ready.len(), st.unacked)
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut st = self.lock();
        self.drop_expired(&mut st);
        let single = self.features.single_active;
        let consumers = st
            .consumers
            .iter()
            .enumerate()
            .map(|(i, c)| ConsumerView {
                conn: c.key.conn,
                channel: c.key.channel,
                tag: c.key.tag.clone(),
                ack_required: !c.no_ack,
                exclusive: c.exclusive,
                prefetch: c.prefetch,
                arguments: c.arguments.clone(),
                active: !single || st.active == Some(i),
            })
            .collect();
        let active_tag = st
            .active
            .filter(|_| single)
            .and_then(|i| st.consumers.get(i))
            .map(|c| c.key.tag.clone());
        Snapshot {
            ready: st.ready.len(),
            ready_bytes: st.ready.bytes(),
            unacked: st.unacked,
            unacked_bytes: st.unacked_bytes,
            consumers,
            active_tag,
        }
    }

    /// "classic" or "quorum", as the API names the type.
    pub fn type_name(&self) -> &'static str {
        match self.kind() {
            QueueKind::Quorum => "quorum",
            _ => "classic",
        }
    }
}
