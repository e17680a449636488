//! SIGHUP reloads of the `rapidbox` binary attached to a real bearerbox
//! (Debian's Kannel 1.4.5) with fakesmsc as the SMSC, while MOs flow:
//!
//! - a good configuration changes the replies (the echo app's template)
//!   and the sendsms users at once, without the link reconnecting and
//!   without losing or doubling an MO;
//! - a configuration with errors is refused, its errors logged, and the
//!   running one keeps answering.
//!
//! Without Kannel these print that they are skipped (and fail under
//! `CI=true`).

mod support;

use std::time::{Duration, Instant};

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::{FakeMt, Phone};
use support::http::{sample, wait_for_sample};
use support::ports::free_port;
use support::rapidbox::{Rapidbox, RapidboxParams};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "kannel_reload";

/// MOs sent while the reload happens.
const MOS: usize = 60;

/// Between two MOs: the reload lands in the middle of the stream.
const MO_GAP: Duration = Duration::from_millis(25);

/// How long after the first MO the configuration is changed.
const RELOAD_AFTER: Duration = Duration::from_millis(500);

/// Bound for what takes milliseconds when things work.
const WAIT: Duration = Duration::from_secs(20);

const APPLIED: &str = "rapidbox_config_reloads_total{result=\"applied\"}";
const REFUSED: &str = "rapidbox_config_reloads_total{result=\"refused\"}";

/// A sendsms request by the user the reloaded configuration adds.
const SENDSMS: &str =
    "/cgi-bin/sendsms?username=ops&password=0ps&from=5555&to=2567700001&text=hello";

/// A bearerbox, rapidbox attached to it answering "v1: TEXT", and its
/// HTTP port.
struct Rig {
    dir: tempfile::TempDir,
    bearerbox: Bearerbox,
    rapidbox: Rapidbox,
    params: RapidboxParams,
    http_port: u16,
}

impl Rig {
    async fn start() -> Rig {
        let dir = support::test_dir(TEST);
        let ports = BearerboxPorts::free();
        let mut bearerbox =
            Bearerbox::start(dir.path(), &conf::bearerbox(dir.path(), &ports), ports).await;
        let http_port = free_port();
        let mut params = RapidboxParams::new(dir.path(), ports.smsbox);
        params.http_port = Some(http_port);
        params.template = "v1: %a".to_owned();
        let config = params.write(dir.path(), "rapidbox.toml");
        let rapidbox = Rapidbox::start("rapidbox", dir.path(), &config);
        bearerbox.wait_for_box(None, WAIT).await;
        wait_for_sample(http_port, "rapidbox_link_connected", 1.0, WAIT).await;
        Rig {
            dir,
            bearerbox,
            rapidbox,
            params,
            http_port,
        }
    }

    async fn scrape(&self) -> String {
        support::http::get(self.http_port, "/metrics").await.body
    }

    /// The link connected once and is connected: it never dropped.
    async fn assert_link_never_dropped(&mut self) {
        let scrape = self.scrape().await;
        assert_eq!(
            sample(&scrape, "rapidbox_link_connects_total"),
            Some(1.0),
            "rapidbox reconnected to the bearerbox\n{scrape}"
        );
        assert_eq!(sample(&scrape, "rapidbox_link_connected"), Some(1.0));
        let status = self.bearerbox.status().await;
        assert_eq!(status.boxes.len(), 1, "bearerbox's boxes: {}", status.text);
    }

    async fn stop(mut self) {
        self.rapidbox.stop().await;
        self.bearerbox.stop(Duration::from_secs(30)).await;
    }
}

/// The MO numbered `k`.
fn mo(k: usize) -> String {
    format!("+2567721{k:05} 5555 text msg {k}")
}

/// Each MO's replies, by MO number (from "vN: msg K").
fn replies_by_mo(mts: &[FakeMt]) -> Vec<Vec<String>> {
    let mut by_mo = vec![Vec::new(); MOS + 1];
    for mt in mts {
        let k: usize = mt
            .data
            .rsplit(' ')
            .next()
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| panic!("a reply to no MO of this test: {mt:?}"));
        by_mo[k].push(mt.data.clone());
    }
    by_mo
}

#[tokio::test]
async fn a_reload_while_mos_flow_changes_the_replies_without_dropping_the_link_or_an_mo() {
    if !support::require_kannel(TEST, &[BEARERBOX, FAKESMSC]) {
        return;
    }
    let mut rig = Rig::start().await;
    let refused = support::http::get(rig.http_port, SENDSMS).await;
    assert_ne!(refused.status, 202, "user ops exists before the reload");

    // The new configuration: another reply, a new sendsms user, and a
    // [kannel] change that only a restart applies.
    let mut new = rig.params.clone();
    new.template = "v2: %a".to_owned();
    new.dlr_mask = 31;
    new.extra_toml = "[[sendsms_users]]\nusername = \"ops\"\npassword = \"0ps\"\n".to_owned();

    let mut phone = Phone::start("fakesmsc", rig.dir.path(), rig.bearerbox.ports().fake_smsc);
    let sender = async {
        let mut sent_at = vec![Instant::now(); MOS + 1];
        for (k, at) in sent_at.iter_mut().enumerate().skip(1) {
            *at = Instant::now();
            if let Err(e) = phone.send(&mo(k)).await {
                panic!("expected fakesmsc to send MO {k}: {e}");
            }
            tokio::time::sleep(MO_GAP).await;
        }
        sent_at
    };
    let (dir, http_port) = (rig.dir.path().to_owned(), rig.http_port);
    let rapidbox = &mut rig.rapidbox;
    let reloader = async {
        tokio::time::sleep(RELOAD_AFTER).await;
        new.write(&dir, "rapidbox.toml");
        rapidbox.daemon().signal(libc::SIGHUP);
        wait_for_sample(http_port, APPLIED, 1.0, WAIT).await;
        Instant::now()
    };
    let (sent_at, reloaded_at) = tokio::join!(sender, reloader);

    let mts = phone.wait_for_mts(MOS, WAIT).await;
    let by_mo = replies_by_mo(&mts);
    let (mut old, mut fresh) = (0, 0);
    for k in 1..=MOS {
        let [reply] = by_mo[k].as_slice() else {
            panic!("MO {k}: expected one reply, got {:?}", by_mo[k]);
        };
        if reply.starts_with("v1: ") {
            old += 1;
            assert!(
                sent_at[k] < reloaded_at,
                "MO {k}, sent after the reload was applied, got the old reply {reply:?}"
            );
        } else {
            assert!(reply.starts_with("v2: "), "MO {k}: {reply:?}");
            fresh += 1;
        }
    }
    assert!(
        old > 0 && fresh > 0,
        "the reload did not land while MOs flowed: {old} old replies, {fresh} new"
    );

    rig.assert_link_never_dropped().await;
    let scrape = rig.scrape().await;
    assert_eq!(
        sample(
            &scrape,
            "rapidbox_mo_total{transport=\"kannel\",result=\"stored\"}"
        ),
        Some(MOS as f64),
        "{scrape}"
    );
    assert_eq!(sample(&scrape, "rapidbox_config_generation"), Some(1.0));
    let status = rig
        .bearerbox
        .wait_settled("every MO acknowledged", WAIT, |_| true)
        .await;
    assert_eq!(status.sms_received, MOS as u64, "{}", status.text);

    let accepted = support::http::get(rig.http_port, SENDSMS).await;
    assert_eq!(
        accepted.status, 202,
        "the reloaded sendsms user: {}",
        accepted.body
    );
    let log = std::fs::read_to_string(rig.rapidbox.console_path()).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("only after a restart") && l.contains("kannel")),
        "no warning naming [kannel] as needing a restart in the log:\n{log}"
    );

    phone.stop();
    rig.stop().await;
}

#[tokio::test]
async fn a_configuration_with_errors_is_refused_and_the_running_one_keeps_answering() {
    if !support::require_kannel(TEST, &[BEARERBOX, FAKESMSC]) {
        return;
    }
    let mut rig = Rig::start().await;
    let mut phone = Phone::start("fakesmsc", rig.dir.path(), rig.bearerbox.ports().fake_smsc);
    for k in 1..=3 {
        phone.send(&mo(k)).await.expect("MO sent");
    }
    phone.wait_for_mts(3, WAIT).await;

    // A new reply, but a key misspelled: the whole file is refused.
    let mut bad = rig.params.clone();
    bad.template = "v2: %a".to_owned();
    bad.extra_toml = "[[sendsms_users]]\nusername = \"ops\"\npasword = \"0ps\"\n".to_owned();
    bad.write(rig.dir.path(), "rapidbox.toml");
    rig.rapidbox.daemon().signal(libc::SIGHUP);
    wait_for_sample(rig.http_port, REFUSED, 1.0, WAIT).await;

    for k in 4..=6 {
        phone.send(&mo(k)).await.expect("MO sent");
    }
    let mts = phone.wait_for_mts(6, WAIT).await;
    let by_mo = replies_by_mo(&mts);
    for (k, replies) in by_mo.iter().enumerate().take(7).skip(1) {
        assert_eq!(replies, &[format!("v1: msg {k}")], "MO {k}");
    }
    let scrape = rig.scrape().await;
    assert_eq!(sample(&scrape, APPLIED), Some(0.0), "{scrape}");
    assert_eq!(sample(&scrape, "rapidbox_config_generation"), Some(0.0));
    rig.assert_link_never_dropped().await;
    let sendsms = support::http::get(rig.http_port, SENDSMS).await;
    assert_ne!(sendsms.status, 202, "a user of the refused file can send");

    let log = std::fs::read_to_string(rig.rapidbox.console_path()).unwrap_or_default();
    assert!(
        log.contains("sendsms_users[0].pasword") && log.contains("configuration refused"),
        "the refused file's error is not in the log:\n{log}"
    );

    phone.stop();
    rig.stop().await;
}
