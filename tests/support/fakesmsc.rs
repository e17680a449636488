//! Kannel's fake SMSC client (`fakesmsc`), which plays the mobile network:
//! it sends MOs to a bearerbox's `smsc = fake` group and prints the MTs it
//! gets back.

use std::path::Path;
use std::time::{Duration, Instant};

use super::process::{Daemon, SpawnOptions};

/// How often [`FakeSmsc::wait_for_mts`] rereads the output.
const POLL: Duration = Duration::from_millis(20);

/// A running fakesmsc, stopped when dropped.
#[derive(Debug)]
pub struct FakeSmsc {
    daemon: Daemon,
}

/// One MT as fakesmsc printed it: `Got message N: <SENDER RECEIVER TYPE DATA>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMt {
    /// fakesmsc's running count of MTs, from 1.
    pub number: u64,
    /// The MT's sender (the service's number for a reply).
    pub sender: String,
    /// The MT's receiver (the phone).
    pub receiver: String,
    /// `text`, `data`, `ucs-2` or `udh`.
    pub kind: String,
    /// The rest: the text as is for `text`, URL-encoded bytes for `data`
    /// and `ucs-2`, `UDH data BYTES` for `udh`.
    pub data: String,
}

impl FakeSmsc {
    /// Starts fakesmsc against the fake SMSC port `smsc_port`, sending
    /// `count` MOs (picked at random from `messages`, each `"SENDER
    /// RECEIVER TYPE DATA"`) `interval` seconds apart. It stays connected
    /// afterwards, receiving MTs, until stopped.
    ///
    /// To send several different MOs in a known order, run one fakesmsc
    /// per MO, or use a [`Phone`]: with several `messages` fakesmsc
    /// chooses among them at random.
    pub fn spawn(
        name: &str,
        dir: &Path,
        smsc_port: u16,
        messages: &[&str],
        count: u32,
        interval: f64,
    ) -> Self {
        let mut args = vec![
            "-H".to_owned(),
            "127.0.0.1".to_owned(),
            "-r".to_owned(),
            smsc_port.to_string(),
            "-i".to_owned(),
            interval.to_string(),
            "-m".to_owned(),
            count.to_string(),
        ];
        args.extend(messages.iter().map(|m| (*m).to_owned()));
        FakeSmsc {
            daemon: Daemon::spawn(name, super::FAKESMSC, args, dir, Vec::new()),
        }
    }

    /// Starts fakesmsc sending `count` MOs made from `template` (`"SENDER
    /// RECEIVER text WORDS"`) with a random number appended to the sender
    /// and to the last word (fakesmsc's `-z 5`), `interval` seconds apart:
    /// a stream of distinct MOs at a steady rate, as fast as fakesmsc can
    /// write them with an interval of 0. The random numbers go up to
    /// 2^31, so two MOs of a stream of 100,000 are the same (sender and
    /// text) with a chance of about 1 in 10^8.
    ///
    /// fakesmsc does not say which MOs it sent, only how many; the
    /// bearerbox's count of MOs received is the offered count, and the
    /// MOs themselves are known from what reaches the box.
    pub fn spawn_randomized(
        name: &str,
        dir: &Path,
        smsc_port: u16,
        template: &str,
        count: u32,
        interval: f64,
    ) -> Self {
        let args = [
            "-H".to_owned(),
            "127.0.0.1".to_owned(),
            "-r".to_owned(),
            smsc_port.to_string(),
            "-i".to_owned(),
            interval.to_string(),
            "-m".to_owned(),
            count.to_string(),
            // Bit 1: a random number after the sender; bit 4: after the
            // last word of the text.
            "-z".to_owned(),
            "5".to_owned(),
            template.to_owned(),
        ];
        FakeSmsc {
            daemon: Daemon::spawn(name, super::FAKESMSC, args, dir, Vec::new()),
        }
    }

    /// The underlying process.
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// The MTs fakesmsc has reported so far.
    ///
    /// fakesmsc 1.4.5 reports them through Kannel's logger on stderr (the
    /// first at INFO level, later ones at DEBUG), not on stdout; both go to
    /// the same file here, so either would be found.
    pub fn mts(&self) -> Vec<FakeMt> {
        mts_in(self.daemon.console_path())
    }

    /// Waits until fakesmsc has reported at least `n` MTs and returns them
    /// all, panicking with its output if `timeout` passes or it exits.
    pub async fn wait_for_mts(&mut self, n: usize, timeout: Duration) -> Vec<FakeMt> {
        wait_for_mts_of(&mut self.daemon, n, timeout).await
    }
}

/// Waits until the fakesmsc `daemon` has reported at least `n` MTs.
async fn wait_for_mts_of(daemon: &mut Daemon, n: usize, timeout: Duration) -> Vec<FakeMt> {
    let started = Instant::now();
    loop {
        let mts = mts_in(daemon.console_path());
        if mts.len() >= n {
            return mts;
        }
        if let Some(status) = daemon.try_exit_status() {
            panic!(
                "{} exited ({status}) after {} of {n} MTs\n{}",
                daemon.name(),
                mts.len(),
                daemon.log_tails()
            );
        }
        if started.elapsed() >= timeout {
            panic!(
                "{} got {} of {n} MTs within {timeout:?}\n{}",
                daemon.name(),
                mts.len(),
                daemon.log_tails()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// fakesmsc in its interactive mode, driven line by line: a phone (or as
/// many phones as there are senders) whose every MO the test writes, in
/// order, and counts exactly.
///
/// Given no messages on its command line, fakesmsc reads them from stdin,
/// one line each (`SENDER RECEIVER TYPE DATA`, under 255 bytes), and logs
/// `fakesmsc: sent message N` once it has written the Nth to the bearerbox.
/// [`send`](Self::send) writes one line and waits for that confirmation
/// before the next, for two reasons: fakesmsc polls stdin with `select`
/// and then reads it through stdio, so a second line already sitting in
/// stdio's buffer would wait there until more input came; and the
/// confirmation is what makes the count of sent MOs exact.
///
/// fakesmsc is started with `-i 0`: its interval also paces interactive
/// input (one message per second by default). With nothing to send it
/// reads the MTs that arrived at least once a second, so an MT shows up in
/// [`mts`](Self::mts) within about a second of reaching it.
///
/// Its stdin must stay open while it runs: fakesmsc 1.4.5 crashes on end
/// of input (a NULL from `fgets`). The daemon is therefore declared before
/// the pipe, so that dropping a `Phone` stops the process first.
#[derive(Debug)]
pub struct Phone {
    daemon: Daemon,
    stdin: std::process::ChildStdin,
    /// MOs fakesmsc confirmed sending.
    sent: u64,
    /// How far the console has been scanned for confirmations.
    scanned: usize,
}

/// How long [`Phone::send`] waits for fakesmsc to confirm one MO.
pub const SEND_CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// How often [`Phone::send`] looks for the confirmation. fakesmsc confirms
/// within a fraction of a millisecond, so this paces the sending.
const SEND_POLL: Duration = Duration::from_millis(1);

impl Phone {
    /// Starts an interactive fakesmsc connected to the fake SMSC port
    /// `smsc_port`.
    pub fn start(name: &str, dir: &Path, smsc_port: u16) -> Phone {
        let args = [
            "-H".to_owned(),
            "127.0.0.1".to_owned(),
            "-r".to_owned(),
            smsc_port.to_string(),
            "-i".to_owned(),
            "0".to_owned(),
        ];
        let options = SpawnOptions {
            piped_stdin: true,
            ..SpawnOptions::default()
        };
        let mut daemon = Daemon::spawn_with(name, super::FAKESMSC, args, dir, Vec::new(), options);
        let Some(stdin) = daemon.take_stdin() else {
            panic!("{name}: spawned with a piped stdin but has none");
        };
        Phone {
            daemon,
            stdin,
            sent: 0,
            scanned: 0,
        }
    }

    /// The underlying process.
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// How many MOs fakesmsc has confirmed sending.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Sends one MO, `"SENDER RECEIVER TYPE DATA"`, and waits until
    /// fakesmsc confirms it has written it to the bearerbox. An error means
    /// it was not confirmed: fakesmsc exited (its bearerbox went away) or
    /// took longer than [`SEND_CONFIRM_TIMEOUT`].
    pub async fn send(&mut self, mo: &str) -> Result<(), String> {
        use std::io::Write as _;
        assert!(
            !mo.contains('\n') && mo.len() < 250,
            "{}: an MO line must be one line under 250 bytes: {mo:?}",
            self.daemon.name()
        );
        let wanted = self.sent + 1;
        if let Err(e) = self.stdin.write_all(format!("{mo}\n").as_bytes()) {
            return Err(format!(
                "{}: cannot write MO {wanted} ({mo:?}): {e}",
                self.daemon.name()
            ));
        }
        let started = Instant::now();
        loop {
            self.scan_confirmations();
            if self.sent >= wanted {
                return Ok(());
            }
            if let Some(status) = self.daemon.try_exit_status() {
                self.scan_confirmations();
                if self.sent >= wanted {
                    return Ok(());
                }
                return Err(format!(
                    "{} exited ({status}) before confirming MO {wanted} ({mo:?})",
                    self.daemon.name()
                ));
            }
            if started.elapsed() >= SEND_CONFIRM_TIMEOUT {
                return Err(format!(
                    "{} did not confirm MO {wanted} ({mo:?}) within {SEND_CONFIRM_TIMEOUT:?}\n{}",
                    self.daemon.name(),
                    self.daemon.log_tails()
                ));
            }
            tokio::time::sleep(SEND_POLL).await;
        }
    }

    /// Reads the console from where the last scan stopped, counting
    /// `fakesmsc: sent message N` lines; a line not yet complete is left
    /// for the next scan.
    fn scan_confirmations(&mut self) {
        let Ok(bytes) = std::fs::read(self.daemon.console_path()) else {
            return;
        };
        let Some(fresh) = bytes.get(self.scanned..) else {
            return;
        };
        let Some(end) = fresh.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        for line in String::from_utf8_lossy(&fresh[..end]).lines() {
            if let Some(n) = parse_sent_line(line) {
                self.sent = self.sent.max(n);
            }
        }
        self.scanned += end + 1;
    }

    /// The MTs fakesmsc has reported so far (see [`FakeSmsc::mts`]).
    pub fn mts(&self) -> Vec<FakeMt> {
        mts_in(self.daemon.console_path())
    }

    /// Waits until fakesmsc has reported at least `n` MTs and returns them
    /// all, panicking with its output if `timeout` passes or it exits.
    pub async fn wait_for_mts(&mut self, n: usize, timeout: Duration) -> Vec<FakeMt> {
        wait_for_mts_of(&mut self.daemon, n, timeout).await
    }

    /// Stops fakesmsc (SIGTERM, then SIGKILL) and returns the MTs it
    /// reported.
    pub fn stop(&mut self) -> Vec<FakeMt> {
        self.daemon.stop();
        self.mts()
    }
}

/// Parses fakesmsc's `fakesmsc: sent message N` (DEBUG for every message
/// but the last of a `-m` run, which is INFO).
pub fn parse_sent_line(line: &str) -> Option<u64> {
    let rest = &line[line.find("fakesmsc: sent message ")? + "fakesmsc: sent message ".len()..];
    rest.trim().parse().ok()
}

/// The MTs reported in a fakesmsc console file.
fn mts_in(path: &Path) -> Vec<FakeMt> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(parse_mt_line)
        .collect()
}

/// Parses `... Got message N: <SENDER RECEIVER TYPE DATA>` out of a log
/// line; other lines give `None`.
pub fn parse_mt_line(line: &str) -> Option<FakeMt> {
    let rest = &line[line.find("Got message ")? + "Got message ".len()..];
    let (number, rest) = rest.split_once(": <")?;
    let number = number.parse().ok()?;
    let inner = rest.strip_suffix('>')?;
    let mut parts = inner.splitn(4, ' ');
    Some(FakeMt {
        number,
        sender: parts.next()?.to_owned(),
        receiver: parts.next()?.to_owned(),
        kind: parts.next()?.to_owned(),
        data: parts.next().unwrap_or("").to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fakesmsc_mt_lines() {
        let line = "2026-11-26 13:12:23 [5401] [0] DEBUG: Got message 2: \
                    <1234 +4915 udh %06%05%04%0B%84%23%F0 data h%C3%A9llo+push>";
        assert_eq!(
            parse_mt_line(line),
            Some(FakeMt {
                number: 2,
                sender: "1234".into(),
                receiver: "+4915".into(),
                kind: "udh".into(),
                data: "%06%05%04%0B%84%23%F0 data h%C3%A9llo+push".into(),
            })
        );
        let text = "2026-11-26 13:12:21 [5401] [0] INFO: Got message 1: <5555 +4914 text Got it>";
        assert_eq!(parse_mt_line(text).map(|mt| mt.data), Some("Got it".into()));
        assert_eq!(parse_mt_line("INFO: fakesmsc: sent message 3"), None);
    }

    #[test]
    fn parses_fakesmsc_sent_lines() {
        let debug = "2026-11-26 13:41:21 [16247] [0] DEBUG: fakesmsc: sent message 12";
        assert_eq!(parse_sent_line(debug), Some(12));
        let info = "2026-11-26 13:41:39 [16578] [0] INFO: fakesmsc: sent message 50";
        assert_eq!(parse_sent_line(info), Some(50));
        let summary = "INFO: fakesmsc: 50 messages sent and 3 received";
        assert_eq!(parse_sent_line(summary), None);
    }
}
