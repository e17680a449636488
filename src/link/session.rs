//! One connection to the bearerbox, from identify to close.
//!
//! A single task owns the read side and all session state (the MTs in
//! flight, suspend), so none of it needs a lock. Writes go through a bounded
//! channel to a writer task that batches whatever is queued into one flush.
//! Each MO or report is handled by a future of its own, inline through
//! router and store, polled by the session task itself (a
//! [`FuturesUnordered`]) beside its `select!`, so a slow commit never holds
//! up the reading of acks; the bearerbox's answers to MTs are stored the
//! same way. Not spawning a task per message saves its setup and reaping,
//! and above all the wake-ups: the store answers a whole group of units at
//! once, and with every waiter inside this one task that is one wake-up of
//! one task, not one per MO, often of a parked worker (BENCHMARKS.md,
//! "issue 14, item 2: one wake-up per group"). The session loop waits on
//! nothing but its `select!`: it always reads the bearerbox's acks and
//! admin commands, sends heartbeats and sees shutdown, however slow the
//! apps are.
//!
//! Liveness: Kannel's bearerbox sends no heartbeats to its boxes and
//! answers nothing rapidbox can send without side effects except MTs, so a
//! quiet link and a dead one (half-open, stalled, a wedged bearerbox) look
//! the same to a reader. Two deadlines tell them apart as far as can be:
//! with MTs unanswered, silence for `answer_timeout` means the link is dead
//! (the bearerbox answers an MT as soon as it has queued it); with nothing
//! owed, silence for `idle_timeout` closes the connection and opens a new
//! one, which bounds how long a dead link that carries no MTs can hold MOs
//! back at the bearerbox (it redelivers them on the new connection).
//! Neither applies while the bearerbox has suspended the box: it is
//! silent then by its own word.
//! A frame rapidbox cannot read also ends the session: after a corrupted
//! length prefix the stream is out of step, and reading on would strand
//! the MOs whose bytes were eaten (Kannel's smsbox restarts in this case
//! too).
//!
//! Bounds: at most `max_routing` MOs and reports are being handled at once
//! (futures in the session's set);
//! while all are busy, up to `max_routing` more wait in the session for a
//! slot (the bearerbox's own window, `smsbox-max-pending`, normally keeps
//! it from sending that many). Beyond that an MO is acked `failed_tmp`: the
//! bearerbox keeps it and offers it again later.
//!
//! A shutdown drains: no new MT goes out, the session waits (up to
//! [`MT_DRAIN_TIMEOUT`]) for the bearerbox's answers to the MTs in flight
//! and stores them, and lets the MOs being routed finish so their acks go
//! out. An MT whose answer never came is sent again after the restart, so
//! only a crash (or a bearerbox that does not answer) repeats a reply.
//!
//! A store that cannot record an answer (a full or failing disk) holds
//! the MTs back ([`Hold`]): no new MT goes out until the answers already
//! received are stored, so a storage fault repeats at most the MTs that
//! were in flight when it began.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use boxproto::{
    Ack, AckStatus, Admin, AdminCommand, BodyError, BoxCodec, Bytes, FrameError, Heartbeat, Msg,
    Sms, SmsType, Uuid,
};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::dispatch::outbox::Outbox;
use crate::link::connect::Stream;
use crate::link::convert;
use crate::link::hold::Hold;
use crate::link::inbound::Inbound;
use crate::link::LinkConfig;
use crate::metrics::{LinkStatus, MoAck, MtKind, MtOutcome, MtTransport};
use crate::model::{now_micros, DeliveryError, Message, MessageId, Micros, Status};
use crate::store::{Op, Unit, Update};

/// Frames waiting for the writer. Acks, heartbeats and MTs are small; this
/// bounds the memory they can hold while the socket is slow.
const WRITE_QUEUE: usize = 1024;

/// How long a shutdown waits for MOs being routed, so their acks go out.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the writer may take to flush and close after the session has
/// ended. A stalled socket must not keep rapidbox from redialling.
const WRITER_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a shutdown waits for the bearerbox's answers to the MTs in
/// flight. A bearerbox answers within milliseconds; an MT still
/// unanswered after this is sent again after the restart (a duplicate).
const MT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// rapidbox is shutting down.
    Shutdown,
    /// The bearerbox said it is shutting down or restarting.
    BearerboxLeaving(AdminCommand),
    /// The bearerbox closed the connection.
    Closed,
    /// Reading or writing failed.
    Broken(String),
    /// The bearerbox sent a frame rapidbox cannot read (a negative or
    /// oversized length prefix, or a body that does not decode): the
    /// stream can no longer be trusted to be in step.
    BadFrame(BodyError),
    /// Nothing arrived for `silent` while `unanswered` MTs waited for the
    /// bearerbox's answer: the link is dead (half-open or stalled).
    Dead { silent: Duration, unanswered: usize },
    /// Nothing arrived for `silent` with nothing owed; the connection is
    /// replaced in case it is dead without rapidbox being able to tell.
    Idle { silent: Duration },
}

/// When the session gives up on a silent connection; see the module docs.
struct Liveness {
    answer_timeout: Duration,
    idle_timeout: Option<Duration>,
    /// When the last frame arrived (or the session started).
    heard: Instant,
    /// Since when an answer is owed: the later of the last frame and the
    /// first MT sent after it, while any MT is unanswered.
    owed_since: Option<Instant>,
}

impl Liveness {
    fn new(config: &LinkConfig, now: Instant) -> Liveness {
        Liveness {
            answer_timeout: config.answer_timeout,
            idle_timeout: config.idle_timeout,
            heard: now,
            owed_since: None,
        }
    }

    /// A frame arrived; `unanswered` MTs are still waiting after it.
    fn heard(&mut self, unanswered: usize, now: Instant) {
        self.heard = now;
        self.owed_since = (unanswered > 0).then_some(now);
    }

    /// An MT was sent.
    fn sent(&mut self, now: Instant) {
        self.owed_since.get_or_insert(now);
    }

    /// The next moment the connection may have to be given up.
    fn deadline(&self) -> Instant {
        let far = self.heard + Duration::from_secs(86_400 * 365);
        let idle = self.idle_timeout.map_or(far, |idle| self.heard + idle);
        let answer = self
            .owed_since
            .map_or(far, |since| since + self.answer_timeout);
        idle.min(answer)
    }

    /// Why the connection is to be given up at `now`, if it is.
    fn expired(&self, unanswered: usize, now: Instant) -> Option<SessionEnd> {
        if let Some(since) = self.owed_since {
            if now >= since + self.answer_timeout {
                return Some(SessionEnd::Dead {
                    silent: now - self.heard,
                    unanswered,
                });
            }
        }
        match self.idle_timeout {
            Some(idle) if now >= self.heard + idle => Some(SessionEnd::Idle {
                silent: now - self.heard,
            }),
            _ => None,
        }
    }
}

/// An MT sent and not yet answered, holding its place in the window.
struct InFlight {
    message: Message,
    slot: OwnedSemaphorePermit,
}

pub(crate) struct Session<'a> {
    pub config: &'a LinkConfig,
    pub inbound: &'a Inbound,
    /// The MTs to send: messages of kannel backends.
    pub outbox: &'a Outbox,
    pub status: &'a Arc<LinkStatus>,
}

impl Session<'_> {
    /// Runs the session on a connected stream until it ends.
    pub async fn run(&self, stream: Stream, shutdown: &CancellationToken) -> SessionEnd {
        let framed = Framed::new(
            stream,
            BoxCodec::with_max_frame_len(self.config.max_frame_bytes),
        );
        let (sink, mut frames) = framed.split();
        let (out, out_rx) = mpsc::channel::<Msg>(WRITE_QUEUE);
        let writer = tokio::spawn(write_frames(sink, out_rx));

        let identify = Admin {
            command: AdminCommand::Identify,
            boxc_id: self.config.smsbox_id.clone().map(Bytes::from),
            ..Admin::default()
        };
        if out.send(identify.into()).await.is_err() {
            return SessionEnd::Broken("the writer stopped before identify".into());
        }

        // Answers that failed to commit hold the MTs back while they are
        // tried again; `give_up` ends those tries when the session ends
        // (the messages stay Q and are sent again).
        let hold = Hold::default();
        let give_up = CancellationToken::new();
        // MOs and reports read while `max_routing` are being handled,
        // oldest first; at most `max_routing` of them.
        let mut waiting: VecDeque<Sms> = VecDeque::new();
        // MOs and reports being handled, at most `max_routing`: dropped
        // (so abandoned) when the connection is lost (their acks could not
        // be sent; the bearerbox redelivers, the store recognizes them).
        let mut routing = FuturesUnordered::new();
        // Answers to our MTs being stored, at most `max_in_flight` (each
        // holds its window slot): never abandoned. Each one takes its
        // message out of the outbox's hands when its commit returns; an
        // abandoned one would leave the message marked as in hand forever,
        // and a failed_tmp'd MT would never be sent again.
        let mut answers = FuturesUnordered::new();
        let mut in_flight: HashMap<Uuid, InFlight> = HashMap::new();
        // The MT window. A slot is held from the moment an MT is sent until
        // the bearerbox's answer is durably stored, not just received: an
        // MT whose "sent" is still on its way to the disk would be sent
        // again after a crash, so it still counts as in flight. That keeps
        // the duplicates a crash can cause within `max_in_flight`.
        let window = Arc::new(Semaphore::new(self.config.max_in_flight));
        let mut slot: Option<OwnedSemaphorePermit> = None;
        let mut suspended = false;
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outbox = self.outbox;
        let mut liveness = Liveness::new(self.config, Instant::now());
        // Reset lazily: when it fires, the real deadline is checked and the
        // timer moved on if frames arrived meanwhile. Resetting it on every
        // frame would cost a timer update per frame at full rate.
        let silence = tokio::time::sleep_until(liveness.deadline());
        tokio::pin!(silence);
        // Set once shutdown is asked for: from then on no MT goes out, and
        // the session ends when the MTs in flight are answered or at this
        // deadline.
        let mut draining: Option<tokio::time::Instant> = None;

        let end = loop {
            if draining.is_some() && in_flight.is_empty() {
                break SessionEnd::Shutdown;
            }
            let drain_deadline = draining.unwrap_or_else(tokio::time::Instant::now);
            let held = hold.is_held();
            tokio::select! {
                biased;
                // Finished MOs first: their acks go out, and their places
                // go to the MOs waiting, before more frames are read.
                Some(()) = routing.next(), if !routing.is_empty() => {}
                Some(()) = answers.next(), if !answers.is_empty() => {}
                _ = shutdown.cancelled(), if draining.is_none() => {
                    if !in_flight.is_empty() {
                        info!(in_flight = in_flight.len(), "shutting down: waiting for the bearerbox's answers to the MTs in flight");
                    }
                    draining = Some(tokio::time::Instant::now() + MT_DRAIN_TIMEOUT);
                    slot = None;
                    continue;
                }
                _ = tokio::time::sleep_until(drain_deadline), if draining.is_some() => {
                    warn!(in_flight = in_flight.len(), "no answer to these MTs within {MT_DRAIN_TIMEOUT:?} of the shutdown; they will be sent again after the restart");
                    break SessionEnd::Shutdown;
                }
                frame = frames.next() => {
                    let msg = match frame {
                        None => break SessionEnd::Closed,
                        Some(Err(FrameError::Io(e))) => break SessionEnd::Broken(e.to_string()),
                        Some(Err(e)) => break SessionEnd::Broken(e.to_string()),
                        // Whether the frame was bad or its length prefix
                        // was, nothing after it can be trusted: the
                        // bearerbox redelivers every unacknowledged MO on
                        // the next connection, so none is lost.
                        Some(Ok(Err(bad))) => break SessionEnd::BadFrame(bad),
                        Some(Ok(Ok(msg))) => msg,
                    };
                    match msg {
                        Msg::Sms(sms) => {
                            // Oldest first: a newcomer does not pass the
                            // ones already waiting.
                            if waiting.is_empty() && routing.len() < self.config.max_routing {
                                routing.push(self.route(sms, &out));
                            } else if waiting.len() < self.config.max_routing {
                                waiting.push_back(sms);
                            } else {
                                    warn!(kannel_uuid = %sms.id, waiting = waiting.len(), "every routing slot is busy and the waiting line is full; acking failed_tmp so the bearerbox offers the message again");
                                    self.inbound.intake.metrics().messages.mo_ack(MoAck::FailedTmp);
                                    let ack = Ack { nack: AckStatus::FailedTmp, time: sms.time, id: sms.id, ..Ack::default() };
                                if out.send(ack.into()).await.is_err() {
                                    break SessionEnd::Broken("the writer stopped".into());
                                }
                            }
                        }
                        Msg::Ack(ack) => {
                            let answer = Answer { hold: &hold, give_up: &give_up };
                            if let Some(storing) = self.on_ack(ack, &mut in_flight, answer) {
                                answers.push(storing);
                            }
                        }
                        Msg::Admin(admin) => match admin.command {
                            AdminCommand::Shutdown | AdminCommand::Restart => {
                                break SessionEnd::BearerboxLeaving(admin.command)
                            }
                            AdminCommand::Suspend => {
                                info!("bearerbox suspended us: no MTs until it resumes");
                                suspended = true;
                            }
                            AdminCommand::Resume => {
                                info!("bearerbox resumed");
                                suspended = false;
                            }
                            other => warn!(command = ?other, "unexpected admin command from the bearerbox"),
                        },
                        Msg::Heartbeat(_) => debug!("heartbeat from the bearerbox"),
                        Msg::WdpDatagram(_) => warn!("wdp_datagram from the bearerbox; rapidbox is no wapbox"),
                    }
                    // After the match: an ack above may have emptied the window.
                    liveness.heard(in_flight.len(), Instant::now());
                }
                _ = &mut silence => {
                    // A bearerbox that suspended us is silent by its own
                    // word (it reads and sends nothing until it resumes):
                    // that is no dead link, and a new connection would only
                    // leave MTs in the old one's buffers.
                    if suspended {
                        silence.as_mut().reset(Instant::now() + self.config.answer_timeout);
                        continue;
                    }
                    if let Some(end) = liveness.expired(in_flight.len(), Instant::now()) {
                        break end;
                    }
                    silence.as_mut().reset(liveness.deadline());
                }
                _ = heartbeat.tick() => {
                    let busy = routing.len() + waiting.len();
                    let load = i32::try_from(busy).unwrap_or(i32::MAX);
                    if out.send(Heartbeat { load, ..Heartbeat::default() }.into()).await.is_err() {
                        break SessionEnd::Broken("the writer stopped".into());
                    }
                }
                free = window.clone().acquire_owned(), if !suspended && slot.is_none() && draining.is_none() => {
                    match free {
                        Ok(free) => slot = Some(free),
                        Err(_) => break SessionEnd::Broken("the MT window closed".into()),
                    }
                }
                // Only to look at `held` again once the store has taken
                // the answers that were failing.
                _ = hold.released(), if held => {}
                message = outbox.next(), if !suspended && !held && slot.is_some() && draining.is_none() => {
                    let Some(taken) = slot.take() else { continue };
                    if let Some(sms) = self.prepare_mt(message, taken, &mut in_flight).await {
                        liveness.sent(Instant::now());
                        if out.send(sms.into()).await.is_err() {
                            break SessionEnd::Broken("the writer stopped".into());
                        }
                    }
                }
            }
            // Places freed by MOs that finished go to the waiting ones.
            while routing.len() < self.config.max_routing {
                let Some(sms) = waiting.pop_front() else {
                    break;
                };
                routing.push(self.route(sms, &out));
            }
            let used = self.config.max_in_flight - window.available_permits();
            self.status.in_flight.store(used, Ordering::Relaxed);
            self.status
                .mts_held
                .store(hold.is_held(), Ordering::Relaxed);
        };

        // Let the MOs already being routed finish, so their acks reach the
        // bearerbox before the connection closes.
        if matches!(end, SessionEnd::Shutdown) {
            let drain = async { while routing.next().await.is_some() {} };
            if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
                warn!("MOs still being routed after {DRAIN_TIMEOUT:?}; the bearerbox will redeliver them");
            }
        }
        drop(routing);
        // An answer commit under way finishes; one waiting to be tried
        // again is not (the store may fail for hours, and the link must
        // redial or the process stop meanwhile).
        give_up.cancel();
        while answers.next().await.is_some() {}
        drop(answers);
        drop(out);
        let writer_abort = writer.abort_handle();
        match tokio::time::timeout(WRITER_CLOSE_TIMEOUT, writer).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => debug!(error = %e, "writer ended with an error"),
            Ok(Err(e)) => debug!(error = %e, "writer task failed"),
            Err(_) => {
                // A stalled or half-open socket that takes no more bytes.
                debug!(
                    "writer still blocked after {WRITER_CLOSE_TIMEOUT:?}; dropping the connection"
                );
                writer_abort.abort();
            }
        }
        // MTs the bearerbox never answered go back to the outbox; they are
        // still Q in the store, so nothing is lost even if we die now.
        let unanswered = in_flight.len();
        for (_, flight) in in_flight.drain() {
            outbox.release(flight.message);
        }
        if unanswered > 0 {
            info!(unanswered, "MTs without an answer will be sent again");
        }
        self.status.in_flight.store(0, Ordering::Relaxed);
        self.status.mts_held.store(false, Ordering::Relaxed);
        end
    }

    /// Handles an MO or report: a future the session polls among the
    /// others it is handling (not a task of its own; see the module's
    /// docs), which ends once its ack is queued for the bearerbox.
    fn route<'s>(&'s self, sms: Sms, out: &'s mpsc::Sender<Msg>) -> impl Future<Output = ()> + 's {
        // Shortened to `'s`, so that the future names only that lifetime.
        let inbound: &'s Inbound = self.inbound;
        let status: &'s LinkStatus = self.status;
        async move {
            let ack = handle_sms(inbound, &sms).await;
            status.received.fetch_add(1, Ordering::Relaxed);
            inbound.intake.metrics().messages.mo_ack(match ack {
                AckStatus::Success => MoAck::Success,
                AckStatus::Failed => MoAck::Failed,
                _ => MoAck::FailedTmp,
            });
            let ack = Ack {
                nack: ack,
                time: sms.time,
                id: sms.id,
                ..Ack::default()
            };
            // A closed writer means the connection is gone; the bearerbox
            // redelivers, the store recognizes the UUID.
            let _ = out.send(ack.into()).await;
        }
    }

    /// Turns an outgoing message into an MT and records it in flight, or
    /// fails it when it cannot be an MT.
    async fn prepare_mt(
        &self,
        message: Message,
        slot: OwnedSemaphorePermit,
        in_flight: &mut HashMap<Uuid, InFlight>,
    ) -> Option<Sms> {
        match convert::mt(&message, &self.config.mt) {
            Ok(sms) => {
                debug!(message_id = message.id, kannel_uuid = %sms.id, "MT sent");
                in_flight.insert(sms.id, InFlight { message, slot });
                Some(sms)
            }
            Err(problem) => {
                error!(
                    message_id = message.id,
                    kannel_uuid = message.kannel_uuid().map(tracing::field::display),
                    %problem,
                    "cannot send through the bearerbox"
                );
                let metrics = self.inbound.intake.metrics();
                let kind = MtKind::of(&message);
                metrics
                    .messages
                    .mt(MtTransport::Kannel, kind, MtOutcome::Failed);
                let now = now_micros();
                let unit = Unit::new()
                    .with(Update::status(message.id, Status::Failed, now).into())
                    .with(Op::AddDeliveryError(DeliveryError {
                        message_id: message.id,
                        time: now,
                        log: problem.to_string(),
                    }));
                self.outbox.done(message.id);
                if let Err(e) = self.inbound.intake.store().enqueue(unit).await {
                    error!(message_id = message.id, kannel_uuid = message.kannel_uuid().map(tracing::field::display), error = %e, "could not record the failure");
                }
                None
            }
        }
    }

    /// Records the bearerbox's answer to one of our MTs: the future that
    /// stores it, which the session polls to its end. The MT keeps its
    /// window slot until the answer is durably stored.
    fn on_ack<'s>(
        &'s self,
        ack: Ack,
        in_flight: &mut HashMap<Uuid, InFlight>,
        answer: Answer<'s>,
    ) -> Option<impl Future<Output = ()> + 's> {
        let Some(InFlight { message, slot }) = in_flight.remove(&ack.id) else {
            warn!(kannel_uuid = %ack.id, nack = ?ack.nack, "ack for an MT we do not have in flight");
            return None;
        };
        let (id, uuid) = (message.id, ack.id);
        let now = now_micros();
        let attempts = message.attempts + 1;
        let kind = MtKind::of(&message);
        // The message itself is not needed any more: only its id goes on.
        drop(message);
        let outcome = match ack.nack {
            AckStatus::Success | AckStatus::Buffered => {
                debug!(message_id = id, kannel_uuid = %ack.id, nack = ?ack.nack, "MT accepted");
                MtOutcome::Accepted
            }
            AckStatus::Failed => {
                warn!(message_id = id, kannel_uuid = %ack.id, "bearerbox refused the MT");
                MtOutcome::Failed
            }
            nack => {
                warn!(message_id = id, kannel_uuid = %ack.id, ?nack, "bearerbox cannot take the MT now; will retry");
                MtOutcome::Retry
            }
        };
        let metrics = self.inbound.intake.metrics();
        metrics.messages.mt(MtTransport::Kannel, kind, outcome);
        self.status.answered.fetch_add(1, Ordering::Relaxed);
        let store: &'s crate::store::Store = self.inbound.intake.store();
        let outbox: &'s Outbox = self.outbox;
        let Answer { hold, give_up } = answer;
        let nack = ack.nack;
        Some(async move {
            let mut failing = None;
            let mut tries = 0u32;
            loop {
                tries += 1;
                // Built afresh for each try, rather than cloned for it.
                match store.commit(answer_unit(id, nack, now, attempts)).await {
                    Ok(_) => {
                        if tries > 1 {
                            info!(message_id = id, kannel_uuid = %uuid, tries, "the bearerbox's answer is stored at last");
                        }
                        // Durable: sweeps may take it again as soon as it
                        // is due.
                        outbox.finished(id);
                        break;
                    }
                    Err(e) if e.is_transient() && !give_up.is_cancelled() => {
                        if failing.is_none() {
                            warn!(message_id = id, kannel_uuid = %uuid, error = %e, "could not record the bearerbox's answer; no MT goes out until it is stored");
                            failing = Some(hold.failing());
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(Hold::pause(tries)) => {}
                            _ = give_up.cancelled() => {}
                        }
                    }
                    Err(e) => {
                        error!(message_id = id, kannel_uuid = %uuid, error = %e, tries, "could not record the bearerbox's answer; the MT will be sent again");
                        outbox.done(id);
                        break;
                    }
                }
            }
            // The slot goes before the hold: the session, woken by the
            // hold's release, finds the window open again.
            drop(slot);
            drop(failing);
        })
    }
}

/// The unit that records the bearerbox's answer `nack` to MT `id`, sent
/// for the `attempts`th time, at `now`.
fn answer_unit(id: MessageId, nack: AckStatus, now: Micros, attempts: u32) -> Unit {
    match nack {
        AckStatus::Success | AckStatus::Buffered => Unit::new().with(
            Update::status(id, Status::Sent, now)
                .retry_after(None)
                .into(),
        ),
        AckStatus::Failed => Unit::new()
            .with(
                Update::status(id, Status::Failed, now)
                    .attempts(attempts)
                    .into(),
            )
            .with(Op::AddDeliveryError(DeliveryError {
                message_id: id,
                time: now,
                log: "bearerbox ack: failed (no route, rejected or expired)".into(),
            })),
        // failed_tmp is the bearerbox saying "not now" (its queue is full,
        // or it is shutting down): back off and send again. It never makes
        // a message fail.
        nack => Unit::new()
            .with(
                Update::status(id, Status::Errored, now)
                    .attempts(attempts)
                    .retry_after(Some(now + retry_delay(attempts)))
                    .into(),
            )
            .with(Op::AddDeliveryError(DeliveryError {
                message_id: id,
                time: now,
                log: format!("bearerbox ack: {nack:?} (queue full or shutting down); retrying"),
            })),
    }
}

/// What an answer's commit shares with the session.
struct Answer<'a> {
    /// Held while the commit fails.
    hold: &'a Hold,
    /// Cancelled when the session ends: stop trying.
    give_up: &'a CancellationToken,
}

/// Backoff for MTs the bearerbox could not take: 2 s, doubling, at most
/// 5 minutes. Short at first: the usual cause is a bearerbox restarting,
/// which is back within seconds.
fn retry_delay(attempts: u32) -> Micros {
    let secs = 2u64
        .saturating_mul(1 << attempts.saturating_sub(1).min(8))
        .min(300);
    (secs * 1_000_000) as Micros
}

async fn handle_sms(inbound: &Inbound, sms: &Sms) -> AckStatus {
    match sms.sms_type {
        SmsType::Mo => inbound.mo(sms).await,
        SmsType::ReportMo => inbound.report(sms).await,
        other => {
            warn!(kannel_uuid = %sms.id, sms_type = ?other, "sms of a type a box does not take; acknowledged as failed");
            AckStatus::Failed
        }
    }
}

/// Writes queued frames, flushing once per batch: one socket write for
/// every frame queued by then.
///
/// The first frame of a batch is rarely alone for long: a store commit
/// answers many MOs at once, and the session queues their acks one after
/// the other (and other tasks, such as HTTP requests, their own frames).
/// Woken by the first, the writer lets every task that is ready run first
/// ([`tokio::task::yield_now`]), so those acks (and the MTs the session
/// queued meanwhile) share its write: at 10,000 MOs/s this took the link
/// from about 1.3 writes per MO to a fraction of one (BENCHMARKS.md), for
/// no added wait when nothing else is ready.
async fn write_frames<S>(mut sink: S, mut queue: mpsc::Receiver<Msg>) -> Result<(), String>
where
    S: futures_util::Sink<Msg, Error = boxproto::EncodeError> + Unpin,
{
    while let Some(msg) = queue.recv().await {
        feed(&mut sink, msg).await?;
        tokio::task::yield_now().await;
        while let Ok(more) = queue.try_recv() {
            feed(&mut sink, more).await?;
        }
        sink.flush().await.map_err(|e| e.to_string())?;
    }
    sink.close().await.map_err(|e| e.to_string())
}

async fn feed<S>(sink: &mut S, msg: Msg) -> Result<(), String>
where
    S: futures_util::Sink<Msg, Error = boxproto::EncodeError> + Unpin,
{
    match sink.feed(msg).await {
        Ok(()) => Ok(()),
        // Too long to send: nothing was written, the connection is fine.
        Err(e @ boxproto::EncodeError::TooLong { .. }) => {
            error!(error = %e, "frame not sent");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    /// A sink that records how many frames each flush carried: each
    /// flush of the real one is a socket write.
    struct Writes {
        frames_per_flush: Arc<Mutex<Vec<usize>>>,
        unflushed: usize,
    }

    impl futures_util::Sink<Msg> for Writes {
        type Error = boxproto::EncodeError;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn start_send(mut self: Pin<&mut Self>, _: Msg) -> Result<(), Self::Error> {
            self.unflushed += 1;
            Ok(())
        }

        fn poll_flush(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            if self.unflushed > 0 {
                let n = std::mem::take(&mut self.unflushed);
                self.frames_per_flush.lock().unwrap().push(n);
            }
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.poll_flush(cx)
        }
    }

    /// As when one store commit answers several MOs: their tasks are
    /// ready together and each queues its ack. The first ack wakes the
    /// writer straight after its task (tokio's LIFO slot); the acks of
    /// the others must still go out in the same write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn acks_queued_by_tasks_ready_together_share_one_write() {
        let frames_per_flush = Arc::new(Mutex::new(Vec::new()));
        let sink = Writes {
            frames_per_flush: frames_per_flush.clone(),
            unflushed: 0,
        };
        let (out, queue) = mpsc::channel::<Msg>(WRITE_QUEUE);
        let writer = tokio::spawn(write_frames(sink, queue));
        // Let the writer wait on its queue first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        tokio::spawn(async move {
            for n in 0..4u128 {
                let out = out.clone();
                tokio::spawn(async move {
                    let ack = Ack {
                        id: Uuid::from_u128(n),
                        ..Ack::default()
                    };
                    out.send(ack.into()).await.unwrap();
                });
            }
        })
        .await
        .unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(*frames_per_flush.lock().unwrap(), [4]);
    }

    fn liveness(answer: u64, idle: Option<u64>, now: Instant) -> Liveness {
        Liveness {
            answer_timeout: Duration::from_secs(answer),
            idle_timeout: idle.map(Duration::from_secs),
            heard: now,
            owed_since: None,
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn an_mt_unanswered_past_the_answer_timeout_makes_the_link_dead() {
        let t0 = Instant::now();
        let mut l = liveness(30, Some(60), t0);
        // Quiet for 40 s with nothing owed is no problem yet.
        assert!(l.expired(0, t0 + secs(40)).is_none());
        // An MT at 40 s: the answer is owed from then, not from the last
        // frame (which would make it dead at once).
        l.sent(t0 + secs(40));
        assert!(l.expired(1, t0 + secs(45)).is_none());
        assert_eq!(l.deadline(), t0 + secs(60), "idle comes first here");
        l.heard(1, t0 + secs(50));
        assert_eq!(l.deadline(), t0 + secs(80));
        assert!(l.expired(1, t0 + secs(79)).is_none());
        match l.expired(1, t0 + secs(80)) {
            Some(SessionEnd::Dead { silent, unanswered }) => {
                assert_eq!((silent, unanswered), (secs(30), 1));
            }
            other => panic!("expected Dead, got {other:?}"),
        }
    }

    #[test]
    fn an_answer_that_empties_the_window_ends_what_is_owed() {
        let t0 = Instant::now();
        let mut l = liveness(5, None, t0);
        l.sent(t0);
        l.sent(t0 + secs(3));
        assert_eq!(l.deadline(), t0 + secs(5), "owed since the first MT");
        l.heard(0, t0 + secs(4));
        assert!(l.expired(0, t0 + secs(3600)).is_none(), "no idle limit");
    }

    #[test]
    fn a_silent_idle_link_is_replaced_and_never_without_a_limit() {
        let t0 = Instant::now();
        let l = liveness(30, Some(60), t0);
        assert!(l.expired(0, t0 + secs(59)).is_none());
        assert!(matches!(
            l.expired(0, t0 + secs(60)),
            Some(SessionEnd::Idle { silent }) if silent == secs(60)
        ));
        let l = liveness(30, None, t0);
        assert!(l.expired(0, t0 + secs(86_400)).is_none());
    }

    #[test]
    fn retries_back_off_from_two_seconds_to_five_minutes() {
        let secs: Vec<_> = (1..=9).map(|a| retry_delay(a) / 1_000_000).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 64, 128, 256, 300]);
    }
}
