//! A faulty link between the bearerbox and rapidbox: cut mid-frame,
//! stalled for 30 s, half-open, dripping one byte at a time, and with a
//! corrupted length prefix (issue 13, item 1).
//!
//! Debian's real bearerbox 1.4.5, Kannel's fakesmsc sending numbered MOs
//! (`msg K`), the `rapidbox` binary answering each with an echo, and
//! `boxtap`'s relay in between (`support::faulty_link`) playing the fault.
//! For each fault, under a stream of MOs, the test checks what rapidbox
//! promises, from sources that do not depend on rapidbox telling the truth
//! about itself (its store, opened after it has exited, and the MTs
//! fakesmsc received):
//!
//! - no MO lost: every MO fakesmsc sent is stored;
//! - none stored twice (the bearerbox redelivers what was not
//!   acknowledged; rapidbox knows the Kannel UUID);
//! - every MO answered, and repeated replies no more than the MTs that can
//!   have been in flight on the connections that were lost;
//! - the dead link found and traffic carried again within a stated time
//!   after the fault ends.
//!
//! Each test prints one `link_faults:` line with its figures (offered,
//! lost, stored twice, duplicate replies, detection and recovery times);
//! RELIABILITY.md quotes them. Recovery is measured from the end of the
//! fault until every MO sent so far has its reply at fakesmsc, which reads
//! what reaches it about once a second: the figures are that coarse.
//!
//! rapidbox runs here with `answer_timeout_secs = 5` and
//! `idle_timeout_secs = 10` (defaults 30 and 300) so that the tests take
//! seconds, not minutes; the bounds below are stated in those terms.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use boxtap::fault::{Corruption, Fault};
use boxtap::Direction as Way;
use rapidbox::model::Direction;

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::Phone;
use support::faulty_link::FaultyLink;
use support::rapidbox::{self as rb, Rapidbox, RapidboxParams};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "link_faults";

/// rapidbox's `answer_timeout_secs` in these tests.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// rapidbox's `idle_timeout_secs` in these tests.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// rapidbox's MT window in these tests: the most replies one lost
/// connection can repeat.
const MAX_IN_FLIGHT: usize = 32;

/// Bound for things that take milliseconds when they work.
const SHORT_WAIT: Duration = Duration::from_secs(15);

/// Bound for every MO sent so far to be answered once the fault is over:
/// a redial (rapidbox waits 200 ms, then up to 2 s, in these tests), the
/// bearerbox's redelivery, and fakesmsc's once-a-second read, with room
/// for a busy machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);

/// Bound for the bearerbox to exit after SIGTERM (see kannel_e2e).
const BEARERBOX_EXIT_WAIT: Duration = Duration::from_secs(30);

/// Time between MOs of the stream.
const PACE: Duration = Duration::from_millis(50);

const SHORTCODE: &str = "5555";

fn mo_line(k: u32) -> String {
    format!("+2567721{k:05} {SHORTCODE} text msg {k}")
}

/// One test's processes. Fields drop in order: rapidbox and the phone
/// before the relay and the bearerbox, the directory last.
struct Scenario {
    name: &'static str,
    rapidbox: Rapidbox,
    phone: Phone,
    link: FaultyLink,
    bearerbox: Bearerbox,
    params: RapidboxParams,
    http_port: u16,
    /// MOs sent so far: 1..=sent.
    sent: u32,
    /// Held so that it is removed last.
    _dir: tempfile::TempDir,
}

/// What a scenario measured once everything was stopped.
#[derive(Debug)]
struct Outcome {
    offered: u32,
    lost: Vec<u32>,
    stored_twice: Vec<u32>,
    unanswered: Vec<u32>,
    duplicate_replies: usize,
    /// Connections rapidbox made beyond the first.
    redials: u64,
    peak_rss_kb: u64,
}

impl Scenario {
    /// The bearerbox, the relay in front of it, rapidbox behind the relay
    /// and a phone. `None` without Kannel (outside CI).
    async fn start(name: &'static str) -> Option<Scenario> {
        if !support::require_kannel(&format!("{TEST}::{name}"), &[BEARERBOX, FAKESMSC]) {
            return None;
        }
        let dir = support::test_dir(name);
        let ports = BearerboxPorts::free();
        let bb_conf = conf::bearerbox(dir.path(), &ports);
        let mut bearerbox = Bearerbox::start(dir.path(), &bb_conf, ports).await;
        let link = FaultyLink::start(ports.smsbox).await;
        let http_port = support::ports::free_port();
        let mut params = RapidboxParams::new(dir.path(), link.port());
        params.max_in_flight = Some(MAX_IN_FLIGHT);
        params.http_port = Some(http_port);
        params.kannel_toml = format!(
            "answer_timeout_secs = {}\nidle_timeout_secs = {}\n",
            ANSWER_TIMEOUT.as_secs(),
            IDLE_TIMEOUT.as_secs()
        );
        let config = params.write(dir.path(), "rapidbox.toml");
        let rapidbox = Rapidbox::start("rapidbox", dir.path(), &config);
        bearerbox.wait_for_box(None, SHORT_WAIT).await;
        let phone = Phone::start("fakesmsc", dir.path(), ports.fake_smsc);
        Some(Scenario {
            name,
            rapidbox,
            phone,
            link,
            bearerbox,
            params,
            http_port,
            sent: 0,
            _dir: dir,
        })
    }

    /// Sends `count` more MOs, `PACE` apart.
    async fn stream(&mut self, count: u32) {
        for _ in 0..count {
            let k = self.sent + 1;
            if let Err(e) = self.phone.send(&mo_line(k)).await {
                panic!("{}: expected fakesmsc to send MO {k}: {e}", self.name);
            }
            self.sent = k;
            tokio::time::sleep(PACE).await;
        }
    }

    /// One of rapidbox's counters from `/metrics`.
    async fn counter(&self, name: &str) -> u64 {
        let scrape = support::http::get(self.http_port, "/metrics").await;
        assert_eq!(scrape.status, 200, "{}", scrape.body);
        let series = format!("rapidbox_{name}_total");
        support::http::sample(&scrape.body, &series)
            .unwrap_or_else(|| panic!("no {series} in /metrics:\n{}", scrape.body)) as u64
    }

    /// Waits until `counter` exceeds `above`; how long that took.
    async fn wait_counter(&self, counter: &str, above: u64, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.counter(counter).await > above {
                return started.elapsed();
            }
            if started.elapsed() > timeout {
                panic!(
                    "{}: expected {counter} to pass {above} within {timeout:?}\n{}",
                    self.name,
                    self.rapidbox.log_tails()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The MO numbers fakesmsc got replies to, with how many each.
    fn replies(&self) -> BTreeMap<u32, usize> {
        let mut by_number = BTreeMap::new();
        for mt in self.phone.mts() {
            if let Some(k) = mt
                .data
                .strip_prefix("You said: msg ")
                .and_then(|k| k.parse::<u32>().ok())
            {
                *by_number.entry(k).or_insert(0) += 1;
            }
        }
        by_number
    }

    /// Waits until every MO sent so far has a reply; how long that took.
    /// Panics after [`RECOVERY_BOUND`].
    async fn wait_answered(&self) -> Duration {
        let started = Instant::now();
        loop {
            let replies = self.replies();
            let missing: Vec<u32> = (1..=self.sent)
                .filter(|k| !replies.contains_key(k))
                .collect();
            if missing.is_empty() {
                return started.elapsed();
            }
            if started.elapsed() > RECOVERY_BOUND {
                let status = self.bearerbox.status().await;
                panic!(
                    "{}: expected every MO to be answered within {RECOVERY_BOUND:?} of the \
                     fault's end; no reply to {} MOs, the first {:?}\nbearerbox:\n{}\n{}",
                    self.name,
                    missing.len(),
                    &missing[..missing.len().min(10)],
                    status.text,
                    self.rapidbox.log_tails()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Peak resident memory of rapidbox so far (VmHWM), in KiB.
    fn peak_rss_kb(&mut self) -> u64 {
        let pid = self.rapidbox.daemon().pid();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status.lines().find_map(|l| {
                    l.strip_prefix("VmHWM:")?
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse()
                        .ok()
                })
            })
            .unwrap_or(0)
    }

    /// Lets everything settle, stops rapidbox and reads the outcome from
    /// its store and fakesmsc.
    async fn finish(mut self) -> Outcome {
        self.wait_answered().await;
        let sent = self.sent;
        self.bearerbox
            .wait_settled("every MO answered", SHORT_WAIT, |s| {
                s.sms_received >= u64::from(sent)
            })
            .await;
        // A repeated reply may still be on its way to fakesmsc.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let redials = self.counter("link_connects").await.saturating_sub(1);
        let peak_rss_kb = self.peak_rss_kb();
        self.rapidbox.stop().await;
        let replies = self.replies();
        self.phone.stop();
        self.bearerbox.stop(BEARERBOX_EXIT_WAIT).await;

        let store = rb::open_store(&self.params.store);
        let messages = rb::all_messages(&store).await;
        store.close().await;
        let mut stored: BTreeMap<u32, usize> = BTreeMap::new();
        for mo in rb::of_direction(&messages, Direction::Incoming) {
            let k = mo.text.strip_prefix("msg ").and_then(|k| k.parse().ok());
            let Some(k) = k else {
                panic!("{}: an MO nobody sent is stored: {:?}", self.name, mo.text);
            };
            *stored.entry(k).or_insert(0) += 1;
        }
        let outcome = Outcome {
            offered: sent,
            lost: (1..=sent).filter(|k| !stored.contains_key(k)).collect(),
            stored_twice: stored
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(k, _)| *k)
                .collect(),
            unanswered: (1..=sent).filter(|k| !replies.contains_key(k)).collect(),
            duplicate_replies: replies.values().map(|n| n - 1).sum(),
            redials,
            peak_rss_kb,
        };
        outcome
    }
}

impl Outcome {
    /// The promises every fault must keep.
    fn check(&self, name: &str) {
        assert!(
            self.lost.is_empty(),
            "{name}: expected no MO lost; not stored: {:?}",
            self.lost
        );
        assert!(
            self.stored_twice.is_empty(),
            "{name}: expected no MO stored twice; stored twice: {:?}",
            self.stored_twice
        );
        assert!(
            self.unanswered.is_empty(),
            "{name}: expected every MO answered; unanswered: {:?}",
            self.unanswered
        );
        let bound = MAX_IN_FLIGHT * self.redials as usize;
        assert!(
            self.duplicate_replies <= bound,
            "{name}: expected at most {bound} repeated replies (max_in_flight {MAX_IN_FLIGHT} \
             per lost connection, {} lost), got {}",
            self.redials,
            self.duplicate_replies
        );
    }
}

fn report(name: &str, outcome: &Outcome, figures: &str) {
    eprintln!(
        "{TEST}: {name}: offered {} MOs, lost {}, stored twice {}, duplicate replies {}, \
         redials {}, peak RSS {} MiB; {figures}",
        outcome.offered,
        outcome.lost.len(),
        outcome.stored_twice.len(),
        outcome.duplicate_replies,
        outcome.redials,
        outcome.peak_rss_kb / 1024
    );
}

/// Waits until the one-shot fault has fired; how long that took.
async fn wait_fired(s: &Scenario) -> Duration {
    let started = Instant::now();
    while s.link.faults().armed() {
        if started.elapsed() > SHORT_WAIT {
            panic!("{}: the armed fault never met its frame", s.name);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

/// The connection is cut in the middle of a frame, once in each
/// direction: rapidbox sees the end of the stream inside a frame (or the
/// bearerbox does), redials, and the bearerbox redelivers what was not
/// acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_frame_loses_and_doubles_no_mo() {
    let Some(mut s) = Scenario::start("cut_mid_frame").await else {
        return;
    };
    s.stream(30).await;
    let mut recoveries = Vec::new();
    for way in [Way::BearerboxToBox, Way::BoxToBearerbox] {
        let connects = s.counter("link_connects").await;
        s.link.faults().inject(Fault::CutMidFrame(way));
        s.stream(10).await;
        wait_fired(&s).await;
        // From the cut: redialled, and every MO so far answered.
        let redial = s.wait_counter("link_connects", connects, SHORT_WAIT).await;
        s.stream(10).await;
        let answered = s.wait_answered().await;
        recoveries.push(format!(
            "cut {way}: redialled within {redial:?}, all answered {answered:?} after the last MO"
        ));
    }
    let outcome = s.finish().await;
    report("cut mid-frame", &outcome, &recoveries.join("; "));
    outcome.check("cut mid-frame");
    assert!(
        outcome.redials >= 2,
        "expected a redial per cut: {outcome:?}"
    );
}

/// Nothing moves either way for 30 s, on the old connection or any new
/// one. rapidbox gives up on a connection whose MTs get no answer within
/// `answer_timeout_secs`; once the stall ends, traffic flows again and
/// every MO is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_stall_loses_and_doubles_no_mo() {
    const STALL: Duration = Duration::from_secs(30);
    let Some(mut s) = Scenario::start("stall").await else {
        return;
    };
    s.stream(30).await;
    let started = Instant::now();
    s.link.faults().inject(Fault::Stall(STALL));
    // MOs keep coming during the stall: they wait at the bearerbox.
    while started.elapsed() < STALL - Duration::from_secs(2) {
        s.stream(1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(left) = STALL.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let recovery = s.wait_answered().await;
    let dead = s.counter("link_dead").await;
    s.stream(20).await;
    let outcome = s.finish().await;
    report(
        "stall 30 s",
        &outcome,
        &format!(
            "connections found dead {dead}; every MO sent during the stall answered {recovery:?} after it ended"
        ),
    );
    // (Recovery within RECOVERY_BOUND is checked by wait_answered.)
    outcome.check("stall 30 s");
}

/// The connection goes half-open: nothing arrives either way, and no FIN
/// or RST says so. rapidbox must find out by itself (MTs unanswered for
/// `answer_timeout_secs`, or silence for `idle_timeout_secs`) and redial;
/// the new connection carries traffic while the old one is still open at
/// the bearerbox, holding the MOs it had sent into it. When the old
/// connection finally closes (the fault is cleared), the bearerbox
/// redelivers those and every MO is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_link_is_found_dead_and_redialled() {
    let Some(mut s) = Scenario::start("half_open").await else {
        return;
    };
    s.stream(30).await;
    let connects = s.counter("link_connects").await;
    let started = Instant::now();
    s.link.faults().inject(Fault::HalfOpen);
    // Keep MOs coming until rapidbox has redialled.
    let bound = IDLE_TIMEOUT + ANSWER_TIMEOUT + Duration::from_secs(5);
    while s.counter("link_connects").await == connects {
        assert!(
            started.elapsed() < bound,
            "expected rapidbox to find the half-open link dead and redial within {bound:?}\n{}",
            s.rapidbox.log_tails()
        );
        s.stream(1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detected = started.elapsed();
    // The new connection carries MOs while the old one is still open.
    s.stream(20).await;
    s.link.faults().clear();
    let recovery = s.wait_answered().await;
    let dead = s.counter("link_dead").await;
    let outcome = s.finish().await;
    report(
        "half-open",
        &outcome,
        &format!(
            "found dead and redialled {detected:?} after the link went half-open \
             (found by unanswered MTs: {dead}); every MO answered {recovery:?} after the old \
             connection closed"
        ),
    );
    outcome.check("half-open");
}

/// Every byte crosses on its own, about a millisecond apart, both ways:
/// frames arrive in pieces of one byte. rapidbox must read them whole,
/// must not take the slow link for a dead one, and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_link_carries_every_mo_without_a_redial() {
    let Some(mut s) = Scenario::start("drip").await else {
        return;
    };
    s.stream(10).await;
    s.link
        .faults()
        .inject(Fault::Drip(Duration::from_millis(1)));
    let started = Instant::now();
    s.stream(20).await;
    let answered = s.wait_answered().await;
    let during = started.elapsed();
    let redials = s.counter("link_connects").await - 1;
    s.link.faults().clear();
    s.stream(20).await;
    let outcome = s.finish().await;
    report(
        "drip",
        &outcome,
        &format!(
            "20 MOs through the dripping link all answered {during:?} after the first was sent \
             ({answered:?} after the last); redials during the drip: {redials}"
        ),
    );
    outcome.check("drip");
    assert_eq!(redials, 0, "a slow link is not a dead one");
}

/// The length prefix of a frame from the bearerbox is corrupted, four
/// ways: 2 GiB, negative, one byte too long, one byte too short. Each
/// time rapidbox must name the bad frame (a typed error), drop the
/// connection and redial, never panic or allocate what the prefix claims;
/// the bearerbox redelivers what was not acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_length_prefix_drops_the_connection_and_loses_no_mo() {
    let Some(mut s) = Scenario::start("corrupt_length").await else {
        return;
    };
    s.stream(20).await;
    let mut figures = Vec::new();
    for how in [
        Corruption::Set(i32::MAX),
        Corruption::Set(-1),
        Corruption::Add(1),
        Corruption::Add(-1),
    ] {
        let connects = s.counter("link_connects").await;
        s.link
            .faults()
            .inject(Fault::CorruptLength(Way::BearerboxToBox, how));
        s.stream(5).await;
        wait_fired(&s).await;
        // Keep MOs coming: a prefix made longer waits for the next frame.
        let started = Instant::now();
        while s.counter("link_connects").await == connects {
            assert!(
                started.elapsed() < SHORT_WAIT,
                "expected rapidbox to drop and redial after a corrupted prefix ({how:?})\n{}",
                s.rapidbox.log_tails()
            );
            s.stream(1).await;
        }
        let redial = started.elapsed();
        let answered = s.wait_answered().await;
        figures.push(format!(
            "{how:?}: redialled {redial:?}, all answered {answered:?} later"
        ));
        s.rapidbox.assert_running("after a corrupted length prefix");
    }
    let bad_frames = s.counter("link_bad_frames").await;
    let dead = s.counter("link_dead").await;
    let outcome = s.finish().await;
    report(
        "corrupted length prefix",
        &outcome,
        &format!(
            "bad frames named {bad_frames}, links found dead {dead}; {}",
            figures.join("; ")
        ),
    );
    outcome.check("corrupted length prefix");
    // A prefix one byte too long still decodes (boxproto keeps trailing
    // bytes, for fields a later Kannel may add); the misaligned prefix
    // after it claims a frame that never completes, and the link is found
    // dead instead. The other three are named at once.
    assert!(
        bad_frames >= 3 && bad_frames + dead >= 4,
        "expected each corruption to end its connection, named as a bad frame or found dead; \
         bad frames {bad_frames}, dead {dead}"
    );
    assert!(
        outcome.peak_rss_kb < 200 * 1024,
        "expected no allocation of what a corrupted prefix claims; peak RSS {} KiB",
        outcome.peak_rss_kb
    );
}
