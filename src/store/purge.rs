//! Purging old messages: one bounded batch is one transaction of the
//! writer, so a crash leaves either all of a batch's deletions or none.
//!
//! # The rule
//!
//! A batch walks `messages` in id order (ids are given in time order, so
//! the oldest first) from a cursor, and purges a message when it is *old
//! enough* and *owes nothing*:
//!
//! - old enough: dated (`date`) before [`PurgeRule::before`], or among the
//!   first [`PurgeRule::excess`] messages found (the oldest beyond a
//!   maximum count);
//! - owes nothing: not in an open status (R, P, L, Q, I, E: still to be
//!   routed, sent, or retried, push retries included); not sent (S) within
//!   [`PurgeRule::report_window`] unless its Kannel `dlr_mask` asked for no
//!   final report (bits 1 and 2); no `dlr-url` call owed for it.
//!
//! [`PurgeRule::including_owed`] drops the second condition (a one-off
//! cleanup of a store whose owed work is given up).
//!
//! The walk stops at the first message that is not old enough (the sweep
//! is done), or once a batch has purged [`PurgeRule::max_purged`] messages
//! or looked at [`PurgeRule::max_scanned`] (the next batch goes on from
//! the cursor). Messages kept for owed work are stepped over.
//!
//! Purging a message removes it with everything that is only its: its
//! `by_status` entry, its MO key (in `mo_recent` or `mo_keys`), its
//! delivery errors and reports, the calls owed for it (only when
//! including owed work), and its place in the counts. Connections and
//! opt-outs stay: they are about people, not messages.

use std::collections::{HashMap, HashSet};

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, WriteTransaction};

use crate::model::{Message, MessageId, Micros, MoKey, Status};

use super::codec;
use super::error::StoreError;
use super::schema::*;

/// Kannel's `dlr_mask` bits for final reports: delivered (1), failed (2).
const FINAL_REPORT_BITS: i32 = 1 | 2;

/// More owed calls than this and a batch purges nothing (and says so):
/// finding which messages are owed calls reads the whole table, which is
/// near empty unless `dlr-url`s have been failing for a long time.
pub const MAX_OWED_CALLS_SCANNED: u64 = 100_000;

/// What one batch may purge; see the module's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeRule {
    /// Messages dated before this are old enough.
    pub before: Option<Micros>,
    /// This many of the oldest messages are old enough whatever their date.
    pub excess: u64,
    /// The time the report window is counted back from.
    pub now: Micros,
    /// How long a sent message waits for a delivery report.
    pub report_window: Micros,
    /// Purge messages owed work too.
    pub including_owed: bool,
    /// The walk starts after this id.
    pub after: Option<MessageId>,
    /// Most messages purged in the batch.
    pub max_purged: usize,
    /// Most messages looked at in the batch.
    pub max_scanned: usize,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Messages purged.
    pub purged: u64,
    /// Old enough messages kept because they owe work.
    pub kept: u64,
    /// The last id looked at: where the next batch goes on.
    pub last: Option<MessageId>,
    /// The walk reached a message that is not old enough, or the end.
    pub finished: bool,
}

/// A purge batch for the writer, with where to answer.
pub(crate) struct Job {
    pub(crate) rule: PurgeRule,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<PurgeReport, StoreError>>,
}

/// What the writer must do after a purge committed: forget these MO keys
/// from its copy of `mo_recent`.
pub(crate) struct Purged {
    pub(crate) report: PurgeReport,
    pub(crate) released: Vec<MoKey>,
}

fn storage(during: &'static str) -> impl Fn(redb::Error) -> StoreError {
    move |e| StoreError::storage(during)(e)
}

/// Runs one batch in its own durable transaction.
pub(crate) fn run(db: &Database, rule: &PurgeRule) -> Result<Purged, StoreError> {
    let err = storage("purging");
    let mut txn = db.begin_write().map_err(|e| err(e.into()))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| err(e.into()))?;
    let purged = purge(&txn, rule).map_err(&err)?;
    if purged.report.purged > 0 {
        txn.commit().map_err(|e| err(e.into()))?;
    } else {
        txn.abort().map_err(|e| err(e.into()))?;
    }
    Ok(purged)
}

/// The message ids calls are owed for, with the calls' keys.
type OwedCalls = HashMap<MessageId, Vec<(i64, [u8; 16])>>;

/// Every owed call, by message; `None` when there are more than
/// [`MAX_OWED_CALLS_SCANNED`].
fn owed_calls(txn: &WriteTransaction) -> Result<Option<OwedCalls>, redb::Error> {
    let table = txn.open_table(CALLBACKS)?;
    if table.len()? > MAX_OWED_CALLS_SCANNED {
        return Ok(None);
    }
    let mut owed = OwedCalls::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        let (due, id) = key.value();
        match codec::decode_callback(due, *id, value.value()) {
            Ok(call) => owed.entry(call.message_id).or_default().push((due, *id)),
            // Left for `rapidbox verify` to report.
            Err(e) => tracing::warn!(error = %e, "retention steps over a damaged owed call"),
        }
    }
    Ok(Some(owed))
}

/// Whether `m` still owes work, as the rule says.
fn owes_work(m: &Message, rule: &PurgeRule, owed: &OwedCalls) -> bool {
    owes_work_if(m, rule, owed.contains_key(&m.id))
}

/// Whether `m` still owes work, as the rule says, knowing whether a
/// `dlr-url` call is owed for it (the PostgreSQL store asks its index).
pub(crate) fn owes_work_if(m: &Message, rule: &PurgeRule, call_owed: bool) -> bool {
    if m.status.is_open() || call_owed {
        return true;
    }
    if m.status != Status::Sent {
        return false;
    }
    let mask = m.kannel.as_ref().map_or(-1, |k| k.dlr_mask);
    let wants_report = mask < 0 || mask & FINAL_REPORT_BITS != 0;
    let sent = m.sent.unwrap_or(m.updated);
    wants_report && sent.saturating_add(rule.report_window) > rule.now
}

fn purge(txn: &WriteTransaction, rule: &PurgeRule) -> Result<Purged, redb::Error> {
    let mut report = PurgeReport {
        last: rule.after,
        ..PurgeReport::default()
    };
    let released = Vec::new();
    let Some(owed) = owed_calls(txn)? else {
        tracing::warn!(
            max = MAX_OWED_CALLS_SCANNED,
            "more dlr-url calls owed than retention reads; nothing purged"
        );
        report.finished = true;
        return Ok(Purged { report, released });
    };
    // Candidates first: the walk reads `messages` while the deletions
    // below write it.
    let mut doomed: Vec<Message> = Vec::new();
    {
        let messages = txn.open_table(MESSAGES)?;
        let start = rule.after.map_or(0, |id| id.saturating_add(1));
        let mut scanned = 0;
        let mut walk = messages.range(start..)?;
        loop {
            if doomed.len() >= rule.max_purged || scanned >= rule.max_scanned {
                break;
            }
            let Some(entry) = walk.next() else {
                report.finished = true;
                break;
            };
            let (key, value) = entry?;
            let id = key.value();
            scanned += 1;
            // A damaged entry is left for `rapidbox verify` to report; it
            // must not stop retention for good.
            let m = match codec::decode_message(id, value.value()) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "retention steps over a damaged message");
                    report.kept += 1;
                    report.last = Some(id);
                    continue;
                }
            };
            let by_count = (doomed.len() as u64) < rule.excess;
            let old = rule.before.is_some_and(|b| m.date < b) || by_count;
            if !old {
                report.finished = true;
                break;
            }
            report.last = Some(id);
            if !rule.including_owed && owes_work(&m, rule, &owed) {
                report.kept += 1;
                continue;
            }
            doomed.push(m);
        }
    }
    let released = remove(txn, &doomed, &owed)?;
    report.purged = doomed.len() as u64;
    Ok(Purged { report, released })
}

/// Removes `doomed` (in id order) with everything that is only theirs;
/// returns the MO keys that were in `mo_recent`.
///
/// Tables keyed by message id are cleared in one pass over the ids' range
/// (`retain_in`, `extract_from_if`) rather than a removal per message:
/// redb rebuilds a leaf once per pass instead of once per removal (see
/// `apply.rs` on `by_status`), and purged messages are mostly neighbours.
fn remove(
    txn: &WriteTransaction,
    doomed: &[Message],
    owed: &OwedCalls,
) -> Result<Vec<MoKey>, redb::Error> {
    let (Some(first), Some(last)) = (doomed.first(), doomed.last()) else {
        return Ok(Vec::new());
    };
    let (first, last) = (first.id, last.id);
    let ids: Vec<MessageId> = doomed.iter().map(|m| m.id).collect();
    let gone = |id: MessageId| ids.binary_search(&id).is_ok();
    txn.open_table(MESSAGES)?
        .retain_in(first..=last, |id, _| !gone(id))?;
    let events = (first, 0)..=(last, u64::MAX);
    txn.open_table(DELIVERY_ERRORS)?
        .retain_in(events.clone(), |(id, _), _| !gone(id))?;
    txn.open_table(DLR_EVENTS)?
        .retain_in(events, |(id, _), _| !gone(id))?;
    let mut released = Vec::new();
    {
        let mut mo_recent = txn.open_table(MO_RECENT)?;
        for entry in mo_recent.extract_from_if(first..=last, |id, _| gone(id))? {
            let (_, key) = entry?;
            let (time, uuid) = key.value();
            released.push(MoKey { time, uuid: *uuid });
        }
    }
    // The MO keys not in `mo_recent` are in `mo_keys`, sorted by Kannel
    // time first, so old ones sit together: one pass over their range.
    // Keys without a time (-1) are spread over all of history at the low
    // end, where such a pass would read young ones too: removed one by one.
    let recent: HashSet<MoKey> = released.iter().copied().collect();
    let mut moved: HashMap<(i64, [u8; 16]), MessageId> = HashMap::new();
    let mut mo_keys = txn.open_table(MO_KEYS)?;
    for m in doomed {
        let Some(key) = MoKey::of(m).filter(|k| !recent.contains(k)) else {
            continue;
        };
        if key.time >= 0 {
            moved.insert((key.time, key.uuid), m.id);
        } else if mo_keys.get((key.time, &key.uuid))?.map(|g| g.value()) == Some(m.id) {
            mo_keys.remove((key.time, &key.uuid))?;
        }
    }
    if let (Some(low), Some(high)) = (moved.keys().min().copied(), moved.keys().max().copied()) {
        mo_keys.retain_in((low.0, &low.1)..=(high.0, &high.1), |(time, uuid), id| {
            moved.get(&(time, *uuid)) != Some(&id)
        })?;
    }
    drop(mo_keys);
    let mut by_status = txn.open_table(BY_STATUS)?;
    let mut calls = txn.open_table(CALLBACKS)?;
    let mut counts: HashMap<(u8, u8), u64> = HashMap::new();
    for m in doomed {
        // Only when including owed work: other messages are not indexed.
        if m.status.is_open() {
            by_status.remove((m.status.as_u8(), m.connection.backend.as_str(), m.id))?;
        }
        for (due, call) in owed.get(&m.id).into_iter().flatten() {
            calls.remove((*due, call))?;
        }
        let key = (codec::direction_code(m.direction), m.status.as_u8());
        *counts.entry(key).or_default() += 1;
    }
    let mut table = txn.open_table(COUNTS)?;
    for (key, n) in counts {
        let current = table.get(key)?.map_or(0, |g| g.value());
        table.insert(key, current.saturating_sub(n))?;
    }
    let mut meta = txn.open_table(META)?;
    let before = meta.get(META_PURGED_UP_TO)?.map_or(0, |g| g.value());
    meta.insert(META_PURGED_UP_TO, before.max(last))?;
    Ok(released)
}
