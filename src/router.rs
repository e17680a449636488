//! The router: runs every incoming message through the apps, inline, in the
//! phases RapidSMS defines, and turns the apps' responses into outgoing
//! messages that pass the `outgoing` phase.
//!
//! Phases, in order (every app gets every phase in configured order):
//!
//! 1. `filter` — an app returning true drops the message: nothing else runs.
//! 2. `parse` — apps annotate the message.
//! 3. `handle` — an app returning true marks the message handled, and the
//!    apps after it are not asked.
//! 4. `default` — only when nothing handled the message; an app returning
//!    true stops the phase.
//! 5. `cleanup` — always, unless the message was filtered.
//!
//! Each response then becomes an outgoing message, and `outgoing` runs over
//! the apps in *reverse* order; any app returning false cancels it (C).
//!
//! An app that fails, by error or by panic, is logged, its failure is kept
//! with the message, and the next app runs: one broken app never stops the
//! others, nor loses the message.
//!
//! The router does no I/O of its own. The caller (the bearerbox link or the
//! HTTP server) stores what [`Router::route`] returns in one commit and only
//! then acknowledges the message.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Notify;
use tracing::{debug, info_span, warn, Instrument, Span};

use crate::model::{
    now_micros, Connection, DeliveryError, Direction, KannelInfo, Message, MessageId, MtOptions,
    Status,
};
use crate::store::{Op, Store, Unit};

/// What an app may fail with. The message goes on; the text is logged and
/// kept with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AppError(pub String);

impl AppError {
    /// An error with this text.
    pub fn new(text: impl Into<String>) -> AppError {
        AppError(text.into())
    }
}

/// The result of an app's phase.
pub type AppResult<T> = Result<T, AppError>;

/// The future returned by the phases that may do I/O (`handle`, `default`).
pub type AppFuture<'a, T> = Pin<Box<dyn Future<Output = AppResult<T>> + Send + 'a>>;

/// A response an app gives to an incoming message: a text for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub text: String,
    /// MT fields beyond the text, for a reply through a bearerbox (Kannel's
    /// sms-services set them); `None` for a plain reply.
    pub mt: Option<Box<MtReply>>,
}

/// What a reply may ask of its MT beyond the text, as smsbox's services
/// do (`faked-sender`, `forced-smsc`, X-Kannel-* headers, binary answers,
/// a service's `dlr-url`). Every field left at its default changes nothing
/// in the reply the router builds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MtReply {
    /// The reply's sender, instead of `global_sender` or the MO's receiver.
    pub sender: Option<String>,
    /// The reply's receiver, instead of the MO's sender.
    pub receiver: Option<String>,
    /// The smsc-id the reply goes through, instead of the MO's.
    pub smsc_id: Option<String>,
    /// The box protocol coding to send with (1 with `binary` sends those
    /// bytes as 8-bit; 2 forces UCS-2); `None` lets the text choose.
    pub coding: Option<i32>,
    /// 8-bit payload (with `coding = Some(1)`).
    pub binary: Option<Vec<u8>>,
    /// User data header.
    pub udh: Option<Vec<u8>>,
    /// Reports asked for, instead of the router's dlr_mask.
    pub dlr_mask: Option<i32>,
    /// The Kannel `service` of the reply (the sms-service's name).
    pub service: Option<String>,
    /// A caller's dlr-url and the other MT fields, as sendsms carries them.
    pub options: Option<MtOptions>,
}

/// An incoming message as the apps see it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The message as it will be stored (httprouter's `db_message`): its id,
    /// connection, text and Kannel details.
    pub message: Message,
    /// What `parse` apps found, for the apps after them.
    pub annotations: BTreeMap<String, String>,
    /// The responses so far.
    pub responses: Vec<Response>,
    /// Failures the current app reported without failing its phase (see
    /// [`Incoming::report_failure`]); the router takes them after each
    /// call and records them with the app's name.
    reported: Vec<String>,
    /// Told when an app is about to wait on something outside rapidbox
    /// (see [`Incoming::waiting_outside`]).
    outside: Option<Arc<Notify>>,
}

impl Incoming {
    /// An incoming message for the apps.
    pub fn new(message: Message) -> Incoming {
        Incoming {
            message,
            annotations: BTreeMap::new(),
            responses: Vec::new(),
            reported: Vec::new(),
            outside: None,
        }
    }

    /// Says that the app is about to wait on something outside rapidbox
    /// (an HTTP application, a program) whose answer may take long. An MO
    /// from the bearerbox is then stored as received and acknowledged at
    /// once, and its routing finishes in the background (when `[router]`
    /// defers at all and a background slot is free), instead of holding
    /// the bearerbox's window for `defer_after_ms` first. Call it only
    /// right before such a wait: an MO deferred costs one more commit.
    pub fn waiting_outside(&self) {
        if let Some(outside) = &self.outside {
            outside.notify_one();
        }
    }

    /// The message text.
    pub fn text(&self) -> &str {
        &self.message.text
    }

    /// Answers the sender.
    pub fn respond(&mut self, text: impl Into<String>) {
        self.responses.push(Response {
            text: text.into(),
            mt: None,
        });
    }

    /// Answers with MT fields of its own (see [`MtReply`]).
    pub fn respond_mt(&mut self, text: impl Into<String>, mt: MtReply) {
        self.responses.push(Response {
            text: text.into(),
            mt: Some(Box::new(mt)),
        });
    }

    /// Records a failure that the app has dealt with itself (a webhook
    /// that timed out and sent its failure reply, say): it is kept with the
    /// message like an error, but the app's answer for the phase stands.
    pub fn report_failure(&mut self, error: impl Into<String>) {
        self.reported.push(error.into());
    }
}

/// A RapidSMS-style app. Every method has a default that does nothing, so an
/// app implements only the phases it cares about. Implement it in your own
/// binary and hand it to [`Router::new`] next to the built-in apps.
pub trait App: Send + Sync + 'static {
    /// The app's name, for logs and for errors kept with a message.
    fn name(&self) -> &str;

    /// True drops the message: no later phase runs, no response is sent.
    fn filter(&self, _msg: &Incoming) -> AppResult<bool> {
        Ok(false)
    }

    /// Annotates the message for the apps after this one.
    fn parse(&self, _msg: &mut Incoming) -> AppResult<()> {
        Ok(())
    }

    /// True when this app handled the message.
    fn handle<'a>(&'a self, _msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        Box::pin(std::future::ready(Ok(false)))
    }

    /// Runs only when no app handled the message; true stops the phase.
    fn default<'a>(&'a self, _msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        Box::pin(std::future::ready(Ok(false)))
    }

    /// Runs last for every message that was not filtered.
    fn cleanup(&self, _msg: &mut Incoming) -> AppResult<()> {
        Ok(())
    }

    /// False cancels this outgoing message. `answering` is the incoming
    /// message it replies to, after every phase (with its annotations), or
    /// `None` for a message that answers nothing (sendsms, a console reply).
    /// Async, as `handle` is, so an app may read the store (the opt-out
    /// list) to decide.
    fn outgoing<'a>(
        &'a self,
        _msg: &'a Message,
        _answering: Option<&'a Incoming>,
    ) -> AppFuture<'a, bool> {
        Box::pin(std::future::ready(Ok(true)))
    }
}

/// An app's failure, kept with the message it happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFailure {
    pub app: String,
    pub phase: &'static str,
    pub error: String,
}

impl std::fmt::Display for AppFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "app {} failed in {}: {}",
            self.app, self.phase, self.error
        )
    }
}

/// What routing produced: the incoming message, now handled (H), and the
/// outgoing messages, queued (Q) or cancelled (C).
#[derive(Debug, Clone)]
pub struct Routed {
    pub incoming: Message,
    pub outgoing: Vec<Message>,
    /// True when a `filter` app dropped the message.
    pub filtered: bool,
    /// True when an app handled it in `handle` (not counting `default`).
    pub handled: bool,
    pub failures: Vec<AppFailure>,
}

impl Routed {
    /// What to commit, in one unit: the incoming message, every outgoing
    /// one, and a delivery error on the incoming message for each app
    /// failure. Only once it is durable may the message be acknowledged
    /// and the queued replies sent.
    pub fn unit(&self) -> Unit {
        // The message first: a delivery error must name a stored message.
        let mut unit = Unit::new().with(Op::put(self.incoming.clone()));
        for failure in &self.failures {
            unit.push(Op::AddDeliveryError(DeliveryError {
                message_id: self.incoming.id,
                time: now_micros(),
                log: failure.to_string(),
            }));
        }
        for reply in &self.outgoing {
            unit.push(Op::put(reply.clone()));
        }
        unit
    }

    /// The outgoing messages to send (those the outgoing phase let through).
    pub fn queued(&self) -> impl Iterator<Item = &Message> {
        self.outgoing.iter().filter(|m| m.status == Status::Queued)
    }
}

/// How outgoing messages get their ids and Kannel details.
pub trait Ids: Send + Sync {
    /// A fresh message id.
    fn next_id(&self) -> MessageId;
}

/// The store's counter: the ids every running rapidbox uses.
impl Ids for Store {
    fn next_id(&self) -> MessageId {
        self.allocate_id()
    }
}

/// Settings for the replies the router builds.
#[derive(Debug, Clone, Default)]
pub struct ReplySettings {
    /// The sender for replies through a bearerbox, instead of the MO's
    /// receiver.
    pub global_sender: Option<String>,
    /// The delivery reports replies ask for.
    pub dlr_mask: i32,
}

/// The router: the apps, in order.
#[derive(Clone)]
pub struct Router {
    apps: Arc<[Arc<dyn App>]>,
    ids: Arc<dyn Ids>,
    replies: Arc<ReplySettings>,
}

/// The span of what is done for `message`: every line logged in it
/// carries the message's id and, when it has one, its Kannel UUID.
pub fn message_span(message: &Message) -> Span {
    info_span!(
        "message",
        message_id = message.id,
        kannel_uuid = message.kannel_uuid().map(tracing::field::display)
    )
}

/// Runs a synchronous phase, turning errors and panics into a failure.
fn guard<T>(
    app: &dyn App,
    phase: &'static str,
    failures: &mut Vec<AppFailure>,
    f: impl FnOnce() -> AppResult<T>,
) -> Option<T> {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
    settle(app, phase, failures, outcome)
}

fn settle<T>(
    app: &dyn App,
    phase: &'static str,
    failures: &mut Vec<AppFailure>,
    outcome: std::thread::Result<AppResult<T>>,
) -> Option<T> {
    let error = match outcome {
        Ok(Ok(value)) => return Some(value),
        Ok(Err(e)) => e.0,
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            format!("panicked: {text}")
        }
    };
    let failure = AppFailure {
        app: app.name().to_owned(),
        phase,
        error,
    };
    warn!(app = %failure.app, phase, error = %failure.error, "app failed; the next app runs");
    failures.push(failure);
    None
}

/// Moves what `app` reported during `phase` into `failures`.
fn take_reported(
    app: &dyn App,
    phase: &'static str,
    msg: &mut Incoming,
    failures: &mut Vec<AppFailure>,
) {
    for error in msg.reported.drain(..) {
        warn!(app = app.name(), phase, %error, "app reported a failure");
        failures.push(AppFailure {
            app: app.name().to_owned(),
            phase,
            error,
        });
    }
}

impl Router {
    /// A router over `apps`, in order.
    pub fn new(apps: Vec<Box<dyn App>>, ids: Arc<dyn Ids>, replies: ReplySettings) -> Router {
        Router::shared(apps.into_iter().map(Arc::from).collect(), ids, replies)
    }

    /// A router over `apps`, in order, that other routers may share (a
    /// reload builds a new router around an embedder's apps).
    pub fn shared(apps: Vec<Arc<dyn App>>, ids: Arc<dyn Ids>, replies: ReplySettings) -> Router {
        Router {
            apps: apps.into(),
            ids,
            replies: Arc::new(replies),
        }
    }

    /// The apps' names, in order.
    pub fn app_names(&self) -> Vec<&str> {
        self.apps.iter().map(|a| a.name()).collect()
    }

    /// Routes one incoming message through every phase. Never fails: app
    /// failures are in the result.
    ///
    /// Everything logged while it is routed (by the router or an app,
    /// inline or in the background) is in the message's span, so the
    /// line carries its `message_id` and `kannel_uuid`.
    pub async fn route(&self, message: Message) -> Routed {
        self.route_telling(message, None).await
    }

    /// [`Router::route`], telling `outside` when an app says it is about
    /// to wait on something outside rapidbox ([`Incoming::waiting_outside`]).
    pub async fn route_telling(&self, message: Message, outside: Option<Arc<Notify>>) -> Routed {
        let span = message_span(&message);
        self.route_in_span(message, outside).instrument(span).await
    }

    async fn route_in_span(&self, message: Message, outside: Option<Arc<Notify>>) -> Routed {
        let id = message.id;
        let mut msg = Incoming::new(message);
        msg.outside = outside;
        let mut failures = Vec::new();

        for app in self.apps.iter() {
            let app = app.as_ref();
            if guard(app, "filter", &mut failures, || app.filter(&msg)) == Some(true) {
                debug!(message_id = id, app = app.name(), "filtered");
                let mut incoming = msg.message;
                incoming.status = Status::Handled;
                return Routed {
                    incoming,
                    outgoing: Vec::new(),
                    filtered: true,
                    handled: false,
                    failures,
                };
            }
        }
        for app in self.apps.iter() {
            let app = app.as_ref();
            guard(app, "parse", &mut failures, || app.parse(&mut msg));
            take_reported(app, "parse", &mut msg, &mut failures);
        }
        let mut handled = false;
        for app in self.apps.iter() {
            let app = app.as_ref();
            let outcome = AssertUnwindSafe(app.handle(&mut msg)).catch_unwind().await;
            take_reported(app, "handle", &mut msg, &mut failures);
            if settle(app, "handle", &mut failures, outcome) == Some(true) {
                debug!(message_id = id, app = app.name(), "handled");
                handled = true;
                break;
            }
        }
        if !handled {
            for app in self.apps.iter() {
                let app = app.as_ref();
                let outcome = AssertUnwindSafe(app.default(&mut msg)).catch_unwind().await;
                take_reported(app, "default", &mut msg, &mut failures);
                if settle(app, "default", &mut failures, outcome) == Some(true) {
                    break;
                }
            }
        }
        for app in self.apps.iter() {
            let app = app.as_ref();
            guard(app, "cleanup", &mut failures, || app.cleanup(&mut msg));
            take_reported(app, "cleanup", &mut msg, &mut failures);
        }

        msg.message.status = Status::Handled;
        msg.message.updated = now_micros();
        let responses = std::mem::take(&mut msg.responses);
        let mut outgoing = Vec::with_capacity(responses.len());
        for response in responses {
            outgoing.push(self.outgoing_message(&msg, response, &mut failures).await);
        }
        Routed {
            incoming: msg.message,
            outgoing,
            filtered: false,
            handled,
            failures,
        }
    }

    /// Builds the reply to `incoming` and runs the outgoing phase over it.
    async fn outgoing_message(
        &self,
        answering: &Incoming,
        response: Response,
        failures: &mut Vec<AppFailure>,
    ) -> Message {
        let incoming = &answering.message;
        let mut kannel = incoming.kannel.as_ref().map(|mo| KannelInfo {
            uuid: Some(*uuid::Uuid::new_v4().as_bytes()),
            shortcode: self
                .replies
                .global_sender
                .clone()
                .or_else(|| mo.shortcode.clone()),
            smsc_id: mo.smsc_id.clone(),
            dlr_mask: self.replies.dlr_mask,
            ..KannelInfo::default()
        });
        let mut connection = incoming.connection.clone();
        if let (Some(k), Some(mt)) = (kannel.as_mut(), response.mt) {
            apply_mt(k, &mut connection, *mt);
        }
        let mut reply = Message::new(
            self.ids.next_id(),
            connection,
            Direction::Outgoing,
            response.text,
        );
        reply.in_response_to = Some(incoming.id);
        reply.kannel = kannel;
        if let Some(uuid) = reply.kannel.as_ref().and_then(|k| k.uuid) {
            reply.external_id = Some(uuid::Uuid::from_bytes(uuid).to_string());
        }
        self.screen_outgoing(&mut reply, Some(answering), failures)
            .await;
        reply
    }

    /// Runs the outgoing phase over `msg`, a new message that answers no
    /// MO (sendsms, a console reply), and adds what stores it to `unit`:
    /// the message, queued or cancelled, then a delivery error on it for
    /// each app failure. Returns the message as stored.
    pub async fn screen_new_outgoing(&self, mut msg: Message, unit: &mut Unit) -> Message {
        let span = message_span(&msg);
        let mut failures = Vec::new();
        self.screen_outgoing(&mut msg, None, &mut failures)
            .instrument(span)
            .await;
        // The message first: a delivery error must name a stored message.
        unit.push(Op::put(msg.clone()));
        for failure in &failures {
            unit.push(Op::AddDeliveryError(DeliveryError {
                message_id: msg.id,
                time: now_micros(),
                log: failure.to_string(),
            }));
        }
        msg
    }

    /// Runs the outgoing phase, in reverse app order, over a message about
    /// to be queued; cancels it (C) when an app says no.
    async fn screen_outgoing(
        &self,
        msg: &mut Message,
        answering: Option<&Incoming>,
        failures: &mut Vec<AppFailure>,
    ) {
        for app in self.apps.iter().rev() {
            let app = app.as_ref();
            // A panic while the future is made counts as one while it runs.
            let outcome =
                match std::panic::catch_unwind(AssertUnwindSafe(|| app.outgoing(msg, answering))) {
                    Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                    Err(panic) => Err(panic),
                };
            let verdict = settle(app, "outgoing", failures, outcome);
            if verdict == Some(false) {
                debug!(
                    message_id = msg.id,
                    app = app.name(),
                    "outgoing message cancelled"
                );
                msg.status = Status::Cancelled;
                return;
            }
        }
    }
}

/// Puts what a reply asked for ([`MtReply`]) into its Kannel details.
fn apply_mt(k: &mut KannelInfo, connection: &mut Connection, mt: MtReply) {
    if let Some(sender) = mt.sender {
        k.shortcode = Some(sender);
    }
    if let Some(receiver) = mt.receiver {
        *connection = Connection::new(&connection.backend, &receiver);
    }
    if let Some(smsc) = mt.smsc_id {
        k.smsc_id = Some(smsc);
    }
    if let Some(coding) = mt.coding {
        k.coding = coding;
    }
    k.binary = mt.binary;
    k.udh = mt.udh;
    if let Some(mask) = mt.dlr_mask {
        k.dlr_mask = mask;
    }
    k.service = mt.service;
    k.mt_options = mt.options.map(Box::new);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    struct Counter(AtomicU64);
    impl Ids for Counter {
        fn next_id(&self) -> MessageId {
            self.0.fetch_add(1, Ordering::Relaxed)
        }
    }

    /// A scripted app that records which phases it saw.
    struct Script {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        filter: bool,
        handle: Option<bool>,
        default: bool,
        outgoing: bool,
        reply: Option<&'static str>,
        fail_in: Option<&'static str>,
    }

    impl Script {
        fn new(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Script {
            Script {
                name,
                log: log.clone(),
                filter: false,
                handle: Some(false),
                default: false,
                outgoing: true,
                reply: None,
                fail_in: None,
            }
        }
        fn note(&self, phase: &str) -> AppResult<()> {
            self.log
                .lock()
                .unwrap()
                .push(format!("{}.{phase}", self.name));
            match self.fail_in {
                Some(p) if p == phase && phase == "parse" => panic!("boom"),
                Some(p) if p == phase => Err(AppError::new("broken")),
                _ => Ok(()),
            }
        }
    }

    impl App for Script {
        fn name(&self) -> &str {
            self.name
        }
        fn filter(&self, _: &Incoming) -> AppResult<bool> {
            self.note("filter")?;
            Ok(self.filter)
        }
        fn parse(&self, _: &mut Incoming) -> AppResult<()> {
            self.note("parse")
        }
        fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
            Box::pin(async move {
                self.note("handle")?;
                if let Some(text) = self.reply {
                    msg.respond(text);
                }
                match self.handle {
                    Some(h) => Ok(h),
                    None => panic!("handle panicked"),
                }
            })
        }
        fn default<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
            Box::pin(async move {
                self.note("default")?;
                if self.default {
                    msg.respond(format!("{} default", self.name));
                }
                Ok(self.default)
            })
        }
        fn cleanup(&self, _: &mut Incoming) -> AppResult<()> {
            self.note("cleanup")
        }
        fn outgoing<'a>(&'a self, _: &'a Message, _: Option<&'a Incoming>) -> AppFuture<'a, bool> {
            Box::pin(async move {
                self.note("outgoing")?;
                Ok(self.outgoing)
            })
        }
    }

    fn mo(text: &str) -> Message {
        let mut mo = Message::new(
            1,
            Connection::new("fake", "+256 772 123456"),
            Direction::Incoming,
            text,
        );
        mo.kannel = Some(KannelInfo {
            shortcode: Some("8500".into()),
            smsc_id: Some("fake".into()),
            ..KannelInfo::default()
        });
        mo
    }

    fn router(apps: Vec<Script>) -> Router {
        let apps = apps
            .into_iter()
            .map(|a| Box::new(a) as Box<dyn App>)
            .collect();
        Router::new(
            apps,
            Arc::new(Counter(AtomicU64::new(100))),
            ReplySettings {
                global_sender: None,
                dlr_mask: 31,
            },
        )
    }

    fn log_of(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
        log.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn every_app_gets_every_phase_in_order_and_outgoing_in_reverse() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut a = Script::new("a", &log);
        a.reply = Some("hi");
        let b = Script::new("b", &log);
        let routed = router(vec![a, b]).route(mo("hello")).await;
        assert_eq!(
            log_of(&log),
            [
                "a.filter",
                "b.filter",
                "a.parse",
                "b.parse",
                "a.handle",
                "b.handle",
                "a.default",
                "b.default",
                "a.cleanup",
                "b.cleanup",
                "b.outgoing",
                "a.outgoing"
            ]
        );
        assert_eq!(routed.incoming.status, Status::Handled);
        let reply = &routed.outgoing[0];
        assert_eq!(reply.status, Status::Queued);
        assert_eq!(reply.text, "hi");
        assert_eq!(reply.id, 100);
        assert_eq!(reply.in_response_to, Some(1));
        assert_eq!(reply.connection.address, "+256 772 123456");
        let k = reply.kannel.as_ref().unwrap();
        assert_eq!(k.shortcode.as_deref(), Some("8500"));
        assert_eq!(k.smsc_id.as_deref(), Some("fake"));
        assert_eq!(k.dlr_mask, 31);
        assert!(k.uuid.is_some());
        assert_eq!(
            reply.external_id,
            Some(uuid::Uuid::from_bytes(k.uuid.unwrap()).to_string())
        );
    }

    #[tokio::test]
    async fn a_filter_drops_the_message_and_nothing_else_runs() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut a = Script::new("a", &log);
        a.filter = true;
        let b = Script::new("b", &log);
        let routed = router(vec![a, b]).route(mo("spam")).await;
        assert_eq!(log_of(&log), ["a.filter"]);
        assert!(routed.filtered);
        assert!(routed.outgoing.is_empty());
    }

    #[tokio::test]
    async fn handling_stops_the_handle_phase_and_skips_default() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut a = Script::new("a", &log);
        a.handle = Some(true);
        a.reply = Some("from a");
        let mut b = Script::new("b", &log);
        b.default = true;
        let routed = router(vec![a, b]).route(mo("x")).await;
        let log = log_of(&log);
        assert!(!log.contains(&"b.handle".to_owned()));
        assert!(!log.iter().any(|l| l.ends_with(".default")));
        assert!(routed.handled);
        assert_eq!(routed.outgoing.len(), 1);
    }

    #[tokio::test]
    async fn default_runs_until_an_app_says_true() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut a = Script::new("a", &log);
        a.default = true;
        let mut b = Script::new("b", &log);
        b.default = true;
        let routed = router(vec![a, b]).route(mo("x")).await;
        assert!(!log_of(&log).contains(&"b.default".to_owned()));
        assert_eq!(routed.outgoing.len(), 1);
        assert_eq!(routed.outgoing[0].text, "a default");
    }

    #[tokio::test]
    async fn a_failing_or_panicking_app_is_logged_and_the_next_app_runs() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut a = Script::new("a", &log);
        a.fail_in = Some("parse"); // panics
        a.handle = None; // panics too
        let mut b = Script::new("b", &log);
        b.fail_in = Some("cleanup");
        b.reply = Some("still here");
        let routed = router(vec![a, b]).route(mo("x")).await;
        assert!(log_of(&log).contains(&"b.parse".to_owned()));
        assert_eq!(routed.outgoing[0].text, "still here");
        let phases: Vec<_> = routed
            .failures
            .iter()
            .map(|f| (f.app.as_str(), f.phase))
            .collect();
        assert_eq!(phases, [("a", "parse"), ("a", "handle"), ("b", "cleanup")]);
        assert!(routed.failures[0].error.contains("boom"));
    }

    #[tokio::test]
    async fn an_outgoing_veto_cancels_only_that_message() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut a = Script::new("a", &log);
        a.reply = Some("one");
        let mut b = Script::new("b", &log);
        b.outgoing = false;
        let routed = router(vec![a, b]).route(mo("x")).await;
        assert_eq!(routed.outgoing[0].status, Status::Cancelled);
        // b runs first in reverse order and vetoes: a is not asked.
        assert!(!log_of(&log).contains(&"a.outgoing".to_owned()));
    }
}
