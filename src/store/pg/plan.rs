//! How a group of units becomes a few multi-row statements.
//!
//! The writer first reads, locking them (`FOR UPDATE`), the messages the
//! group's ops name and the owners of the MO keys it names ([`Needs`]).
//! Then every unit is applied here, in order, to that view ([`View`]),
//! with exactly the redb store's rules (`apply.rs`): a known MO is a
//! duplicate, an op naming a missing message refuses its unit, a put
//! taking another message's Kannel UUID is refused, a later op sees the
//! earlier ones. A refused unit's changes to the view are undone, newest
//! first, and the units after it go on. What is left ([`Plan`]) is the
//! final state of every row the applied units touched, written by one
//! statement per table, pipelined with the COMMIT: one round trip,
//! whatever the group's size, and no savepoint (whose subtransactions
//! would cost every other session of the database).
//!
//! The rows read are locked, so no other transaction changes them before
//! the group commits. The one thing another instance can do meanwhile is
//! store an MO with a key this group also stores: the UNIQUE index on MO
//! keys catches that at the insert, and the writer rolls the group back
//! and plans it again (`writer.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{
    DeliveryError, Direction, DlrEvent, Message, MessageId, Micros, MoKey, PendingCallback, Status,
};
use crate::store::apply::apply_update;
use crate::store::codec::encode_into;
use crate::store::error::{uuid_text, Rejection, StoreError};
use crate::store::unit::{Op, Outcome, Unit};

/// What the writer reads before planning a group.
#[derive(Debug, Default)]
pub(crate) struct Needs {
    /// Every message id an op names.
    pub(crate) ids: Vec<i64>,
    /// Every MO key a unit names (`unless_mo_known`) or a put stores.
    pub(crate) keys: Vec<MoKey>,
}

impl Needs {
    pub(crate) fn of<'a>(units: impl Iterator<Item = &'a Unit>) -> Needs {
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for unit in units {
            if let Some(key) = unit.unless_mo_known {
                keys.insert((key.time, key.uuid));
            }
            for op in &unit.ops {
                let id = match op {
                    Op::Put(m) => {
                        if let Some(key) = MoKey::of(m) {
                            keys.insert((key.time, key.uuid));
                        }
                        m.id
                    }
                    Op::Update(u) => u.id,
                    Op::AddDeliveryError(e) => e.message_id,
                    Op::AddDlr(d) => d.message_id,
                    Op::OweCallback(c) => c.message_id,
                    Op::OptOut { .. } | Op::OptIn { .. } | Op::ForgetCallback { .. } => continue,
                };
                // An id beyond bigint cannot be stored, so is never found.
                if let Ok(id) = i64::try_from(id) {
                    ids.insert(id);
                }
            }
        }
        Needs {
            ids: ids.into_iter().collect(),
            keys: keys
                .into_iter()
                .map(|(time, uuid)| MoKey { time, uuid })
                .collect(),
        }
    }
}

/// The rows a group reads, as the database had them.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Every message named: `None` when not stored, an error when its
    /// body does not decode.
    messages: HashMap<MessageId, Result<Option<Message>, StoreError>>,
    /// Which message has each key named (or a loaded message has).
    keys: HashMap<MoKey, Option<MessageId>>,
}

impl View {
    /// A view holding what was read: `found` the messages (by id), `owners`
    /// the keys' owners; every id and key in `needs` not found is absent.
    pub(crate) fn new(
        needs: &Needs,
        found: Vec<(MessageId, Result<Message, StoreError>)>,
        owners: Vec<(MoKey, MessageId)>,
    ) -> View {
        let mut view = View::default();
        for id in &needs.ids {
            view.messages.insert(*id as MessageId, Ok(None));
        }
        for key in &needs.keys {
            view.keys.insert(*key, None);
        }
        for (key, id) in owners {
            view.keys.insert(key, Some(id));
        }
        for (id, message) in found {
            if let Ok(m) = &message {
                if let Some(key) = MoKey::of(m) {
                    view.keys.entry(key).or_insert(Some(id));
                }
            }
            view.messages.insert(id, message.map(Some));
        }
        view
    }
}

/// Changes to the counts, by direction then status (the order of
/// [`Status::ALL`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CountDeltas([[i64; Status::ALL.len()]; 2]);

impl CountDeltas {
    fn add(&mut self, direction: Direction, status: Status, delta: i64) {
        self.0[direction as usize][status as usize] += delta;
    }

    fn merge(&mut self, other: &CountDeltas) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter()) {
            for (m, t) in mine.iter_mut().zip(theirs.iter()) {
                *m += t;
            }
        }
    }

    /// The non-zero changes.
    pub(crate) fn nonzero(&self) -> Vec<(Direction, Status, i64)> {
        let mut out = Vec::new();
        for d in [Direction::Incoming, Direction::Outgoing] {
            for s in Status::ALL {
                let delta = self.0[d as usize][s as usize];
                if delta != 0 {
                    out.push((d, s, delta));
                }
            }
        }
        out
    }

    /// Counts one message going away.
    pub(crate) fn remove(&mut self, m: &Message) {
        self.add(m.direction, m.status, -1);
    }
}

/// A row of `messages` to write.
#[derive(Debug)]
pub(crate) struct MessageRow {
    pub(crate) message: Message,
    pub(crate) body: Vec<u8>,
}

/// What a group writes, and each unit's answer.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// One per unit, in order.
    pub(crate) outcomes: Vec<Result<Outcome, StoreError>>,
    /// Messages that were not stored and now are, with a Kannel UUID:
    /// inserted with `ON CONFLICT` on their key.
    pub(crate) new_mos: Vec<MessageRow>,
    /// Every other message written: inserted or replaced by id.
    pub(crate) upserts: Vec<MessageRow>,
    /// Stored messages whose MO key changes: their old keys are cleared
    /// first, so that another message of the group may take them.
    pub(crate) rekeyed: Vec<i64>,
    pub(crate) delivery_errors: Vec<DeliveryError>,
    pub(crate) dlrs: Vec<DlrEvent>,
    /// (backend, identity, address, first seen), first seen in the group.
    pub(crate) connections: Vec<(String, String, String, Micros)>,
    /// Identity -> since, or `None` to remove.
    pub(crate) optouts: BTreeMap<String, Option<Micros>>,
    /// (due, id) -> the call, or `None` to forget it.
    pub(crate) callbacks: BTreeMap<(Micros, [u8; 16]), Option<PendingCallback>>,
    pub(crate) counts: CountDeltas,
    /// The highest message id put, for the id allocator.
    pub(crate) highest_put: Option<MessageId>,
    /// Units applied (with at least one op) and refused.
    pub(crate) applied: u64,
    pub(crate) refused: u64,
}

impl Plan {
    /// Whether the group writes anything.
    pub(crate) fn writes(&self) -> bool {
        !(self.new_mos.is_empty()
            && self.upserts.is_empty()
            && self.delivery_errors.is_empty()
            && self.dlrs.is_empty()
            && self.optouts.is_empty()
            && self.callbacks.is_empty())
    }
}

/// The state of an entry before a unit changed it.
enum Undo {
    Message(MessageId, Option<Box<Message>>),
    Key(MoKey, Option<MessageId>),
    Dirty(MessageId),
    Connection((String, String)),
    OptOut(String, Option<Option<Micros>>),
    Callback((Micros, [u8; 16]), Option<Option<PendingCallback>>),
}

/// Applies `units` in order to `view` and plans the writes.
pub(crate) fn plan<'a>(units: impl Iterator<Item = &'a Unit>, view: View) -> Plan {
    let mut p = Planner {
        original_keys: view
            .messages
            .iter()
            .filter_map(|(id, m)| match m {
                Ok(Some(m)) => Some((*id, MoKey::of(m))),
                _ => None,
            })
            .collect(),
        view,
        dirty: BTreeSet::new(),
        connections: BTreeMap::new(),
        plan: Plan::default(),
        undo: Vec::new(),
        unit_counts: CountDeltas::default(),
    };
    for unit in units {
        let outcome = p.unit(unit);
        match &outcome {
            Ok(Outcome::Applied) if !unit.ops.is_empty() => p.plan.applied += 1,
            Err(_) => p.plan.refused += 1,
            _ => {}
        }
        p.plan.outcomes.push(outcome);
    }
    p.finish()
}

struct Planner {
    view: View,
    /// The keys stored messages had when read.
    original_keys: HashMap<MessageId, Option<MoKey>>,
    /// Messages changed by applied units.
    dirty: BTreeSet<MessageId>,
    /// Connections first seen in this group, in order.
    connections: BTreeMap<(String, String), (usize, String, Micros)>,
    plan: Plan,
    undo: Vec<Undo>,
    unit_counts: CountDeltas,
}

impl Planner {
    fn unit(&mut self, unit: &Unit) -> Result<Outcome, StoreError> {
        if let Some(key) = &unit.unless_mo_known {
            if let Some(Some(owner)) = self.view.keys.get(key) {
                return Ok(Outcome::Duplicate(*owner));
            }
        }
        self.undo.clear();
        self.unit_counts = CountDeltas::default();
        let (errors, dlrs) = (self.plan.delivery_errors.len(), self.plan.dlrs.len());
        for (index, op) in unit.ops.iter().enumerate() {
            if let Err(refusal) = self.op(index, op) {
                self.rollback();
                self.plan.delivery_errors.truncate(errors);
                self.plan.dlrs.truncate(dlrs);
                return Err(refusal);
            }
        }
        self.plan.counts.merge(&self.unit_counts);
        Ok(Outcome::Applied)
    }

    fn op(&mut self, index: usize, op: &Op) -> Result<(), StoreError> {
        match op {
            Op::Put(message) => self.put(index, message),
            Op::Update(update) => {
                let mut message = self.stored(index, update.id)?;
                let before = message.status;
                apply_update(&mut message, update);
                encodable(index, &message)?;
                if message.status != before {
                    self.unit_counts.add(message.direction, before, -1);
                    self.unit_counts.add(message.direction, message.status, 1);
                }
                self.write(message);
                Ok(())
            }
            Op::AddDeliveryError(error) => {
                self.stored(index, error.message_id)?;
                self.plan.delivery_errors.push(error.clone());
                Ok(())
            }
            Op::AddDlr(event) => {
                self.stored(index, event.message_id)?;
                self.plan.dlrs.push(event.clone());
                Ok(())
            }
            Op::OptOut { identity, at } => {
                let old = self.plan.optouts.insert(identity.clone(), Some(*at));
                self.undo.push(Undo::OptOut(identity.clone(), old));
                Ok(())
            }
            Op::OptIn { identity } => {
                let old = self.plan.optouts.insert(identity.clone(), None);
                self.undo.push(Undo::OptOut(identity.clone(), old));
                Ok(())
            }
            Op::OweCallback(callback) => {
                self.stored(index, callback.message_id)?;
                let key = (callback.due, callback.id);
                let old = self.plan.callbacks.insert(key, Some(callback.clone()));
                self.undo.push(Undo::Callback(key, old));
                Ok(())
            }
            Op::ForgetCallback { due, id } => {
                let key = (*due, *id);
                let old = self.plan.callbacks.insert(key, None);
                self.undo.push(Undo::Callback(key, old));
                Ok(())
            }
        }
    }

    /// The message `id` as the group sees it; refuses the unit if it is
    /// not stored or does not decode.
    fn stored(&self, index: usize, id: MessageId) -> Result<Message, StoreError> {
        match self.view.messages.get(&id) {
            Some(Ok(Some(m))) => Ok(m.clone()),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(None)) | None => Err(Rejection::MissingMessage { op: index, id }.into()),
        }
    }

    fn put(&mut self, index: usize, message: &Message) -> Result<(), StoreError> {
        let id = message.id;
        if i64::try_from(id).is_err() {
            return Err(Rejection::Unencodable {
                op: index,
                reason: format!("message id {id} is beyond PostgreSQL's bigint"),
            }
            .into());
        }
        encodable(index, message)?;
        let previous = match self.view.messages.get(&id) {
            Some(Err(e)) => return Err(e.clone()),
            Some(Ok(previous)) => previous.clone(),
            None => None,
        };
        let key = MoKey::of(message);
        if let Some(previous) = &previous {
            self.unit_counts
                .add(previous.direction, previous.status, -1);
            if let Some(old_key) = MoKey::of(previous).filter(|k| Some(*k) != key) {
                if self.view.keys.get(&old_key) == Some(&Some(id)) {
                    self.set_key(old_key, None);
                }
            }
        }
        if let Some(key) = key {
            match self.view.keys.get(&key).copied().flatten() {
                Some(owner) if owner != id => {
                    return Err(Rejection::UuidTaken {
                        op: index,
                        uuid: uuid_text(&key.uuid),
                        id,
                        owner,
                    }
                    .into())
                }
                Some(_) => {}
                None => self.set_key(key, Some(id)),
            }
        }
        self.unit_counts.add(message.direction, message.status, 1);
        let c = &message.connection;
        let conn = (c.backend.clone(), c.identity.clone());
        if !self.connections.contains_key(&conn) {
            let order = self.connections.len();
            self.connections
                .insert(conn.clone(), (order, c.address.clone(), message.date));
            self.undo.push(Undo::Connection(conn));
        }
        self.write(message.clone());
        Ok(())
    }

    fn set_key(&mut self, key: MoKey, owner: Option<MessageId>) {
        let old = self.view.keys.insert(key, owner).flatten();
        self.undo.push(Undo::Key(key, old));
    }

    /// Replaces message `m.id` in the view and marks it for writing.
    fn write(&mut self, m: Message) {
        let id = m.id;
        let old = self.view.messages.insert(id, Ok(Some(m)));
        let old = old.and_then(Result::ok).flatten().map(Box::new);
        self.undo.push(Undo::Message(id, old));
        if self.dirty.insert(id) {
            self.undo.push(Undo::Dirty(id));
        }
    }

    /// Puts back everything the current unit changed, newest first.
    fn rollback(&mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Message(id, old) => {
                    self.view.messages.insert(id, Ok(old.map(|m| *m)));
                }
                Undo::Key(key, old) => {
                    self.view.keys.insert(key, old);
                }
                Undo::Dirty(id) => {
                    self.dirty.remove(&id);
                }
                Undo::Connection(key) => {
                    self.connections.remove(&key);
                }
                Undo::OptOut(identity, Some(old)) => {
                    self.plan.optouts.insert(identity, old);
                }
                Undo::OptOut(identity, None) => {
                    self.plan.optouts.remove(&identity);
                }
                Undo::Callback(key, Some(old)) => {
                    self.plan.callbacks.insert(key, old);
                }
                Undo::Callback(key, None) => {
                    self.plan.callbacks.remove(&key);
                }
            }
        }
    }

    fn finish(mut self) -> Plan {
        for id in std::mem::take(&mut self.dirty) {
            let Some(Ok(Some(message))) = self.view.messages.remove(&id) else {
                continue;
            };
            let mut body = Vec::new();
            if let Err(e) = encode_into(&message, &mut body) {
                // Checked when the op was applied; encoding is
                // deterministic, so this does not happen.
                tracing::error!(id, error = %e, "a planned message no longer encodes");
                continue;
            }
            self.plan.highest_put = self.plan.highest_put.max(Some(id));
            let key = MoKey::of(&message);
            let row = MessageRow { message, body };
            match self.original_keys.get(&id) {
                // Not stored before: a new MO is inserted by its key.
                None if key.is_some() => self.plan.new_mos.push(row),
                None => self.plan.upserts.push(row),
                Some(old) => {
                    if old.is_some() && *old != key {
                        self.plan.rekeyed.push(id as i64);
                    }
                    self.plan.upserts.push(row);
                }
            }
        }
        let mut connections: Vec<_> = std::mem::take(&mut self.connections).into_iter().collect();
        connections.sort_by_key(|(_, (order, _, _))| *order);
        self.plan.connections = connections
            .into_iter()
            .map(|((backend, identity), (_, address, seen))| (backend, identity, address, seen))
            .collect();
        self.plan
    }
}

/// Refuses a message that cannot be encoded, as the redb store does.
fn encodable(index: usize, message: &Message) -> Result<(), StoreError> {
    let mut scratch = Vec::new();
    encode_into(message, &mut scratch).map_err(|e| {
        Rejection::Unencodable {
            op: index,
            reason: e.to_string(),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, KannelInfo};
    use crate::store::unit::Update;

    fn mo(id: MessageId, uuid: u8) -> Message {
        let mut m = Message::new(id, Connection::new("b", "+1"), Direction::Incoming, "x");
        m.kannel = Some(KannelInfo {
            uuid: Some([uuid; 16]),
            time: Some(7),
            ..KannelInfo::default()
        });
        m
    }

    fn key(uuid: u8) -> MoKey {
        MoKey {
            time: 7,
            uuid: [uuid; 16],
        }
    }

    fn ok(p: &Plan) -> Vec<Option<Outcome>> {
        p.outcomes
            .iter()
            .map(|o| o.as_ref().ok().copied())
            .collect()
    }

    fn planned(units: &[Unit], stored: Vec<Message>) -> Plan {
        let needs = Needs::of(units.iter());
        let owners = stored
            .iter()
            .filter_map(|m| Some((MoKey::of(m)?, m.id)))
            .collect();
        let found = stored.into_iter().map(|m| (m.id, Ok(m))).collect();
        plan(units.iter(), View::new(&needs, found, owners))
    }

    #[test]
    fn the_same_mo_twice_in_one_group_applies_once() {
        let units = [
            Unit::new().unless_mo_known(key(1)).with(Op::put(mo(10, 1))),
            Unit::new().unless_mo_known(key(1)).with(Op::put(mo(11, 1))),
        ];
        let p = planned(&units, vec![]);
        assert_eq!(
            ok(&p),
            [Some(Outcome::Applied), Some(Outcome::Duplicate(10))]
        );
        assert_eq!(p.new_mos.len(), 1);
        assert_eq!(p.connections.len(), 1);
    }

    #[test]
    fn a_refused_unit_gives_back_the_key_it_took() {
        let units = [
            Unit::new()
                .unless_mo_known(key(1))
                .with(Op::put(mo(10, 1)))
                .with(Update::status(99, Status::Sent, 1).into()),
            Unit::new().unless_mo_known(key(1)).with(Op::put(mo(11, 1))),
        ];
        let p = planned(&units, vec![]);
        assert!(matches!(
            p.outcomes[0],
            Err(StoreError::Rejected(Rejection::MissingMessage {
                op: 1,
                id: 99
            }))
        ));
        assert_eq!(ok(&p)[1], Some(Outcome::Applied));
        assert_eq!(p.new_mos.len(), 1);
        assert_eq!(p.new_mos[0].message.id, 11);
        assert_eq!(p.refused, 1);
        assert_eq!(
            p.counts.nonzero(),
            vec![(Direction::Incoming, Status::Received, 1)]
        );
    }

    #[test]
    fn a_put_that_takes_a_stored_messages_key_is_refused() {
        let units = [Unit::new().with(Op::put(mo(11, 1)))];
        let p = planned(&units, vec![mo(10, 1)]);
        assert!(matches!(
            p.outcomes[0],
            Err(StoreError::Rejected(Rejection::UuidTaken {
                owner: 10,
                id: 11,
                ..
            }))
        ));
        assert!(!p.writes());
    }

    #[test]
    fn keys_swapped_between_stored_messages_clear_the_old_keys_first() {
        // 10 gives key 1 up for key 3; 11 takes key 1.
        let units = [
            Unit::new().with(Op::put(mo(10, 3))),
            Unit::new().with(Op::put(mo(11, 1))),
        ];
        let p = planned(&units, vec![mo(10, 1)]);
        assert_eq!(ok(&p), [Some(Outcome::Applied), Some(Outcome::Applied)]);
        assert_eq!(p.rekeyed, vec![10]);
        assert_eq!(p.upserts.len(), 1);
        assert_eq!(p.new_mos.len(), 1);
    }

    #[test]
    fn a_message_updated_many_times_is_written_once_in_its_final_state() {
        let mut units = vec![Unit::new().with(Op::put(mo(10, 1)))];
        for status in [Status::Handled, Status::Failed] {
            units.push(Unit::new().with(Update::status(10, status, 5).into()));
        }
        let p = planned(&units, vec![]);
        assert_eq!(p.new_mos.len(), 1);
        assert_eq!(p.new_mos[0].message.status, Status::Failed);
        assert_eq!(
            p.counts.nonzero(),
            vec![(Direction::Incoming, Status::Failed, 1)]
        );
    }
}
