//! What acked units changed that redb's committed state does not show yet.
//!
//! With the journal, a group is acked once journaled, and redb commits it
//! later with thousands of others (`writer.rs`). A read must still see
//! every acked unit; [`Store::fence`](super::Store::fence) gets that by
//! having the open transaction committed first, which costs a redb
//! commit each time, and on the MO path a lookup comes with nearly every
//! MO (the opt-out app asks for each sender, a delivery report looks up
//! its message). This overlay lets those point lookups skip the fence:
//!
//! - opt-outs: the value each acked, unapplied unit left for an identity,
//!   answered from here;
//! - messages: the ids acked, unapplied units put or changed. A lookup
//!   of one of them fences (rare: a message a few hundred milliseconds
//!   old); any other id is read from the last commit, which already holds
//!   everything acked about it.
//!
//! MO keys (the dedupe of every MO) have their own copy in memory
//! (`Shared::recent_mos`), and scans still fence.
//!
//! The writer notes a group here before the group counts as acked, and
//! forgets it only once a commit that holds it is visible to reads
//! ([`Unapplied::settle`]); so a lookup that misses here and then opens a
//! snapshot finds in it whatever the missed units wrote. The overlay is
//! bounded as the acked, unapplied groups are: by the open transaction's
//! and the checkpoint's held groups' bounds (`APPLY_MAX_UNITS`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::unit::{Op, Unit};
use crate::model::{MessageId, Micros};

/// See the module's docs. Groups are numbered as `Shared::acked` counts
/// them.
#[derive(Debug, Default)]
pub(crate) struct Unapplied {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Message id → the last group that put or changed it.
    messages: HashMap<MessageId, u64>,
    /// Identity → the last group that opted it out or in, and the opt-out
    /// time it left (`None`: opted in).
    optouts: HashMap<String, (u64, Option<Micros>)>,
}

impl Unapplied {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes what the applied `units` of group `group` change; called
    /// before the group counts as acked.
    pub(crate) fn note<'u>(&self, group: u64, units: impl IntoIterator<Item = &'u Unit>) {
        let mut state = self.state();
        for unit in units {
            for op in &unit.ops {
                match op {
                    Op::Put(message) => {
                        state.messages.insert(message.id, group);
                    }
                    Op::Update(update) => {
                        state.messages.insert(update.id, group);
                    }
                    Op::OptOut { identity, at } => {
                        state.optouts.insert(identity.clone(), (group, Some(*at)));
                    }
                    Op::OptIn { identity } => {
                        state.optouts.insert(identity.clone(), (group, None));
                    }
                    // Read by scans, which fence.
                    Op::AddDeliveryError(_)
                    | Op::AddDlr(_)
                    | Op::OweCallback(_)
                    | Op::ForgetCallback { .. } => {}
                }
            }
        }
    }

    /// Groups up to `visible` are in a commit that reads see: forgets them.
    pub(crate) fn settle(&self, visible: u64) {
        let mut state = self.state();
        if state.messages.is_empty() && state.optouts.is_empty() {
            return;
        }
        state.messages.retain(|_, group| *group > visible);
        state.optouts.retain(|_, (group, _)| *group > visible);
    }

    /// Whether an acked unit not yet visible put or changed message `id`.
    pub(crate) fn touches_message(&self, id: MessageId) -> bool {
        self.state().messages.contains_key(&id)
    }

    /// What an acked unit not yet visible left for `identity`: `Some`
    /// with its opt-out time (`None` once opted in), or `None` if no such
    /// unit touched it.
    pub(crate) fn optout(&self, identity: &str) -> Option<Option<Micros>> {
        self.state().optouts.get(identity).map(|(_, at)| *at)
    }

    /// Entries held (tests: the overlay empties as commits come).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let state = self.state();
        state.messages.len() + state.optouts.len()
    }
}
