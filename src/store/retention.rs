//! Retention: a background sweep that purges what `[store] retention_days`
//! and `retention_max_messages` say is too old, by the rule of `purge.rs`,
//! in bounded batches through the writer.
//!
//! Each batch is one short transaction of at most [`Retention::batch`]
//! deletions, which the writer runs when no unit waits (see `writer.rs`),
//! and the sweep pauses between batches, so the hot path's group commit
//! waits for one small purge transaction at a time at worst. redb reuses the pages a
//! purge frees, so a store whose intake and retention balance stops
//! growing.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::StoreConfig;
use crate::model::{now_micros, Micros};

use super::purge::{PurgeReport, PurgeRule};
use super::{Store, StoreError};

/// How old, or how many, messages may get before they are purged, and how
/// the purging is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Purge messages older than this.
    pub max_age: Option<Duration>,
    /// Purge the oldest messages beyond this many.
    pub max_messages: Option<u64>,
    /// A sent message waits this long for its delivery report.
    pub report_window: Duration,
    /// How often a sweep starts.
    pub every: Duration,
    /// Most messages purged per transaction.
    pub batch: usize,
    /// The pause between two batches of a sweep.
    pub pause: Duration,
}

/// The pause between two purge transactions of a sweep: the hot path
/// gets the writer to itself in between.
pub const RETENTION_PAUSE: Duration = Duration::from_millis(20);

impl Retention {
    /// What `[store] retention_*` ask for.
    pub fn from_config(config: &StoreConfig) -> Retention {
        let hours = |h: u64| Duration::from_secs(h.saturating_mul(3600));
        Retention {
            max_age: config.retention_days.map(|d| hours(d.saturating_mul(24))),
            max_messages: config.retention_max_messages,
            report_window: hours(config.retention_report_window_hours),
            every: Duration::from_secs(config.retention_every_secs),
            batch: config.retention_batch,
            pause: RETENTION_PAUSE,
        }
    }

    /// Whether anything is ever purged.
    pub fn is_set(&self) -> bool {
        self.max_age.is_some() || self.max_messages.is_some()
    }

    /// The rule of a sweep starting `now` over a store holding `total`
    /// messages.
    pub fn rule(&self, now: Micros, total: u64) -> PurgeRule {
        let micros = |d: Duration| Micros::try_from(d.as_micros()).unwrap_or(Micros::MAX);
        PurgeRule {
            before: self.max_age.map(|age| now.saturating_sub(micros(age))),
            excess: self.max_messages.map_or(0, |max| total.saturating_sub(max)),
            now,
            report_window: micros(self.report_window),
            including_owed: false,
            after: None,
            max_purged: self.batch.max(1),
            // Owed messages are stepped over; reading a few batches' worth
            // of them stays a short transaction.
            max_scanned: self.batch.max(1).saturating_mul(4),
        }
    }

    /// One sweep from the oldest message, as of now; returns its totals.
    pub async fn sweep(&self, store: &Store) -> Result<PurgeReport, StoreError> {
        let total = store.counts().await?.iter().map(|(_, _, n)| n).sum();
        let rule = self.rule(now_micros(), total);
        purge_all(store, rule, self.pause).await
    }

    /// Sweeps every [`Retention::every`] until `shutdown`; a sweep that
    /// fails is logged and tried again at the next.
    pub async fn run(self, store: Store, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(self.every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let swept = tokio::select! {
                _ = shutdown.cancelled() => return,
                swept = self.sweep(&store) => swept,
            };
            match swept {
                Ok(r) if r.purged > 0 => info!(purged = r.purged, kept = r.kept, "retention"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "retention sweep failed; next at the next interval"),
            }
        }
    }
}

/// Runs batches of `rule` from its cursor until the walk finishes,
/// pausing `pause` between them; returns the totals (`last` is the last
/// id looked at).
pub async fn purge_all(
    store: &Store,
    mut rule: PurgeRule,
    pause: Duration,
) -> Result<PurgeReport, StoreError> {
    let mut total = PurgeReport::default();
    loop {
        let from = rule.after;
        let batch = store.purge(rule).await?;
        total.purged += batch.purged;
        total.kept += batch.kept;
        total.last = batch.last;
        rule.after = batch.last;
        rule.excess = rule.excess.saturating_sub(batch.purged);
        // A batch that looked at nothing new cannot make progress.
        if batch.finished || batch.last == from {
            total.finished = true;
            return Ok(total);
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}
