//! Messages through rapidbox: MOs in (by transport and result, and the
//! acks the link gives the bearerbox), MTs and replies out (by transport
//! and outcome), delivery reports (by kind).
//!
//! Every label set is an enum; each has its counter registered at start
//! and reporting indexes an array (see the module above).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// How the link acknowledged an MO or report to the bearerbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoAck {
    Success,
    /// Refused for good: the bearerbox drops it.
    Failed,
    /// Not taken now (store busy, every routing slot full): offered again.
    FailedTmp,
}

impl MoAck {
    const ALL: [MoAck; 3] = [MoAck::Success, MoAck::Failed, MoAck::FailedTmp];

    fn label(self) -> &'static str {
        match self {
            MoAck::Success => "success",
            MoAck::Failed => "failed",
            MoAck::FailedTmp => "failed_tmp",
        }
    }
}

/// Where an MO came in, or an MT goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtTransport {
    Kannel,
    Push,
}

/// An MO's result at the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoResult {
    /// Stored with its replies.
    Stored,
    /// Already stored under its Kannel key (a redelivery).
    Duplicate,
    /// The store could not take it.
    Refused,
    /// Stored as received and acknowledged; its slow apps finish in the
    /// background.
    Deferred,
}

/// Whether an outgoing message answers an MO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtKind {
    /// Produced by an app for an MO (`in_response_to` set).
    Reply,
    /// Sent on its own (sendsms, console, an embedder).
    Mt,
}

/// What a transport made of an outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtOutcome {
    /// Taken (bearerbox ack success or buffered; push answered 2xx).
    Accepted,
    /// Refused for good.
    Failed,
    /// Not taken now; sent again later.
    Retry,
}

/// A delivery report's kind, from its Kannel `dlr_mask` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlrKind {
    Delivered,
    Failed,
    Buffered,
    Submitted,
    Rejected,
    /// An event value Kannel does not define.
    Other,
    /// A report for no message of ours (dropped).
    Unmatched,
}

impl DlrKind {
    const ALL: [DlrKind; 7] = [
        DlrKind::Delivered,
        DlrKind::Failed,
        DlrKind::Buffered,
        DlrKind::Submitted,
        DlrKind::Rejected,
        DlrKind::Other,
        DlrKind::Unmatched,
    ];

    /// The kind of a report whose `dlr_mask` is `event` (Kannel's
    /// DLR_SUCCESS 1, DLR_FAIL 2, DLR_BUFFERED 4, DLR_SMSC_SUCCESS 8,
    /// DLR_SMSC_FAIL 16, gw/dlr.h).
    pub fn of_event(event: i64) -> DlrKind {
        match event {
            1 => DlrKind::Delivered,
            2 => DlrKind::Failed,
            4 => DlrKind::Buffered,
            8 => DlrKind::Submitted,
            16 => DlrKind::Rejected,
            _ => DlrKind::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            DlrKind::Delivered => "delivered",
            DlrKind::Failed => "failed",
            DlrKind::Buffered => "buffered",
            DlrKind::Submitted => "submitted",
            DlrKind::Rejected => "rejected",
            DlrKind::Other => "other",
            DlrKind::Unmatched => "unmatched",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AckLabels {
    ack: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MoLabels {
    transport: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MtLabels {
    transport: &'static str,
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DlrLabels {
    kind: &'static str,
}

const MO_TRANSPORTS: [&str; 2] = ["kannel", "http"];
const MO_RESULTS: [&str; 4] = ["stored", "duplicate", "refused", "deferred"];
const MT_TRANSPORTS: [&str; 2] = ["kannel", "push"];
const MT_KINDS: [&str; 2] = ["reply", "mt"];
const MT_OUTCOMES: [&str; 3] = ["accepted", "failed", "retry"];

/// The message counters, each label set's counter kept for reporting.
#[derive(Debug)]
pub struct MessageMetrics {
    mo_acks: [Counter; 3],
    mos: [Counter; 8],
    mts: [Counter; 12],
    dlrs: [Counter; 7],
}

impl MessageMetrics {
    pub(super) fn register(registry: &mut Registry) -> MessageMetrics {
        let mo_acks = Family::<AckLabels, Counter>::default();
        let mos = Family::<MoLabels, Counter>::default();
        let mts = Family::<MtLabels, Counter>::default();
        let dlrs = Family::<DlrLabels, Counter>::default();
        let metrics = MessageMetrics {
            mo_acks: MoAck::ALL.map(|a| mo_acks.get_or_create_owned(&AckLabels { ack: a.label() })),
            mos: std::array::from_fn(|i| {
                mos.get_or_create_owned(&MoLabels {
                    transport: MO_TRANSPORTS[i / MO_RESULTS.len()],
                    result: MO_RESULTS[i % MO_RESULTS.len()],
                })
            }),
            mts: std::array::from_fn(|i| {
                mts.get_or_create_owned(&MtLabels {
                    transport: MT_TRANSPORTS[i / 6],
                    kind: MT_KINDS[i / 3 % 2],
                    outcome: MT_OUTCOMES[i % 3],
                })
            }),
            dlrs: DlrKind::ALL.map(|k| dlrs.get_or_create_owned(&DlrLabels { kind: k.label() })),
        };
        registry.register(
            "link_mo_acks",
            "MOs and delivery reports acknowledged to the bearerbox, by ack status",
            mo_acks,
        );
        registry.register(
            "mo",
            "MOs at the intake by transport (kannel, http) and result",
            mos,
        );
        registry.register(
            "mt_outcomes",
            "Outgoing messages answered by their transport, by kind and outcome",
            mts,
        );
        registry.register(
            "dlr",
            "Delivery reports received from the bearerbox, by kind",
            dlrs,
        );
        metrics
    }

    /// The link acknowledged an MO or report with `ack`.
    pub fn mo_ack(&self, ack: MoAck) {
        self.mo_acks[ack as usize].inc();
    }

    /// An MO reached the intake over the bearerbox link (`kannel = true`)
    /// or HTTP, with `result`.
    pub fn mo(&self, kannel: bool, result: MoResult) {
        let transport = if kannel { 0 } else { 1 };
        self.mos[transport * MO_RESULTS.len() + result as usize].inc();
    }

    /// A transport answered an outgoing message.
    pub fn mt(&self, transport: MtTransport, kind: MtKind, outcome: MtOutcome) {
        self.mts[transport as usize * 6 + kind as usize * 3 + outcome as usize].inc();
    }

    /// A delivery report came in.
    pub fn dlr(&self, kind: DlrKind) {
        self.dlrs[kind as usize].inc();
    }
}

impl MtKind {
    /// The kind of `message`.
    pub fn of(message: &crate::model::Message) -> MtKind {
        if message.in_response_to.is_some() {
            MtKind::Reply
        } else {
            MtKind::Mt
        }
    }
}
