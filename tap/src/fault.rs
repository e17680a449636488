//! Faults the relay injects into the connections it carries, switched on
//! and off while it runs.
//!
//! rapidbox promises that a bad link loses no message. Real links fail in
//! ugly ways a clean close does not show: cut in the middle of a frame,
//! stalled, half-open (nothing arrives, and no FIN or RST says so), slow
//! to a trickle, or corrupted. A [`Faults`] switch, shared by the accept
//! loop and every relayed connection, says which of these the relay plays
//! right now; tests flip it through the API, scripts through the control
//! socket ([`crate::control`]).
//!
//! The faults act on the forwarding only: the recorder still sees exactly
//! the bytes that were forwarded, so a recording made under a fault shows
//! what each side really received.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::Direction;

/// Length of a frame's header: a big-endian `i32` body length.
const HEADER_LEN: usize = 4;

/// Longest gap between two bytes of a drip, and longest stall, that a
/// command may ask for: an hour. Longer is a typo, not a test.
pub const MAX_FAULT_DURATION: Duration = Duration::from_secs(3600);

/// One fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next frame going `direction`, on any connection, is forwarded
    /// only in part (its header and half its body); then both sides of
    /// that connection are closed. Fires once.
    CutMidFrame(Direction),
    /// Nothing is forwarded either way, on any connection, old or new,
    /// for this long; then forwarding carries on with what waited. A
    /// close that arrives meanwhile is passed on afterwards.
    Stall(Duration),
    /// Every connection open now stops forwarding both ways, with its
    /// sockets left open: no FIN, no RST, nothing. New connections are
    /// relayed normally. When the fault is cleared, the stopped
    /// connections are closed, as a peer that lost their state would.
    HalfOpen,
    /// Every byte is forwarded on its own, this long after the one before,
    /// both ways, until cleared.
    Drip(Duration),
    /// The length prefix of the next frame going `direction` is changed,
    /// the rest of the stream forwarded unchanged. Fires once.
    CorruptLength(Direction, Corruption),
}

/// How [`Fault::CorruptLength`] changes a length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Replaced by this value (`i32::MAX`: a frame of 2 GiB; negative:
    /// a header Kannel skips).
    Set(i32),
    /// This much added (wrapping): a frame that takes bytes of the next
    /// one, or leaves some of its own behind.
    Add(i32),
}

impl Corruption {
    fn apply(self, len: i32) -> i32 {
        match self {
            Corruption::Set(value) => value,
            Corruption::Add(delta) => len.wrapping_add(delta),
        }
    }
}

/// What the faults in force are, as the relay's connections see it.
#[derive(Debug, Clone, Default)]
struct State {
    /// Highest connection number opened so far.
    opened: u64,
    stalled_until: Option<Instant>,
    /// Whether a half-open is in force.
    half_open: bool,
    /// Connections numbered up to this one were open when a half-open
    /// began: held while it lasts, closed when it ends.
    doomed_upto: u64,
    drip: Option<Duration>,
    cut: Option<Direction>,
    corrupt: Option<(Direction, Corruption)>,
}

/// The relay's fault switch. Cheap to clone; every clone is the same
/// switch.
#[derive(Clone)]
pub struct Faults {
    state: Arc<watch::Sender<State>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Faults")
            .field(&*self.state.borrow())
            .finish()
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new()
    }
}

impl Faults {
    /// A switch with no fault in force.
    pub fn new() -> Faults {
        Faults {
            state: Arc::new(watch::Sender::new(State::default())),
        }
    }

    /// Puts `fault` in force, alongside any others.
    pub fn inject(&self, fault: Fault) {
        self.state.send_modify(|s| match fault {
            Fault::CutMidFrame(direction) => s.cut = Some(direction),
            Fault::Stall(duration) => s.stalled_until = Some(Instant::now() + duration),
            Fault::HalfOpen => {
                s.half_open = true;
                s.doomed_upto = s.opened;
            }
            Fault::Drip(gap) => s.drip = Some(gap),
            Fault::CorruptLength(direction, how) => s.corrupt = Some((direction, how)),
        });
    }

    /// Ends every fault: stalls end, half-open connections are closed,
    /// drips stop, one-shot faults that have not fired are disarmed.
    pub fn clear(&self) {
        self.state.send_modify(|s| {
            s.stalled_until = None;
            s.half_open = false;
            s.drip = None;
            s.cut = None;
            s.corrupt = None;
        });
    }

    /// Whether a one-shot fault (cut, corrupt) is still waiting for its
    /// frame.
    pub fn armed(&self) -> bool {
        let s = self.state.borrow();
        s.cut.is_some() || s.corrupt.is_some()
    }

    /// A line saying which faults are in force, for the control socket.
    pub fn describe(&self) -> String {
        let s = self.state.borrow();
        let mut parts = Vec::new();
        if let Some(until) = s.stalled_until {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                parts.push(format!("stall {:.1}s left", left.as_secs_f64()));
            }
        }
        if s.half_open {
            parts.push(format!("half-open (connections 1..={})", s.doomed_upto));
        }
        if let Some(gap) = s.drip {
            parts.push(format!("drip {}ms", gap.as_millis()));
        }
        if let Some(direction) = s.cut {
            parts.push(format!("cut {direction} armed"));
        }
        if let Some((direction, how)) = s.corrupt {
            parts.push(format!("corrupt {direction} {how:?} armed"));
        }
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Notes that connection `conn` was opened (numbers only grow).
    pub(crate) fn opened(&self, conn: u64) {
        self.state.send_modify(|s| s.opened = s.opened.max(conn));
    }

    /// The view of one direction of connection `conn`.
    pub(crate) fn gate(&self, conn: u64, direction: Direction) -> Gate {
        Gate {
            conn,
            direction,
            state: self.state.subscribe(),
            faults: self.clone(),
            header: [0; HEADER_LEN],
            in_header: 0,
            body_left: 0,
            corrupting: None,
            cut_pending: false,
            cut_left: None,
        }
    }

    /// Takes the one-shot fault for `direction`, if one is armed.
    fn take_one_shot(&self, direction: Direction) -> Option<OneShot> {
        let mut taken = None;
        self.state.send_if_modified(|s| {
            if s.cut == Some(direction) {
                s.cut = None;
                taken = Some(OneShot::Cut);
            } else if let Some((d, how)) = s.corrupt {
                if d == direction {
                    s.corrupt = None;
                    taken = Some(OneShot::Corrupt(how));
                }
            }
            taken.is_some()
        });
        taken
    }
}

enum OneShot {
    Cut,
    Corrupt(Corruption),
}

/// What a direction of a connection may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Forward.
    Go,
    /// Close the connection (a half-open that ended, a cut).
    Close,
}

/// One direction's view of the switch: waits out stalls and half-opens,
/// and shapes each chunk before it is forwarded. It follows the frame
/// boundaries of the bytes it lets through, so that a cut lands inside a
/// frame and a corruption on a length prefix.
pub(crate) struct Gate {
    conn: u64,
    direction: Direction,
    state: watch::Receiver<State>,
    faults: Faults,
    /// The header of the frame being forwarded, as far as it has passed.
    header: [u8; HEADER_LEN],
    in_header: usize,
    /// Body bytes of the current frame still to pass (by its real length).
    body_left: usize,
    /// This frame's header is held back until whole, then changed.
    corrupting: Option<Corruption>,
    /// This frame is to be cut once its header is known.
    cut_pending: bool,
    /// Bytes of this frame's body still to forward before the cut.
    cut_left: Option<usize>,
}

/// A chunk made ready to forward.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Shaped {
    /// The bytes to write (possibly fewer than read, possibly changed).
    pub bytes: Vec<u8>,
    /// Write them one at a time, this long apart.
    pub drip: Option<Duration>,
    /// Close the connection once they are written.
    pub close_after: bool,
}

impl Gate {
    /// Waits until this direction may forward, or must close.
    pub async fn ready(&mut self) -> Verdict {
        loop {
            let (wait_until, verdict) = {
                let s = self.state.borrow_and_update();
                if self.conn <= s.doomed_upto {
                    if s.half_open {
                        (None, None)
                    } else {
                        (None, Some(Verdict::Close))
                    }
                } else {
                    match s.stalled_until {
                        Some(until) if until > Instant::now() => (Some(until), None),
                        _ => (None, Some(Verdict::Go)),
                    }
                }
            };
            if let Some(verdict) = verdict {
                return verdict;
            }
            // The switch outlives every gate (the relay holds it), so
            // `changed` only fails when the tap is going away: forward.
            match wait_until {
                Some(until) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {}
                        changed = self.state.changed() => if changed.is_err() { return Verdict::Go },
                    }
                }
                None => {
                    if self.state.changed().await.is_err() {
                        return Verdict::Go;
                    }
                }
            }
        }
    }

    /// Resolves when the switch changes, so that a pump waiting to read
    /// looks again: a half-open connection must close when the fault ends
    /// even if neither peer sends a byte.
    pub async fn changed(&mut self) {
        if self.state.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Applies the faults in force to a chunk about to be forwarded.
    pub fn shape(&mut self, chunk: &[u8]) -> Shaped {
        let drip = self.state.borrow().drip;
        let mut bytes = Vec::with_capacity(chunk.len());
        let mut i = 0;
        while i < chunk.len() {
            let at_frame_start = self.in_header == 0
                && self.body_left == 0
                && self.corrupting.is_none()
                && !self.cut_pending;
            if at_frame_start {
                match self.faults.take_one_shot(self.direction) {
                    Some(OneShot::Cut) => self.cut_pending = true,
                    Some(OneShot::Corrupt(how)) => self.corrupting = Some(how),
                    None => {}
                }
            }
            if self.in_header < HEADER_LEN {
                let byte = chunk[i];
                i += 1;
                self.header[self.in_header] = byte;
                self.in_header += 1;
                if self.corrupting.is_none() {
                    bytes.push(byte);
                }
                if self.in_header == HEADER_LEN {
                    let len = i32::from_be_bytes(self.header);
                    if let Some(how) = self.corrupting.take() {
                        bytes.extend_from_slice(&how.apply(len).to_be_bytes());
                    }
                    // Kannel skips a negative header: the frame is the
                    // header alone.
                    self.body_left = usize::try_from(len).unwrap_or(0);
                    if self.cut_pending {
                        self.cut_pending = false;
                        self.cut_left = Some(self.body_left / 2);
                    }
                    if self.body_left == 0 {
                        self.in_header = 0;
                    }
                }
            } else {
                let mut n = self.body_left.min(chunk.len() - i);
                if let Some(left) = self.cut_left {
                    n = n.min(left);
                }
                bytes.extend_from_slice(&chunk[i..i + n]);
                i += n;
                self.body_left -= n;
                if let Some(left) = self.cut_left.as_mut() {
                    *left -= n;
                }
                if self.body_left == 0 {
                    self.in_header = 0;
                }
            }
            if self.cut_left == Some(0) {
                return Shaped {
                    bytes,
                    drip,
                    close_after: true,
                };
            }
        }
        Shaped {
            bytes,
            drip,
            close_after: false,
        }
    }
}

/// Why a fault command could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    /// The first word names no fault.
    #[error("unknown fault `{0}` (cut, stall, half-open, drip, corrupt)")]
    Unknown(String),
    /// A word is missing or not what the fault takes.
    #[error("`{fault}` takes {expected}")]
    Usage {
        /// The fault named.
        fault: &'static str,
        /// What it takes.
        expected: &'static str,
    },
    /// A duration over [`MAX_FAULT_DURATION`].
    #[error("a duration longer than {}s", MAX_FAULT_DURATION.as_secs())]
    TooLong,
}

impl FromStr for Direction {
    type Err = ();

    fn from_str(s: &str) -> Result<Direction, ()> {
        match s {
            "bb>box" => Ok(Direction::BearerboxToBox),
            "box>bb" => Ok(Direction::BoxToBearerbox),
            _ => Err(()),
        }
    }
}

/// Faults as written on the command line and the control socket:
///
/// | command | fault |
/// |---|---|
/// | `cut bb>box` | [`Fault::CutMidFrame`] (or `box>bb`) |
/// | `stall 30` | [`Fault::Stall`], seconds (fractions allowed) |
/// | `half-open` | [`Fault::HalfOpen`] |
/// | `drip 10` | [`Fault::Drip`], milliseconds between bytes |
/// | `corrupt bb>box set 2147483647` | [`Fault::CorruptLength`] with [`Corruption::Set`] |
/// | `corrupt bb>box add 1` | [`Fault::CorruptLength`] with [`Corruption::Add`] |
///
/// ```
/// use boxtap::fault::{Corruption, Fault};
/// use boxtap::Direction;
/// use std::time::Duration;
/// assert_eq!("stall 1.5".parse(), Ok(Fault::Stall(Duration::from_millis(1500))));
/// assert_eq!(
///     "corrupt bb>box set -1".parse(),
///     Ok(Fault::CorruptLength(Direction::BearerboxToBox, Corruption::Set(-1)))
/// );
/// ```
impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(line: &str) -> Result<Fault, FaultParseError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let usage = |fault, expected| FaultParseError::Usage { fault, expected };
        let duration = |secs: f64| {
            if !secs.is_finite() || secs < 0.0 {
                return Err(FaultParseError::TooLong);
            }
            let d = Duration::from_secs_f64(secs.min(MAX_FAULT_DURATION.as_secs_f64() + 1.0));
            if d > MAX_FAULT_DURATION {
                Err(FaultParseError::TooLong)
            } else {
                Ok(d)
            }
        };
        match words.as_slice() {
            ["cut", direction] => direction
                .parse()
                .map(Fault::CutMidFrame)
                .map_err(|()| usage("cut", "a direction: bb>box or box>bb")),
            ["cut", ..] => Err(usage("cut", "a direction: bb>box or box>bb")),
            ["stall", secs] => {
                let secs: f64 = secs.parse().map_err(|_| usage("stall", "seconds"))?;
                Ok(Fault::Stall(duration(secs)?))
            }
            ["stall", ..] => Err(usage("stall", "seconds")),
            ["half-open"] => Ok(Fault::HalfOpen),
            ["half-open", ..] => Err(usage("half-open", "nothing")),
            ["drip", ms] => {
                let ms: f64 = ms
                    .parse()
                    .map_err(|_| usage("drip", "milliseconds between bytes"))?;
                Ok(Fault::Drip(duration(ms / 1000.0)?))
            }
            ["drip", ..] => Err(usage("drip", "milliseconds between bytes")),
            ["corrupt", direction, how, value] => {
                let expected = "a direction, set or add, and a number";
                let direction = direction.parse().map_err(|()| usage("corrupt", expected))?;
                let value: i32 = value.parse().map_err(|_| usage("corrupt", expected))?;
                let how = match *how {
                    "set" => Corruption::Set(value),
                    "add" => Corruption::Add(value),
                    _ => return Err(usage("corrupt", expected)),
                };
                Ok(Fault::CorruptLength(direction, how))
            }
            ["corrupt", ..] => Err(usage("corrupt", "a direction, set or add, and a number")),
            [other, ..] => Err(FaultParseError::Unknown((*other).to_owned())),
            [] => Err(FaultParseError::Unknown(String::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut raw = (body.len() as i32).to_be_bytes().to_vec();
        raw.extend_from_slice(body);
        raw
    }

    fn two_frames() -> Vec<u8> {
        [frame(&[1; 10]), frame(&[2; 6])].concat()
    }

    /// Shapes `bytes` cut into chunks of `size`, as a pump would.
    fn shape_in_chunks(gate: &mut Gate, bytes: &[u8], size: usize) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        for chunk in bytes.chunks(size) {
            let shaped = gate.shape(chunk);
            out.extend_from_slice(&shaped.bytes);
            if shaped.close_after {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn bytes_pass_unchanged_without_a_fault() {
        let faults = Faults::new();
        let mut gate = faults.gate(1, Direction::BearerboxToBox);
        let bytes = two_frames();
        assert_eq!(
            shape_in_chunks(&mut gate, &bytes, 3),
            (bytes.clone(), false)
        );
    }

    #[test]
    fn a_cut_lands_inside_the_next_frame_at_every_chunk_size() {
        for size in 1..=20 {
            let faults = Faults::new();
            let mut gate = faults.gate(1, Direction::BearerboxToBox);
            let bytes = two_frames();
            // The first frame passes, then the cut is armed.
            let (first, closed) = shape_in_chunks(&mut gate, &bytes[..14], size);
            assert_eq!((first.len(), closed), (14, false));
            faults.inject(Fault::CutMidFrame(Direction::BearerboxToBox));
            let (second, closed) = shape_in_chunks(&mut gate, &bytes[14..], size);
            assert!(closed, "chunk size {size}");
            // The header and 3 of the 6 body bytes.
            assert_eq!(second, bytes[14..21], "chunk size {size}");
            assert!(!faults.armed(), "a cut fires once");
        }
    }

    #[test]
    fn a_cut_waits_for_its_direction() {
        let faults = Faults::new();
        let mut gate = faults.gate(1, Direction::BoxToBearerbox);
        faults.inject(Fault::CutMidFrame(Direction::BearerboxToBox));
        let bytes = two_frames();
        assert_eq!(
            shape_in_chunks(&mut gate, &bytes, 5),
            (bytes.clone(), false)
        );
        assert!(faults.armed());
    }

    #[test]
    fn a_corruption_changes_only_the_next_length_prefix() {
        for size in 1..=20 {
            let faults = Faults::new();
            let mut gate = faults.gate(1, Direction::BearerboxToBox);
            // Armed in the middle of the first frame: it takes the second.
            let bytes = two_frames();
            let (head, _) = shape_in_chunks(&mut gate, &bytes[..6], size);
            faults.inject(Fault::CorruptLength(
                Direction::BearerboxToBox,
                Corruption::Set(i32::MAX),
            ));
            let (tail, closed) = shape_in_chunks(&mut gate, &bytes[6..], size);
            assert!(!closed);
            let mut want = bytes.clone();
            want[14..18].copy_from_slice(&i32::MAX.to_be_bytes());
            assert_eq!([head, tail].concat(), want, "chunk size {size}");
            // The frames after it pass unchanged.
            let more = frame(&[3; 4]);
            assert_eq!(shape_in_chunks(&mut gate, &more, size).0, more);
        }
        let faults = Faults::new();
        let mut gate = faults.gate(1, Direction::BearerboxToBox);
        faults.inject(Fault::CorruptLength(
            Direction::BearerboxToBox,
            Corruption::Add(-1),
        ));
        let got = shape_in_chunks(&mut gate, &frame(&[9; 8]), 4).0;
        assert_eq!(got[..4], 7i32.to_be_bytes());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_holds_every_connection_until_it_ends() {
        let faults = Faults::new();
        faults.opened(1);
        faults.inject(Fault::Stall(Duration::from_secs(30)));
        let mut old = faults.gate(1, Direction::BearerboxToBox);
        let mut new = faults.gate(2, Direction::BoxToBearerbox);
        let start = Instant::now();
        assert_eq!(old.ready().await, Verdict::Go);
        assert_eq!(new.ready().await, Verdict::Go);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_holds_old_connections_and_closes_them_when_cleared() {
        let faults = Faults::new();
        faults.opened(1);
        faults.inject(Fault::HalfOpen);
        faults.opened(2);
        let mut new = faults.gate(2, Direction::BearerboxToBox);
        assert_eq!(new.ready().await, Verdict::Go, "new connections pass");
        let mut old = faults.gate(1, Direction::BearerboxToBox);
        let held = tokio::time::timeout(Duration::from_secs(3600), old.ready()).await;
        assert!(held.is_err(), "held while the half-open lasts");
        faults.clear();
        assert_eq!(old.ready().await, Verdict::Close);
    }

    #[test]
    fn commands_parse_and_bad_ones_say_why() {
        assert_eq!(
            "cut box>bb".parse(),
            Ok(Fault::CutMidFrame(Direction::BoxToBearerbox))
        );
        assert_eq!("half-open".parse(), Ok(Fault::HalfOpen));
        assert_eq!("drip 5".parse(), Ok(Fault::Drip(Duration::from_millis(5))));
        assert_eq!(
            "corrupt box>bb add 3".parse(),
            Ok(Fault::CorruptLength(
                Direction::BoxToBearerbox,
                Corruption::Add(3)
            ))
        );
        assert!(matches!(
            "cut sideways".parse::<Fault>(),
            Err(FaultParseError::Usage { fault: "cut", .. })
        ));
        assert_eq!("stall 7200".parse::<Fault>(), Err(FaultParseError::TooLong));
        assert_eq!("stall -1".parse::<Fault>(), Err(FaultParseError::TooLong));
        assert!(matches!(
            "explode".parse::<Fault>(),
            Err(FaultParseError::Unknown(_))
        ));
    }
}
