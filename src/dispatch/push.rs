//! The push transport, as rapidsms-httprouter's `ROUTER_URL`: one HTTP
//! request per outgoing message, built from a URL template with
//! `%(backend)s`, `%(recipient)s`, `%(text)s` and `%(id)s` replaced,
//! URL-encoded.
//!
//! Any 2xx answer marks the message sent (S). Anything else — another
//! status, a timeout, a refused connection — stores a delivery error with
//! what happened and makes the message E, to be retried with backoff; the
//! `max_attempts`-th failure (the third, by default) makes it F. A message
//! whose backend has no URL and no `default` fails at once, saying so.
//!
//! Retries are durable: the outbox sweeps the store every minute for E
//! messages whose time has come and for Q messages older than three
//! minutes, so a restart resumes where it stopped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::outbox::{Outbox, Policy};
use crate::client::HttpClient;
use crate::config::{PushConfig, PushMethod};
use crate::metrics::{CallbackKind, CallbackOutcome, Metrics, MtKind, MtOutcome, MtTransport};
use crate::model::{now_micros, DeliveryError, Message, Micros, Status};
use crate::store::{Op, Store, Unit, Update};
use crate::template::percent_encode;

/// How much of a failed answer's body goes into the delivery error.
const BODY_EXCERPT: usize = 200;

/// How long a shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The outbox policy for push backends: those `serves` accepts, swept
/// every `sweep_secs` (a minute) for E messages due and Q messages older
/// than `stale_queued_secs` (three minutes).
pub fn policy(config: &PushConfig, serves: Arc<dyn Fn(&str) -> bool + Send + Sync>) -> Policy {
    Policy {
        sweep_every: Duration::from_secs(config.sweep_secs.max(1)),
        fresh_grace: Duration::from_secs(config.stale_queued_secs),
        serves,
    }
}

/// Fills a push URL template for `msg`.
pub fn render_url(template: &str, msg: &Message) -> String {
    let mut out = String::with_capacity(template.len() + msg.text.len() * 3);
    let mut rest = template;
    while let Some(at) = rest.find("%(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let field = after
            .find(")s")
            .map(|end| (&after[..end], &after[end + 2..]));
        let value = match field {
            Some(("backend", _)) => Some(msg.connection.backend.clone()),
            Some(("recipient", _)) => Some(msg.connection.address.clone()),
            Some(("text", _)) => Some(msg.text.clone()),
            Some(("id", _)) => Some(msg.id.to_string()),
            _ => None,
        };
        match (value, field) {
            (Some(value), Some((_, tail))) => {
                percent_encode(&value, &mut out);
                rest = tail;
            }
            // Checked at config load; left as written if it slips through.
            _ => {
                out.push_str("%(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The form body of a POST push.
fn form_body(msg: &Message) -> Bytes {
    let mut body = String::new();
    for (i, (name, value)) in [
        ("backend", msg.connection.backend.as_str()),
        ("recipient", msg.connection.address.as_str()),
        ("text", msg.text.as_str()),
        ("id", &msg.id.to_string()),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            body.push('&');
        }
        body.push_str(name);
        body.push('=');
        percent_encode(value, &mut body);
    }
    Bytes::from(body)
}

/// Delay before retry number `attempts` (1-based): `first` seconds,
/// doubling, at most an hour.
fn retry_delay(first: u64, attempts: u32) -> Micros {
    let secs = first.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    (secs.min(3600) * 1_000_000) as Micros
}

/// Sends push messages from its outbox, a bounded number at a time.
pub struct Pusher {
    pub config: Arc<PushConfig>,
    pub http: HttpClient,
    pub store: Store,
    pub outbox: Outbox,
    /// Where push outcomes are counted.
    pub metrics: Arc<Metrics>,
}

impl Pusher {
    /// Runs until `shutdown`, then waits (bounded) for requests in flight.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.config.max_in_flight.max(1)));
        let mut requests = JoinSet::new();
        let this = Arc::new(self);
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                msg = this.outbox.next() => msg,
            };
            let pusher = this.clone();
            requests.spawn(async move {
                pusher.push(msg).await;
                drop(permit);
            });
            while requests.try_join_next().is_some() {}
        }
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while requests.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("push requests still in flight after {DRAIN_TIMEOUT:?}; they will be retried");
            requests.abort_all();
        }
    }

    /// One attempt to push `msg`, and its outcome stored.
    async fn push(&self, msg: Message) {
        let id = msg.id;
        let kind = MtKind::of(&msg);
        let report = |mt: MtOutcome, call: CallbackOutcome| {
            self.metrics.messages.mt(MtTransport::Push, kind, mt);
            self.metrics.callbacks.report(CallbackKind::Push, call);
        };
        if msg.attempts == 0 {
            self.metrics
                .callbacks
                .report(CallbackKind::Push, CallbackOutcome::Owed);
        }
        let outcome = match self.config.url_for(&msg.connection.backend) {
            None => Err((
                format!(
                    "no push URL for backend {:?} and no default",
                    msg.connection.backend
                ),
                true,
            )),
            Some(template) => {
                let url = render_url(template, &msg);
                let (method, ct, body) = match self.config.method {
                    PushMethod::Get => (Method::GET, None, Bytes::new()),
                    PushMethod::Post => (
                        Method::POST,
                        Some("application/x-www-form-urlencoded"),
                        form_body(&msg),
                    ),
                };
                debug!(message_id = id, %url, "pushing");
                match self
                    .http
                    .send(method, &url, ct, body, self.config.timeout())
                    .await
                {
                    Ok(answer) if answer.status.is_success() => Ok(()),
                    Ok(answer) => {
                        let excerpt = &answer.body[..answer.body.len().min(BODY_EXCERPT)];
                        Err((
                            format!(
                                "HTTP {}: {}",
                                answer.status.as_u16(),
                                String::from_utf8_lossy(excerpt)
                            ),
                            false,
                        ))
                    }
                    Err(e) => Err((e.to_string(), false)),
                }
            }
        };
        let now = now_micros();
        let unit = match outcome {
            Ok(()) => {
                info!(message_id = id, "pushed");
                report(MtOutcome::Accepted, CallbackOutcome::Done);
                Unit::new().with(
                    Update::status(id, Status::Sent, now)
                        .retry_after(None)
                        .into(),
                )
            }
            Err((log, hopeless)) => {
                let attempts = msg.attempts + 1;
                let give_up = hopeless || attempts >= self.config.max_attempts;
                let update = if give_up {
                    warn!(message_id = id, attempts, error = %log, "push failed; giving up");
                    report(MtOutcome::Failed, CallbackOutcome::Failed);
                    Update::status(id, Status::Failed, now).attempts(attempts)
                } else {
                    let retry = now + retry_delay(self.config.retry_secs, attempts);
                    warn!(message_id = id, attempts, error = %log, "push failed; will retry");
                    report(MtOutcome::Retry, CallbackOutcome::Retried);
                    Update::status(id, Status::Errored, now)
                        .attempts(attempts)
                        .retry_after(Some(retry))
                };
                Unit::new()
                    .with(update.into())
                    .with(Op::AddDeliveryError(DeliveryError {
                        message_id: id,
                        time: now,
                        log,
                    }))
            }
        };
        match self.store.commit(unit).await {
            // Committed: sweeps may take it again as soon as it is due.
            Ok(_) => self.outbox.finished(id),
            Err(e) => {
                // Its old status stands in the store; keep sweeps off it
                // for a while rather than resend at once.
                warn!(message_id = id, error = %e, "could not store the push outcome");
                self.outbox.done(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, Direction};

    fn msg() -> Message {
        Message::new(
            42,
            Connection::new("tigo", "+250 788 383383"),
            Direction::Outgoing,
            "hi & bye?",
        )
    }

    #[test]
    fn every_field_is_substituted_url_encoded() {
        let url = render_url(
            "http://k:13013/cgi-bin/sendsms?to=%(recipient)s&text=%(text)s&smsc=%(backend)s&id=%(id)s&",
            &msg(),
        );
        assert_eq!(
            url,
            "http://k:13013/cgi-bin/sendsms?to=%2B250%20788%20383383&text=hi%20%26%20bye%3F&smsc=tigo&id=42&"
        );
    }

    #[test]
    fn the_post_body_is_a_form() {
        assert_eq!(
            &form_body(&msg())[..],
            b"backend=tigo&recipient=%2B250%20788%20383383&text=hi%20%26%20bye%3F&id=42"
        );
    }

    #[test]
    fn retries_back_off_from_a_minute() {
        let minutes: Vec<_> = (1..=8).map(|a| retry_delay(60, a) / 60_000_000).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
