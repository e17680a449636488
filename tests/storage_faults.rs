//! rapidbox's store on a disk that fails under a stream of MOs through
//! Debian's real bearerbox 1.4.5 and Kannel's fakesmsc:
//!
//! - **full**: the store on a small ext4 file system (a loop device) that
//!   another program fills to the last block mid-stream;
//! - **failing**: the store behind a FUSE layer whose writes and syncs
//!   return EIO (the kernel here has no device-mapper, so no `error` or
//!   `flakey` target; see `support::faults`).
//!
//! Each fault comes twice. The first time it is cleared while rapidbox
//! runs: MOs are acked `failed_tmp` meanwhile (the bearerbox keeps them),
//! and rapidbox takes messages again by itself (`/ready` answers 200)
//! without a restart. The second time rapidbox is killed (SIGKILL) while
//! the disk still fails, and started once it works: had rapidbox acked an
//! MO that was not durable, the bearerbox would have forgotten it and it
//! would be missing now. At the end every MO offered is stored once and
//! answered, and `rapidbox verify` passes on the store (judged by
//! `support::judge`).
//!
//! Replies: while the store fails, the bearerbox's answers to MTs cannot
//! be recorded, and an MT whose answer is not recorded is sent again.
//! rapidbox holds its MTs back from the first such failure until the
//! answers are stored, so a fault cleared while rapidbox runs repeats no
//! reply, and one that ends in a kill repeats at most the MTs in flight
//! (`kannel.max_in_flight`, [`WINDOW`] here), counted at the phone.
//!
//! These tests need root (mounts) and skip without it, printing why,
//! except under `CI=true` (CI runs as root; `.ci/run` installs
//! python3-fusepy).

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::{FakeMt, FakeSmsc};
use support::faults::{self, FailingDisk, SmallDisk};
use support::judge;
use support::ports::free_port;
use support::rapidbox::{self as rb, Rapidbox, RapidboxParams};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "storage_faults";

/// MOs offered, and how fast (fakesmsc's `-i`).
const MOS: u32 = 3_000;
const RATE: f64 = 200.0;

/// `kannel.max_in_flight`: the most replies a fault that ends in a kill
/// may repeat.
const WINDOW: usize = 32;

/// fakesmsc's MO: random numbers after the sender and the last word.
const MO_TEMPLATE: &str = "+256 5555 text msg ";

const SHORT_WAIT: Duration = Duration::from_secs(20);

/// How long a fault may take to show as an MO acked `failed_tmp`. A full
/// disk shows once redb needs a block it has not got, which can take a
/// few hundred MOs.
const FAULT_SHOWS_WITHIN: Duration = Duration::from_secs(60);

/// How long the fault stays once it has shown.
const FAULT_HOLD: Duration = Duration::from_secs(3);

/// How rapidbox is made to see the fault, and to stop seeing it.
trait Fault {
    fn inject(&self);
    fn clear(&self);
}

impl Fault for SmallDisk {
    fn inject(&self) {
        self.fill();
    }
    fn clear(&self) {
        self.free();
    }
}

impl Fault for FailingDisk {
    fn inject(&self) {
        self.fail(true);
    }
    fn clear(&self) {
        self.fail(false);
    }
}

/// MTs at the phone beyond one per distinct (receiver, text): the replies
/// repeated so far.
fn repeats(mts: &[FakeMt]) -> usize {
    let distinct: HashSet<(&str, &str)> = mts
        .iter()
        .map(|mt| (mt.receiver.as_str(), mt.data.as_str()))
        .collect();
    mts.len() - distinct.len()
}

/// MOs rapidbox has acked `failed_tmp`, from its `/metrics`.
async fn failed_tmp_acks(http_port: u16) -> u64 {
    let metrics = support::http::get(http_port, "/metrics").await;
    support::http::sample(
        &metrics.body,
        "rapidbox_link_mo_acks_total{ack=\"failed_tmp\"}",
    )
    .map_or(0, |v| v as u64)
}

/// Waits until `/ready` answers 200 (store writable, link up); returns how
/// long that took.
async fn wait_ready(http_port: u16, rapidbox: &mut Rapidbox, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        rapidbox.assert_running(what);
        if support::http::try_get(http_port, "/ready")
            .await
            .is_some_and(|r| r.status == 200)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "rapidbox not ready 60 s after {what}\n{}",
            rapidbox.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until rapidbox has acked at least `more_than` + 1 MOs
/// `failed_tmp`; returns the count.
async fn wait_failed_tmp(http_port: u16, more_than: u64, rapidbox: &Rapidbox, what: &str) -> u64 {
    let started = Instant::now();
    loop {
        let n = failed_tmp_acks(http_port).await;
        if n > more_than {
            return n;
        }
        assert!(
            started.elapsed() < FAULT_SHOWS_WITHIN,
            "{what}: no MO acked failed_tmp within {FAULT_SHOWS_WITHIN:?} of the fault, so it \
             did not reach the store\n{}",
            rapidbox.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stream, both faults, the checks; prints the figures.
async fn stream_through(test: &str, dir: &Path, store_dir: &Path, fault: &dyn Fault) {
    let ports = BearerboxPorts::free();
    let mut bearerbox = Bearerbox::start(dir, &conf::bearerbox(dir, &ports), ports).await;
    let http_port = free_port();
    let mut params = RapidboxParams::new(dir, ports.smsbox);
    params.store = store_dir.join("rapidbox.redb");
    params.http_port = Some(http_port);
    params.template = "Re: %b".to_owned();
    params.max_in_flight = Some(WINDOW);
    let config = params.write(dir, "rapidbox.toml");
    let started = Instant::now();
    let mut rapidbox = Rapidbox::start("rapidbox-1", dir, &config);
    bearerbox.wait_for_box(None, SHORT_WAIT).await;
    let mut phone = FakeSmsc::spawn_randomized(
        "fakesmsc",
        dir,
        ports.fake_smsc,
        MO_TEMPLATE,
        MOS,
        1.0 / RATE,
    );

    // 1. The fault comes and goes while rapidbox runs.
    bearerbox
        .wait_status("a quarter of the MOs received", SHORT_WAIT, |s| {
            s.sms_received >= u64::from(MOS / 4)
        })
        .await;
    fault.inject();
    let injected = Instant::now();
    let tmp1 = wait_failed_tmp(http_port, 0, &rapidbox, "first fault").await;
    let shown_after = injected.elapsed();
    tokio::time::sleep(FAULT_HOLD).await;
    let during1 = failed_tmp_acks(http_port).await;
    // Whether MTs are held now: only if an answer failed to commit, which
    // needs an MT out when the fault came, so it is shown, not asserted.
    let scrape = support::http::get(http_port, "/metrics").await;
    let held1 = support::http::sample(&scrape.body, "rapidbox_link_mt_held") == Some(1.0);
    fault.clear();
    let recovered_in = wait_ready(http_port, &mut rapidbox, "the first fault cleared").await;

    // 2. The fault comes again, and rapidbox is killed before it goes.
    bearerbox
        .wait_status("half of the MOs received", SHORT_WAIT, |s| {
            s.sms_received >= u64::from(MOS / 2)
        })
        .await;
    fault.inject();
    let before = failed_tmp_acks(http_port).await;
    let tmp2 = wait_failed_tmp(http_port, before, &rapidbox, "second fault").await;
    tokio::time::sleep(FAULT_HOLD).await;
    let peak_kib = rapidbox.daemon().peak_rss_kib();
    // What the first fault repeated: the MTs of a rapidbox that never
    // stopped have all reached the phone by now (fakesmsc logs them
    // within milliseconds; the second fault stops new ones).
    let repeated1 = repeats(&phone.mts());
    rapidbox.kill();
    fault.clear();
    let restarting = Instant::now();
    let mut rapidbox = Rapidbox::start("rapidbox-2", dir, &config);
    let restarted_in = wait_ready(http_port, &mut rapidbox, "the restart").await;
    let _ = restarting;

    // Everything offered comes through: the MOs, then every reply through
    // the bearerbox to the phone (support::judge).
    let settle = Duration::from_secs(180);
    bearerbox
        .wait_settled(
            &format!("all {MOS} MOs received and acknowledged"),
            settle,
            |s| s.sms_received == u64::from(MOS),
        )
        .await;
    judge::wait_replies_sent(http_port, u64::from(MOS), settle, test).await;
    let status = bearerbox
        .wait_settled("every reply passed on to the phone", settle, |s| {
            s.sms_received == u64::from(MOS)
        })
        .await;
    let mts = phone
        .wait_for_mts(status.sms_sent as usize, SHORT_WAIT)
        .await;
    let elapsed = started.elapsed();
    rapidbox.stop().await;
    phone.daemon().stop();

    let store = rb::open_store(&params.store);
    let messages = rb::every_message(&store).await;
    store.close().await;
    let verified = rapidbox::store::verify(&params.store)
        .unwrap_or_else(|e| panic!("{test}: cannot verify the store: {e}"));

    let stored = judge::store(&messages, u64::from(MOS));
    let phone_saw = judge::at_phone(&stored.outgoing, &mts);
    let mut problems = stored.problems.clone();
    problems.extend(phone_saw.problems.iter().cloned());
    let repeated = phone_saw.repeated;
    let repeated2 = repeated.saturating_sub(repeated1);
    if repeated1 > 0 {
        problems.push(format!(
            "the fault cleared while rapidbox ran repeated {repeated1} replies; MTs are held \
             while the store cannot record their answers, so it must repeat none"
        ));
    }
    if repeated2 > WINDOW {
        problems.push(format!(
            "the fault that ended in a kill repeated {repeated2} replies, more than the \
             {WINDOW} MTs that can be in flight"
        ));
    }
    if !verified.is_ok() {
        problems.push(format!(
            "the store does not verify: {:?}",
            verified.problems
        ));
    }
    eprintln!(
        "{test}: FIGURES {MOS} MOs offered at {RATE}/s | lost {}, stored twice {} | \
         fault 1 (cleared while running): first failed_tmp {shown_after:?} after it, {during1} \
         MOs acked failed_tmp by the time it was cleared ({tmp1} at first), ready again \
         {recovered_in:?} after it cleared, MTs held then: {held1}, replies repeated {repeated1} | fault 2 (killed \
         during it): {} more failed_tmp ({tmp2} in all when killed), ready {restarted_in:?} \
         after the restart, replies repeated {repeated2} (bound {WINDOW}) | replies {}, MTs \
         at the phone {}, repeated {repeated} | peak RSS {} MiB | {elapsed:?} in all | store \
         verified: {} messages",
        stored.lost,
        stored.twice(),
        tmp2 - before,
        stored.outgoing.len(),
        mts.len(),
        peak_kib.unwrap_or(0) / 1024,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_up_mid_stream_loses_nothing_and_acks_nothing_undurable() {
    let test = format!("{TEST}::full_disk");
    if !support::require_kannel(&test, &[BEARERBOX, FAKESMSC]) || !faults::require_root(&test) {
        return;
    }
    let dir = support::test_dir("full_disk");
    let disk = match SmallDisk::mount(dir.path(), 48) {
        Ok(disk) => disk,
        Err(e) => {
            faults::skip_or_fail(
                &test,
                &format!("cannot mount a small ext4 file system: {e}"),
            );
            return;
        }
    };
    stream_through(&test, dir.path(), disk.path(), &disk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_returns_io_errors_mid_stream_loses_nothing_and_acks_nothing_undurable() {
    let test = format!("{TEST}::io_errors");
    if !support::require_kannel(&test, &[BEARERBOX, FAKESMSC]) || !faults::require_root(&test) {
        return;
    }
    let dir = support::test_dir("io_errors");
    let disk = match FailingDisk::mount(dir.path()).await {
        Ok(disk) => disk,
        Err(e) => {
            faults::skip_or_fail(&test, &format!("cannot mount the FUSE fault layer: {e}"));
            return;
        }
    };
    stream_through(&test, dir.path(), disk.path(), &disk).await;
}
