//! Calls a sendsms caller's `dlr-url` when a delivery report arrives for
//! its message, as Kannel's smsbox does.
//!
//! The MT's own `dlr_url` on the wire is rapidbox's message id (that is how
//! a report finds its message); the caller's URL is kept with the message
//! ([`crate::model::MtOptions`]). When the link has durably recorded a
//! report, it [`expand`]s the caller's URL with the report's values and
//! hands it to [`DlrCallbacks::offer`].
//!
//! Bounds and choices:
//! - a queue of [`QUEUE_CAPACITY`] callbacks; when it is full the callback
//!   is dropped, logged, and recorded as a delivery error of the message,
//!   because blocking would hold up the bearerbox link's acks;
//! - at most [`MAX_IN_FLIGHT`] requests at once, each bounded by
//!   [`REQUEST_TIMEOUT`];
//! - a callback is tried up to [`MAX_ATTEMPTS`] times, [`FIRST_RETRY`]
//!   apart and twice that after each failure; any answer below 500 ends it
//!   (a 4xx would be answered again), a 5xx, a timeout or a connection
//!   failure is retried; the last failure is recorded as a delivery error;
//! - callbacks live in memory only: they survive a slow or failing
//!   receiver while rapidbox runs, not a restart. The report itself is
//!   durable (the message's DLR events), so nothing about the delivery is
//!   lost, only the call.

use std::sync::Arc;
use std::time::Duration;

use boxproto::Sms;
use bytes::Bytes;
use hyper::Method;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::client::HttpClient;
use crate::model::{now_micros, DeliveryError, Message, MessageId};
use crate::store::{Op, Store, Unit};

/// Callbacks waiting for a request slot.
pub const QUEUE_CAPACITY: usize = 1024;
/// Callback requests in flight at once.
pub const MAX_IN_FLIGHT: usize = 16;
/// Tries per callback.
pub const MAX_ATTEMPTS: u32 = 5;
/// The wait before the second try; it doubles after each failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// One request, answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One call to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The message the report is about.
    pub message_id: MessageId,
    /// The caller's URL with the report's values substituted.
    pub url: String,
}

/// Where callbacks are queued. Cheap to clone.
#[derive(Clone)]
pub struct DlrCallbacks {
    queue: mpsc::Sender<Callback>,
    store: Store,
}

impl DlrCallbacks {
    /// The queue, and the worker that empties it until `shutdown` (spawn
    /// it; callbacks not made by then are dropped).
    pub fn new(
        http: HttpClient,
        store: Store,
        shutdown: CancellationToken,
    ) -> (
        DlrCallbacks,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let worker = Worker {
            http,
            store: store.clone(),
        };
        (
            DlrCallbacks { queue, store },
            worker.run(receiver, shutdown),
        )
    }

    /// Queues `callback` without waiting. When the queue is full (or the
    /// worker has stopped) the callback is dropped and that is recorded as
    /// a delivery error of its message.
    pub async fn offer(&self, callback: Callback) {
        let refused = match self.queue.try_send(callback) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(c)) => (c, "queue full"),
            Err(mpsc::error::TrySendError::Closed(c)) => (c, "rapidbox is stopping"),
        };
        let (callback, why) = refused;
        warn!(message_id = callback.message_id, url = %callback.url, "dlr-url callback dropped: {why}");
        record_failure(
            &self.store,
            callback.message_id,
            format!("dlr-url callback dropped ({why}): {}", callback.url),
        )
        .await;
    }
}

async fn record_failure(store: &Store, message_id: MessageId, log: String) {
    let unit = Unit::new().with(Op::AddDeliveryError(DeliveryError {
        message_id,
        time: now_micros(),
        log,
    }));
    if let Err(e) = store.commit(unit).await {
        warn!(message_id, error = %e, "could not record a dlr-url callback failure");
    }
}

struct Worker {
    http: HttpClient,
    store: Store,
}

impl Worker {
    async fn run(self, mut receiver: mpsc::Receiver<Callback>, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut calls = JoinSet::new();
        loop {
            while calls.try_join_next().is_some() {}
            // A slot is taken before a callback leaves the queue, so the
            // queue, not the task set, is what grows under load.
            let slot = tokio::select! {
                _ = shutdown.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot,
            };
            // The semaphore is never closed.
            let Ok(slot) = slot else { break };
            let callback = tokio::select! {
                _ = shutdown.cancelled() => break,
                callback = receiver.recv() => callback,
            };
            let Some(callback) = callback else { break };
            let (this, stop) = (this.clone(), shutdown.clone());
            calls.spawn(async move {
                this.call(callback, stop).await;
                drop(slot);
            });
        }
        if !calls.is_empty() || !receiver.is_empty() {
            info!(
                in_flight = calls.len(),
                queued = receiver.len(),
                "stopping: dlr-url callbacks not made are dropped"
            );
        }
        calls.shutdown().await;
    }

    /// Makes one callback, retrying as the module says.
    async fn call(&self, callback: Callback, shutdown: CancellationToken) {
        let id = callback.message_id;
        let mut wait = FIRST_RETRY;
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let sent = self
                .http
                .send(
                    Method::GET,
                    &callback.url,
                    None,
                    Bytes::new(),
                    REQUEST_TIMEOUT,
                )
                .await;
            match sent {
                Ok(r) if r.status.as_u16() < 500 => {
                    if r.status.is_success() {
                        debug!(
                            message_id = id,
                            status = r.status.as_u16(),
                            "dlr-url called"
                        );
                    } else {
                        warn!(message_id = id, status = r.status.as_u16(), url = %callback.url, "dlr-url answered with an error; not retried");
                    }
                    return;
                }
                Ok(r) => last = format!("HTTP {}", r.status.as_u16()),
                Err(e) => last = e.to_string(),
            }
            if attempt == MAX_ATTEMPTS {
                break;
            }
            debug!(message_id = id, attempt, error = %last, "dlr-url call failed; retrying in {wait:?}");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = wait.saturating_mul(2);
        }
        warn!(message_id = id, url = %callback.url, error = %last, "dlr-url call failed {MAX_ATTEMPTS} times; giving up");
        record_failure(
            &self.store,
            id,
            format!(
                "dlr-url call failed {MAX_ATTEMPTS} times, last: {last}: {}",
                callback.url
            ),
        )
        .await;
    }
}

/// The caller's `template` with Kannel's DLR escapes substituted from the
/// report `report` on `message`, each value URL-encoded. As measured on
/// Kannel 1.4.5's smsbox (a sendsms with dlr-mask 31, fake SMSC):
///
/// | escape | value |
/// | --- | --- |
/// | `%d` | the event (the report's dlr_mask: 1, 2, 4, 8, 16) |
/// | `%A`, `%b` | the report's text (`ACK/` from the fake SMSC) |
/// | `%a` | its words, single-spaced; `%k` the first |
/// | `%p` | the phone: the MT's receiver (`to`) |
/// | `%P` | the MT's sender (`from`) |
/// | `%q`, `%Q` | `%p`, `%P` with a leading `00` as `+` |
/// | `%i` | the SMSC id |
/// | `%I` | the report's own UUID (not the MT's) |
/// | `%F` | the SMSC's id for the MT (empty until it gives one) |
/// | `%n` | the service: the sendsms username |
/// | `%D` | the report's meta-data |
/// | `%T` | the report's time, Unix seconds |
/// | `%t` | the same as `YYYY-MM-DD+HH:MM:SS` (UTC) |
/// | `%R` | the dlr-url itself |
/// | `%%` | a percent sign |
///
/// Any other escape is left as it is, as smsbox leaves `%x`.
pub fn expand(template: &str, report: &Sms, message: &Message) -> String {
    let field = |f: &Option<Bytes>| {
        f.as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let kannel = message.kannel.as_ref();
    let or = |value: String, fallback: Option<&String>| {
        if value.is_empty() {
            fallback.cloned().unwrap_or_default()
        } else {
            value
        }
    };
    let text = field(&report.msgdata);
    let phone = or(field(&report.receiver), Some(&message.connection.address));
    let sender = or(
        field(&report.sender),
        kannel.and_then(|k| k.shortcode.as_ref()),
    );
    let service = or(
        field(&report.service),
        kannel.and_then(|k| k.service.as_ref()),
    );
    let time = if report.time > 0 {
        i64::from(report.time)
    } else {
        now_micros() / 1_000_000
    };
    let mut out = String::with_capacity(template.len() + 64);
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(escape) = chars.next() else {
            out.push('%');
            break;
        };
        let value = match escape {
            'd' => report.dlr_mask.0.to_string(),
            'A' | 'b' => text.clone(),
            'a' => text.split_whitespace().collect::<Vec<_>>().join(" "),
            'k' => text.split_whitespace().next().unwrap_or("").to_owned(),
            'p' => phone.clone(),
            'P' => sender.clone(),
            'q' => plus_for_00(&phone),
            'Q' => plus_for_00(&sender),
            'i' => or(
                field(&report.smsc_id),
                kannel.and_then(|k| k.smsc_id.as_ref()),
            ),
            'I' => report.id.to_string(),
            'F' => field(&report.foreign_id),
            'n' => service.clone(),
            'D' => field(&report.meta_data),
            'T' => time.to_string(),
            't' => {
                // Written as smsbox writes it: the `+` is the space.
                out.push_str(&kannel_time(time));
                continue;
            }
            'R' => template.to_owned(),
            '%' => {
                out.push('%');
                continue;
            }
            other => {
                out.push('%');
                out.push(other);
                continue;
            }
        };
        url_encode(&value, &mut out);
    }
    out
}

/// `number` with a leading `00` written as `+`.
fn plus_for_00(number: &str) -> String {
    match number.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => number.to_owned(),
    }
}

/// `YYYY-MM-DD+HH:MM:SS` in UTC.
fn kannel_time(unix: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]+[hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

/// Appends `value` URL-encoded as smsbox encodes DLR values: letters,
/// digits and `-._~` as they are, a space as `+`, every other byte `%XX`.
fn url_encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in value.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else if byte == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, Direction, KannelInfo};
    use boxproto::{DlrMask, SmsType, Uuid};

    fn message() -> Message {
        let mut m = Message::new(
            7,
            Connection::new("fake", "00497"),
            Direction::Outgoing,
            "hi",
        );
        m.kannel = Some(KannelInfo {
            shortcode: Some("+5555".into()),
            service: Some("u".into()),
            ..KannelInfo::default()
        });
        m
    }

    fn report() -> Sms {
        Sms {
            sender: Some(Bytes::from_static(b"+5555")),
            receiver: Some(Bytes::from_static(b"00497")),
            msgdata: Some(Bytes::from_static(b"ACK/")),
            time: 1_795_702_758,
            smsc_id: Some(Bytes::from_static(b"fake")),
            service: Some(Bytes::from_static(b"u")),
            id: Uuid::from_u128(0x5cea),
            sms_type: SmsType::ReportMo,
            dlr_mask: DlrMask(8),
            meta_data: Some(Bytes::from_static(b"?orig_msg?dlr_mask=31&")),
            ..Sms::default()
        }
    }

    /// The values smsbox 1.4.5 put in the same URL for the same report.
    #[test]
    fn escapes_are_substituted_as_smsbox_does() {
        let url = "http://h/dlr?d=%d&A=%A&T=%T&t=%t&p=%p&P=%P&q=%q&Q=%Q&i=%i&n=%n&k=%k&F=%F&D=%D&x=%x&pct=%%";
        assert_eq!(
            expand(url, &report(), &message()),
            "http://h/dlr?d=8&A=ACK%2F&T=1795702758&t=2026-11-26+14:19:18&p=00497&P=%2B5555\
             &q=%2B497&Q=%2B5555&i=fake&n=u&k=ACK%2F&F=&D=%3Forig_msg%3Fdlr_mask%3D31%26&x=%x&pct=%"
        );
        assert_eq!(
            expand("%I", &report(), &message()),
            Uuid::from_u128(0x5cea).to_string()
        );
        assert_eq!(expand("%R|%", &report(), &message()), "%25R%7C%25|%");
    }

    #[test]
    fn missing_report_fields_fall_back_to_the_message() {
        let mut r = report();
        r.sender = None;
        r.receiver = None;
        r.service = None;
        r.msgdata = Some(Bytes::from_static(b"id:1 stat:DELIVRD"));
        assert_eq!(
            expand("%P %p %n %A", &r, &message()),
            "%2B5555 00497 u id%3A1+stat%3ADELIVRD"
        );
    }
}
