//! Configuration reloads (SIGHUP): how many were applied and refused, and
//! the generation running, so an operator sees a refused reload on the
//! dashboard, not only in the log.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    result: &'static str,
}

/// The reload counters.
#[derive(Debug)]
pub struct Reloads {
    applied: Counter,
    refused: Counter,
    generation: Gauge,
}

impl Reloads {
    pub(super) fn register(registry: &mut Registry) -> Reloads {
        let family = Family::<Labels, Counter>::default();
        let applied = family.get_or_create_owned(&Labels { result: "applied" });
        let refused = family.get_or_create_owned(&Labels { result: "refused" });
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP), applied or refused for errors",
            family,
        );
        let generation = Gauge::default();
        registry.register(
            "config_generation",
            "The configuration running: 0 as started, one more per applied reload",
            generation.clone(),
        );
        Reloads {
            applied,
            refused,
            generation,
        }
    }

    /// A reload applied; `generation` runs now.
    pub fn applied(&self, generation: u64) {
        self.applied.inc();
        self.generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// A reload refused: the configuration had errors.
    pub fn refused(&self) {
        self.refused.inc();
    }
}
