//! `/metrics` of the `rapidbox` binary attached to a real bearerbox
//! (Debian's Kannel 1.4.5) with fakesmsc as the SMSC: the link's state
//! and the MO and MT counters move with real traffic, and `/ready` is 200
//! once the link is up.
//!
//! Without Kannel this prints that it is skipped (and fails under
//! `CI=true`).

mod support;

use std::time::Duration;

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::Phone;
use support::http::sample;
use support::ports::free_port;
use support::rapidbox::{Rapidbox, RapidboxParams};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "kannel_metrics";

/// MOs the phone sends; each is answered by the echo app.
const MOS: u32 = 5;

/// Bound for what takes milliseconds when things work.
const WAIT: Duration = Duration::from_secs(15);

/// Scrapes until `series` reaches at least `want`, within [`WAIT`];
/// returns the last scrape.
async fn wait_for(port: u16, series: &str, want: f64) -> String {
    support::http::wait_for_sample(port, series, want, WAIT).await
}

#[tokio::test]
async fn link_and_message_counters_move_with_bearerbox_traffic() {
    if !support::require_kannel(TEST, &[BEARERBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let ports = BearerboxPorts::free();
    let mut bearerbox =
        Bearerbox::start(dir.path(), &conf::bearerbox(dir.path(), &ports), ports).await;
    let http_port = free_port();
    let mut params = RapidboxParams::new(dir.path(), ports.smsbox);
    params.http_port = Some(http_port);
    let config = params.write(dir.path(), "rapidbox.toml");
    let mut rapidbox = Rapidbox::start("rapidbox", dir.path(), &config);
    bearerbox.wait_for_box(None, WAIT).await;

    let scrape = wait_for(http_port, "rapidbox_link_connected", 1.0).await;
    assert!(sample(&scrape, "rapidbox_link_connects_total").is_some_and(|v| v >= 1.0));
    let ready = support::http::get(http_port, "/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    let mut phone = Phone::start("fakesmsc", dir.path(), ports.fake_smsc);
    for k in 1..=MOS {
        if let Err(e) = phone
            .send(&format!("+2567721{k:05} 5555 text msg {k}"))
            .await
        {
            panic!("expected fakesmsc to send MO {k}: {e}");
        }
    }
    let mts = phone.wait_for_mts(MOS as usize, WAIT).await;
    assert_eq!(mts.len(), MOS as usize, "replies at the phone: {mts:?}");

    let want = f64::from(MOS);
    wait_for(
        http_port,
        "rapidbox_mt_outcomes_total{transport=\"kannel\",kind=\"reply\",outcome=\"accepted\"}",
        want,
    )
    .await;
    let scrape = wait_for(
        http_port,
        "rapidbox_link_mo_acks_total{ack=\"success\"}",
        want,
    )
    .await;
    assert_eq!(
        sample(
            &scrape,
            "rapidbox_mo_total{transport=\"kannel\",result=\"stored\"}"
        ),
        Some(want),
        "{scrape}"
    );
    assert!(
        sample(&scrape, "rapidbox_link_received_total").is_some_and(|v| v >= want),
        "{scrape}"
    );
    assert!(
        sample(&scrape, "rapidbox_link_mt_answered_total").is_some_and(|v| v >= want),
        "{scrape}"
    );
    assert_eq!(
        sample(&scrape, "rapidbox_link_mo_acks_total{ack=\"failed\"}"),
        Some(0.0)
    );

    phone.stop();
    rapidbox.stop().await;
    bearerbox.stop(Duration::from_secs(30)).await;
}
