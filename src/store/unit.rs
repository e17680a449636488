//! A [`Unit`] is what callers hand the writer: a list of [`Op`]s applied
//! atomically, in order, and answered with an [`Outcome`].
//!
//! Ops are plain data, not closures, so a unit can be logged, counted and
//! checked before it reaches the writer, and the writer's transaction never
//! runs caller code.

use serde::{Deserialize, Serialize};

use crate::model::{
    DeliveryError, DlrEvent, Message, MessageId, Micros, MoKey, PendingCallback, Status,
};

/// Ops applied together or not at all.
// Serialize: a unit is what the journal records (`journal.rs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    /// If an MO with this key is already stored, nothing of the unit is
    /// applied and the outcome is [`Outcome::Duplicate`]. The check runs
    /// inside the writer's transaction, so two units racing with the same
    /// MO (even in one batch) apply exactly once.
    pub unless_mo_known: Option<MoKey>,
    /// The ops, applied in order; a later op sees the earlier ones.
    pub ops: Vec<Op>,
}

impl Unit {
    /// An empty unit.
    pub fn new() -> Unit {
        Unit::default()
    }

    /// Adds the precondition: skip the unit if the MO `key` names is
    /// already stored.
    pub fn unless_mo_known(mut self, key: MoKey) -> Unit {
        self.unless_mo_known = Some(key);
        self
    }

    /// Appends an op.
    pub fn with(mut self, op: Op) -> Unit {
        self.ops.push(op);
        self
    }

    /// Appends an op.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// A rough size in memory, for the writer's batch budget. It need not be
    /// exact, only grow with what the unit carries.
    pub(crate) fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Unit>() + self.ops.iter().map(Op::approx_bytes).sum::<usize>()
    }
}

/// One change to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Stores the message, replacing any message with its id. Keeps every
    /// index in step: `mo_keys` for an MO with a Kannel UUID (refused if
    /// its key belongs to another message), `by_status`, the counts, and the
    /// connection (recorded the first time it is seen).
    Put(Box<Message>),
    /// Changes fields of a stored message.
    Update(Update),
    /// Records a failed send attempt for a stored message.
    AddDeliveryError(DeliveryError),
    /// Records a delivery report for a stored message.
    AddDlr(DlrEvent),
    /// Marks a (normalized) identity as opted out since `at`; opting out
    /// again moves the time.
    OptOut { identity: String, at: Micros },
    /// Removes an opt-out; a no-op if there was none.
    OptIn { identity: String },
    /// Records a call owed to a `dlr-url`.
    OweCallback(PendingCallback),
    /// Forgets an owed call (made, rescheduled or given up); a no-op if it
    /// is not owed.
    ForgetCallback { due: Micros, id: [u8; 16] },
}

impl Op {
    /// [`Op::Put`] without spelling the box.
    pub fn put(message: Message) -> Op {
        Op::Put(Box::new(message))
    }

    fn approx_bytes(&self) -> usize {
        let heap = match self {
            Op::Put(m) => {
                std::mem::size_of::<Message>()
                    + m.text.len()
                    + m.connection.backend.len()
                    + m.connection.identity.len()
                    + m.connection.address.len()
                    + m.kannel.as_ref().map_or(0, |k| {
                        k.udh.as_ref().map_or(0, Vec::len)
                            + k.binary.as_ref().map_or(0, Vec::len)
                            + k.meta_data.as_ref().map_or(0, String::len)
                    })
            }
            Op::Update(u) => {
                u.external_id.as_ref().map_or(0, String::len)
                    + u.foreign_id.as_ref().map_or(0, String::len)
            }
            Op::AddDeliveryError(e) => e.log.len(),
            Op::AddDlr(d) => d.text.len(),
            Op::OptOut { identity, .. } | Op::OptIn { identity } => identity.len(),
            Op::OweCallback(c) => c.url.len(),
            Op::ForgetCallback { .. } => 0,
        };
        std::mem::size_of::<Op>() + heap
    }
}

/// Explicit changes to one stored message: every field left `None` is kept.
/// `updated` is always set to `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub id: MessageId,
    /// When the change happened; becomes the message's `updated`.
    pub at: Micros,
    pub status: Option<Status>,
    pub sent: Option<Micros>,
    pub delivered: Option<Micros>,
    pub attempts: Option<u32>,
    /// `Some(None)` clears the retry time, `Some(Some(t))` sets it.
    pub retry_after: Option<Option<Micros>>,
    pub external_id: Option<String>,
    /// The SMSC's id, learnt from a delivery report (Kannel details).
    pub foreign_id: Option<String>,
}

impl Update {
    /// A change to message `id` at `at` that so far only touches `updated`.
    pub fn new(id: MessageId, at: Micros) -> Update {
        Update {
            id,
            at,
            status: None,
            sent: None,
            delivered: None,
            attempts: None,
            retry_after: None,
            external_id: None,
            foreign_id: None,
        }
    }

    /// A status change at `at` that also stamps the time the status stands
    /// for: `sent` for [`Status::Sent`], `delivered` for
    /// [`Status::Delivered`].
    pub fn status(id: MessageId, status: Status, at: Micros) -> Update {
        let mut update = Update::new(id, at);
        update.status = Some(status);
        match status {
            Status::Sent => update.sent = Some(at),
            Status::Delivered => update.delivered = Some(at),
            _ => {}
        }
        update
    }

    /// Sets the attempt count.
    pub fn attempts(mut self, attempts: u32) -> Update {
        self.attempts = Some(attempts);
        self
    }

    /// Sets (or, with `None`, clears) the time before which not to retry.
    pub fn retry_after(mut self, at: Option<Micros>) -> Update {
        self.retry_after = Some(at);
        self
    }

    /// Sets the backend's id for the message.
    pub fn external_id(mut self, id: impl Into<String>) -> Update {
        self.external_id = Some(id.into());
        self
    }

    /// Sets the SMSC's id for the message.
    pub fn foreign_id(mut self, id: impl Into<String>) -> Update {
        self.foreign_id = Some(id.into());
        self
    }
}

impl From<Update> for Op {
    fn from(update: Update) -> Op {
        Op::Update(update)
    }
}

/// What became of a unit that was not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Every op was applied, and (for [`Store::commit`](super::Store::commit))
    /// the transaction holding them is durable.
    Applied,
    /// The unit's `unless_mo_known` MO is already stored, as this
    /// message; nothing was applied.
    Duplicate(MessageId),
}
