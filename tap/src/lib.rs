//! A recording TCP relay ("tap") between a box and a bearerbox.
//!
//! The tap listens where a box expects its bearerbox. For every box that
//! connects it opens its own connection to the real bearerbox and copies the
//! bytes both ways unchanged, so neither side can tell it is there. On the
//! side it cuts each direction into frames (the 4-byte big-endian signed
//! length and its body) and hands every frame, with its direction and the
//! time it was read, to a sink: an mpsc channel of [`TapEvent`]s.
//!
//! The tap deliberately does not use `boxproto`: it only knows the framing,
//! so a recording made through it is evidence about Kannel that is
//! independent of the decoder it is later used to check.
//!
//! Layout of this module:
//!
//! - [`FrameSplitter`] turns a byte stream, delivered in arbitrary chunks,
//!   into [`Piece`]s (whole frames, oversized frames, negative headers).
//! - [`run`] is the accept loop; each connection is relayed by one task that
//!   pumps both directions and reports [`TapEvent`]s.
//! - [`recording_line`], [`parse_recording_line`] and [`utc_timestamp`]
//!   define the text recording format (`bb>box 0000000c...`), used by
//!   `boxtap --hex` and by the Kannel fidelity test.
//!
//! The relay can also play a bad link: [`fault`] holds the faults it
//! injects (cut mid-frame, stall, half-open, drip, corrupted length
//! prefix), switched at run time through [`TapConfig::faults`] or, for
//! scripts, the line-based [`control`] socket.
//!
//! Bounds: a frame is only buffered for recording up to
//! [`TapConfig::max_recorded_frame`] bytes; longer frames are still
//! forwarded, byte for byte, and reported as [`EventKind::Oversized`]. At most
//! [`TapConfig::max_connections`] box connections are relayed at once. The
//! sink is a bounded channel: a slow consumer slows the relay down rather
//! than letting memory grow, and a consumer that goes away only stops the
//! recording, never the relay.

pub mod control;
pub mod fault;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use fault::{Faults, Gate, Verdict};

/// Frame bodies up to this many bytes are recorded. Kannel itself has no
/// limit; the biggest frame in the committed Kannel recording
/// (`proto/tests/recordings/kannel-1.4.5.hex`, an mt_push with every field
/// set) is 300 bytes, so 1 MiB only trips on garbage or on a deliberately
/// huge message.
pub const DEFAULT_MAX_RECORDED_FRAME: usize = 1 << 20;

/// How many box connections one tap relays at once. A bearerbox normally
/// has a handful of boxes; the bound only guards against a runaway client.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// Size of the read buffer of each direction of a relayed connection.
const READ_BUFFER: usize = 16 * 1024;

/// Length of the frame header: a big-endian `i32` body length.
const HEADER_LEN: usize = 4;

/// Which way a frame travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// From the box (smsbox, wapbox, rapidbox) to the bearerbox.
    BoxToBearerbox,
    /// From the bearerbox to the box.
    BearerboxToBox,
}

impl Direction {
    /// The direction as written in recordings: `box>bb` or `bb>box`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::BoxToBearerbox => "box>bb",
            Direction::BearerboxToBox => "bb>box",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the tap saw on a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct TapEvent {
    /// Number of the box connection, counted from 1 per call of [`run`].
    pub conn: u64,
    /// Wall-clock time at which the bytes completing the event were read.
    pub at: SystemTime,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of [`TapEvent`].
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A box connected and the tap reached the bearerbox for it.
    Opened {
        /// The box's address.
        box_addr: SocketAddr,
    },
    /// A whole frame, exactly as it was forwarded: the 4-byte length prefix
    /// followed by the body.
    Frame {
        /// Which way it went.
        direction: Direction,
        /// Prefix and body.
        raw: Bytes,
    },
    /// A frame longer than [`TapConfig::max_recorded_frame`]. It was
    /// forwarded unchanged but not recorded.
    Oversized {
        /// Which way it went.
        direction: Direction,
        /// The body length from its header.
        len: usize,
    },
    /// A header with a negative length. Kannel skips such a 4-byte header
    /// and reads the next one, so the tap does the same.
    NegativeLength {
        /// Which way it went.
        direction: Direction,
        /// The length from the header.
        len: i32,
    },
    /// A direction ended (EOF) in the middle of a frame; `buffered` bytes of
    /// it were forwarded but never completed.
    EndedMidFrame {
        /// Which way it went.
        direction: Direction,
        /// Bytes of the incomplete frame, header included.
        buffered: usize,
    },
    /// Both directions of the connection are finished. `error` holds the I/O
    /// error that ended it, if it did not end by both sides closing.
    Closed {
        /// Why the connection ended, when it was not an orderly close.
        error: Option<String>,
    },
}

/// What [`FrameSplitter::next_piece`] cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A whole frame, prefix included.
    Frame(Bytes),
    /// A frame whose body length is over the splitter's cap. Its bytes are
    /// dropped as they arrive instead of being buffered.
    Oversized(usize),
    /// A header with a negative length, skipped.
    NegativeLength(i32),
}

/// Cuts a byte stream into Kannel box-protocol frames.
///
/// Feed it chunks with [`push`](Self::push) as they arrive, then call
/// [`next_piece`](Self::next_piece) until it returns `None`. A partial frame
/// is never an error: it waits in the buffer for the rest.
#[derive(Debug)]
pub struct FrameSplitter {
    buf: BytesMut,
    /// Bytes of an oversized frame still to be dropped. While non-zero the
    /// buffer is empty: every byte pushed belongs to that frame first.
    skip: usize,
    max_recorded_frame: usize,
}

impl FrameSplitter {
    /// A splitter that records frames whose body is at most
    /// `max_recorded_frame` bytes.
    pub fn new(max_recorded_frame: usize) -> Self {
        FrameSplitter {
            buf: BytesMut::new(),
            skip: 0,
            max_recorded_frame,
        }
    }

    /// Appends the next chunk of the stream.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.skip > 0 {
            let dropped = self.skip.min(data.len());
            self.skip -= dropped;
            data = &data[dropped..];
        }
        self.buf.extend_from_slice(data);
    }

    /// The next piece of the stream, or `None` until more bytes are pushed.
    pub fn next_piece(&mut self) -> Option<Piece> {
        if self.skip > 0 || self.buf.len() < HEADER_LEN {
            return None;
        }
        let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let Ok(body_len) = usize::try_from(len) else {
            self.buf.advance(HEADER_LEN);
            return Some(Piece::NegativeLength(len));
        };
        if body_len > self.max_recorded_frame {
            self.buf.advance(HEADER_LEN);
            let dropped = body_len.min(self.buf.len());
            self.buf.advance(dropped);
            self.skip = body_len - dropped;
            return Some(Piece::Oversized(body_len));
        }
        let frame_len = HEADER_LEN + body_len;
        if self.buf.len() < frame_len {
            // Make room once for the whole frame instead of growing chunk by
            // chunk; the cap above bounds this reservation.
            self.buf.reserve(frame_len - self.buf.len());
            return None;
        }
        Some(Piece::Frame(self.buf.split_to(frame_len).freeze()))
    }

    /// Bytes of an unfinished frame: buffered ones plus those of an
    /// oversized frame still expected. Zero at a frame boundary.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.skip
    }
}

/// Settings of a tap.
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// Where the real bearerbox listens for boxes (`host:port`).
    pub bearerbox: String,
    /// Longest frame body that is recorded; see [`DEFAULT_MAX_RECORDED_FRAME`].
    pub max_recorded_frame: usize,
    /// Most box connections relayed at once; see [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// The fault switch of this tap; keep a clone to inject faults.
    pub faults: Faults,
}

impl TapConfig {
    /// A tap in front of the bearerbox at `bearerbox`, with default bounds.
    pub fn new(bearerbox: impl Into<String>) -> Self {
        TapConfig {
            bearerbox: bearerbox.into(),
            max_recorded_frame: DEFAULT_MAX_RECORDED_FRAME,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            faults: Faults::new(),
        }
    }
}

/// Errors that stop a whole tap. Errors of a single connection only end that
/// connection and are reported as [`EventKind::Closed`].
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// Accepting a box connection failed.
    #[error("accepting a box connection failed: {0}")]
    Accept(#[source] io::Error),
}

/// Relays box connections accepted on `listener` to the bearerbox of
/// `config`, sending what it sees to `sink`, until `shutdown` completes.
///
/// On shutdown the tap stops accepting and closes the connections it is
/// relaying; it returns once their tasks have ended, so that every clone of
/// `sink` is dropped and the receiver sees the end of the channel.
///
/// A box whose bearerbox connection cannot be opened is disconnected and a
/// warning is logged; the tap keeps accepting.
pub async fn run(
    listener: TcpListener,
    config: TapConfig,
    sink: mpsc::Sender<TapEvent>,
    shutdown: impl Future,
) -> Result<(), TapError> {
    let config = Arc::new(config);
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let mut connections = JoinSet::new();
    let mut next_conn = 0u64;
    tokio::pin!(shutdown);

    let result = loop {
        // Wait for a free slot before accepting, so that a box over the
        // limit waits in the listen backlog instead of being dropped.
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; treat it as shutdown anyway.
                Err(_) => break Ok(()),
            },
            _ = &mut shutdown => break Ok(()),
        };
        let (socket, box_addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => break Err(TapError::Accept(e)),
            },
            _ = &mut shutdown => break Ok(()),
        };
        next_conn += 1;
        let conn = next_conn;
        config.faults.opened(conn);
        let config = config.clone();
        let sink = sink.clone();
        connections.spawn(async move {
            relay(conn, socket, box_addr, &config, &sink).await;
            drop(permit);
        });
        // Reap finished connections so the set does not grow with history.
        while connections.try_join_next().is_some() {}
    };

    connections.shutdown().await;
    result
}

/// Relays one box connection until both directions are done or one fails.
async fn relay(
    conn: u64,
    box_side: TcpStream,
    box_addr: SocketAddr,
    config: &TapConfig,
    sink: &mpsc::Sender<TapEvent>,
) {
    let bb_side = match TcpStream::connect(config.bearerbox.as_str()).await {
        Ok(stream) => stream,
        Err(e) => {
            warn!(conn, %box_addr, bearerbox = %config.bearerbox, error = %e,
                "cannot reach the bearerbox; disconnecting the box");
            return;
        }
    };
    // Frames are small and interactive (acks, heartbeats): do not let Nagle
    // hold them back, or the relay would change Kannel's timing.
    for stream in [&box_side, &bb_side] {
        if let Err(e) = stream.set_nodelay(true) {
            debug!(conn, error = %e, "cannot set TCP_NODELAY");
        }
    }
    info!(conn, %box_addr, bearerbox = %config.bearerbox, "relaying");
    let mut recording = Recorder {
        conn,
        sink,
        open: true,
    };
    recording
        .send(EventKind::Opened { box_addr }, SystemTime::now())
        .await;

    let (box_read, box_write) = box_side.into_split();
    let (bb_read, bb_write) = bb_side.into_split();
    // Each direction owns its own recorder handle; events of the two
    // directions are interleaved in the order they are read.
    let up = pump(
        Direction::BoxToBearerbox,
        box_read,
        bb_write,
        config.faults.gate(conn, Direction::BoxToBearerbox),
        config.max_recorded_frame,
        Recorder {
            conn,
            sink,
            open: true,
        },
    );
    let down = pump(
        Direction::BearerboxToBox,
        bb_read,
        box_write,
        config.faults.gate(conn, Direction::BearerboxToBox),
        config.max_recorded_frame,
        Recorder {
            conn,
            sink,
            open: true,
        },
    );
    // On the first error both halves of both sockets are dropped, which
    // closes the connection on both sides: a relay must not keep one side
    // open when the other is gone.
    let error = tokio::try_join!(up, down).err().map(|e| e.to_string());
    info!(
        conn,
        error = error.as_deref().unwrap_or("none"),
        "connection closed"
    );
    recording
        .send(EventKind::Closed { error }, SystemTime::now())
        .await;
}

/// Copies one direction through its fault gate and records the frames it
/// forwarded. Returns `Ok` when the reading side closed and the close was
/// passed on to the writing side, an error when the connection is to be
/// closed (an I/O error, or a fault that closes it).
async fn pump(
    direction: Direction,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut gate: Gate,
    max_recorded_frame: usize,
    mut recorder: Recorder<'_>,
) -> io::Result<()> {
    let closed_by_fault = || io::Error::other("closed by an injected fault");
    let mut splitter = FrameSplitter::new(max_recorded_frame);
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    loop {
        if gate.ready().await == Verdict::Close {
            return Err(closed_by_fault());
        }
        buf.clear();
        buf.reserve(READ_BUFFER);
        // A change of the faults interrupts the wait for bytes (reading is
        // cancel safe): a half-open connection must close when its fault
        // ends, even if neither side sends anything.
        let read = tokio::select! {
            read = from.read_buf(&mut buf) => read?,
            () = gate.changed() => continue,
        };
        // Faults act on what was read, the end of the stream included: a
        // close that arrives during a stall is passed on after it.
        if gate.ready().await == Verdict::Close {
            return Err(closed_by_fault());
        }
        if read == 0 {
            let pending = splitter.pending();
            if pending > 0 {
                let kind = EventKind::EndedMidFrame {
                    direction,
                    buffered: pending,
                };
                recorder.send(kind, SystemTime::now()).await;
            }
            // Pass the half-close on, so the peer sees the same EOF the tap
            // saw. The peer may already be gone; that ends nothing more.
            if let Err(e) = to.shutdown().await {
                debug!(conn = recorder.conn, %direction, error = %e, "shutdown after EOF failed");
            }
            return Ok(());
        }
        let at = SystemTime::now();
        let shaped = gate.shape(&buf);
        // Forward first: recording must never delay or alter the relay.
        match shaped.drip {
            None => to.write_all(&shaped.bytes).await?,
            Some(gap) => {
                for byte in &shaped.bytes {
                    to.write_all(std::slice::from_ref(byte)).await?;
                    tokio::time::sleep(gap).await;
                }
            }
        }
        splitter.push(&shaped.bytes);
        while let Some(piece) = splitter.next_piece() {
            let kind = match piece {
                Piece::Frame(raw) => EventKind::Frame { direction, raw },
                Piece::Oversized(len) => EventKind::Oversized { direction, len },
                Piece::NegativeLength(len) => EventKind::NegativeLength { direction, len },
            };
            recorder.send(kind, at).await;
        }
        if shaped.close_after {
            info!(conn = recorder.conn, %direction, "cutting the connection mid-frame (injected fault)");
            return Err(closed_by_fault());
        }
    }
}

/// The sending end of the recording for one connection.
struct Recorder<'a> {
    conn: u64,
    sink: &'a mpsc::Sender<TapEvent>,
    /// False once the receiver is gone; the relay goes on without recording.
    open: bool,
}

impl Recorder<'_> {
    async fn send(&mut self, kind: EventKind, at: SystemTime) {
        if !self.open {
            return;
        }
        let event = TapEvent {
            conn: self.conn,
            at,
            kind,
        };
        if self.sink.send(event).await.is_err() {
            debug!(conn = self.conn, "recording receiver gone; relaying only");
            self.open = false;
        }
    }
}

/// One frame as a line of a recording: direction, one space, lowercase hex
/// of the whole frame including its length prefix (no newline).
///
/// ```
/// use boxtap::{recording_line, Direction};
/// let heartbeat = [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
/// assert_eq!(
///     recording_line(Direction::BoxToBearerbox, &heartbeat),
///     "box>bb 000000080000000000000000"
/// );
/// ```
pub fn recording_line(direction: Direction, raw: &[u8]) -> String {
    format!("{direction} {}", to_hex(raw))
}

/// Lowercase hex of `raw`, two digits a byte, no separators.
pub fn to_hex(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(raw.len() * 2);
    for byte in raw {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Why a recording line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    /// The line starts with neither `box>bb ` nor `bb>box `.
    #[error("line does not start with a direction (`box>bb ` or `bb>box `)")]
    NoDirection,
    /// The hex part has an odd length or a character that is not hex.
    #[error("invalid hex at character {0}")]
    BadHex(usize),
}

/// Reads one line of a recording. Blank lines and `#` comments give
/// `Ok(None)`; a frame line gives its direction and raw bytes.
pub fn parse_recording_line(line: &str) -> Result<Option<(Direction, Vec<u8>)>, RecordingError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (direction, hex) = if let Some(hex) = line.strip_prefix("box>bb ") {
        (Direction::BoxToBearerbox, hex)
    } else if let Some(hex) = line.strip_prefix("bb>box ") {
        (Direction::BearerboxToBox, hex)
    } else {
        return Err(RecordingError::NoDirection);
    };
    let digits = hex.as_bytes();
    if digits.len() % 2 != 0 {
        return Err(RecordingError::BadHex(digits.len()));
    }
    let nibble = |i: usize| -> Result<u8, RecordingError> {
        match digits[i] {
            c @ b'0'..=b'9' => Ok(c - b'0'),
            c @ b'a'..=b'f' => Ok(c - b'a' + 10),
            c @ b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(RecordingError::BadHex(i)),
        }
    };
    let mut raw = Vec::with_capacity(digits.len() / 2);
    for i in (0..digits.len()).step_by(2) {
        raw.push(nibble(i)? << 4 | nibble(i + 1)?);
    }
    Ok(Some((direction, raw)))
}

/// `time` as `YYYY-MM-DD HH:MM:SS UTC`, for recording headers. Times before
/// 1970 print as the epoch.
pub fn utc_timestamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day counted from 1970-01-01, by counting whole
/// 400-year eras (146097 days each) and then years within the era, with
/// the year taken to start on March 1 so that the leap day comes last.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, which starts an era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut raw = (body.len() as i32).to_be_bytes().to_vec();
        raw.extend_from_slice(body);
        raw
    }

    /// A stream with ordinary frames, an empty body, a negative header and
    /// one frame over the cap of 16 used below.
    fn stream() -> (Vec<u8>, Vec<Piece>) {
        let heartbeat = frame(&[0, 0, 0, 0, 0, 0, 0, 0]);
        let admin = frame(&[0, 0, 0, 1, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        let empty = frame(&[]);
        let big = frame(&[0xab; 40]);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&admin);
        bytes.extend_from_slice(&(-7i32).to_be_bytes());
        bytes.extend_from_slice(&empty);
        bytes.extend_from_slice(&big);
        bytes.extend_from_slice(&heartbeat);
        let pieces = vec![
            Piece::Frame(Bytes::from(admin)),
            Piece::NegativeLength(-7),
            Piece::Frame(Bytes::from(empty)),
            Piece::Oversized(40),
            Piece::Frame(Bytes::from(heartbeat)),
        ];
        (bytes, pieces)
    }

    fn split_with(chunks: &[&[u8]]) -> (Vec<Piece>, usize) {
        let mut splitter = FrameSplitter::new(16);
        let mut pieces = Vec::new();
        for chunk in chunks {
            splitter.push(chunk);
            while let Some(piece) = splitter.next_piece() {
                pieces.push(piece);
            }
        }
        (pieces, splitter.pending())
    }

    #[test]
    fn splits_frames_at_every_chunk_size() {
        let (bytes, expected) = stream();
        for size in 1..=bytes.len() {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            let (pieces, pending) = split_with(&chunks);
            assert_eq!(pieces, expected, "chunk size {size}");
            assert_eq!(pending, 0, "chunk size {size}");
        }
    }

    #[test]
    fn splits_frames_at_every_pair_of_cut_points() {
        let (bytes, expected) = stream();
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let chunks = [&bytes[..a], &bytes[a..b], &bytes[b..]];
                let (pieces, pending) = split_with(&chunks);
                assert_eq!(pieces, expected, "cuts at {a} and {b}");
                assert_eq!(pending, 0, "cuts at {a} and {b}");
            }
        }
    }

    #[test]
    fn partial_frame_is_pending_not_an_error() {
        let (bytes, _) = stream();
        let (pieces, pending) = split_with(&[&bytes[..6]]);
        assert!(pieces.is_empty());
        assert_eq!(pending, 6);
        // Inside the oversized frame, the bytes still to come count too.
        let (bytes, _) = stream();
        let oversized_start = 16 + 4 + 4;
        let (pieces, pending) = split_with(&[&bytes[..oversized_start + 10]]);
        assert_eq!(pieces.last(), Some(&Piece::Oversized(40)));
        assert_eq!(pending, 44 - 10);
    }

    #[test]
    fn recording_lines_round_trip() {
        let raw = [
            0u8, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 3, 0xff, 0xff, 0xfe, 0xab,
        ];
        let line = recording_line(Direction::BearerboxToBox, &raw);
        assert_eq!(line, "bb>box 0000000c0000000100000003fffffeab");
        assert_eq!(
            parse_recording_line(&line),
            Ok(Some((Direction::BearerboxToBox, raw.to_vec())))
        );
        assert_eq!(parse_recording_line("# a comment"), Ok(None));
        assert_eq!(parse_recording_line(""), Ok(None));
        assert_eq!(
            parse_recording_line("bb<box 00"),
            Err(RecordingError::NoDirection)
        );
        assert_eq!(
            parse_recording_line("box>bb 0g"),
            Err(RecordingError::BadHex(1))
        );
        assert_eq!(
            parse_recording_line("box>bb 000"),
            Err(RecordingError::BadHex(3))
        );
    }

    #[test]
    fn utc_timestamps_match_known_dates() {
        let at = |secs| utc_timestamp(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        // `date -u -d @951782400` -> 2000-02-29 00:00:00 (a leap day).
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 UTC");
        // `date -u -d @1795698873` -> 2026-11-26 13:14:33.
        assert_eq!(at(1_795_698_873), "2026-11-26 13:14:33 UTC");
        // `date -u -d @4107542399` -> 2100-02-28 23:59:59 (2100 is no leap year).
        assert_eq!(at(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    /// Relays a scripted exchange through a tap to a stand-in bearerbox and
    /// checks that bytes pass unchanged, frames are recorded in both
    /// directions, and a close on one side closes the other.
    #[tokio::test]
    async fn relays_unchanged_and_records_both_directions() {
        let bearerbox = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bb_addr = bearerbox.local_addr().unwrap();
        let tap_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tap_addr = tap_listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut config = TapConfig::new(bb_addr.to_string());
        config.max_recorded_frame = 16;
        let tap = tokio::spawn(run(tap_listener, config, tx, stop_rx));

        let identify = frame(&[0, 0, 0, 1, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        let big = frame(&[7; 100]);
        let shutdown = frame(&[0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);

        let mut boxc = TcpStream::connect(tap_addr).await.unwrap();
        let (mut bb, _) = bearerbox.accept().await.unwrap();
        // Byte by byte, so the tap sees the frame split at every point.
        for byte in &identify {
            boxc.write_all(&[*byte]).await.unwrap();
        }
        let mut got = vec![0; identify.len()];
        bb.read_exact(&mut got).await.unwrap();
        assert_eq!(got, identify);

        bb.write_all(&big).await.unwrap();
        bb.write_all(&shutdown).await.unwrap();
        let mut got = vec![0; big.len() + shutdown.len()];
        boxc.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [big.clone(), shutdown.clone()].concat());

        // The bearerbox closes: the box sees EOF, and closes in turn.
        drop(bb);
        let mut rest = Vec::new();
        boxc.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        drop(boxc);

        let mut kinds = Vec::new();
        while let Some(event) = rx.recv().await {
            assert_eq!(event.conn, 1);
            let closed = matches!(event.kind, EventKind::Closed { .. });
            kinds.push(event.kind);
            if closed {
                break;
            }
        }
        assert!(matches!(kinds[0], EventKind::Opened { .. }), "{kinds:?}");
        assert_eq!(
            kinds[1..],
            [
                EventKind::Frame {
                    direction: Direction::BoxToBearerbox,
                    raw: Bytes::from(identify),
                },
                EventKind::Oversized {
                    direction: Direction::BearerboxToBox,
                    len: 100,
                },
                EventKind::Frame {
                    direction: Direction::BearerboxToBox,
                    raw: Bytes::from(shutdown),
                },
                EventKind::Closed { error: None },
            ]
        );

        stop_tx.send(()).unwrap();
        tap.await.unwrap().unwrap();
        assert!(rx.recv().await.is_none(), "channel ends after shutdown");
    }

    #[tokio::test]
    async fn box_is_disconnected_when_bearerbox_is_unreachable() {
        // A port that was free a moment ago: nothing listens there.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let tap_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tap_addr = tap_listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let tap = tokio::spawn(run(
            tap_listener,
            TapConfig::new(closed_addr.to_string()),
            tx,
            stop_rx,
        ));
        let mut boxc = TcpStream::connect(tap_addr).await.unwrap();
        let mut rest = Vec::new();
        // EOF or reset: either way the box learns there is no bearerbox.
        let _ = boxc.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
        stop_tx.send(()).unwrap();
        tap.await.unwrap().unwrap();
        assert!(rx.recv().await.is_none(), "nothing recorded");
    }
}
