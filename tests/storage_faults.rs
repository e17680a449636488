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
//! answered, and `rapidbox verify` passes on the store.
//!
//! These tests need root (mounts) and skip without it, printing why,
//! except under `CI=true` (CI runs as root; `.ci/run` installs
//! python3-fusepy).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use rapidbox::model::{Direction, Message, Status};

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::FakeSmsc;
use support::faults::{self, FailingDisk, SmallDisk};
use support::ports::free_port;
use support::rapidbox::{self as rb, Rapidbox, RapidboxParams};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "storage_faults";

/// MOs offered, and how fast (fakesmsc's `-i`).
const MOS: u32 = 3_000;
const RATE: f64 = 200.0;

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

/// MOs rapidbox has acked `failed_tmp`, from its `/metrics`.
async fn failed_tmp_acks(http_port: u16) -> u64 {
    let metrics = support::http::get(http_port, "/metrics").await;
    metrics
        .body
        .lines()
        .find(|l| l.starts_with("rapidbox_link_mo_acks_total{ack=\"failed_tmp\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
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
    rapidbox.kill();
    fault.clear();
    let restarting = Instant::now();
    let mut rapidbox = Rapidbox::start("rapidbox-2", dir, &config);
    let restarted_in = wait_ready(http_port, &mut rapidbox, "the restart").await;
    let _ = restarting;

    // Everything offered comes through.
    let status = bearerbox
        .wait_settled(
            &format!("all {MOS} MOs received, acknowledged and answered"),
            Duration::from_secs(180),
            |s| s.sms_received == u64::from(MOS),
        )
        .await;
    let mts = phone
        .wait_for_mts(status.sms_sent as usize, SHORT_WAIT)
        .await;
    let elapsed = started.elapsed();
    rapidbox.stop().await;
    phone.daemon().stop();

    let store = rb::open_store(&params.store);
    let messages = rb::every_message(&store);
    store.close().await;
    let verified = rapidbox::store::verify(&params.store)
        .unwrap_or_else(|e| panic!("{test}: cannot verify the store: {e}"));

    let mut problems = Vec::new();
    let incoming = rb::of_direction(&messages, Direction::Incoming);
    let outgoing = rb::of_direction(&messages, Direction::Outgoing);
    let mut by_mo: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for mo in &incoming {
        *by_mo
            .entry((mo.connection.address.as_str(), mo.text.as_str()))
            .or_default() += 1;
        if mo.status != Status::Handled {
            problems.push(format!("MO {} ended {:?}", mo.id, mo.status));
        }
    }
    let lost = u64::from(MOS).saturating_sub(by_mo.len() as u64);
    let twice = by_mo.values().filter(|n| **n > 1).count();
    if lost > 0 || twice > 0 {
        problems.push(format!(
            "{lost} of {MOS} MOs not stored, {twice} stored more than once"
        ));
    }
    let mut replies: HashMap<u64, Vec<&Message>> = HashMap::new();
    for reply in &outgoing {
        if let Some(mo) = reply.in_response_to {
            replies.entry(mo).or_default().push(reply);
        }
        if !matches!(reply.status, Status::Sent | Status::Delivered) {
            problems.push(format!("reply {} ended {:?}", reply.id, reply.status));
        }
    }
    let unanswered = incoming
        .iter()
        .filter(|m| replies.get(&m.id).is_none_or(|r| r.len() != 1))
        .count();
    if unanswered > 0 {
        problems.push(format!("{unanswered} MOs without exactly one stored reply"));
    }
    let mut at_phone: HashMap<(&str, &str), usize> = HashMap::new();
    for mt in &mts {
        *at_phone
            .entry((mt.receiver.as_str(), mt.data.as_str()))
            .or_default() += 1;
    }
    let never = outgoing
        .iter()
        .filter(|r| !at_phone.contains_key(&(r.connection.address.as_str(), r.text.as_str())))
        .count();
    if never > 0 {
        problems.push(format!("{never} stored replies never reached the phone"));
    }
    let repeated = mts.len().saturating_sub(outgoing.len());
    if !verified.is_ok() {
        problems.push(format!(
            "the store does not verify: {:?}",
            verified.problems
        ));
    }
    eprintln!(
        "{test}: FIGURES {MOS} MOs offered at {RATE}/s | lost {lost}, stored twice {twice} | \
         fault 1 (cleared while running): first failed_tmp {shown_after:?} after it, {during1} \
         MOs acked failed_tmp by the time it was cleared ({tmp1} at first), ready again \
         {recovered_in:?} after it cleared | fault 2 (killed during it): {} more failed_tmp \
         ({tmp2} in all when killed), ready {restarted_in:?} after the restart | replies {}, \
         MTs at the phone {}, repeated {repeated} | peak RSS {} MiB | {elapsed:?} in all | \
         store verified: {} messages",
        tmp2 - before,
        outgoing.len(),
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
