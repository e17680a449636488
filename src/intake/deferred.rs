//! MOs whose apps are slow: acknowledged before their routing ends.
//!
//! The bearerbox keeps at most `smsbox-max-pending` MOs unacknowledged per
//! box (100 by default). If every MO waited for an application that takes
//! 200 ms to answer, that window alone would cap a box at 500 MOs a second.
//! Kannel's smsbox does not wait: it acknowledges an MO as soon as it has
//! it and fetches the service's URL afterwards, so an MO in hand when
//! smsbox stops is lost. rapidbox does not wait either, and loses nothing:
//!
//! 1. An MO is routed inline. If its routing ends within
//!    `[router] defer_after_ms` (every built-in app does), it is committed
//!    with its replies and only then acknowledged, in one durable unit:
//!    the common case costs one commit, as before.
//! 2. Otherwise the MO is committed alone as received (R), under its
//!    Kannel key, and acknowledged. Its routing goes on in a task of this
//!    module; when it ends, the MO (now H) and its replies are committed
//!    and the replies offered, exactly as in 1.
//! 3. An MO still R when rapidbox stops (or whose second commit failed) is
//!    routed again by [`Deferrals::resume`]: at start, and then every
//!    [`RESUME_EVERY`], every R message not in hand is routed and
//!    committed. Its apps see it a second time, so an application behind
//!    a webhook may get its request twice after a crash: at least once,
//!    never lost.
//!
//! An app about to wait on an application outside rapidbox says so
//! ([`crate::router::Incoming::waiting_outside`]): its MO is deferred
//! [`OUTSIDE_GRACE`] later rather than after `defer_after_ms`, so a slow
//! application holds the bearerbox's window no longer than that and a
//! commit.
//!
//! A redelivery of a deferred MO finds its key stored and is acknowledged
//! without routing, as for any stored MO. At most `[router] max_deferred`
//! MOs are routed in the background at once; with all taken, an MO's
//! routing starts inline and waits for a slot at the same time: it is
//! deferred as soon as one is free (and its time or its app says so), or
//! committed as in step 1 if it ends first. Either way it is acknowledged
//! no sooner, which slows the bearerbox's window down instead of growing
//! memory, as smsbox's `max-pending-requests` does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::Intake;
use crate::model::{Direction, Message, MessageId, Status};
use crate::router::Routed;

/// How long an MO whose app said it waits outside rapidbox may still
/// finish inline: long enough for an application on a nearby host to
/// answer (the MO then costs one commit, not two), short enough that the
/// bearerbox's window (100 MOs) is no bound (100 / 5 ms = 20,000 MOs/s).
pub const OUTSIDE_GRACE: Duration = Duration::from_millis(5);

/// How often R messages left behind are looked for.
pub const RESUME_EVERY: Duration = Duration::from_secs(30);

/// How many R messages one look reads at a time.
const RESUME_BATCH: usize = 256;

/// How long a stop waits for background routing to end; what has not
/// ended by then is routed again after the restart.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The MOs being routed in the background. Cheap to clone.
#[derive(Clone)]
pub struct Deferrals {
    inner: Arc<Inner>,
}

struct Inner {
    /// How long inline routing may take before the MO is deferred.
    after: Duration,
    /// One permit per MO routed in the background.
    slots: Arc<Semaphore>,
    /// The ids being routed (in the background or by a resume), so that a
    /// resume does not route one twice.
    in_hand: Mutex<HashSet<MessageId>>,
    tasks: TaskTracker,
}

/// A background slot, and the claim on one message id; both are given up
/// when it is dropped.
pub(super) struct Claim {
    deferrals: Deferrals,
    id: MessageId,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.deferrals.in_hand().remove(&self.id);
    }
}

impl Deferrals {
    /// Defers routing that takes longer than `after`, at most `max` MOs at
    /// once.
    pub fn new(after: Duration, max: usize) -> Deferrals {
        Deferrals {
            inner: Arc::new(Inner {
                after,
                slots: Arc::new(Semaphore::new(max)),
                in_hand: Mutex::new(HashSet::new()),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// How long inline routing may take.
    pub(super) fn after(&self) -> Duration {
        self.inner.after
    }

    fn in_hand(&self) -> std::sync::MutexGuard<'_, HashSet<MessageId>> {
        self.inner
            .in_hand
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A free background slot for message `id`, without waiting; `None`
    /// when every slot is taken (or `id` is in hand already).
    pub(super) fn try_claim(&self, id: MessageId) -> Option<Claim> {
        let slot = self.inner.slots.clone().try_acquire_owned().ok()?;
        self.in_hand().insert(id).then(|| Claim {
            deferrals: self.clone(),
            id,
            _slot: slot,
        })
    }

    /// A background slot for message `id`, waiting for one; `None` when
    /// `id` is in hand already.
    pub(super) async fn claim(&self, id: MessageId) -> Option<Claim> {
        let slot = self.inner.slots.clone().acquire_owned().await.ok()?;
        self.in_hand().insert(id).then(|| Claim {
            deferrals: self.clone(),
            id,
            _slot: slot,
        })
    }

    /// Runs `finish` in the background, holding `claim` until it ends.
    pub(super) fn spawn<F>(&self, claim: Claim, finish: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.tasks.spawn(async move {
            finish.await;
            drop(claim);
        });
    }

    /// Routes every R message left behind, now and every [`RESUME_EVERY`],
    /// until `shutdown`; then waits up to [`STOP_GRACE`] for the routing in
    /// the background to end. Run it as a task of its own.
    pub async fn resume(self, intake: Intake, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(RESUME_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = every.tick() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.resume_once(&intake) => {}
            }
        }
        self.inner.tasks.close();
        if tokio::time::timeout(STOP_GRACE, self.inner.tasks.wait())
            .await
            .is_err()
        {
            warn!("MOs still being routed after {STOP_GRACE:?}; they are routed again after the restart");
        }
    }

    /// One pass over the R messages: each one not in hand is routed in the
    /// background, as many at once as there are slots.
    async fn resume_once(&self, intake: &Intake) {
        let mut after = None;
        let mut resumed = 0usize;
        loop {
            let read = intake
                .store()
                .long_read(move |store| async move {
                    store
                        .messages_by_status(Status::Received, None, after, RESUME_BATCH)
                        .await
                })
                .await;
            let batch = match read {
                Ok(Ok(batch)) => batch,
                Ok(Err(e)) => {
                    warn!(error = %e, "cannot read the MOs left to route; trying again later");
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "the read of the MOs left to route failed");
                    return;
                }
            };
            let full = batch.len() == RESUME_BATCH;
            after = batch.last().map(|m| m.id);
            for message in batch
                .into_iter()
                .filter(|m| m.direction == Direction::Incoming)
            {
                let Some(claim) = self.claim(message.id).await else {
                    continue;
                };
                // Read again under the claim: a background routing may have
                // stored it (and let go of it) since the batch was read.
                let message = match intake.store().message(message.id).await {
                    Ok(Some(m)) if m.status == Status::Received => m,
                    Ok(_) => continue,
                    Err(e) => {
                        warn!(message_id = message.id, kannel_uuid = message.kannel_uuid().map(tracing::field::display), error = %e, "cannot read an MO left to route; trying again later");
                        continue;
                    }
                };
                resumed += 1;
                let intake = intake.clone();
                self.spawn(claim, async move { intake.finish(message).await });
            }
            if !full {
                break;
            }
        }
        if resumed > 0 {
            info!(
                resumed,
                "routing MOs left unrouted (stored and acknowledged before a stop)"
            );
        }
    }
}

impl Intake {
    /// Routes a stored R message to the end and commits the outcome.
    async fn finish(&self, message: Message) {
        let routed = self.settings.load().router.route(message).await;
        self.commit_deferred(routed).await;
    }

    /// Commits what the background routing of an R message produced: the
    /// message (now H), its replies, its apps' failures; then offers the
    /// replies. On failure the message stays R and a later resume routes it
    /// again.
    pub(super) async fn commit_deferred(&self, routed: Routed) {
        self.count_failures(&routed);
        let (id, uuid) = (routed.incoming.id, routed.incoming.kannel_uuid());
        let uuid = uuid.map(tracing::field::display);
        match self.store.commit(routed.unit()).await {
            Ok(_) => {
                for reply in routed.queued() {
                    self.dispatch.offer(reply.clone());
                }
                info!(
                    message_id = id,
                    kannel_uuid = uuid,
                    replies = routed.queued().count(),
                    "deferred MO routed and stored"
                );
            }
            Err(e) => {
                warn!(message_id = id, kannel_uuid = uuid, error = %e, "could not store a deferred MO's routing; it stays received (R) and is routed again later");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transports;
    use crate::dispatch::outbox::{Outbox, Policy};
    use crate::dispatch::Dispatch;
    use crate::intake::Received;
    use crate::model::{Connection, KannelInfo, MoKey};
    use crate::reload::{Reloadable, Snapshot};
    use crate::router::{App, AppFuture, Incoming, ReplySettings, Router};
    use crate::store::{Op, Store, StoreOptions, Unit};
    use std::time::Instant;

    /// Answers every message "done", after a pause.
    struct Slow(Duration);

    impl App for Slow {
        fn name(&self) -> &str {
            "slow"
        }

        fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
            Box::pin(async move {
                tokio::time::sleep(self.0).await;
                msg.respond("done");
                Ok(true)
            })
        }
    }

    /// Says it waits on an application outside, then takes its time.
    struct Outside(Duration);

    impl App for Outside {
        fn name(&self) -> &str {
            "outside"
        }

        fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
            Box::pin(async move {
                msg.waiting_outside();
                tokio::time::sleep(self.0).await;
                msg.respond("fetched");
                Ok(true)
            })
        }
    }

    #[tokio::test]
    async fn an_app_waiting_outside_has_its_mo_acked_without_waiting_out_defer_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), StoreOptions::default()).unwrap();
        let router = Router::new(
            vec![Box::new(Outside(Duration::from_millis(500)))],
            Arc::new(store.clone()),
            ReplySettings::default(),
        );
        let outbox = Outbox::new(16, Policy::every_backend());
        let transports = Transports::new(Default::default(), &Default::default(), true);
        let settings = Reloadable::new(Snapshot::new(router, transports));
        let dispatch = Dispatch::new(settings.clone(), Some(outbox.clone()), None);
        // Far longer than the app takes: only its word defers the MO.
        let deferrals = Deferrals::new(Duration::from_secs(60), 4);
        let metrics = crate::metrics::Metrics::detached();
        let intake = Intake::new(store, settings, dispatch, metrics).with_deferrals(deferrals);
        let (message, key) = mo(&intake, 6);
        let id = message.id;
        let started = Instant::now();
        let received = intake.receive_mo(message, key).await.unwrap();
        assert!(
            matches!(received, Received::Deferred(i) if i == id),
            "{received:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "waited for the application: {:?}",
            started.elapsed()
        );
        assert_eq!(status(&intake, id).await, Status::Received);
        until_handled(&intake, id).await;
        assert_eq!(outbox.next().await.text, "fetched");
    }

    /// An intake over a fresh store whose one app takes `pause`,
    /// deferring after 20 ms, `max` at once; and the outbox replies go to.
    fn intake(dir: &tempfile::TempDir, pause: Duration, max: usize) -> (Intake, Deferrals, Outbox) {
        let store = Store::open(&dir.path().join("s.redb"), StoreOptions::default()).unwrap();
        let router = Router::new(
            vec![Box::new(Slow(pause))],
            Arc::new(store.clone()),
            ReplySettings::default(),
        );
        let outbox = Outbox::new(16, Policy::every_backend());
        let transports = Transports::new(Default::default(), &Default::default(), true);
        let settings = Reloadable::new(Snapshot::new(router, transports));
        let dispatch = Dispatch::new(settings.clone(), Some(outbox.clone()), None);
        let deferrals = Deferrals::new(Duration::from_millis(20), max);
        let metrics = crate::metrics::Metrics::detached();
        let intake =
            Intake::new(store, settings, dispatch, metrics).with_deferrals(deferrals.clone());
        (intake, deferrals, outbox)
    }

    /// An MO from the bearerbox, with its Kannel key.
    fn mo(intake: &Intake, n: u8) -> (Message, MoKey) {
        let mut m = Message::new(
            intake.store().allocate_id(),
            Connection::new("fake", "+1"),
            Direction::Incoming,
            "hi",
        );
        m.kannel = Some(KannelInfo {
            uuid: Some([n; 16]),
            time: Some(1_700_000_000),
            ..KannelInfo::default()
        });
        let key = MoKey::of(&m).expect("a key");
        (m, key)
    }

    async fn status(intake: &Intake, id: MessageId) -> Status {
        intake
            .store()
            .message(id)
            .await
            .unwrap()
            .expect("stored")
            .status
    }

    async fn until_handled(intake: &Intake, id: MessageId) {
        let start = Instant::now();
        while status(intake, id).await != Status::Handled {
            assert!(start.elapsed() < Duration::from_secs(10), "never routed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_slow_mo_is_stored_as_received_acked_and_routed_to_the_end_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let (intake, _deferrals, outbox) = intake(&dir, Duration::from_millis(300), 4);
        let (message, key) = mo(&intake, 1);
        let id = message.id;
        let started = Instant::now();
        let received = intake.receive_mo(message.clone(), key).await.unwrap();
        assert!(
            matches!(received, Received::Deferred(i) if i == id),
            "{received:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "waited for the app"
        );
        assert_eq!(
            status(&intake, id).await,
            Status::Received,
            "durable before the ack"
        );
        // A redelivery meanwhile is not routed again.
        let again = intake.receive_mo(message, key).await.unwrap();
        assert!(
            matches!(again, Received::Duplicate(i) if i == id),
            "{again:?}"
        );
        until_handled(&intake, id).await;
        let reply = outbox.next().await;
        assert_eq!(
            (reply.text.as_str(), reply.in_response_to),
            ("done", Some(id))
        );
        assert_eq!(status(&intake, reply.id).await, Status::Queued);
        assert!(outbox.is_empty(), "one reply only");
    }

    #[tokio::test]
    async fn a_fast_mo_is_stored_with_its_reply_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (intake, _deferrals, outbox) = intake(&dir, Duration::ZERO, 4);
        let (message, key) = mo(&intake, 2);
        let received = intake.receive_mo(message, key).await.unwrap();
        assert!(matches!(received, Received::Stored(_)), "{received:?}");
        assert_eq!(outbox.len(), 1);
    }

    #[tokio::test]
    async fn with_every_background_slot_taken_an_mo_waits_for_a_slot_or_its_apps() {
        let dir = tempfile::tempdir().unwrap();
        let (intake, _deferrals, _outbox) = intake(&dir, Duration::from_millis(300), 1);
        let (first, first_key) = mo(&intake, 3);
        let (second, second_key) = mo(&intake, 4);
        let started = Instant::now();
        let first = intake.receive_mo(first, first_key).await.unwrap();
        assert!(matches!(first, Received::Deferred(_)), "{first:?}");
        let second = intake.receive_mo(second, second_key).await.unwrap();
        // The one slot frees when the first MO's routing ends, 300 ms in;
        // the second's own routing ends about then too. Either way it was
        // not acknowledged before.
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "acknowledged while every slot was taken: {:?}",
            started.elapsed()
        );
        assert!(
            matches!(second, Received::Stored(_) | Received::Deferred(_)),
            "{second:?}"
        );
    }

    /// What a crash leaves: an MO stored as received and acknowledged,
    /// never routed. The resume routes it when rapidbox starts again.
    #[tokio::test]
    async fn an_mo_left_received_by_a_stop_is_routed_when_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let (intake, deferrals, outbox) = intake(&dir, Duration::ZERO, 4);
        let (message, key) = mo(&intake, 5);
        let id = message.id;
        let unit = Unit::new().with(Op::put(message)).unless_mo_known(key);
        let _applied = intake.store().commit(unit).await.unwrap();
        let shutdown = CancellationToken::new();
        let resume = tokio::spawn(deferrals.resume(intake.clone(), shutdown.clone()));
        until_handled(&intake, id).await;
        assert_eq!(outbox.next().await.in_response_to, Some(id));
        shutdown.cancel();
        resume.await.unwrap();
    }
}
