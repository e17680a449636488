//! Calls a sendsms caller's `dlr-url` when a delivery report arrives for
//! its message, as Kannel's smsbox does, and keeps owing the call until it
//! is made, across restarts.
//!
//! The MT's own `dlr_url` on the wire is rapidbox's message id (that is how
//! a report finds its message); the caller's URL is kept with the message
//! ([`crate::model::MtOptions`]). When a report arrives, the link
//! expands the caller's URL ([`crate::escape::expand_dlr_url`]) with the report's values and commits the
//! call as a [`PendingCallback`] in the same unit as the report: the store's
//! `dlr_callbacks` table is the queue, so a call owed survives a restart as
//! surely as the report it is about. Then it [`DlrCallbacks::wake`]s the
//! worker.
//!
//! The worker makes the calls that are due, soonest first:
//! - at most [`MAX_IN_FLIGHT`] requests at once, each bounded by
//!   [`REQUEST_TIMEOUT`]; nothing else is held in memory, however many
//!   calls are owed;
//! - any answer below 500 ends a call (a 4xx would be answered again) and
//!   removes it; a 5xx, a timeout or a connection failure reschedules it,
//!   [`FIRST_RETRY`] later (by default) and twice that after each failure, up to
//!   [`MAX_ATTEMPTS`] attempts; the last failure is recorded as a delivery
//!   error of the message, in the unit that removes the call;
//! - a redirect (301, 302, 303, 307) is followed, at most
//!   [`MAX_FOLLOW`](crate::client::redirect::MAX_FOLLOW) times, as smsbox's
//!   HTTP client follows it for a dlr-url;
//! - a call in flight when rapidbox stops stays owed and is made again
//!   after the restart: callers may see a call twice, never none (as with
//!   Kannel, whose smsbox forgets them instead).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::client::HttpClient;
use crate::metrics::{CallbackKind, CallbackOutcome, Metrics};
use crate::model::{now_micros, DeliveryError, MessageId, Micros, PendingCallback};
use crate::store::{time_ordered_uuid, Op, Store, Unit};

/// Callback requests in flight at once.
pub const MAX_IN_FLIGHT: usize = 16;
/// Tries per callback.
pub const MAX_ATTEMPTS: u32 = 5;
/// The wait before the second try, by default; it doubles after each
/// failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// One request, answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the worker sleeps when nothing is owed or it cannot read the
/// store: a wake-up or a finished call usually comes first.
const IDLE: Duration = Duration::from_secs(30);

/// The call owed for `message`'s report, due now.
pub fn owed(message_id: MessageId, url: String, now: Micros) -> PendingCallback {
    PendingCallback {
        due: now,
        id: time_ordered_uuid(),
        message_id,
        url,
        attempts: 0,
    }
}

/// What the link holds to wake the worker once it has committed a call.
/// Cheap to clone.
#[derive(Clone)]
pub struct DlrCallbacks {
    wake: Arc<Notify>,
}

impl DlrCallbacks {
    /// The handle, and the worker that makes the calls owed in `store` until
    /// `shutdown` (spawn it), waiting `first_retry` (normally
    /// [`FIRST_RETRY`]) before the second try.
    pub fn new(
        http: HttpClient,
        store: Store,
        first_retry: Duration,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> (
        DlrCallbacks,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let wake = Arc::new(Notify::new());
        let worker = Worker {
            http,
            store,
            first_retry,
            wake: wake.clone(),
            metrics,
        };
        (DlrCallbacks { wake }, worker.run(shutdown))
    }

    /// Tells the worker a call was committed. (A wake-up while the worker is
    /// busy is kept for when it next waits.)
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

struct Worker {
    http: HttpClient,
    store: Store,
    first_retry: Duration,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
}

impl Worker {
    async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        // The calls in flight, by the task making each, so that a task
        // that ends in any way frees its call.
        let mut calls = JoinSet::new();
        let mut in_flight: HashMap<tokio::task::Id, [u8; 16]> = HashMap::new();
        loop {
            let wait = this.start_due(&mut calls, &mut in_flight).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = this.wake.notified() => {}
                Some(done) = calls.join_next_with_id() => {
                    let task = match &done {
                        Ok((task, ())) => *task,
                        Err(e) => e.id(),
                    };
                    in_flight.remove(&task);
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
        if !calls.is_empty() {
            debug!(
                in_flight = calls.len(),
                "stopping: dlr-url calls in flight stay owed"
            );
        }
        calls.shutdown().await;
    }

    /// Starts the calls that are due, as far as slots allow; returns how
    /// long to wait before the next one is due.
    async fn start_due(
        self: &Arc<Self>,
        calls: &mut JoinSet<()>,
        in_flight: &mut HashMap<tokio::task::Id, [u8; 16]>,
    ) -> Duration {
        let free = MAX_IN_FLIGHT - in_flight.len();
        if free == 0 {
            return IDLE;
        }
        // The calls in flight are still owed, so they come first in the
        // table; read past them.
        let owed = match self.store.owed_callbacks(in_flight.len() + free + 1).await {
            Ok(owed) => owed,
            Err(e) => {
                warn!(error = %e, "cannot read the dlr-url calls owed; trying again later");
                return IDLE;
            }
        };
        let busy: HashSet<[u8; 16]> = in_flight.values().copied().collect();
        let now = now_micros();
        let waiting = owed.into_iter().filter(|c| !busy.contains(&c.id));
        for (started, callback) in waiting.enumerate() {
            if callback.due > now {
                let micros = u64::try_from(callback.due - now).unwrap_or(0);
                return Duration::from_micros(micros).min(IDLE);
            }
            if started == free {
                // Due, but no slot: a finished call wakes the worker.
                break;
            }
            let id = callback.id;
            let this = self.clone();
            let task = calls.spawn(async move { this.call(callback).await });
            in_flight.insert(task.id(), id);
        }
        IDLE
    }

    /// Makes one attempt at `callback` and commits what follows: the call
    /// forgotten, rescheduled, or given up with a delivery error.
    async fn call(&self, callback: PendingCallback) {
        let id = callback.message_id;
        // Redirects followed as smsbox follows them for a dlr-url.
        let (_, sent) = self
            .http
            .send_following(
                Method::GET,
                &callback.url,
                &[],
                Bytes::new(),
                REQUEST_TIMEOUT,
                crate::client::redirect::MAX_FOLLOW,
            )
            .await;
        let failure = match sent {
            Ok(r) if r.status.as_u16() < 500 => {
                let outcome = if r.status.is_success() {
                    CallbackOutcome::Done
                } else {
                    CallbackOutcome::Failed
                };
                self.metrics.callbacks.report(CallbackKind::DlrUrl, outcome);
                if r.status.is_success() {
                    debug!(
                        message_id = id,
                        status = r.status.as_u16(),
                        "dlr-url called"
                    );
                } else {
                    warn!(message_id = id, status = r.status.as_u16(), url = %callback.url, "dlr-url answered with an error; not retried");
                }
                None
            }
            Ok(r) => Some(format!("HTTP {}", r.status.as_u16())),
            Err(e) => Some(e.to_string()),
        };
        let mut unit = Unit::new().with(Op::ForgetCallback {
            due: callback.due,
            id: callback.id,
        });
        if let Some(error) = failure {
            let attempts = callback.attempts + 1;
            let now = now_micros();
            if attempts >= MAX_ATTEMPTS {
                warn!(message_id = id, url = %callback.url, %error, "dlr-url call failed {MAX_ATTEMPTS} times; giving up");
                self.metrics
                    .callbacks
                    .report(CallbackKind::DlrUrl, CallbackOutcome::Failed);
                unit.push(Op::AddDeliveryError(DeliveryError {
                    message_id: id,
                    time: now,
                    log: format!(
                        "dlr-url call failed {MAX_ATTEMPTS} times, last: {error}: {}",
                        callback.url
                    ),
                }));
            } else {
                let wait = self.first_retry.saturating_mul(1 << (attempts - 1).min(16));
                debug!(message_id = id, attempts, %error, "dlr-url call failed; retrying in {wait:?}");
                self.metrics
                    .callbacks
                    .report(CallbackKind::DlrUrl, CallbackOutcome::Retried);
                let wait = Micros::try_from(wait.as_micros()).unwrap_or(Micros::MAX);
                unit.push(Op::OweCallback(PendingCallback {
                    due: now.saturating_add(wait),
                    id: time_ordered_uuid(),
                    attempts,
                    ..callback
                }));
            }
        }
        if let Err(e) = self.store.commit(unit).await {
            // The call stays owed as it was; pause so that a failing store
            // is not asked again at once.
            warn!(message_id = id, error = %e, "could not record a dlr-url call's outcome");
            tokio::time::sleep(self.first_retry).await;
        }
    }
}

/// A local HTTP service that records every request and fails on demand.
#[cfg(test)]
#[path = "../../tests/support/service.rs"]
#[allow(dead_code)]
mod service;

/// The worker against a real HTTP service and a real store.
#[cfg(test)]
mod worker_tests;
