//! The one way in. Every message that enters rapidbox takes the same three
//! steps, whoever brings it:
//!
//! 1. **route** it through the apps (an incoming message) or screen it
//!    through their outgoing phase (a new outgoing message);
//! 2. **commit** it, with everything it produced, in one durable unit;
//! 3. **offer** the queued outgoing messages to their transports.
//!
//! | way in | call |
//! | --- | --- |
//! | an MO from the bearerbox (`link`) | [`Intake::receive_mo`] |
//! | `/router/receive`, a console test message | [`Intake::receive`] |
//! | `/cgi-bin/sendsms`, a console reply, an embedder's own | [`Intake::send`] |
//!
//! The order is the reliability rule: nothing is offered for sending before
//! it is durable, so a crash between the steps loses nothing (the
//! transports' sweeps find what was committed and not yet offered), and a
//! caller who hears "done" (an ack, an HTTP answer) can count on it.
//!
//! An MO whose apps are slow is the one exception to "routed, then
//! acknowledged": it is stored as received, acknowledged, and routed to
//! the end in the background or after a restart ([`deferred`]).

pub mod deferred;

use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Notify;
use tracing::debug;

use crate::dispatch::Dispatch;
use crate::metrics::{Metrics, MoResult};
use crate::model::{Connection, Direction, Message, MessageId, MoKey, Status};
use crate::reload::Reloadable;
use crate::router::Routed;
use crate::store::{Op, Outcome, Store, StoreError, Unit};
use deferred::Deferrals;

/// Routes, commits and dispatches. Cheap to clone: every way in holds one.
#[derive(Clone)]
pub struct Intake {
    store: Store,
    /// The apps (and the rest a reload changes): each message takes the
    /// current snapshot once and is routed to the end on it.
    settings: Reloadable,
    dispatch: Dispatch,
    /// Where MOs with slow apps finish routing; `None`: never deferred.
    deferrals: Option<Deferrals>,
    metrics: Arc<Metrics>,
}

/// What became of an incoming message.
#[derive(Debug, Clone)]
pub enum Received {
    /// Routed, and durably stored with its replies; the queued replies
    /// have been offered to their transports.
    Stored(Box<Routed>),
    /// An MO whose Kannel key is already stored, as this message (a
    /// redelivery, or a concurrent delivery that committed first). It was
    /// neither stored nor answered again.
    Duplicate(MessageId),
    /// An MO whose apps took longer than `[router] defer_after_ms`: it is
    /// durably stored as received (R) under its Kannel key, and its
    /// routing goes on in the background (or after a restart).
    Deferred(MessageId),
}

impl Intake {
    /// The intake over these parts, reporting to `metrics`; its router is
    /// `settings`' current one.
    pub(crate) fn new(
        store: Store,
        settings: Reloadable,
        dispatch: Dispatch,
        metrics: Arc<Metrics>,
    ) -> Intake {
        Intake {
            store,
            settings,
            dispatch,
            deferrals: None,
            metrics,
        }
    }

    /// Where every part reports its numbers.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The same intake, deferring MOs whose apps are slow to `deferrals`
    /// (run [`Deferrals::resume`] beside it).
    pub fn with_deferrals(mut self, deferrals: Deferrals) -> Intake {
        self.deferrals = Some(deferrals);
        self
    }

    /// The store every message is committed to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where queued messages are offered.
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// Routes a message received over HTTP (or typed in the console),
    /// commits it with its replies in one durable unit, then offers the
    /// queued replies. Returns what the router made of it, once durable.
    ///
    /// There is no duplicate check (such a message has no Kannel UUID): a
    /// relay that retries after a lost answer stores the message twice, as
    /// httprouter did.
    ///
    /// On error nothing of the unit is durable and nothing was offered;
    /// [`StoreError::is_transient`] says whether trying again may succeed.
    pub async fn receive(
        &self,
        connection: Connection,
        text: String,
    ) -> Result<Routed, StoreError> {
        let message = Message::new(
            self.store.allocate_id(),
            connection,
            Direction::Incoming,
            text,
        );
        // Without a Kannel key the store has nothing to deduplicate on: the
        // unit is applied.
        let routed = self.settings.load().router.route(message).await;
        match self.commit_routed(routed, None).await {
            Ok((routed, _outcome)) => {
                self.metrics.messages.mo(false, MoResult::Stored);
                Ok(routed)
            }
            Err(e) => {
                self.metrics.messages.mo(false, MoResult::Refused);
                Err(e)
            }
        }
    }

    /// [`Intake::receive`] for an MO from the bearerbox, whose Kannel key
    /// `key` identifies it across redeliveries: an MO already stored under
    /// it is not routed again, and if another delivery of it commits first,
    /// this one is not stored ([`Received::Duplicate`] either way). An MO
    /// whose apps are slow may come back [`Received::Deferred`]: stored,
    /// and safe to acknowledge ([`deferred`]).
    pub async fn receive_mo(&self, message: Message, key: MoKey) -> Result<Received, StoreError> {
        let received = self.receive_mo_unmetered(message, key).await;
        let result = match &received {
            Ok(Received::Stored(_)) => MoResult::Stored,
            Ok(Received::Duplicate(_)) => MoResult::Duplicate,
            Ok(Received::Deferred(_)) => MoResult::Deferred,
            Err(_) => MoResult::Refused,
        };
        self.metrics.messages.mo(true, result);
        received
    }

    async fn receive_mo_unmetered(
        &self,
        message: Message,
        key: MoKey,
    ) -> Result<Received, StoreError> {
        if let Some(first) = self.store.message_id_by_mo(&key).await? {
            return Ok(Received::Duplicate(first));
        }
        // This MO's apps, whatever a reload does while it is routed.
        let router = self.settings.load().router.clone();
        let Some(deferrals) = self.deferrals.clone() else {
            // Deferring is off: the MO waits for its apps.
            let routed = router.route(message).await;
            return self.commit_mo(routed, key).await;
        };
        let started = tokio::time::Instant::now();
        let (id, uuid) = (message.id, message.kannel_uuid());
        // What is stored if the apps are slow: the MO as received (R).
        let pending = message.clone();
        // An app about to wait on an application outside says so: the MO
        // is deferred then, without waiting out `defer_after_ms` first.
        let outside = Arc::new(Notify::new());
        let told = outside.clone();
        let mut routing = Box::pin(async move { router.route_telling(message, Some(told)).await });
        // Most apps answer without waiting on anything (every built-in one
        // but webhook and get-url services): then routing ends in its first
        // poll, and the MO needs neither a background slot nor a timer,
        // which cost a lock, a timer-wheel entry and a clock read per MO.
        if let Some(routed) = (&mut routing).now_or_never() {
            return self.commit_mo(routed, key).await;
        }
        let claim = match deferrals.try_claim(id) {
            Some(claim) => claim,
            // Every background slot is taken: the routing goes on while
            // the MO waits for one.
            None => tokio::select! {
                biased;
                routed = &mut routing => return self.commit_mo(routed, key).await,
                claim = deferrals.claim(id) => match claim {
                    Some(claim) => claim,
                    None => return self.commit_mo(routing.await, key).await,
                },
            },
        };
        tokio::select! {
            biased;
            routed = &mut routing => {
                drop(claim);
                return self.commit_mo(routed, key).await;
            }
            _ = tokio::time::sleep_until(started + deferrals.after()) => {}
            // An application that answers at once (on the same host, say)
            // still finishes inline within the grace: one commit, not two.
            _ = async {
                outside.notified().await;
                tokio::time::sleep(deferred::OUTSIDE_GRACE).await;
            } => {}
        }
        let unit = Unit::new().with(Op::put(pending)).unless_mo_known(key);
        if let Outcome::Duplicate(first) = self.store.commit(unit).await? {
            // Another delivery of it is stored: this routing is dropped.
            return Ok(Received::Duplicate(first));
        }
        debug!(
            message_id = id,
            kannel_uuid = uuid.map(tracing::field::display),
            "MO stored as received; its routing goes on in the background"
        );
        let intake = self.clone();
        deferrals.spawn(claim, async move {
            let routed = routing.await;
            intake.commit_deferred(routed).await;
        });
        Ok(Received::Deferred(id))
    }

    /// Commits a routed MO with its replies, unless its key is stored
    /// meanwhile, and offers the replies.
    async fn commit_mo(&self, routed: Routed, key: MoKey) -> Result<Received, StoreError> {
        match self.commit_routed(routed, Some(key)).await? {
            (routed, Outcome::Applied) => Ok(Received::Stored(Box::new(routed))),
            (_, Outcome::Duplicate(first)) => Ok(Received::Duplicate(first)),
        }
    }

    /// Commits what routing produced and (once applied) offers the queued
    /// replies.
    async fn commit_routed(
        &self,
        routed: Routed,
        key: Option<MoKey>,
    ) -> Result<(Routed, Outcome), StoreError> {
        self.count_failures(&routed);
        let mut unit = routed.unit();
        if let Some(key) = key {
            unit = unit.unless_mo_known(key);
        }
        let outcome = self.store.commit(unit).await?;
        if matches!(outcome, Outcome::Applied) {
            for reply in routed.queued() {
                self.dispatch.offer(reply.clone());
            }
        }
        Ok((routed, outcome))
    }

    /// Counts the apps' failures while routing.
    fn count_failures(&self, routed: &Routed) {
        for failure in &routed.failures {
            self.metrics.apps.failed(&failure.app);
        }
    }

    /// Sends new outgoing messages that answer no MO: each passes the
    /// apps' outgoing phase, all are committed in one durable unit, then
    /// the queued ones are offered. Returns them as stored, queued (Q) or
    /// cancelled (C) by an app. Give each message an id from
    /// [`Store::allocate_id`].
    pub async fn send(&self, messages: Vec<Message>) -> Result<Vec<Message>, StoreError> {
        let screened = self.commit_new(messages).await?;
        for msg in screened.iter().filter(|m| m.status == Status::Queued) {
            self.offer_new(msg.clone());
        }
        Ok(screened)
    }

    /// [`Intake::send`] for a caller that needs only how many of the
    /// messages were queued (sendsms): they go to their transports without
    /// a copy.
    pub(crate) async fn send_counting_queued(
        &self,
        messages: Vec<Message>,
    ) -> Result<usize, StoreError> {
        let screened = self.commit_new(messages).await?;
        let mut queued = 0;
        for msg in screened.into_iter().filter(|m| m.status == Status::Queued) {
            queued += 1;
            self.offer_new(msg);
        }
        Ok(queued)
    }

    /// Screens and commits new outgoing messages ([`Intake::send`]).
    async fn commit_new(&self, messages: Vec<Message>) -> Result<Vec<Message>, StoreError> {
        let mut unit = Unit::new();
        let settings = self.settings.load();
        let mut screened = Vec::with_capacity(messages.len());
        for m in messages {
            screened.push(settings.router.screen_new_outgoing(m, &mut unit).await);
        }
        // Without a Kannel key the outcome is always Applied.
        let _outcome = self.store.commit(unit).await?;
        Ok(screened)
    }

    /// Offers a committed new outgoing message to its transport.
    fn offer_new(&self, msg: Message) {
        debug!(message_id = msg.id, backend = %msg.connection.backend, "outgoing message queued");
        self.dispatch.offer(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transports;
    use crate::dispatch::outbox::{Outbox, Policy};
    use crate::reload::Snapshot;
    use crate::router::{App, AppFuture, Incoming, ReplySettings, Router};
    use crate::store::StoreOptions;
    use std::sync::Arc;

    /// Answers every message, and refuses to let out any message whose
    /// text is "blocked".
    struct Answer;

    impl App for Answer {
        fn name(&self) -> &str {
            "answer"
        }

        fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
            Box::pin(async move {
                msg.respond("answer");
                Ok(true)
            })
        }

        fn outgoing<'a>(
            &'a self,
            msg: &'a Message,
            _: Option<&'a Incoming>,
        ) -> AppFuture<'a, bool> {
            Box::pin(async move { Ok(msg.text != "blocked") })
        }
    }

    /// Fails on every message, in `handle` and in `outgoing`.
    struct Broken;

    impl App for Broken {
        fn name(&self) -> &str {
            "broken"
        }

        fn handle<'a>(&'a self, _: &'a mut Incoming) -> AppFuture<'a, bool> {
            Box::pin(async { Err(crate::router::AppError::new("down")) })
        }

        fn outgoing<'a>(&'a self, _: &'a Message, _: Option<&'a Incoming>) -> AppFuture<'a, bool> {
            Box::pin(async { Err(crate::router::AppError::new("down too")) })
        }
    }

    /// An intake whose every backend goes through one outbox.
    fn intake(dir: &tempfile::TempDir) -> (Intake, Outbox) {
        with_apps(dir, vec![Box::new(Answer)])
    }

    fn with_apps(dir: &tempfile::TempDir, apps: Vec<Box<dyn App>>) -> (Intake, Outbox) {
        let store = Store::open(&dir.path().join("s.redb"), StoreOptions::default()).unwrap();
        let router = Router::new(apps, Arc::new(store.clone()), ReplySettings::default());
        let outbox = Outbox::new(16, Policy::every_backend());
        let transports = Transports::new(Default::default(), &Default::default(), true);
        let settings = Reloadable::new(Snapshot::new(router, transports));
        let dispatch = Dispatch::new(settings.clone(), Some(outbox.clone()), None);
        let metrics = crate::metrics::Metrics::detached();
        (Intake::new(store, settings, dispatch, metrics), outbox)
    }

    #[tokio::test]
    async fn a_reply_is_offered_only_once_it_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (intake, outbox) = intake(&dir);
        let routed = intake
            .receive(Connection::new("fake", "+1"), "hi".into())
            .await
            .unwrap();
        let offered = outbox.next().await;
        assert_eq!(offered.id, routed.outgoing[0].id);
        let stored = intake
            .store()
            .message(offered.id)
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(stored.status, Status::Queued);
    }

    #[tokio::test]
    async fn an_mo_already_stored_is_neither_routed_nor_answered_again() {
        let dir = tempfile::tempdir().unwrap();
        let (intake, outbox) = intake(&dir);
        let mut first = Message::new(
            intake.store().allocate_id(),
            Connection::new("fake", "+1"),
            Direction::Incoming,
            "hi",
        );
        first.kannel = Some(crate::model::KannelInfo {
            uuid: Some([7; 16]),
            ..Default::default()
        });
        let key = MoKey::of(&first).expect("a Kannel message has a key");
        let mut again = first.clone();
        again.id = intake.store().allocate_id();
        let Received::Stored(_) = intake.receive_mo(first.clone(), key).await.unwrap() else {
            panic!("not stored");
        };
        assert_eq!(outbox.len(), 1);
        match intake.receive_mo(again, key).await.unwrap() {
            Received::Duplicate(id) => assert_eq!(id, first.id),
            other => panic!("stored twice: {other:?}"),
        }
        assert_eq!(outbox.len(), 1, "no second reply");
    }

    #[tokio::test]
    async fn sent_messages_are_screened_committed_together_and_only_queued_ones_offered() {
        let dir = tempfile::tempdir().unwrap();
        let (intake, outbox) = intake(&dir);
        let store = intake.store().clone();
        let new = |text: &str| {
            Message::new(
                store.allocate_id(),
                Connection::new("fake", "+2"),
                Direction::Outgoing,
                text,
            )
        };
        let sent = intake
            .send(vec![new("fine"), new("blocked")])
            .await
            .unwrap();
        let statuses: Vec<Status> = sent.iter().map(|m| m.status).collect();
        assert_eq!(statuses, [Status::Queued, Status::Cancelled]);
        for m in &sent {
            assert_eq!(
                store.message(m.id).await.unwrap().expect("stored").status,
                m.status
            );
        }
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox.next().await.id, sent[0].id);
    }

    /// An app that fails is logged with the message, and the message is
    /// stored all the same: a failing app never loses a message.
    #[tokio::test]
    async fn a_failing_app_is_stored_as_a_delivery_error_of_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let (intake, _outbox) = with_apps(&dir, vec![Box::new(Broken), Box::new(Answer)]);
        let store = intake.store().clone();
        let routed = intake
            .receive(Connection::new("fake", "+1"), "hi".into())
            .await
            .expect("stored despite the failure");
        // Both failures while routing it (its reply's outgoing phase
        // included) are the MO's.
        let logs: Vec<String> = store
            .delivery_errors(routed.incoming.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.log)
            .collect();
        assert_eq!(
            logs,
            [
                "app broken failed in handle: down",
                "app broken failed in outgoing: down too"
            ]
        );

        let sent = intake
            .send(vec![Message::new(
                store.allocate_id(),
                Connection::new("fake", "+2"),
                Direction::Outgoing,
                "hello",
            )])
            .await
            .expect("stored despite the failure");
        let errors = store.delivery_errors(sent[0].id).await.unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].log.contains("down too"), "{errors:?}");
    }
}
