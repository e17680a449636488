//! The store's numbers, read when scraped: the writer's queue depth,
//! whether it takes units, its counters; and its own histograms (commit
//! latency, batch size), which the writer observes once per transaction.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::store::Store;

/// Registers the store's histograms and the collector reading the rest.
pub(super) fn register(registry: &mut Registry, store: &Store) {
    let histograms = store.histograms();
    registry.register(
        "store_commit_seconds",
        "Time from a store transaction's start to its durable commit",
        histograms.commit_seconds,
    );
    registry.register(
        "store_batch_units",
        "Units (one per message and its replies, or report) per committed transaction",
        histograms.batch_units,
    );
    registry.register_collector(Box::new(StoreCollector(store.clone())));
}

/// Holds a handle on the store; reading it never keeps the store open
/// past [`Store::close`].
struct StoreCollector(Store);

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let store = &self.0;
        let gauges = [
            (
                "store_queue_depth",
                "Units waiting in the store writer's queue",
                i64::try_from(store.queue_depth()).unwrap_or(i64::MAX),
            ),
            (
                "store_writable",
                "1 while the store takes units (open, not recovering), else 0",
                i64::from(store.is_writable()),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let stats = store.stats();
        let counters = [
            (
                "store_transactions",
                "Durable store transactions committed",
                stats.transactions,
            ),
            (
                "store_units",
                "Units answered from committed batches",
                stats.units,
            ),
            (
                "store_units_refused",
                "Units refused by the store (nothing applied)",
                stats.refused,
            ),
            (
                "store_failed_batches",
                "Batches whose commit failed (every unit in them failed)",
                stats.failed_batches,
            ),
            (
                "store_purged_messages",
                "Messages retention (or a purge) removed with everything of theirs",
                stats.purged,
            ),
            (
                "store_purge_transactions",
                "Durable purge batches committed",
                stats.purge_transactions,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
