//! Kannel's fake SMSC client (`fakesmsc`), which plays the mobile network:
//! it sends MOs to a bearerbox's `smsc = fake` group and prints the MTs it
//! gets back.

use std::path::Path;
use std::time::{Duration, Instant};

use super::process::Daemon;

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
    /// per MO: with several `messages` fakesmsc chooses among them at
    /// random.
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
        let Ok(bytes) = std::fs::read(self.daemon.console_path()) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(parse_mt_line)
            .collect()
    }

    /// Waits until fakesmsc has reported at least `n` MTs and returns them
    /// all, panicking with its output if `timeout` passes or it exits.
    pub async fn wait_for_mts(&mut self, n: usize, timeout: Duration) -> Vec<FakeMt> {
        let started = Instant::now();
        loop {
            let mts = self.mts();
            if mts.len() >= n {
                return mts;
            }
            if let Some(status) = self.daemon.try_exit_status() {
                panic!(
                    "{} exited ({status}) after {} of {n} MTs\n{}",
                    self.daemon.name(),
                    mts.len(),
                    self.daemon.log_tails()
                );
            }
            if started.elapsed() >= timeout {
                panic!(
                    "{} got {} of {n} MTs within {timeout:?}\n{}",
                    self.daemon.name(),
                    mts.len(),
                    self.daemon.log_tails()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
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
}
