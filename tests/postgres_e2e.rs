//! rapidbox on the PostgreSQL store, end to end: Debian's real bearerbox
//! 1.4.5, Kannel's fakesmsc as the phone, the `rapidbox` binary with
//! `[store] backend = "postgres"`, and a real PostgreSQL of the test's own
//! (`support::postgres`).
//!
//! rapidbox answers a stream of numbered MOs, is killed (SIGKILL) in the
//! middle of it, MOs keep coming while it is down, and a second rapidbox
//! starts on the same database; that one is then stopped gracefully and a
//! third answers a last few MOs. Every MO must be stored once and answered
//! by exactly one stored reply; a reply reaches the phone twice only if
//! the store did not yet hold it as sent at the kill, and at most
//! `max_in_flight` do; nothing is sent again after the graceful restart.
//! What is asserted comes from the phone, the bearerbox's counters and the
//! database, never from rapidbox's account of itself.
//!
//! Without Kannel or PostgreSQL the test prints that it is skipped (and
//! fails under `CI=true`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rapidbox::model::{Direction, Message, MoKey, Status};
use rapidbox::store::pg::{PgOptions, PgStore};

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::{FakeMt, Phone};
use support::postgres::{self, PgServer};
use support::rapidbox::{Rapidbox, RapidboxParams};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "postgres_e2e";
const SHORTCODE: &str = "5555";
const VOLUME: u32 = 200;
const KILL_AFTER: u32 = 100;
const RESTART_AFTER: u32 = 150;
/// MOs answered after the graceful restart.
const LAST: u32 = 10;
const MAX_IN_FLIGHT: usize = 32;
const SHORT_WAIT: Duration = Duration::from_secs(10);
const REPLIES_WAIT: Duration = Duration::from_secs(60);
/// fakesmsc reads what the bearerbox sends it at least once a second.
const FAKESMSC_READ_PERIOD: Duration = Duration::from_millis(1100);

fn sender(k: u32) -> String {
    format!("+2567721{k:05}")
}

fn mo_line(k: u32) -> String {
    format!("{} {SHORTCODE} text msg {k}", sender(k))
}

fn reply_text(k: u32) -> String {
    format!("You said: msg {k}")
}

/// The MO number a reply's text answers.
fn answered(text: &str) -> Option<u32> {
    text.strip_prefix("You said: msg ")?.parse().ok()
}

async fn send_mos(phone: &mut Phone, numbers: std::ops::RangeInclusive<u32>) {
    for k in numbers {
        if let Err(e) = phone.send(&mo_line(k)).await {
            panic!("expected fakesmsc to send MO {k}: {e}");
        }
    }
}

/// Replies received by the phone, by the MO number they answer.
fn replies_by_number(mts: &[FakeMt]) -> BTreeMap<u32, usize> {
    let mut by_number = BTreeMap::new();
    for mt in mts {
        let k = answered(&mt.data).unwrap_or_else(|| panic!("an MT that answers no MO: {mt:?}"));
        assert_eq!(mt.receiver, sender(k), "the reply to MO {k} went elsewhere");
        *by_number.entry(k).or_insert(0) += 1;
    }
    by_number
}

async fn wait_for_replies(phone: &Phone, n: u32, rapidbox: &Rapidbox) -> Vec<FakeMt> {
    let started = Instant::now();
    loop {
        let mts = phone.mts();
        let by_number = replies_by_number(&mts);
        let missing: Vec<u32> = (1..=n).filter(|k| !by_number.contains_key(k)).collect();
        if missing.is_empty() {
            return mts;
        }
        assert!(
            started.elapsed() < REPLIES_WAIT,
            "expected a reply to each of MOs 1..={n}; none to {missing:?}\n{}",
            rapidbox.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message in the database, oldest first.
async fn all_messages(store: &PgStore) -> Vec<Message> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = store.recent_messages(before, 1000).await.unwrap();
        let Some(last) = page.last() else {
            all.reverse();
            return all;
        };
        before = Some(last.id);
        all.extend(page);
    }
}

/// Checks the database against MOs 1..=n: each stored once (its Kannel
/// UUID once, found again by it), answered by exactly one stored reply,
/// sent or delivered, and nothing else.
async fn check_store(store: &PgStore, n: u32) {
    let messages = all_messages(store).await;
    let mut mos: BTreeMap<u32, Vec<&Message>> = BTreeMap::new();
    let mut uuids = BTreeSet::new();
    for m in messages
        .iter()
        .filter(|m| m.direction == Direction::Incoming)
    {
        let k: u32 = m
            .text
            .strip_prefix("msg ")
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| panic!("an MO that was not sent: {m:?}"));
        mos.entry(k).or_default().push(m);
        let key = MoKey::of(m).expect("every MO from the bearerbox has a Kannel UUID");
        assert!(uuids.insert(key.uuid), "Kannel UUID of MO {k} stored twice");
        assert_eq!(store.message_id_by_mo(&key).await.unwrap(), Some(m.id));
    }
    let twice: Vec<u32> = mos
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| *k)
        .collect();
    assert!(twice.is_empty(), "MOs stored more than once: {twice:?}");
    let missing: Vec<u32> = (1..=n).filter(|k| !mos.contains_key(k)).collect();
    assert!(missing.is_empty(), "MOs never stored: {missing:?}");
    let mut replies: BTreeMap<u64, Vec<&Message>> = BTreeMap::new();
    for m in messages
        .iter()
        .filter(|m| m.direction == Direction::Outgoing)
    {
        let to = m.in_response_to.expect("every MT answers an MO");
        replies.entry(to).or_default().push(m);
    }
    for (k, mo) in &mos {
        let mo = mo[0];
        assert_eq!(mo.status, Status::Handled, "MO {k}");
        let answers = replies.get(&mo.id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            answers.len(),
            1,
            "MO {k} has {} stored replies",
            answers.len()
        );
        assert_eq!(answers[0].text, reply_text(*k));
        assert!(
            matches!(answers[0].status, Status::Sent | Status::Delivered),
            "the reply to MO {k} is {:?}",
            answers[0].status
        );
    }
    assert_eq!(
        replies.len(),
        mos.len(),
        "replies to messages that are not MOs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapidbox_on_postgres_killed_and_restarted_loses_and_repeats_nothing_but_in_flight() {
    if !support::require_kannel(TEST, &[BEARERBOX, FAKESMSC]) || !postgres::require_postgres(TEST) {
        return;
    }
    let (pg, db) = tokio::task::spawn_blocking(|| {
        let pg = PgServer::start();
        let db = pg.create_database();
        (pg, db)
    })
    .await
    .unwrap();
    let url = pg.url(&db);
    let dir = support::test_dir(TEST);
    let ports = BearerboxPorts::free();
    let bb_conf = conf::bearerbox(dir.path(), &ports);
    let mut bearerbox = Bearerbox::start(dir.path(), &bb_conf, ports).await;
    let mut params = RapidboxParams::new(dir.path(), ports.smsbox);
    params.template = "You said: %a".to_owned();
    params.max_in_flight = Some(MAX_IN_FLIGHT);
    // The parts rather than a URL: the socket directory as the host.
    params.store_toml = format!(
        "backend = \"postgres\"\n\n[store.postgres]\nhost = {}\nport = {}\n\
         user = \"{}\"\ndbname = \"{db}\"\n",
        toml::Value::String(pg.socket_dir().display().to_string()),
        pg.port(),
        postgres::USER,
    );
    let config = params.write(dir.path(), "rapidbox.toml");
    let start = |name: &str| Rapidbox::start(name, dir.path(), &config);

    let mut first = start("rapidbox-1");
    bearerbox.wait_for_box(None, SHORT_WAIT).await;
    let mut phone = Phone::start("fakesmsc", dir.path(), ports.fake_smsc);
    send_mos(&mut phone, 1..=KILL_AFTER).await;
    first.kill();

    // What the database held at the kill, read while rapidbox is down.
    let store = PgStore::open(PgOptions::new(url.clone())).await.unwrap();
    let at_kill = all_messages(&store).await;
    store.close().await;
    let unsent_at_kill: BTreeSet<u32> = at_kill
        .iter()
        .filter(|m| m.direction == Direction::Outgoing)
        .filter(|m| !matches!(m.status, Status::Sent | Status::Delivered | Status::Failed))
        .filter_map(|m| answered(&m.text))
        .collect();
    let mos_at_kill = at_kill
        .iter()
        .filter(|m| m.direction == Direction::Incoming)
        .count();

    send_mos(&mut phone, KILL_AFTER + 1..=RESTART_AFTER).await;
    let mut second = start("rapidbox-2");
    bearerbox.wait_for_box(None, SHORT_WAIT).await;
    send_mos(&mut phone, RESTART_AFTER + 1..=VOLUME).await;
    wait_for_replies(&phone, VOLUME, &second).await;
    let status = bearerbox
        .wait_settled("every MO answered after the kill", SHORT_WAIT, |s| {
            s.sms_received == u64::from(VOLUME)
        })
        .await;
    // A repeated MT could still be on its way; give fakesmsc a read.
    tokio::time::sleep(FAKESMSC_READ_PERIOD).await;
    let mts = phone.mts();
    assert!(mts.len() as u64 >= status.sms_sent);
    let by_number = replies_by_number(&mts);
    let repeated: Vec<(u32, usize)> = by_number
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (*k, *n))
        .collect();
    let extra: usize = repeated.iter().map(|(_, n)| n - 1).sum();
    eprintln!(
        "{TEST}: at the kill the database held {mos_at_kill} MOs and {} replies not yet sent; \
         {extra} replies repeated: {repeated:?}",
        unsent_at_kill.len()
    );
    assert!(
        mos_at_kill < KILL_AFTER as usize || !unsent_at_kill.is_empty(),
        "expected rapidbox to be killed with work in hand (MOs not yet stored, or replies not \
         yet recorded as sent); it had none, so this run did not kill it mid-stream"
    );
    let resent_though_sent: Vec<u32> = repeated
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !unsent_at_kill.contains(k))
        .collect();
    assert!(
        resent_though_sent.is_empty(),
        "replies sent again though the database held them as sent at the kill: \
         {resent_though_sent:?}"
    );
    assert!(extra <= MAX_IN_FLIGHT, "{extra} repeats: {repeated:?}");

    // A graceful restart sends nothing again and answers what comes next.
    let stopped = second.stop().await;
    assert!(stopped.success(), "rapidbox-2 stopped with {stopped}");
    let before_restart = phone.mts().len();
    let mut third = start("rapidbox-3");
    bearerbox.wait_for_box(None, SHORT_WAIT).await;
    send_mos(&mut phone, VOLUME + 1..=VOLUME + LAST).await;
    wait_for_replies(&phone, VOLUME + LAST, &third).await;
    bearerbox
        .wait_settled("the last MOs answered", SHORT_WAIT, |s| {
            s.sms_received == u64::from(VOLUME + LAST)
        })
        .await;
    tokio::time::sleep(FAKESMSC_READ_PERIOD).await;
    let after = phone.mts();
    let new: Vec<u32> = after[before_restart..]
        .iter()
        .filter_map(|mt| answered(&mt.data))
        .collect();
    let expected: Vec<u32> = (VOLUME + 1..=VOLUME + LAST).collect();
    let mut sorted = new.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted, expected,
        "after a graceful restart only the new MOs are answered, once each"
    );
    let stopped = third.stop().await;
    assert!(stopped.success(), "rapidbox-3 stopped with {stopped}");
    phone.stop();

    let store = PgStore::open(PgOptions::new(url)).await.unwrap();
    check_store(&store, VOLUME + LAST).await;
    store.close().await;
    drop(bearerbox);
    drop(pg);
}
