//! Purging old messages from PostgreSQL: one bounded batch is one
//! transaction, run by the writer between groups, by the redb store's
//! rule (see `store/purge.rs`: old enough, and owing nothing).
//!
//! The batch reads (and locks) up to `max_scanned` messages after the
//! cursor, asks the `dlr_callbacks` index which of them are owed calls
//! (the redb store reads the whole table, and so gives up beyond
//! `MAX_OWED_CALLS_SCANNED` owed calls; this one needs no such bound),
//! applies the rule in order, and deletes the doomed messages in one
//! statement: their delivery errors, reports and (only when including
//! owed work) owed calls go with them by `ON DELETE CASCADE`.
//! Connections and opt-outs stay. Message ids come from a sequence, so
//! purging the newest messages never lets an id be given again.

use std::collections::HashSet;

use deadpool_postgres::Object;

use super::db_error;
use super::plan::CountDeltas;
use super::writer::{first_failure, pipeline, prepare, query, Failure, Query};
use crate::model::{Message, MessageId};
use crate::store::codec;
use crate::store::error::StoreError;
use crate::store::purge::{owes_work_if, PurgeReport, PurgeRule};

fn failed(f: Failure) -> StoreError {
    match f {
        Failure::Race(error) | Failure::Fatal { error, .. } => error,
    }
}

/// Runs one batch in its own transaction on `client`; counts go to the
/// writer's `slot`.
pub(crate) async fn run(
    client: &Object,
    rule: &PurgeRule,
    slot: i16,
) -> Result<PurgeReport, StoreError> {
    let mut report = PurgeReport {
        last: rule.after,
        ..PurgeReport::default()
    };
    let after = match rule.after {
        None => -1,
        Some(id) => match i64::try_from(id) {
            Ok(id) => id,
            Err(_) => {
                report.finished = true;
                return Ok(report);
            }
        },
    };
    let scan = rule.max_scanned as i64;
    let s = prepare(
        client,
        &[
            "BEGIN",
            "SELECT id, body FROM messages WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE",
            "SELECT DISTINCT message_id FROM dlr_callbacks WHERE message_id = ANY($1)",
        ],
    )
    .await
    .map_err(failed)?;
    let mut results = pipeline(vec![
        query(client, &s[0], &[]),
        query(client, &s[1], &[&after, &scan]),
    ])
    .await;
    if let Some(f) = first_failure(&results, "purging") {
        return Err(failed(f));
    }
    let rows = results.pop().and_then(Result::ok).unwrap_or_default();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let owed: HashSet<MessageId> = client
        .query(&s[2], &[&ids])
        .await
        .map_err(|e| db_error("purging", e))?
        .iter()
        .map(|r| r.get::<_, i64>(0) as MessageId)
        .collect();

    let mut doomed: Vec<Message> = Vec::new();
    let mut scanned = 0;
    let mut rows = rows.iter();
    loop {
        if doomed.len() >= rule.max_purged || scanned >= rule.max_scanned {
            break;
        }
        let Some(row) = rows.next() else {
            report.finished = true;
            break;
        };
        let id = row.get::<_, i64>(0) as MessageId;
        scanned += 1;
        let m = match codec::decode_message(id, row.get(1)) {
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
        if !rule.including_owed && owes_work_if(&m, rule, owed.contains(&id)) {
            report.kept += 1;
            continue;
        }
        doomed.push(m);
    }

    if doomed.is_empty() {
        client
            .batch_execute("ROLLBACK")
            .await
            .map_err(|e| db_error("purging", e))?;
        return Ok(report);
    }
    let mut deltas = CountDeltas::default();
    for m in &doomed {
        deltas.remove(m);
    }
    let doomed_ids: Vec<i64> = doomed.iter().map(|m| m.id as i64).collect();
    let mut directions = Vec::new();
    let mut statuses = Vec::new();
    let mut changes = Vec::new();
    for (d, st, delta) in deltas.nonzero() {
        directions.push(d.code().to_string());
        statuses.push(st.code().to_string());
        changes.push(delta);
    }
    let w = prepare(
        client,
        &[
            "DELETE FROM messages WHERE id = ANY($1)",
            "INSERT INTO counts (slot, direction, status, n) \
             SELECT $1, d, s, n FROM unnest($2::text[], $3::text[], $4::int8[]) AS c(d, s, n) \
             ON CONFLICT (slot, direction, status) DO UPDATE SET n = counts.n + excluded.n",
            "COMMIT",
        ],
    )
    .await
    .map_err(failed)?;
    let flight: Vec<Query<'_>> = vec![
        query(client, &w[0], &[&doomed_ids]),
        query(client, &w[1], &[&slot, &directions, &statuses, &changes]),
        query(client, &w[2], &[]),
    ];
    let results = pipeline(flight).await;
    if let Some(f) = first_failure(&results, "purging") {
        return Err(failed(f));
    }
    report.purged = doomed.len() as u64;
    Ok(report)
}
