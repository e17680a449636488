//! One connection to the bearerbox, from identify to close.
//!
//! A single task owns the read side and all session state (the MTs in
//! flight, suspend), so none of it needs a lock. Writes go through a bounded
//! channel to a writer task that batches whatever is queued into one flush.
//! Each MO or report is handled in a task of its own, inline through router
//! and store, so a slow commit never holds up the reading of acks. The
//! session loop itself waits on nothing but its `select!`: it always reads
//! the bearerbox's acks and admin commands, sends heartbeats and sees
//! shutdown, however slow the apps are.
//!
//! Bounds: at most `max_routing` MOs and reports are being handled at once;
//! while all are busy, up to `max_routing` more wait in the session for a
//! slot (the bearerbox's own window, `smsbox-max-pending`, normally keeps
//! it from sending that many). Beyond that an MO is acked `failed_tmp`: the
//! bearerbox keeps it and offers it again later.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use boxproto::{
    Ack, AckStatus, Admin, AdminCommand, BoxCodec, Bytes, FrameError, Heartbeat, Msg, Sms, SmsType,
    Uuid,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinSet;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::dispatch::outbox::Outbox;
use crate::link::connect::Stream;
use crate::link::convert;
use crate::link::inbound::Inbound;
use crate::link::LinkConfig;
use crate::metrics::{LinkStatus, MoAck, MtKind, MtOutcome, MtTransport};
use crate::model::{now_micros, DeliveryError, Message, Micros, Status};
use crate::store::{Op, Unit, Update};

/// Frames waiting for the writer. Acks, heartbeats and MTs are small; this
/// bounds the memory they can hold while the socket is slow.
const WRITE_QUEUE: usize = 1024;

/// How long a shutdown waits for MOs being routed, so their acks go out.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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

        let routing = Arc::new(Semaphore::new(self.config.max_routing));
        // MOs and reports read while every routing slot is busy, oldest
        // first; at most `max_routing` of them.
        let mut waiting: VecDeque<Sms> = VecDeque::new();
        // MOs and reports being handled: aborted when the connection is
        // lost (their acks could not be sent; the bearerbox redelivers).
        let mut tasks = JoinSet::new();
        // Answers to our MTs being stored: never aborted. Each one takes
        // its message out of the outbox's hands when its commit returns; an
        // aborted one would leave the message marked as in hand forever,
        // and a failed_tmp'd MT would never be sent again.
        let mut answers = JoinSet::new();
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

        let end = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break SessionEnd::Shutdown,
                frame = frames.next() => {
                    let msg = match frame {
                        None => break SessionEnd::Closed,
                        Some(Err(FrameError::Io(e))) => break SessionEnd::Broken(e.to_string()),
                        Some(Err(e)) => break SessionEnd::Broken(e.to_string()),
                        Some(Ok(Err(bad))) => {
                            // The frame is consumed and the stream is in
                            // step: the bearerbox will offer that message
                            // again on reconnect, so it is not lost.
                            error!(error = %bad, body_len = bad.body.len(), "skipped a frame the bearerbox sent");
                            continue;
                        }
                        Some(Ok(Ok(msg))) => msg,
                    };
                    match msg {
                        Msg::Sms(sms) => {
                            // Oldest first: a newcomer does not pass the
                            // ones already waiting.
                            let free = if waiting.is_empty() {
                                routing.clone().try_acquire_owned()
                            } else {
                                Err(TryAcquireError::NoPermits)
                            };
                            match free {
                                Ok(permit) => self.route(sms, permit, &mut tasks, &out),
                                Err(TryAcquireError::NoPermits) if waiting.len() < self.config.max_routing => {
                                    waiting.push_back(sms);
                                }
                                Err(TryAcquireError::NoPermits) => {
                                    warn!(kannel_uuid = %sms.id, waiting = waiting.len(), "every routing slot is busy and the waiting line is full; acking failed_tmp so the bearerbox offers the message again");
                                    self.inbound.intake.metrics().messages.mo_ack(MoAck::FailedTmp);
                                    let ack = Ack { nack: AckStatus::FailedTmp, time: sms.time, id: sms.id, ..Ack::default() };
                                    if out.send(ack.into()).await.is_err() {
                                        break SessionEnd::Broken("the writer stopped".into());
                                    }
                                }
                                Err(TryAcquireError::Closed) => break SessionEnd::Broken("routing closed".into()),
                            }
                        }
                        Msg::Ack(ack) => self.on_ack(ack, &mut in_flight, &mut answers),
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
                }
                free = routing.clone().acquire_owned(), if !waiting.is_empty() => {
                    let Ok(permit) = free else {
                        break SessionEnd::Broken("routing closed".into());
                    };
                    if let Some(sms) = waiting.pop_front() {
                        self.route(sms, permit, &mut tasks, &out);
                    }
                }
                _ = heartbeat.tick() => {
                    let busy = self.config.max_routing - routing.available_permits() + waiting.len();
                    let load = i32::try_from(busy).unwrap_or(i32::MAX);
                    if out.send(Heartbeat { load, ..Heartbeat::default() }.into()).await.is_err() {
                        break SessionEnd::Broken("the writer stopped".into());
                    }
                }
                free = window.clone().acquire_owned(), if !suspended && slot.is_none() => {
                    match free {
                        Ok(free) => slot = Some(free),
                        Err(_) => break SessionEnd::Broken("the MT window closed".into()),
                    }
                }
                message = outbox.next(), if !suspended && slot.is_some() => {
                    let Some(taken) = slot.take() else { continue };
                    if let Some(sms) = self.prepare_mt(message, taken, &mut in_flight).await {
                        if out.send(sms.into()).await.is_err() {
                            break SessionEnd::Broken("the writer stopped".into());
                        }
                    }
                }
            }
            // Slots freed while the loop was busy go to the waiting MOs at
            // once: the select is biased towards reading frames, so under
            // a steady stream of them the arm above alone would leave the
            // line waiting behind free slots.
            while !waiting.is_empty() {
                let Ok(permit) = routing.clone().try_acquire_owned() else {
                    break;
                };
                if let Some(sms) = waiting.pop_front() {
                    self.route(sms, permit, &mut tasks, &out);
                }
            }
            let used = self.config.max_in_flight - window.available_permits();
            self.status.in_flight.store(used, Ordering::Relaxed);
        };

        // Let the MOs already being routed finish, so their acks reach the
        // bearerbox before the connection closes.
        if matches!(end, SessionEnd::Shutdown) {
            let max = u32::try_from(self.config.max_routing).unwrap_or(u32::MAX);
            let drained = tokio::time::timeout(DRAIN_TIMEOUT, routing.acquire_many(max)).await;
            if drained.is_err() {
                warn!("MOs still being routed after {DRAIN_TIMEOUT:?}; the bearerbox will redeliver them");
            }
        } else {
            tasks.abort_all();
        }
        while tasks.join_next().await.is_some() {}
        while answers.join_next().await.is_some() {}
        drop(out);
        match writer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!(error = %e, "writer ended with an error"),
            Err(e) => debug!(error = %e, "writer task failed"),
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
        end
    }

    /// Handles an MO or report in a task of its own, holding its routing
    /// slot until its ack is queued for the bearerbox.
    fn route(
        &self,
        sms: Sms,
        permit: OwnedSemaphorePermit,
        tasks: &mut JoinSet<()>,
        out: &mpsc::Sender<Msg>,
    ) {
        let inbound = self.inbound.clone();
        let out = out.clone();
        let status = self.status.clone();
        tasks.spawn(async move {
            let ack = handle_sms(&inbound, &sms).await;
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
            drop(permit);
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
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

    /// Records the bearerbox's answer to one of our MTs. The MT keeps its
    /// window slot until the answer is durably stored.
    fn on_ack(&self, ack: Ack, in_flight: &mut HashMap<Uuid, InFlight>, tasks: &mut JoinSet<()>) {
        let Some(InFlight { message, slot }) = in_flight.remove(&ack.id) else {
            warn!(kannel_uuid = %ack.id, nack = ?ack.nack, "ack for an MT we do not have in flight");
            return;
        };
        let (id, uuid) = (message.id, ack.id);
        let now = now_micros();
        let attempts = message.attempts + 1;
        let mut unit = Unit::new();
        let kind = MtKind::of(&message);
        let report = |outcome| {
            let metrics = self.inbound.intake.metrics();
            metrics.messages.mt(MtTransport::Kannel, kind, outcome);
        };
        match ack.nack {
            AckStatus::Success | AckStatus::Buffered => {
                debug!(message_id = id, kannel_uuid = %ack.id, nack = ?ack.nack, "MT accepted");
                report(MtOutcome::Accepted);
                unit.push(
                    Update::status(id, Status::Sent, now)
                        .retry_after(None)
                        .into(),
                );
            }
            AckStatus::Failed => {
                warn!(message_id = id, kannel_uuid = %ack.id, "bearerbox refused the MT");
                report(MtOutcome::Failed);
                unit.push(
                    Update::status(id, Status::Failed, now)
                        .attempts(attempts)
                        .into(),
                );
                unit.push(Op::AddDeliveryError(DeliveryError {
                    message_id: id,
                    time: now,
                    log: "bearerbox ack: failed (no route, rejected or expired)".into(),
                }));
            }
            nack => {
                // failed_tmp is the bearerbox saying "not now" (its queue is
                // full, or it is shutting down): back off and send again. It
                // never makes a message fail.
                let retry = now + retry_delay(attempts);
                warn!(message_id = id, kannel_uuid = %ack.id, ?nack, "bearerbox cannot take the MT now; will retry");
                report(MtOutcome::Retry);
                unit.push(
                    Update::status(id, Status::Errored, now)
                        .attempts(attempts)
                        .retry_after(Some(retry))
                        .into(),
                );
                unit.push(Op::AddDeliveryError(DeliveryError {
                    message_id: id,
                    time: now,
                    log: format!("bearerbox ack: {nack:?} (queue full or shutting down); retrying"),
                }));
            }
        }
        self.status.answered.fetch_add(1, Ordering::Relaxed);
        let store = self.inbound.intake.store().clone();
        let outbox = self.outbox.clone();
        tasks.spawn(async move {
            match store.commit(unit).await {
                // Durable: sweeps may take it again as soon as it is due.
                Ok(_) => outbox.finished(id),
                Err(e) => {
                    error!(message_id = id, kannel_uuid = %uuid, error = %e, "could not record the bearerbox's answer");
                    outbox.done(id);
                }
            }
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
    }
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

/// Writes queued frames, flushing once per batch.
async fn write_frames<S>(mut sink: S, mut queue: mpsc::Receiver<Msg>) -> Result<(), String>
where
    S: futures_util::Sink<Msg, Error = boxproto::EncodeError> + Unpin,
{
    while let Some(msg) = queue.recv().await {
        feed(&mut sink, msg).await?;
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

    #[test]
    fn retries_back_off_from_two_seconds_to_five_minutes() {
        let secs: Vec<_> = (1..=9).map(|a| retry_delay(a) / 1_000_000).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 64, 128, 256, 300]);
    }
}
