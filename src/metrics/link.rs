//! The bearerbox link's state: [`LinkStatus`], atomics its sessions
//! update, read by `/router/stats` and, at scrape time, by `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// What the bearerbox link is doing. Updated by its sessions with relaxed
/// atomics: each counter is exact, but two counters read one after the
/// other may be from slightly different moments.
#[derive(Debug, Default)]
pub struct LinkStatus {
    pub connected: AtomicBool,
    /// When the current (or last) connection was made or lost, in µs
    /// since the epoch; 0 if never.
    pub since: AtomicI64,
    /// MTs sent and not yet answered by the bearerbox (or answered and not
    /// yet stored).
    pub in_flight: AtomicUsize,
    /// True while no MT goes out because the store cannot record the
    /// bearerbox's answers to those already sent (`link::hold`).
    pub mts_held: AtomicBool,
    /// MOs and reports received, all sessions.
    pub received: AtomicU64,
    /// MTs the bearerbox answered, all sessions.
    pub answered: AtomicU64,
    /// Connections made to the bearerbox.
    pub connects: AtomicU64,
    /// Connections given up as dead: MTs unanswered and nothing heard.
    pub dead: AtomicU64,
    /// Connections dropped because the bearerbox sent an unreadable frame.
    pub bad_frames: AtomicU64,
}

/// Registers the collector that reads `status` at each scrape.
pub(super) fn register(registry: &mut Registry, status: &Arc<LinkStatus>) {
    registry.register_collector(Box::new(LinkCollector(status.clone())));
}

#[derive(Debug)]
struct LinkCollector(Arc<LinkStatus>);

impl Collector for LinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let gauges = [
            (
                "link_connected",
                "1 while the bearerbox link is connected, else 0",
                i64::from(s.connected.load(Ordering::Relaxed)),
            ),
            (
                "link_mt_in_flight",
                "MTs sent to the bearerbox and not yet answered (the window in use)",
                i64::try_from(s.in_flight.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
            ),
            (
                "link_mt_held",
                "1 while no MT goes out because the store cannot record the bearerbox's answers to those already sent, else 0",
                i64::from(s.mts_held.load(Ordering::Relaxed)),
            ),
            (
                "link_since_seconds",
                "Unix time the link was last connected or lost; 0 if never",
                s.since.load(Ordering::Relaxed) / 1_000_000,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let counters = [
            (
                "link_connects",
                "Connections made to the bearerbox",
                &s.connects,
            ),
            (
                "link_received",
                "MOs and delivery reports received from the bearerbox",
                &s.received,
            ),
            (
                "link_mt_answered",
                "MTs the bearerbox answered (any ack status)",
                &s.answered,
            ),
            (
                "link_dead",
                "Connections given up as dead: MTs unanswered and nothing heard for kannel.answer_timeout_secs",
                &s.dead,
            ),
            (
                "link_bad_frames",
                "Connections dropped because the bearerbox sent a frame that could not be read",
                &s.bad_frames,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
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
