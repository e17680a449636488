//! Message ids for the PostgreSQL store: handed out from memory (callers
//! name a message before storing it, and `allocate_id` cannot wait), out
//! of blocks reserved from the database's `id_blocks` sequence.
//!
//! A block is [`BLOCK`] ids no other instance sharing the database ever
//! gets (`reserve_id_block`, see `schema.rs`). The store holds the block
//! it hands ids from and one spare; when it starts on the spare, the
//! writer reserves the next (one statement in its next group, or at once
//! when idle). Ids therefore grow within an instance and are unique across
//! instances.
//!
//! If both blocks run out before the writer could reserve another (the
//! database unreachable while messages keep coming, each failing to
//! commit), ids go on past the block and the next reservation starts above
//! the highest id given. That is safe with one instance, which this
//! version is; with several, running out would have to wait instead.

use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;
use tracing::warn;

use crate::model::MessageId;

/// Ids per reserved block: with the spare, about a second of ids at the
/// busiest this machine gets (two per MO with its reply), so a reservation
/// is rarely late.
pub(crate) const BLOCK: u64 = 16_384;

#[derive(Debug)]
struct State {
    /// The next id to hand out.
    next: MessageId,
    /// The end (exclusive) of the block `next` is in.
    end: MessageId,
    /// The start of a reserved block not yet used.
    spare: Option<MessageId>,
    /// Ids were handed out past every reserved block.
    overran: bool,
}

/// The allocator, shared by every handle and the writer.
#[derive(Debug)]
pub(crate) struct Ids {
    state: Mutex<State>,
    /// Tells the writer a spare block is wanted.
    pub(crate) wanted: Notify,
}

impl Ids {
    /// An allocator handing out `first`'s block, with `spare` in reserve.
    pub(crate) fn new(first: MessageId, spare: MessageId) -> Ids {
        Ids {
            state: Mutex::new(State {
                next: first,
                end: first + BLOCK,
                spare: Some(spare),
                overran: false,
            }),
            wanted: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh id.
    pub(crate) fn allocate(&self) -> MessageId {
        let mut s = self.state();
        if s.next >= s.end {
            match s.spare.take() {
                Some(start) if start >= s.next => {
                    s.next = start;
                    s.end = start + BLOCK;
                }
                _ => {
                    if !s.overran {
                        warn!(
                            next = s.next,
                            "message ids ran out of reserved blocks; going on past them"
                        );
                    }
                    s.overran = true;
                    s.end = s.next + 1;
                }
            }
            self.wanted.notify_one();
        }
        let id = s.next;
        s.next += 1;
        id
    }

    /// After a message was put under `id` (a caller may choose one): no id
    /// at or below it is handed out again.
    pub(crate) fn bump_past(&self, id: MessageId) {
        let mut s = self.state();
        if id < s.next {
            return;
        }
        s.next = id.saturating_add(1);
        if s.next > s.end {
            s.end = s.next;
            s.overran = true;
        }
        if s.spare.is_some_and(|spare| spare <= id) {
            s.spare = None;
        }
        self.wanted.notify_one();
    }

    /// The floor a new block must be above, if one is wanted: the
    /// highest id given or reserved so far.
    pub(crate) fn wanted_floor(&self) -> Option<MessageId> {
        let s = self.state();
        (s.spare.is_none()).then(|| s.end.max(s.next).saturating_sub(1))
    }

    /// Takes a newly reserved block as the spare.
    pub(crate) fn add_block(&self, start: MessageId) {
        let mut s = self.state();
        if start >= s.next && s.spare.is_none() {
            s.spare = Some(start);
            s.overran = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_through_the_block_then_the_spare() {
        let ids = Ids::new(BLOCK, 5 * BLOCK);
        assert_eq!(ids.allocate(), BLOCK);
        for _ in 1..BLOCK {
            ids.allocate();
        }
        assert_eq!(ids.wanted_floor(), None);
        assert_eq!(ids.allocate(), 5 * BLOCK);
        assert_eq!(ids.wanted_floor(), Some(6 * BLOCK - 1));
        ids.add_block(9 * BLOCK);
        assert_eq!(ids.wanted_floor(), None);
    }

    #[test]
    fn without_a_spare_ids_go_on_and_the_next_block_starts_above() {
        let ids = Ids::new(BLOCK, 2 * BLOCK);
        for _ in 0..2 * BLOCK {
            ids.allocate();
        }
        let past = ids.allocate();
        assert_eq!(past, 3 * BLOCK);
        assert_eq!(ids.allocate(), 3 * BLOCK + 1);
        assert_eq!(ids.wanted_floor(), Some(3 * BLOCK + 1));
        // A block at or below what was given is not taken.
        ids.add_block(3 * BLOCK);
        assert_eq!(ids.wanted_floor(), Some(3 * BLOCK + 1));
    }

    #[test]
    fn a_put_under_a_chosen_id_moves_the_next_past_it() {
        let ids = Ids::new(BLOCK, 2 * BLOCK);
        ids.bump_past(BLOCK + 10);
        assert_eq!(ids.allocate(), BLOCK + 11);
        ids.bump_past(7 * BLOCK);
        assert_eq!(ids.allocate(), 7 * BLOCK + 1);
        assert_eq!(ids.wanted_floor(), Some(7 * BLOCK + 1));
    }
}
