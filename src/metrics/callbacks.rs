//! Calls rapidbox owes to HTTP servers of others: push (outgoing messages
//! to a push backend) and sendsms callers' dlr-urls.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Which kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackKind {
    Push,
    DlrUrl,
}

/// What became of one call, or that one became owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// A call became owed (a message queued for push, a report whose
    /// message has a dlr-url).
    Owed,
    /// The call was answered with success.
    Done,
    /// The call failed and will be tried again.
    Retried,
    /// The call failed for good.
    Failed,
}

const KINDS: [&str; 2] = ["push", "dlr_url"];
const OUTCOMES: [&str; 4] = ["owed", "done", "retried", "failed"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    kind: &'static str,
    outcome: &'static str,
}

/// The callback counters.
#[derive(Debug)]
pub struct Callbacks {
    counters: [Counter; 8],
}

impl Callbacks {
    pub(super) fn register(registry: &mut Registry) -> Callbacks {
        let family = Family::<Labels, Counter>::default();
        let counters = std::array::from_fn(|i| {
            family.get_or_create_owned(&Labels {
                kind: KINDS[i / 4],
                outcome: OUTCOMES[i % 4],
            })
        });
        registry.register(
            "callbacks",
            "HTTP calls owed to others (push, dlr_url) and what became of them",
            family,
        );
        Callbacks { counters }
    }

    /// Counts one `outcome` of a `kind` call.
    pub fn report(&self, kind: CallbackKind, outcome: CallbackOutcome) {
        self.counters[kind as usize * 4 + outcome as usize].inc();
    }
}
