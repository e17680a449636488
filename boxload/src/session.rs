//! The connection: accept one box, wait for it to identify, run the load,
//! then send it an admin shutdown and close.
//!
//! A reader task decodes frames into a bounded channel; the load loop owns
//! the write half, so it alone decides what is written and when. It fills
//! the window (or paces by `--rate`), handles what the box sends, and
//! flushes once per batch of work so that a busy box costs few syscalls.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boxproto::{
    Ack, AckStatus, Admin, AdminCommand, BodyError, BoxCodec, Bytes, DlrMask, FrameError, Msg, Sms,
    SmsType, Uuid,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, MissedTickBehavior};
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, info, warn};

use crate::matcher;
use crate::offer::{AckFor, Offer};
use crate::options::{Options, OptionsError};
use crate::report::{End, Report, Tally};

/// Frames decoded ahead of the load loop, at most: the reader waits (and
/// TCP pushes back on the box) when the loop falls behind.
pub const READ_AHEAD: usize = 1024;

/// Frames handled before a flush, at most, so that acks to MTs are not held
/// back for long behind a stream of frames.
const BATCH: usize = 256;

/// The ids of the DLRs boxload makes: this fixed pattern (a well-formed
/// version 4 UUID) with a count in the low [`DLR_COUNTER`] bits. An ack is
/// recognised as a DLR's without remembering every DLR sent.
const DLR_ID_TAG: u128 = 0xb0c1_0ad0_d1a0_4000_8000_0000_0000_0000;
/// The bits of a DLR id that count DLRs (48: far more than a run sends).
const DLR_COUNTER: u128 = 0xffff_ffff_ffff;

/// What stops a load before it measures anything.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("bad options: {0}")]
    Options(#[from] OptionsError),
    #[error("accepting the box's connection: {0}")]
    Accept(std::io::Error),
    #[error("no box connected within {0:?}")]
    NoBox(Duration),
}

/// Runs one load: accepts one box on `listener`, offers it the MOs of
/// `options`, and returns what was measured. Problems of the box (bad
/// frames, losses, a dropped connection) are in the report, not errors.
/// A connection that closes before any MO was offered (a port probe) is
/// skipped and the next one awaited. The listener is dropped at the end,
/// so a box that reconnects finds no one listening.
pub async fn run(listener: TcpListener, options: &Options) -> Result<Report, LoadError> {
    options.validate()?;
    let deadline = tokio::time::Instant::now() + options.timeout;
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(LoadError::Accept)?,
            _ = sleep_until(deadline) => return Err(LoadError::NoBox(options.timeout)),
        };
        info!(%peer, "box connected");
        let (end, load) = serve(socket, options, deadline).await;
        if end == End::Disconnected && load.offer.offered() == 0 {
            // A port probe (a script waiting for the port to open) or a
            // box that gave up before any MO: wait for the real one.
            info!(%peer, "closed before any MO was offered; waiting for a box");
            continue;
        }
        let report = load.tally.finish(&load.offer, end);
        load.close().await;
        return Ok(report);
    }
}

/// Runs the load on one connection.
async fn serve(
    socket: tokio::net::TcpStream,
    options: &Options,
    deadline: tokio::time::Instant,
) -> (End, Load) {
    let _ = socket.set_nodelay(true);
    let (read, write) = socket.into_split();
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let reader = tokio::spawn(async move {
        let mut frames = FramedRead::new(read, BoxCodec::new());
        while let Some(item) = frames.next().await {
            let broken = item.is_err();
            if tx.send(item).await.is_err() || broken {
                break;
            }
        }
    });
    let mut load = Load {
        offer: Offer::new(options),
        tally: Tally::new(),
        sink: FramedWrite::new(write, BoxCodec::new()),
        options: options.clone(),
        identified: false,
        dlr_next: 0,
        last_progress: Instant::now(),
        dirty: false,
    };
    let end = load.run(rx, deadline).await;
    reader.abort();
    (end, load)
}

/// Items from the reader task.
type Item = Result<Result<Msg, BodyError>, FrameError>;

/// The state of the load loop.
struct Load {
    offer: Offer,
    tally: Tally,
    sink: FramedWrite<OwnedWriteHalf, BoxCodec>,
    options: Options,
    /// The box has identified (or sent a message): MOs may flow.
    identified: bool,
    dlr_next: u64,
    /// The last ack or reply, for the grace period.
    last_progress: Instant,
    /// Frames fed and not yet flushed.
    dirty: bool,
}

/// The connection broke while writing.
struct Broken;

impl Load {
    async fn run(&mut self, mut rx: mpsc::Receiver<Item>, deadline: tokio::time::Instant) -> End {
        let mut ticker = self.options.rate.map(|rate| {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            // Delay, not Burst: after a stall the offered rate resumes
            // rather than catching up in a burst.
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticker
        });
        loop {
            if self.is_complete() {
                return End::Complete;
            }
            if ticker.is_none() && self.identified && self.fill_window().await.is_err() {
                return End::Disconnected;
            }
            let grace_at = tokio::time::Instant::from_std(self.last_progress + self.options.grace);
            let waiting_for_rest = self.offer.all_offered();
            let can_tick = self.identified && self.offer.can_offer();
            tokio::select! {
                biased;
                _ = sleep_until(deadline) => return End::Timeout,
                item = rx.recv() => {
                    let Some(item) = item else { return End::Disconnected };
                    if self.handle(item).await.is_err() {
                        return End::Disconnected;
                    }
                    // Drain what is already there before flushing once.
                    for _ in 1..BATCH {
                        match rx.try_recv() {
                            Ok(item) => {
                                if self.handle(item).await.is_err() {
                                    return End::Disconnected;
                                }
                            }
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                let _ = self.flush().await;
                                return End::Disconnected;
                            }
                        }
                    }
                    if self.flush().await.is_err() {
                        return End::Disconnected;
                    }
                }
                _ = tick(&mut ticker), if can_tick => {
                    if self.offer_one().await.is_err() {
                        return End::Disconnected;
                    }
                }
                _ = sleep_until(grace_at), if waiting_for_rest => return End::Grace,
            }
        }
    }

    /// Every MO acknowledged, and every one acknowledged success answered.
    fn is_complete(&self) -> bool {
        self.offer.all_settled()
    }

    /// Offers MOs until the window is full, then flushes once.
    async fn fill_window(&mut self) -> Result<(), Broken> {
        let first = self.offer.offered() + 1;
        while self.offer.can_offer() {
            let (_, mo) = self.offer.next_mo(unix_now());
            self.feed(mo).await?;
        }
        let last = self.offer.offered();
        if last >= first {
            self.flush().await?;
            self.wrote(first, last);
        }
        Ok(())
    }

    /// Offers one MO (paced) and flushes it.
    async fn offer_one(&mut self) -> Result<(), Broken> {
        let (seq, mo) = self.offer.next_mo(unix_now());
        self.feed(mo).await?;
        self.flush().await?;
        self.wrote(seq, seq);
        Ok(())
    }

    fn wrote(&mut self, first: u32, last: u32) {
        let now = Instant::now();
        self.tally.first_write.get_or_insert(now);
        self.offer.written(first, last, now);
        if self.offer.all_offered() {
            // The grace period counts from the last MO written at the latest.
            self.last_progress = self.last_progress.max(now);
        }
    }

    async fn feed(&mut self, msg: Msg) -> Result<(), Broken> {
        self.dirty = true;
        self.sink.feed(msg).await.map_err(|e| {
            warn!(error = %e, "writing to the box");
            Broken
        })
    }

    async fn flush(&mut self) -> Result<(), Broken> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        SinkExt::<Msg>::flush(&mut self.sink).await.map_err(|e| {
            warn!(error = %e, "writing to the box");
            Broken
        })
    }

    /// Handles one item from the reader. Only a broken stream or a failed
    /// write is an error; a bad frame is counted and skipped.
    async fn handle(&mut self, item: Item) -> Result<(), Broken> {
        let now = Instant::now();
        let msg = match item {
            Ok(Ok(msg)) => msg,
            Ok(Err(bad)) => {
                self.tally.counts.bad_frames += 1;
                self.tally.problem(format!("bad frame: {bad}"));
                return Ok(());
            }
            Err(broken) => {
                self.tally.counts.bad_frames += 1;
                self.tally.problem(format!("the stream broke: {broken}"));
                return Err(Broken);
            }
        };
        match msg {
            Msg::Admin(admin) if admin.command == AdminCommand::Identify => {
                debug!(boxc_id = ?admin.boxc_id, "box identified");
                self.identified = true;
            }
            Msg::Heartbeat(_) => self.tally.counts.heartbeats += 1,
            Msg::Ack(ack) => self.on_ack(&ack, now),
            Msg::Sms(sms) if matches!(sms.sms_type, SmsType::MtReply | SmsType::MtPush) => {
                self.identified = true;
                self.on_mt(sms, now).await?;
            }
            other => {
                self.tally.counts.unexpected_frames += 1;
                self.tally
                    .problem(format!("unexpected from a box: {other}"));
            }
        }
        Ok(())
    }

    fn on_ack(&mut self, ack: &Ack, now: Instant) {
        match self.offer.ack(&ack.id, ack.nack, now) {
            AckFor::Mo { micros, .. } => {
                self.tally.ack(ack.nack, micros, now);
                self.last_progress = now;
            }
            AckFor::Again { seq } => {
                self.tally.counts.repeated_acks += 1;
                self.tally.problem(format!("MO {seq} acknowledged again"));
            }
            AckFor::Unknown if is_dlr_id(&ack.id, self.dlr_next) => self.tally.counts.dlr_acks += 1,
            AckFor::Unknown => {
                self.tally.counts.unknown_acks += 1;
                self.tally
                    .problem(format!("ack for an unknown id {}", ack.id));
            }
        }
    }

    async fn on_mt(&mut self, mt: Sms, now: Instant) -> Result<(), Broken> {
        self.tally.counts.mts += 1;
        match matcher::find(&mt, &self.offer) {
            Some(seq) => match self.offer.reply(seq, now) {
                Some(micros) => {
                    self.tally.reply(micros, now);
                    self.last_progress = now;
                }
                None => {
                    self.tally.counts.duplicated += 1;
                    self.tally.problem(format!("MO {seq} answered again"));
                }
            },
            None => {
                self.tally.counts.mismatched += 1;
                let text = matcher::text_of(&mt);
                self.tally.problem(format!(
                    "reply to {:?} matches no MO: {text:?}",
                    String::from_utf8_lossy(mt.receiver.as_deref().unwrap_or_default())
                ));
            }
        }
        let ack = Ack {
            nack: AckStatus::Success,
            time: unix_now(),
            id: mt.id,
            ..Default::default()
        };
        self.feed(Msg::from(ack)).await?;
        if self.options.dlr && mt.dlr_mask.contains(DlrMask::DELIVERED) {
            let dlr = self.delivered_report(&mt);
            self.feed(Msg::from(dlr)).await?;
            self.tally.counts.dlrs_sent += 1;
        }
        Ok(())
    }

    /// A delivered report for `mt`, as a bearerbox sends it.
    fn delivered_report(&mut self, mt: &Sms) -> Sms {
        let id = Uuid::from_u128(DLR_ID_TAG | (u128::from(self.dlr_next) & DLR_COUNTER));
        self.dlr_next += 1;
        Sms {
            sender: mt.sender.clone(),
            receiver: mt.receiver.clone(),
            msgdata: Some(Bytes::from_static(b"ACK/")),
            time: unix_now(),
            smsc_id: mt.smsc_id.clone(),
            foreign_id: Some(Bytes::from(mt.id.to_string())),
            id,
            sms_type: SmsType::ReportMo,
            dlr_mask: DlrMask(DlrMask::DELIVERED),
            dlr_url: mt.dlr_url.clone(),
            boxc_id: mt.boxc_id.clone(),
            ..Default::default()
        }
    }

    /// Tells the box the (fake) bearerbox is going away, and closes.
    async fn close(mut self) {
        let shutdown = Admin {
            command: AdminCommand::Shutdown,
            ..Default::default()
        };
        let _ = self.sink.send(Msg::from(shutdown)).await;
        let _ = SinkExt::<Msg>::close(&mut self.sink).await;
    }
}

/// The next tick of the pacing interval; never, when not paced (the loop
/// then fills the window instead).
async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// True when `id` is one of the first `sent` DLR ids.
fn is_dlr_id(id: &Uuid, sent: u64) -> bool {
    let raw = id.as_u128();
    raw & !DLR_COUNTER == DLR_ID_TAG && (raw & DLR_COUNTER) < u128::from(sent)
}

/// Now in Unix seconds, as the `time` fields carry it.
fn unix_now() -> i32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlr_ids_are_recognised_and_counted() {
        let id = |n: u64| Uuid::from_u128(DLR_ID_TAG | u128::from(n));
        assert!(is_dlr_id(&id(0), 1));
        assert!(is_dlr_id(&id(41), 42));
        assert!(!is_dlr_id(&id(42), 42), "not sent yet");
        assert!(!is_dlr_id(&Uuid::new_v4(), u64::MAX));
        assert_eq!(id(7).get_version_num(), 4);
    }
}
