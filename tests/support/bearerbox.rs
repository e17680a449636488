//! A test bearerbox that can be stopped and started again on the same
//! configuration, and its status page read as numbers.
//!
//! The status page (`/status.txt` on the admin port) is how a test learns
//! what Kannel itself holds, without asking the box under test: how many
//! MOs the SMSCs delivered, how many wait for a box, how many a box has
//! not acknowledged, how many MTs wait for an SMSC, and (with a message
//! store) how many messages the store still keeps. A box acknowledges an
//! MO only once it is safe, so "nothing queued for any box" means the box
//! has taken responsibility for every MO the bearerbox had.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::conf::{self, BearerboxPorts, Conf};
use super::process::{Daemon, START_TIMEOUT};

/// How often status waits poll.
const STATUS_POLL: Duration = Duration::from_millis(50);

/// A bearerbox started from a configuration written once, that can be
/// stopped and started again on it (same ports, same message store).
#[derive(Debug)]
pub struct Bearerbox {
    dir: PathBuf,
    conf: PathBuf,
    ports: BearerboxPorts,
    daemon: Daemon,
    /// How many times it has been started; names each run's console file.
    runs: u32,
}

impl Bearerbox {
    /// Writes `conf` to `dir/bearerbox.conf`, starts bearerbox on it and
    /// waits until it listens on its admin, box and fake SMSC ports.
    pub async fn start(dir: &Path, conf: &Conf, ports: BearerboxPorts) -> Bearerbox {
        let path = conf.write(dir, "bearerbox.conf");
        let daemon = spawn(dir, &path, 1);
        let mut bearerbox = Bearerbox {
            dir: dir.to_owned(),
            conf: path,
            ports,
            daemon,
            runs: 1,
        };
        bearerbox.wait_ready().await;
        bearerbox
    }

    async fn wait_ready(&mut self) {
        for port in [self.ports.admin, self.ports.smsbox, self.ports.fake_smsc] {
            self.daemon.wait_for_tcp_port(port, START_TIMEOUT).await;
        }
    }

    /// Its ports.
    pub fn ports(&self) -> BearerboxPorts {
        self.ports
    }

    /// The running (or last) process.
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// The tails of its console and logs, for failure messages.
    pub fn log_tails(&self) -> String {
        self.daemon.log_tails()
    }

    /// Stops it with SIGTERM, as an operator would, and waits up to
    /// `timeout` for it to exit; panics with its logs if it does not.
    ///
    /// Bearerbox 1.4.5 takes its time: measured here, 3 s with MTs queued
    /// for an absent SMSC, 11 s with MOs queued for an absent box.
    pub async fn stop(&mut self, timeout: Duration) -> ExitStatus {
        self.daemon.signal(libc::SIGTERM);
        match self.daemon.wait_exit(timeout).await {
            Some(status) => status,
            None => panic!(
                "bearerbox did not exit within {timeout:?} of SIGTERM\n{}",
                self.daemon.log_tails()
            ),
        }
    }

    /// Starts it again on the same configuration, after [`stop`](Self::stop),
    /// and waits until it listens again.
    pub async fn restart(&mut self) {
        assert!(
            self.daemon.try_exit_status().is_some(),
            "bearerbox restarted while still running"
        );
        self.runs += 1;
        self.daemon = spawn(&self.dir, &self.conf, self.runs);
        self.wait_ready().await;
    }

    /// Its status page, parsed.
    pub async fn status(&self) -> Status {
        let text = super::bearerbox_status(self.ports.admin).await;
        Status::parse(&text).unwrap_or_else(|e| panic!("bearerbox status page: {e}\n{text}"))
    }

    /// Polls the status page until `done` holds, and returns that status.
    /// Panics with `what`, the last status seen and the logs if `timeout`
    /// passes or bearerbox exits first.
    pub async fn wait_status(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Status) -> bool,
    ) -> Status {
        let started = Instant::now();
        loop {
            if let Some(status) = self.daemon.try_exit_status() {
                panic!(
                    "bearerbox exited ({status}) while the test waited for {what}\n{}",
                    self.daemon.log_tails()
                );
            }
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            if started.elapsed() >= timeout {
                panic!(
                    "bearerbox: expected {what} within {timeout:?}; last status seen:\n{}\n{}",
                    status.text,
                    self.daemon.log_tails()
                );
            }
            tokio::time::sleep(STATUS_POLL).await;
        }
    }

    /// Waits until a box that identified as `smsbox_id` (`None`: with a
    /// NULL id) is connected.
    pub async fn wait_for_box(&mut self, smsbox_id: Option<&str>, timeout: Duration) {
        let id = smsbox_id.unwrap_or("(none)").to_owned();
        self.wait_status(&format!("a box connected as {id}"), timeout, |s| {
            s.boxes.iter().any(|b| b.id == id)
        })
        .await;
    }

    /// Waits until the bearerbox holds nothing for anyone: no MO waiting
    /// for a box or unacknowledged by one, no MT waiting for an SMSC, no
    /// MT waiting for its delivery report, an empty message store; and
    /// `also` holds. It must stay so for two polls in a row, since a
    /// message moving between queues is briefly in none.
    pub async fn wait_settled(
        &mut self,
        what: &str,
        timeout: Duration,
        mut also: impl FnMut(&Status) -> bool,
    ) -> Status {
        let mut calm_once = false;
        self.wait_status(&format!("{what}, with nothing queued"), timeout, |s| {
            let calm = s.is_settled() && also(s);
            let twice = calm && calm_once;
            calm_once = calm;
            twice
        })
        .await
    }
}

fn spawn(dir: &Path, conf_path: &Path, run: u32) -> Daemon {
    let name = if run == 1 {
        "bearerbox".to_owned()
    } else {
        format!("bearerbox-run{run}")
    };
    Daemon::spawn(
        &name,
        super::BEARERBOX,
        [conf_path],
        dir,
        vec![
            conf::log_path(dir, "bearerbox"),
            conf::access_log_path(dir, "bearerbox"),
        ],
    )
}

/// A box connection, as the status page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxLine {
    /// Its smsbox-id, or `(none)` for a box that identified without one.
    pub id: String,
    /// MOs and reports waiting for it or sent to it and not acknowledged.
    pub queued: u64,
}

/// The numbers of bearerbox 1.4.5's `/status.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// MOs the SMSCs delivered since bearerbox started.
    pub sms_received: u64,
    /// MOs waiting to be routed to a box.
    pub sms_received_queued: u64,
    /// MTs sent to SMSCs since bearerbox started.
    pub sms_sent: u64,
    /// MTs waiting to be routed to an SMSC.
    pub sms_sent_queued: u64,
    /// Messages in the message store; `None` without one.
    pub store_size: Option<u64>,
    /// Delivery reports the SMSCs delivered since bearerbox started.
    pub dlr_received: u64,
    /// MTs waiting for their delivery report.
    pub dlr_queued: u64,
    /// Connected boxes.
    pub boxes: Vec<BoxLine>,
    /// MTs queued inside each SMSC connection, summed.
    pub smsc_queued: u64,
    /// Whether the fake SMSC's client is connected.
    pub fake_smsc_online: bool,
    /// The page as it came, for messages.
    pub text: String,
}

impl Status {
    /// Parses the page; an error names what could not be found.
    pub fn parse(text: &str) -> Result<Status, String> {
        let line = |prefix: &str| {
            text.lines()
                .map(str::trim)
                .find(|l| l.starts_with(prefix))
                .ok_or_else(|| format!("no line starting with {prefix:?}"))
        };
        let sms = line("SMS: received")?;
        let (sms_received, sms_received_queued) = count_queued(sms, "received ")?;
        let (sms_sent, sms_sent_queued) = count_queued(sms, "sent ")?;
        // Without a message store the page says `store size -1`.
        let store_size = match sms.find("store size ") {
            Some(at) if !sms[at..].starts_with("store size -") => {
                Some(leading_number(&sms[at + "store size ".len()..])?)
            }
            _ => None,
        };
        let dlr = line("DLR: received")?;
        let dlr_received = leading_number(after(dlr, "received ")?)?;
        let dlr_queued = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("DLR: ") && l.contains(" queued"))
            .ok_or("no `DLR: N queued` line")?;
        let dlr_queued = leading_number(after(dlr_queued, "DLR: ")?)?;
        let mut boxes = Vec::new();
        for l in text.lines().map(str::trim) {
            let Some(rest) = l.strip_prefix("smsbox:") else {
                continue;
            };
            let id = rest.split(',').next().unwrap_or("").to_owned();
            let queued = number_before(rest, " queued)")?;
            boxes.push(BoxLine { id, queued });
        }
        let mut smsc_queued = 0;
        let mut fake_smsc_online = false;
        for l in text.lines().map(str::trim) {
            if !l.contains("FAKE:") {
                continue;
            }
            fake_smsc_online |= l.contains("(online");
            smsc_queued += leading_number(after(l, "queued ")?)?;
        }
        Ok(Status {
            sms_received,
            sms_received_queued,
            sms_sent,
            sms_sent_queued,
            store_size,
            dlr_received,
            dlr_queued,
            boxes,
            smsc_queued,
            fake_smsc_online,
            text: text.to_owned(),
        })
    }

    /// Nothing waits anywhere in the bearerbox.
    pub fn is_settled(&self) -> bool {
        self.sms_received_queued == 0
            && self.sms_sent_queued == 0
            && self.store_size.unwrap_or(0) == 0
            && self.dlr_queued == 0
            && self.smsc_queued == 0
            && self.boxes.iter().all(|b| b.queued == 0)
    }
}

/// `N (M queued)` after `label` in `line`.
fn count_queued(line: &str, label: &str) -> Result<(u64, u64), String> {
    let rest = after(line, label)?;
    let count = leading_number(rest)?;
    let queued = leading_number(after(rest, "(")?)?;
    Ok((count, queued))
}

/// The number just before `marker` in `text`.
fn number_before(text: &str, marker: &str) -> Result<u64, String> {
    let at = text
        .find(marker)
        .ok_or_else(|| format!("no {marker:?} in {text:?}"))?;
    let head = &text[..at];
    let start = head
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    leading_number(&head[start..])
}

fn after<'a>(text: &'a str, marker: &str) -> Result<&'a str, String> {
    text.find(marker)
        .map(|at| &text[at + marker.len()..])
        .ok_or_else(|| format!("no {marker:?} in {text:?}"))
}

fn leading_number(text: &str) -> Result<u64, String> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .map_err(|_| format!("no number at the start of {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from Debian's bearerbox 1.4.5 with a message store, one
    /// box and a fake SMSC.
    const PAGE: &str = "Kannel bearerbox version `1.4.5'.
Compiler `12.2.0'.

Status: running, uptime 0d 0h 0m 9s

WDP: received 0 (0 queued), sent 0 (0 queued)

SMS: received 2 (1 queued), sent 3 (4 queued), store size 5
SMS: inbound (0.22,0.22,0.22) msg/sec, outbound (0.22,0.22,0.22) msg/sec

DLR: received 4, sent 0
DLR: inbound (0.44,0.44,0.44) msg/sec, outbound (0.00,0.00,0.00) msg/sec
DLR: 6 queued, using internal storage

Box connections:
    smsbox:(none), IP 127.0.0.1 (7 queued), (on-line 0d 0h 0m 7s)  
    smsbox:rapidbox, IP 127.0.0.1 (0 queued), (on-line 0d 0h 0m 7s)  


SMSC connections:
    fake[fake]    FAKE:20000 (online 3s, rcvd: sms 2 (0.00,0.00,0.00) / dlr 4 (0.00,0.00,0.00), sent: sms 2 (0.00,0.00,0.00) / dlr 0 (0.00,0.00,0.00), failed 0, queued 8 msgs)
";

    #[test]
    fn reads_every_number_of_the_status_page() {
        let s = Status::parse(PAGE).unwrap();
        assert_eq!(
            (
                s.sms_received,
                s.sms_received_queued,
                s.sms_sent,
                s.sms_sent_queued
            ),
            (2, 1, 3, 4)
        );
        assert_eq!(s.store_size, Some(5));
        assert_eq!((s.dlr_received, s.dlr_queued), (4, 6));
        assert_eq!(
            s.boxes,
            [
                BoxLine {
                    id: "(none)".into(),
                    queued: 7
                },
                BoxLine {
                    id: "rapidbox".into(),
                    queued: 0
                },
            ]
        );
        assert_eq!(s.smsc_queued, 8);
        assert!(s.fake_smsc_online);
        assert!(!s.is_settled());
    }

    #[test]
    fn a_bearerbox_without_a_store_has_no_store_size() {
        let page = PAGE.replace("store size 5", "store size -1");
        assert_eq!(Status::parse(&page).unwrap().store_size, None);
    }

    #[test]
    fn a_quiet_page_is_settled() {
        let quiet = PAGE
            .replace("(1 queued)", "(0 queued)")
            .replace("(4 queued)", "(0 queued)")
            .replace("store size 5", "store size 0")
            .replace("DLR: 6 queued", "DLR: 0 queued")
            .replace("(7 queued)", "(0 queued)")
            .replace("queued 8 msgs", "queued 0 msgs")
            .replace("(online 3s", "(re-connecting");
        let s = Status::parse(&quiet).unwrap();
        assert!(s.is_settled(), "{s:?}");
        assert!(!s.fake_smsc_online);
    }
}
