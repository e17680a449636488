//! rapidbox stopped over and over under a stream of MOs through Debian's
//! real bearerbox 1.4.5 and Kannel's fakesmsc, with delivery reports on
//! and a `dlr-url` for every reply, to a recording HTTP server.
//!
//! - **Killed in a loop** (SIGKILL at random moments, started again after
//!   a random pause): no MO lost, none stored twice, every MO answered by
//!   one stored reply; a reply reaches the phone more than once only if
//!   it was not yet recorded as sent at a kill, and the repeats can be put
//!   down to the kills at which their replies were still open, at most
//!   `kannel.max_in_flight` per kill; every dlr-url callback (the
//!   SMSC's acceptance, 8, and the delivery, 1, of every reply) made at
//!   least once; the store verifies afterwards.
//! - **Stopped (SIGTERM) under full load**, the MOs offered as fast as
//!   fakesmsc writes them: each stop drains, and nothing is lost or
//!   repeated at all, not even a reply.
//!
//! fakesmsc makes each MO distinct (a random number after the sender and
//! in the text, `-z 5`); the bearerbox counts what it offered; the phone
//! (fakesmsc's log of MTs), the recording server and rapidbox's store,
//! read after rapidbox has stopped, say what came of it. Nothing asserted
//! comes from rapidbox's own account of itself.
//!
//! The short variants run with the suite. The long one (`#[ignore]`, run
//! by `bench/crashloop.sh`) takes its plan from the environment:
//! `CRASHLOOP_MOS` (100,000), `CRASHLOOP_KILLS` (20), `CRASHLOOP_RATE` (MOs
//! offered per second, 0 for as fast as fakesmsc goes; default 600),
//! `CRASHLOOP_SEED` (the kill moments; printed by every run).
//! `KANNEL_KEEP_TEST_DIR=1` keeps the logs.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rapidbox::model::{Direction, MessageId, Status};

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::FakeSmsc;
use support::judge::{self, first};
use support::ports::free_port;
use support::rapidbox::{self as rb, Rapidbox, RapidboxParams};
use support::service::{Answer, Service};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "crash_loop";

/// fakesmsc's MO: a random number goes after the sender and after the
/// last word, so every MO is `+256N 5555 msg M`.
const MO_TEMPLATE: &str = "+256 5555 text msg ";

/// The reply's text for an MO's text.
fn reply_text(mo: &str) -> String {
    format!("Re: {mo}")
}

/// The delivery reports each reply asks for (and so the dlr-url callbacks
/// owed for it): accepted by the SMSC (8) and delivered (1), both of
/// which Kannel's fake SMSC sends for every MT.
const DLR_EVENTS: [u32; 2] = [8, 1];
const DLR_MASK: u32 = 9;

/// Bound for what takes milliseconds when things work: a box connecting,
/// a status change.
const SHORT_WAIT: Duration = Duration::from_secs(20);

/// How long the recording server must hear no new callback before the
/// test stops waiting for the last ones (they are due at once; a retry of
/// a failed one comes after a second).
const CALLBACKS_QUIET: Duration = Duration::from_secs(5);

/// How rapidbox is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGKILL: a crash.
    Kill,
    /// SIGTERM: an operator's stop, which must drain.
    Term,
}

/// One run.
#[derive(Debug, Clone)]
struct Plan {
    name: &'static str,
    mos: u32,
    stops: u32,
    stop: Stop,
    /// MOs offered per second; 0: as fast as fakesmsc writes.
    rate: f64,
    max_in_flight: usize,
    /// How long each rapidbox runs before it is stopped, seconds: drawn
    /// evenly from this range.
    uptime: (f64, f64),
    /// How long rapidbox stays down, seconds, likewise.
    downtime: (f64, f64),
    seed: u64,
}

impl Plan {
    fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
        match std::env::var(key) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{key}={v:?} is not a valid value")),
            Err(_) => default,
        }
    }

    fn seed() -> u64 {
        Plan::env(
            "CRASHLOOP_SEED",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        )
    }
}

/// xorshift64*: the kill moments, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Evenly in `[lo, hi)`.
    fn between(&mut self, (lo, hi): (f64, f64)) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        lo + (hi - lo) * ((x >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// What one stop found and cost.
#[derive(Debug, Default)]
struct StopRecord {
    /// MOs the bearerbox had received when rapidbox was stopped.
    received: u64,
    /// Replies stored but not recorded as sent at the stop (Q, I or E):
    /// the only ones that may be sent again.
    open_replies: BTreeSet<MessageId>,
    /// From the stop until the bearerbox saw the box gone.
    stop_took: Duration,
    /// From starting the next rapidbox until the bearerbox listed it.
    recovery: Duration,
    /// Peak resident memory of the rapidbox that was stopped, KiB.
    peak_rss_kib: Option<u64>,
}

/// Percent-decoding of a query value (`+` is a space).
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(value as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `(phone, event)` of a dlr-url callback `/dlr?p=PHONE&d=EVENT`.
fn callback_of(target: &str) -> Option<(String, u32)> {
    let query = target.strip_prefix("/dlr?")?;
    let mut phone = None;
    let mut event = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("p", v)) => phone = Some(url_decode(v)),
            Some(("d", v)) => event = v.parse().ok(),
            _ => {}
        }
    }
    Some((phone?, event?))
}

/// Runs `plan` and checks everything; returns nothing, prints its figures.
async fn crash_loop(plan: Plan) {
    let test = format!("{TEST}::{}", plan.name);
    if !support::require_kannel(&test, &[BEARERBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(plan.name);
    let ports = BearerboxPorts::free();
    let mut bearerbox =
        Bearerbox::start(dir.path(), &conf::bearerbox(dir.path(), &ports), ports).await;
    let callbacks = Service::start(Answer::Text("ok")).await;
    let mut params = RapidboxParams::new(dir.path(), ports.smsbox);
    params.max_in_flight = Some(plan.max_in_flight);
    let http_port = free_port();
    params.http_port = Some(http_port);
    params.apps = vec!["sms_services".to_owned()];
    params.extra_toml = format!(
        "[smsbox]\nescape_style = \"rapidbox\"\n\n\
         [[sms_services]]\nkeyword = \"default\"\ncatch_all = true\n\
         text = \"{}\"\ndlr_url = \"{}\"\ndlr_mask = {DLR_MASK}\n",
        reply_text("%b"),
        callbacks.url("/dlr?p=%p&d=%d")
    );
    let config = params.write(dir.path(), "rapidbox.toml");
    let mut rng = Rng::new(plan.seed);
    eprintln!("{test}: {plan:?}");

    let started = Instant::now();
    let mut rapidbox = Rapidbox::start("rapidbox-1", dir.path(), &config);
    bearerbox.wait_for_box(None, SHORT_WAIT).await;
    let interval = if plan.rate > 0.0 {
        1.0 / plan.rate
    } else {
        0.0
    };
    let mut phone = FakeSmsc::spawn_randomized(
        "fakesmsc",
        dir.path(),
        ports.fake_smsc,
        MO_TEMPLATE,
        plan.mos,
        interval,
    );

    let mut stops: Vec<StopRecord> = Vec::new();
    for i in 1..=plan.stops {
        tokio::time::sleep(Duration::from_secs_f64(rng.between(plan.uptime))).await;
        let status = bearerbox.status().await;
        let box_queue: u64 = status.boxes.iter().map(|b| b.queued).sum();
        assert!(
            status.sms_received < u64::from(plan.mos) || status.sms_received_queued + box_queue > 0,
            "{test}: the stream ended (all {} MOs taken) before stop {i} of {}; offer them \
             slower (CRASHLOOP_RATE) or stop sooner",
            plan.mos,
            plan.stops
        );
        let mut record = StopRecord {
            received: status.sms_received,
            peak_rss_kib: rapidbox.daemon().peak_rss_kib(),
            ..StopRecord::default()
        };
        let stopping = Instant::now();
        match plan.stop {
            Stop::Kill => {
                rapidbox.kill();
            }
            Stop::Term => {
                rapidbox.stop().await;
            }
        }
        bearerbox
            .wait_status("the stopped rapidbox gone", SHORT_WAIT, |s| {
                s.boxes.is_empty()
            })
            .await;
        record.stop_took = stopping.elapsed();
        record.open_replies = open_replies_at_stop(&params.store, dir.path(), i).await;
        tokio::time::sleep(Duration::from_secs_f64(rng.between(plan.downtime))).await;
        let restarting = Instant::now();
        rapidbox = Rapidbox::start(&format!("rapidbox-{}", i + 1), dir.path(), &config);
        bearerbox.wait_for_box(None, SHORT_WAIT).await;
        record.recovery = restarting.elapsed();
        stops.push(record);
    }

    // Everything offered, taken and answered; every report in. The
    // bearerbox calm is not enough: under full load rapidbox may still
    // hold thousands of replies for its MT window (support::judge).
    let settle = Duration::from_secs(120 + u64::from(plan.mos) / 50);
    bearerbox
        .wait_settled(
            &format!("all {} MOs received and acknowledged", plan.mos),
            settle,
            |s| s.sms_received == u64::from(plan.mos),
        )
        .await;
    judge::wait_replies_sent(http_port, u64::from(plan.mos), settle, &test).await;
    let status = bearerbox
        .wait_settled("every reply passed on to the phone", settle, |s| {
            s.sms_received == u64::from(plan.mos)
        })
        .await;
    let mts = phone
        .wait_for_mts(status.sms_sent as usize, SHORT_WAIT)
        .await;
    let wanted_callbacks = plan.mos as usize * DLR_EVENTS.len();
    // Calls are made once the report is stored, a little after it: wait
    // until each (phone, event) has one, or nothing new has come for a
    // while (two MOs from the same random phone share their keys).
    let waiting = Instant::now();
    let mut last = (0, Instant::now());
    loop {
        let seen = callbacks.seen();
        let distinct: BTreeSet<(String, u32)> =
            seen.iter().filter_map(|s| callback_of(&s.target)).collect();
        if distinct.len() >= wanted_callbacks || waiting.elapsed() >= settle {
            break;
        }
        if seen.len() != last.0 {
            last = (seen.len(), Instant::now());
        } else if last.1.elapsed() >= CALLBACKS_QUIET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    let last_peak = rapidbox.daemon().peak_rss_kib();
    rapidbox.stop().await;
    phone.daemon().stop();
    let seen = callbacks.seen();

    // What the store holds.
    let store = rb::open_store(&params.store);
    let messages = rb::every_message(&store).await;
    let owed = store
        .owed_callbacks(10)
        .await
        .unwrap_or_else(|e| panic!("cannot read the owed callbacks: {e}"));
    store.close().await;
    let verified = rapidbox::store::verify(&params.store)
        .unwrap_or_else(|e| panic!("cannot verify the store: {e}"));

    let stored = judge::store(&messages, u64::from(plan.mos));
    let mut problems = stored.problems.clone();
    let (incoming, outgoing) = (&stored.incoming, &stored.outgoing);
    if status.sms_received != u64::from(plan.mos) {
        problems.push(format!(
            "the bearerbox received {} MOs, not the {} offered",
            status.sms_received, plan.mos
        ));
    }
    // Each reply is the service's answer to its own MO.
    let ids: HashMap<MessageId, _> = incoming.iter().map(|m| (m.id, *m)).collect();
    for reply in outgoing {
        let Some(mo) = reply.in_response_to.and_then(|id| ids.get(&id)) else {
            continue;
        };
        if reply.text != reply_text(&mo.text) || reply.connection.address != mo.connection.address {
            problems.push(format!(
                "reply {} to MO {}: {:?} to {}, expected {:?} to {}",
                reply.id,
                mo.id,
                reply.text,
                reply.connection.address,
                reply_text(&mo.text),
                mo.connection.address
            ));
        }
    }

    // The phone: every reply at least once; repeats only of replies open
    // at a stop, at most max_in_flight per stop.
    let phone_saw = judge::at_phone(outgoing, &mts);
    problems.extend(phone_saw.problems.iter().cloned());
    let allowed = match plan.stop {
        Stop::Kill => plan.max_in_flight,
        Stop::Term => 0,
    };
    // Each repeat must be put down to a stop at which its reply was still
    // open (stored, not yet recorded as sent), one repeat of a reply per
    // such stop, and no stop may carry more than `allowed`. The store
    // does not say which open replies were in flight at a stop (an MT
    // in flight stays Q until its answer is stored), so the test looks for
    // such an assignment: stop by stop, the repeats whose open stops end
    // soonest first, which finds one whenever one exists.
    // (reply, repeats still to place, the stops it was open at)
    let mut repeats: Vec<(MessageId, usize, Vec<usize>)> = Vec::new();
    for (reply, n) in &phone_saw.copies {
        if *n > 1 {
            let open_at: Vec<usize> = (0..stops.len())
                .filter(|i| stops[*i].open_replies.contains(reply))
                .collect();
            repeats.push((*reply, n - 1, open_at));
        }
    }
    repeats.sort();
    let mut per_stop = vec![0usize; stops.len()];
    for (stop, placed) in per_stop.iter_mut().enumerate() {
        let mut here: Vec<&mut (MessageId, usize, Vec<usize>)> = repeats
            .iter_mut()
            .filter(|(_, left, open_at)| *left > 0 && open_at.contains(&stop))
            .collect();
        here.sort_by_key(|(_, _, open_at)| open_at.last().copied());
        for (_, left, _) in here.into_iter().take(allowed) {
            *left -= 1;
            *placed += 1;
        }
    }
    let unplaced: Vec<(MessageId, usize, Vec<usize>)> = repeats
        .iter()
        .filter(|(_, left, _)| *left > 0)
        .cloned()
        .collect();
    let duplicates = phone_saw.repeated;
    if !unplaced.is_empty() {
        problems.push(format!(
            "{} replies were repeated more often than the stops at which they were still \
             open allow, with at most {allowed} repeats per stop ({:?}, max_in_flight {}); \
             some (reply, repeats left over, stops open at, from 0): {}",
            unplaced.len(),
            plan.stop,
            plan.max_in_flight,
            first(&unplaced, 8)
        ));
    }

    // Every callback at least once.
    let mut called: HashMap<(String, u32), usize> = HashMap::new();
    let mut odd_callbacks = 0;
    for s in &seen {
        match callback_of(&s.target) {
            Some(key) => *called.entry(key).or_default() += 1,
            None => odd_callbacks += 1,
        }
    }
    let mut replies_to: HashMap<&str, usize> = HashMap::new();
    for reply in outgoing {
        *replies_to
            .entry(reply.connection.address.as_str())
            .or_default() += 1;
    }
    let mut callbacks_missing = 0usize;
    for (phone, n) in &replies_to {
        for event in DLR_EVENTS {
            let made = called
                .get(&(phone.to_string(), event))
                .copied()
                .unwrap_or(0);
            callbacks_missing += n.saturating_sub(made);
        }
    }
    let callbacks_owed = wanted_callbacks;
    let callbacks_repeated = seen.len().saturating_sub(callbacks_owed);
    if callbacks_missing > 0 || odd_callbacks > 0 || !owed.is_empty() {
        problems.push(format!(
            "dlr-url callbacks: {callbacks_missing} never made, {odd_callbacks} not of the \
             expected shape, {} still owed in the store",
            owed.len()
        ));
    }
    if !verified.is_ok() {
        problems.push(format!(
            "the store does not verify: {:?}",
            verified.problems
        ));
    }

    // The figures, printed before the verdict so a failure shows them too.
    let recoveries: Vec<Duration> = stops.iter().map(|s| s.recovery).collect();
    let peak_kib = stops
        .iter()
        .filter_map(|s| s.peak_rss_kib)
        .chain(last_peak)
        .max()
        .unwrap_or(0);
    let max_recovery = recoveries.iter().max().copied().unwrap_or_default();
    let mean_recovery = if recoveries.is_empty() {
        Duration::ZERO
    } else {
        recoveries.iter().sum::<Duration>() / recoveries.len() as u32
    };
    let max_stop = stops.iter().map(|s| s.stop_took).max().unwrap_or_default();
    let open: Vec<usize> = stops.iter().map(|s| s.open_replies.len()).collect();
    let at: Vec<u64> = stops.iter().map(|s| s.received).collect();
    eprintln!(
        "{test}: FIGURES seed {} | {} MOs offered ({:?}, rate {}/s), {} {:?}s, \
         max_in_flight {} | lost {}, stored twice {} | replies {}, MTs at the phone {}, \
         duplicate replies {duplicates} (per stop {per_stop:?}, max {}) | dlr-url callbacks \
         owed {callbacks_owed}, made {}, missing {callbacks_missing}, repeated \
         {callbacks_repeated} | stop took at most {max_stop:?}; recovery (start to attached) \
         mean {mean_recovery:?}, max {max_recovery:?} | peak RSS {} MiB | {elapsed:?} in \
         all | MOs received at each stop {at:?}; replies open at each stop {open:?} | store \
         verified: {} messages",
        plan.seed,
        plan.mos,
        plan.stop,
        plan.rate,
        stops.len(),
        plan.stop,
        plan.max_in_flight,
        stored.lost,
        stored.twice(),
        outgoing.len(),
        mts.len(),
        per_stop.iter().max().copied().unwrap_or(0),
        seen.len(),
        peak_kib / 1024,
        verified.messages,
    );
    assert!(
        problems.is_empty(),
        "{test}: {} problems:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    bearerbox.stop(Duration::from_secs(30)).await;
}

/// The replies a stopped rapidbox left not yet recorded as sent: read
/// from a copy of its store, so that the next rapidbox starts on the file
/// exactly as the stop left it.
async fn open_replies_at_stop(
    store: &std::path::Path,
    dir: &std::path::Path,
    i: u32,
) -> BTreeSet<MessageId> {
    let copy = dir.join(format!("at-stop-{i}.redb"));
    rb::copy_store(store, &copy)
        .unwrap_or_else(|e| panic!("cannot copy the store after stop {i}: {e}"));
    let snapshot = rb::open_store(&copy);
    let mut open = BTreeSet::new();
    for status in [Status::Queued, Status::Dispatched, Status::Errored] {
        let mut after = None;
        loop {
            let page = snapshot
                .messages_by_status(status, None, after, rapidbox::store::MAX_SCAN)
                .await
                .unwrap_or_else(|e| panic!("cannot read the copy of the store: {e}"));
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            open.extend(
                page.iter()
                    .filter(|m| m.direction == Direction::Outgoing)
                    .map(|m| m.id),
            );
        }
    }
    snapshot.close().await;
    let _ = std::fs::remove_file(&copy);
    open
}

/// 3 SIGKILLs over 5,000 MOs offered at 500 a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_three_times_over_5000_mos_loses_nothing_and_repeats_only_in_flight_replies() {
    crash_loop(Plan {
        name: "killed_short",
        mos: 5_000,
        stops: 3,
        stop: Stop::Kill,
        rate: 500.0,
        max_in_flight: 32,
        uptime: (0.5, 2.0),
        downtime: (0.0, 1.0),
        seed: Plan::seed(),
    })
    .await;
}

/// 2 SIGTERMs while 8,000 MOs come as fast as fakesmsc writes them:
/// enough that rapidbox is thousands of replies behind at the end (the
/// size at which reading the phone too early once looked like lost
/// replies; see support::judge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_under_full_load_drains_without_loss_or_repeats() {
    crash_loop(Plan {
        name: "terminated_short",
        mos: 8_000,
        stops: 2,
        stop: Stop::Term,
        rate: 0.0,
        max_in_flight: 32,
        uptime: (0.5, 1.5),
        downtime: (0.0, 0.5),
        seed: Plan::seed(),
    })
    .await;
}

/// The long variant, run by `bench/crashloop.sh`: 20 SIGKILLs over
/// 100,000 MOs unless the environment says otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run by bench/crashloop.sh"]
async fn killed_in_a_loop_long() {
    let stop = match std::env::var("CRASHLOOP_STOP").as_deref() {
        Ok("term") => Stop::Term,
        _ => Stop::Kill,
    };
    crash_loop(Plan {
        name: "long",
        mos: Plan::env("CRASHLOOP_MOS", 100_000),
        stops: Plan::env("CRASHLOOP_KILLS", 20),
        stop,
        rate: Plan::env("CRASHLOOP_RATE", 600.0),
        max_in_flight: Plan::env("CRASHLOOP_MAX_IN_FLIGHT", 32),
        uptime: (
            Plan::env("CRASHLOOP_UPTIME_MIN", 1.0),
            Plan::env("CRASHLOOP_UPTIME_MAX", 4.0),
        ),
        downtime: (0.0, Plan::env("CRASHLOOP_DOWNTIME_MAX", 1.0)),
        seed: Plan::seed(),
    })
    .await;
}
