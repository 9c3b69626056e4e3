//! Single active consumer (`x-single-active-consumer`): only one registered consumer
//! receives; the others wait. When it goes, the waiting consumer with the highest priority
//! (`x-priority`) takes over, the earliest registered among equals. On a quorum queue a
//! consumer that registers with a higher priority than the active one takes over too (RabbitMQ
//! 4.0+): the active one gets nothing more and hands over once its deliveries are settled.

use super::{Queue, QueueKind, State};

impl Queue {
    /// The consumer to deliver to now under single active consumer, if it can take more.
    pub(super) fn pick_active(&self, st: &mut State) -> Option<usize> {
        let active = match st.active {
            Some(a) if a < st.consumers.len() => a,
            _ => {
                st.active = best_waiting(st, None, self.quorum());
                st.active?
            }
        };
        if self.quorum() {
            let p = st.consumers[active].priority;
            if let Some(next) = best_waiting(st, Some(active), true) {
                if st.consumers[next].priority > p {
                    // A higher priority consumer waits: hand over once nothing is unsettled.
                    if st.consumers[active].unacked > 0 {
                        return None;
                    }
                    st.active = Some(next);
                    return st.consumers[next].has_credit().then_some(next);
                }
            }
        }
        st.consumers[active].has_credit().then_some(active)
    }

    fn quorum(&self) -> bool {
        self.features.kind == QueueKind::Quorum
    }

    /// Remove the consumer at `idx`, keeping the round-robin position and the active consumer
    /// right; an active consumer that goes is replaced.
    pub(super) fn detach(&self, st: &mut State, idx: usize) -> super::Consumer {
        let c = st.consumers.remove(idx);
        st.next_consumer = 0;
        st.active = match st.active {
            Some(a) if a == idx => best_waiting(st, None, self.quorum()),
            Some(a) if a > idx => Some(a - 1),
            other => other,
        };
        c
    }
}

/// The consumer that should become active: highest priority, then (quorum queues) one with
/// credit, then the earliest registered.
fn best_waiting(st: &State, skip: Option<usize>, quorum: bool) -> Option<usize> {
    let mut best: Option<(i32, bool, usize)> = None;
    for (i, c) in st.consumers.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        let credit = quorum && c.has_credit();
        match best {
            Some((p, cr, _)) if (p, cr) >= (c.priority, credit) => {}
            _ => best = Some((c.priority, credit, i)),
        }
    }
    best.map(|(_, _, i)| i)
}
