//! Apps that failed while routing a message (an error returned, a failure
//! reported, or a panic), by app.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    app: String,
}

/// Per-app failure counters, one per app the router runs.
#[derive(Debug)]
pub struct AppErrors {
    /// By app name; a handful, so a linear search beats hashing.
    counters: Vec<(String, Counter)>,
    /// Every app's counter, for apps a reload added after the start
    /// (their names come from the configuration, so they are few).
    family: Family<Labels, Counter>,
}

impl AppErrors {
    pub(super) fn register(registry: &mut Registry, app_names: &[String]) -> AppErrors {
        let family = Family::<Labels, Counter>::default();
        let counters = app_names
            .iter()
            .map(|name| {
                let labels = Labels { app: name.clone() };
                (name.clone(), family.get_or_create_owned(&labels))
            })
            .collect();
        registry.register(
            "app_errors",
            "App failures while routing messages, by app",
            family.clone(),
        );
        AppErrors { counters, family }
    }

    /// Counts one failure of the app named `app`.
    pub fn failed(&self, app: &str) {
        match self.counters.iter().find(|(name, _)| name == app) {
            Some((_, counter)) => counter.inc(),
            None => self
                .family
                .get_or_create(&Labels {
                    app: app.to_owned(),
                })
                .inc(),
        };
    }
}
