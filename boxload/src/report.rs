//! What a load measured: [`Tally`] counts while the load runs, [`Report`]
//! is the result, as readable text and as one JSON line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use boxproto::AckStatus;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::offer::Offer;

/// Largest latency recorded exactly, in microseconds (one hour); longer
/// ones are recorded as this. With 3 significant digits the histogram
/// stays a few tens of kilobytes.
const MAX_LATENCY_MICROS: u64 = 3_600_000_000;

/// The counters and histograms of a running load.
#[derive(Debug)]
pub struct Tally {
    pub started: Instant,
    /// When the first MO was written: throughput is measured from there.
    pub first_write: Option<Instant>,
    pub last_ack: Option<Instant>,
    pub last_reply: Option<Instant>,
    pub ack_latency: Histogram<u64>,
    pub reply_latency: Histogram<u64>,
    /// What the box did, counted; carried into the report as is.
    pub counts: Counts,
    /// The first few problems, described, for the readable report.
    pub problems: Vec<String>,
}

/// What the box did, counted while the load runs. The report carries the
/// same counts (flattened into its JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    /// MO acks by status: success, failed, failed_tmp, buffered, other_N.
    pub acks: BTreeMap<String, u64>,
    /// MOs answered (first replies).
    pub replies: u64,
    /// Replies beyond the first to one MO.
    pub duplicated: u64,
    /// MTs that answer no MO offered.
    pub mismatched: u64,
    /// MTs received (mt_reply and mt_push), all acknowledged success.
    pub mts: u64,
    pub dlrs_sent: u64,
    pub dlr_acks: u64,
    pub heartbeats: u64,
    /// Frames from the box that did not decode.
    pub bad_frames: u64,
    /// Frames that decoded but a bearerbox would not expect from a box.
    pub unexpected_frames: u64,
    /// Acks for an id boxload never sent.
    pub unknown_acks: u64,
    /// Acks for an MO already acknowledged.
    pub repeated_acks: u64,
}

/// Problems described in the report, at most; the rest are only counted.
const MAX_PROBLEMS: usize = 10;

impl Tally {
    pub fn new() -> Tally {
        let histogram = || {
            Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
                .unwrap_or_else(|e| unreachable!("constant histogram bounds: {e}"))
        };
        Tally {
            started: Instant::now(),
            first_write: None,
            last_ack: None,
            last_reply: None,
            ack_latency: histogram(),
            reply_latency: histogram(),
            counts: Counts::default(),
            problems: Vec::new(),
        }
    }

    /// Notes a problem for the readable report (the first few only).
    pub fn problem(&mut self, what: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }

    /// An MO's first ack.
    pub fn ack(&mut self, status: AckStatus, micros: u64, at: Instant) {
        *self.counts.acks.entry(status_name(status)).or_default() += 1;
        self.ack_latency.saturating_record(micros.max(1));
        self.last_ack = Some(at);
    }

    /// An MO's first reply.
    pub fn reply(&mut self, micros: u64, at: Instant) {
        self.counts.replies += 1;
        self.reply_latency.saturating_record(micros.max(1));
        self.last_reply = Some(at);
    }

    /// The report, from these counts and the state of every MO.
    pub fn finish(&self, offer: &Offer, end: End) -> Report {
        let mut acked = 0;
        let mut lost = 0;
        for mo in offer.all() {
            if mo.ack.is_some() {
                acked += 1;
            }
            if mo.ack == Some(AckStatus::Success) && mo.replies == 0 {
                lost += 1;
            }
        }
        let rate = |count: u64, last: Option<Instant>| match (self.first_write, last) {
            (Some(first), Some(last)) if last > first => {
                count as f64 / last.duration_since(first).as_secs_f64()
            }
            _ => 0.0,
        };
        Report {
            messages: offer.messages(),
            offered: offer.offered(),
            acked,
            unacked: u64::from(offer.offered()) - acked,
            lost,
            counts: self.counts.clone(),
            elapsed_secs: self.started.elapsed().as_secs_f64(),
            ack_rate: rate(acked, self.last_ack),
            reply_rate: rate(self.counts.replies, self.last_reply),
            ack_latency_ms: Latency::of(&self.ack_latency),
            reply_latency_ms: Latency::of(&self.reply_latency),
            end: end.name().to_owned(),
            problems: self.problems.clone(),
        }
    }
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

/// The name of an ack status, as the report counts it.
pub fn status_name(status: AckStatus) -> String {
    match status {
        AckStatus::Success => "success".to_owned(),
        AckStatus::Failed => "failed".to_owned(),
        AckStatus::FailedTmp => "failed_tmp".to_owned(),
        AckStatus::Buffered => "buffered".to_owned(),
        AckStatus::Other(n) => format!("other_{n}"),
    }
}

/// Why the load ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every MO acknowledged, and every one acknowledged success answered.
    Complete,
    /// The grace period passed without progress.
    Grace,
    /// `--timeout` passed.
    Timeout,
    /// The box closed the connection, or it broke.
    Disconnected,
}

impl End {
    pub fn name(self) -> &'static str {
        match self {
            End::Complete => "complete",
            End::Grace => "grace_expired",
            End::Timeout => "timeout",
            End::Disconnected => "disconnected",
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// The result of one load. Serialized as one JSON line (`to_json`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    /// MOs asked for (N).
    pub messages: u32,
    /// MOs written to the box.
    pub offered: u32,
    /// MOs acknowledged, whatever the status.
    pub acked: u64,
    /// MOs offered and never acknowledged.
    pub unacked: u64,
    /// MOs acknowledged success and never answered.
    pub lost: u64,
    /// What the box did, counted.
    #[serde(flatten)]
    pub counts: Counts,
    pub elapsed_secs: f64,
    /// MO acks per second, from the first MO written to the last ack.
    pub ack_rate: f64,
    /// Replies per second, from the first MO written to the last reply.
    pub reply_rate: f64,
    pub ack_latency_ms: Latency,
    pub reply_latency_ms: Latency,
    /// Why it ended: complete, grace_expired, timeout, disconnected.
    pub end: String,
    /// The first few problems, described.
    pub problems: Vec<String>,
}

impl Report {
    /// True when the box did its job: every MO acknowledged success,
    /// nothing lost, duplicated or mismatched.
    pub fn passed(&self) -> bool {
        let success = self.counts.acks.get("success").copied().unwrap_or(0);
        self.lost == 0
            && self.counts.duplicated == 0
            && self.counts.mismatched == 0
            && success == u64::from(self.messages)
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| unreachable!("a report of numbers and strings serializes: {e}"))
    }

    /// The report as readable text, several lines.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let acks: Vec<String> = self
            .counts
            .acks
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "boxload: {} MOs, {} offered, {} acked ({}), {} unacked; ended: {} after {:.2} s",
            self.messages,
            self.offered,
            self.acked,
            if acks.is_empty() {
                "none".to_owned()
            } else {
                acks.join(", ")
            },
            self.unacked,
            self.end,
            self.elapsed_secs
        );
        let _ = writeln!(
            out,
            "replies: {} answered, {} lost, {} duplicated, {} mismatched ({} MTs, {} DLRs sent, {} DLR acks)",
            self.counts.replies, self.lost, self.counts.duplicated, self.counts.mismatched, self.counts.mts, self.counts.dlrs_sent, self.counts.dlr_acks
        );
        let line = |name: &str, rate: f64, l: &Latency| {
            format!(
                "{name:7} {rate:9.0} /s   latency ms p50 {:8.2} p90 {:8.2} p99 {:8.2} max {:8.2}\n",
                l.p50, l.p90, l.p99, l.max
            )
        };
        out.push_str(&line("acks", self.ack_rate, &self.ack_latency_ms));
        out.push_str(&line("replies", self.reply_rate, &self.reply_latency_ms));
        let _ = writeln!(
            out,
            "from the box: {} bad frames, {} unexpected frames, {} acks for unknown ids, {} repeated acks, {} heartbeats",
            self.counts.bad_frames, self.counts.unexpected_frames, self.counts.unknown_acks, self.counts.repeated_acks, self.counts.heartbeats
        );
        for problem in &self.problems {
            let _ = writeln!(out, "  problem: {problem}");
        }
        let _ = writeln!(
            out,
            "result: {}",
            if self.passed() { "PASS" } else { "FAIL" }
        );
        out
    }
}
