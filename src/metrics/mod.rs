//! What the running parts report about themselves: one [`Metrics`] per
//! rapidbox, which every part reports to and `/metrics` exposes in
//! Prometheus' text format (prometheus-client, the Prometheus project's
//! own Rust client).
//!
//! - `link`: [`LinkStatus`], the bearerbox link's atomics (also read by
//!   `/router/stats`), and the acks both ways;
//! - `messages`: MOs received and refused, MTs and replies by transport
//!   and outcome, delivery reports by kind;
//! - `http`: requests by endpoint and status, latency by endpoint;
//! - `callbacks`: push and dlr-url calls owed, retried, failed;
//! - `apps`: per-app failures while routing;
//! - `reloads`: configuration reloads applied and refused;
//! - `store`: read from the [`Store`] at scrape time (queue depth,
//!   writability, the writer's counters) plus its own histograms.
//!
//! # The hot path stays cheap
//!
//! Every label set is registered when rapidbox starts and its counter kept
//! (a prometheus-client `Counter` is an `Arc<AtomicU64>`), so reporting is
//! an index into an array and one relaxed atomic add: no lookup, no
//! allocation, no formatting per message. Numbers that already exist
//! elsewhere (the link's state, the store's counters) are read only when
//! scraped, by collectors.
//!
//! Each daemon has its own [`Metrics`] (not a process global), so two
//! rapidboxes in one process (tests) keep separate numbers.

mod apps;
mod callbacks;
mod http;
mod link;
mod messages;
mod reloads;
mod store;

use std::sync::Arc;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

pub use apps::AppErrors;
pub use callbacks::{CallbackKind, CallbackOutcome, Callbacks};
pub use http::HttpMetrics;
pub use link::LinkStatus;
pub use messages::{DlrKind, MessageMetrics, MoAck, MoResult, MtKind, MtOutcome, MtTransport};
pub use reloads::Reloads;

use crate::store::Store;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Every number rapidbox exposes, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub messages: MessageMetrics,
    pub http: HttpMetrics,
    pub callbacks: Callbacks,
    pub apps: AppErrors,
    pub reloads: Reloads,
}

impl Metrics {
    /// Metrics for a rapidbox whose link writes `link`, whose router runs
    /// `app_names`, and (when given) whose store is `store`.
    pub fn new(link: Arc<LinkStatus>, app_names: &[String], store: Option<&Store>) -> Metrics {
        let mut registry = Registry::with_prefix("rapidbox");
        link::register(&mut registry, &link);
        let messages = MessageMetrics::register(&mut registry);
        let http = HttpMetrics::register(&mut registry);
        let callbacks = Callbacks::register(&mut registry);
        let apps = AppErrors::register(&mut registry, app_names);
        let reloads = Reloads::register(&mut registry);
        if let Some(store) = store {
            store::register(&mut registry, store);
        }
        Metrics {
            registry,
            messages,
            http,
            callbacks,
            apps,
            reloads,
        }
    }

    /// Metrics reported to but not tied to a link or store (unit tests).
    #[cfg(test)]
    pub fn detached() -> Arc<Metrics> {
        Arc::new(Metrics::new(Arc::default(), &[], None))
    }

    /// Every metric in Prometheus' text exposition format (0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 << 10);
        // Writing to a String cannot fail; an encoder error would be a bug
        // in a collector, and an incomplete scrape is better than none.
        if let Err(e) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        text
    }
}

#[cfg(test)]
mod tests;
