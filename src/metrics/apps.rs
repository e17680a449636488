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
    /// Failures of an app not known at start (not expected: the router's
    /// apps are fixed while it runs).
    other: Counter,
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
        let other = family.get_or_create_owned(&Labels {
            app: "(other)".to_owned(),
        });
        registry.register(
            "app_errors",
            "App failures while routing messages, by app",
            family,
        );
        AppErrors { counters, other }
    }

    /// Counts one failure of the app named `app`.
    pub fn failed(&self, app: &str) {
        match self.counters.iter().find(|(name, _)| name == app) {
            Some((_, counter)) => counter.inc(),
            None => self.other.inc(),
        };
    }
}
