//! rapidbox end to end: Debian's real bearerbox 1.4.5, Kannel's fakesmsc
//! playing the phones, and the `rapidbox` binary, on free ports.
//!
//! Every MO is numbered (`msg 17` from `+256772100017`), so each reply can
//! be matched to its MO, and every MO a test sends is counted exactly:
//! fakesmsc runs in its interactive mode and confirms each line it sends
//! (see `support::fakesmsc::Phone`). What a test asserts comes from two
//! sources that do not depend on rapidbox telling the truth about itself:
//! the MTs fakesmsc received, and rapidbox's store, opened after rapidbox
//! has exited. Bearerbox's status page says when everything has settled
//! (no MO waiting for or unacknowledged by a box, no MT waiting for the
//! SMSC or for its report).
//!
//! - 200 MOs in, 200 replies out, right text and addresses, with and
//!   without an smsbox-id; and the smsbox-id trap: an id without an
//!   `smsbox-route` receives nothing.
//! - A UCS-2 MO gets a UCS-2 reply; the store holds the decoded text.
//! - A reply that asked for delivery reports ends Delivered.
//! - Bearerbox stopped and restarted mid-stream (with its message store):
//!   rapidbox reconnects by itself, every MO is stored once and answered.
//! - rapidbox killed (SIGKILL) mid-stream and started again: every MO is
//!   stored once and answered; repeated replies stay within the MTs that
//!   could have been in flight, and the test prints how many there were.
//!
//! Without Kannel these tests print that they are skipped (and fail under
//! `CI=true`). `KANNEL_KEEP_TEST_DIR=1` keeps each test's configurations and
//! logs (bearerbox's, fakesmsc's `.out`, rapidbox's `.out`);
//! `RAPIDBOX_TEST_LOG` sets rapidbox's `RUST_LOG` (default `info`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rapidbox::model::{now_micros, Direction, Message, Micros, MoKey, Status};
use rapidbox::store::Store;

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::{FakeMt, Phone};
use support::rapidbox::{self as rb, Rapidbox, RapidboxParams};
use support::service::{Answer, Service};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "kannel_e2e";

/// The number the phones write to; replies come from it.
const SHORTCODE: &str = "5555";

/// The echo app's template in these tests.
const TEMPLATE: &str = "You said: %a";

/// What the template makes of `msg K`.
fn reply_text(k: u32) -> String {
    format!("You said: msg {k}")
}

/// The phone that sends MO number `k`: one per MO, so that a reply's
/// receiver tells which MO it answers as surely as its text does.
fn sender(k: u32) -> String {
    format!("+2567721{k:05}")
}

/// fakesmsc's line for MO number `k`.
fn mo_line(k: u32) -> String {
    format!("{} {SHORTCODE} text msg {k}", sender(k))
}

/// How many MOs the volume tests send.
const VOLUME: u32 = 200;

/// Bound for everything that takes milliseconds when things work: a
/// connection, a status change, a single reply.
const SHORT_WAIT: Duration = Duration::from_secs(10);

/// Bound for all replies of a volume test to arrive.
const REPLIES_WAIT: Duration = Duration::from_secs(45);

/// Bound for a bearerbox to exit after SIGTERM. Measured: 3 s with MTs
/// waiting for an absent SMSC, 11 s with MOs waiting for an absent box.
const BEARERBOX_EXIT_WAIT: Duration = Duration::from_secs(30);

/// fakesmsc reads what the bearerbox sends it at least once a second.
const FAKESMSC_READ_PERIOD: Duration = Duration::from_millis(1100);

/// One test's bearerbox, rapidbox configuration and directory.
struct Rig {
    bearerbox: Bearerbox,
    params: RapidboxParams,
    /// Declared last, so that it is removed after the bearerbox has been
    /// stopped (a test's own daemons, declared after its rig, are stopped
    /// before the rig is dropped).
    dir: tempfile::TempDir,
}

impl Rig {
    /// A bearerbox with a fake SMSC, changed by `bearerbox_conf`, and
    /// rapidbox parameters, changed by `rapidbox`. `None` when Kannel is
    /// not installed (outside CI).
    async fn new(
        test: &str,
        bearerbox_conf: impl FnOnce(&mut conf::Conf, &Path),
        rapidbox: impl FnOnce(&mut RapidboxParams),
    ) -> Option<Rig> {
        if !support::require_kannel(&format!("{TEST}::{test}"), &[BEARERBOX, FAKESMSC]) {
            return None;
        }
        let dir = support::test_dir(test);
        let ports = BearerboxPorts::free();
        let mut bb_conf = conf::bearerbox(dir.path(), &ports);
        bearerbox_conf(&mut bb_conf, dir.path());
        let bearerbox = Bearerbox::start(dir.path(), &bb_conf, ports).await;
        let mut params = RapidboxParams::new(dir.path(), ports.smsbox);
        params.template = TEMPLATE.to_owned();
        rapidbox(&mut params);
        Some(Rig {
            bearerbox,
            params,
            dir,
        })
    }

    /// Starts rapidbox (as `name`) on the rig's configuration and waits
    /// until the bearerbox lists it as a box.
    async fn start_rapidbox(&mut self, name: &str) -> Rapidbox {
        let config = self.params.write(self.dir.path(), "rapidbox.toml");
        let rapidbox = Rapidbox::start(name, self.dir.path(), &config);
        self.bearerbox
            .wait_for_box(self.params.smsbox_id.as_deref(), SHORT_WAIT)
            .await;
        rapidbox
    }

    fn phone(&self, name: &str) -> Phone {
        Phone::start(name, self.dir.path(), self.bearerbox.ports().fake_smsc)
    }
}

/// Sends MOs `numbers` through `phone`, panicking if fakesmsc does not
/// confirm one.
async fn send_mos(phone: &mut Phone, numbers: std::ops::RangeInclusive<u32>) {
    for k in numbers {
        if let Err(e) = phone.send(&mo_line(k)).await {
            panic!("expected fakesmsc to send MO {k}: {e}");
        }
    }
}

/// The MO number a reply answers, from its text.
fn answered(mt: &FakeMt) -> Option<u32> {
    mt.data.strip_prefix("You said: msg ")?.parse().ok()
}

/// The replies among `mts`, by the number of the MO they answer; MTs that
/// answer no numbered MO are returned apart.
fn replies_by_number(mts: &[FakeMt]) -> (BTreeMap<u32, Vec<&FakeMt>>, Vec<&FakeMt>) {
    let mut by_number: BTreeMap<u32, Vec<&FakeMt>> = BTreeMap::new();
    let mut stray = Vec::new();
    for mt in mts {
        match answered(mt) {
            Some(k) => by_number.entry(k).or_default().push(mt),
            None => stray.push(mt),
        }
    }
    (by_number, stray)
}

/// Numbers in 1..=n with no reply, shortened for a message.
fn missing(by_number: &BTreeMap<u32, Vec<&FakeMt>>, n: u32) -> Vec<u32> {
    (1..=n).filter(|k| !by_number.contains_key(k)).collect()
}

fn first<T: std::fmt::Debug>(items: &[T], count: usize) -> String {
    if items.len() <= count {
        format!("{items:?}")
    } else {
        format!("{:?} and {} more", &items[..count], items.len() - count)
    }
}

/// Waits until the phones, together, have a reply to each of MOs 1..=n.
/// A timeout panics with what the bearerbox holds and rapidbox's log.
async fn wait_for_replies(
    phones: &[&Phone],
    n: u32,
    timeout: Duration,
    bearerbox: &Bearerbox,
    rapidbox: &Rapidbox,
) -> Vec<FakeMt> {
    let started = Instant::now();
    loop {
        let mts: Vec<FakeMt> = phones.iter().flat_map(|p| p.mts()).collect();
        let (by_number, _) = replies_by_number(&mts);
        let missing = missing(&by_number, n);
        if missing.is_empty() {
            return mts;
        }
        if started.elapsed() >= timeout {
            let status = bearerbox.status().await;
            let (_, stray) = replies_by_number(&mts);
            panic!(
                "expected a reply to each of MOs 1..={n} within {timeout:?}; {} replies seen, \
                 none to MOs {}; MTs that answer no MO: {}\nbearerbox status:\n{}\n{}{}",
                mts.len(),
                first(&missing, 20),
                first(&stray, 3),
                status.text,
                bearerbox.log_tails(),
                rapidbox.log_tails()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `phone` has printed `count` MTs: every MT the bearerbox
/// says it sent has reached fakesmsc's log.
async fn wait_for_mt_count(phone: &Phone, count: u64, timeout: Duration) -> Vec<FakeMt> {
    let started = Instant::now();
    loop {
        let mts = phone.mts();
        if mts.len() as u64 >= count {
            return mts;
        }
        if started.elapsed() >= timeout {
            panic!(
                "expected fakesmsc to print the {count} MTs the bearerbox sent it within \
                 {timeout:?}, but it printed {}",
                mts.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks the replies fakesmsc received against MOs 1..=n: each went to
/// the MO's sender, from the shortcode, as text with the template's words.
/// Returns how many replies each MO got.
fn check_replies(mts: &[FakeMt], n: u32) -> BTreeMap<u32, usize> {
    let (by_number, stray) = replies_by_number(mts);
    let mut problems = Vec::new();
    if !stray.is_empty() {
        problems.push(format!(
            "expected every MT to be \"You said: msg K\", but {} were not: {}",
            stray.len(),
            first(&stray, 5)
        ));
    }
    let missing = missing(&by_number, n);
    if !missing.is_empty() {
        problems.push(format!(
            "expected a reply to each of MOs 1..={n}; none to MOs {}",
            first(&missing, 20)
        ));
    }
    for (k, replies) in &by_number {
        if !(1..=n).contains(k) {
            problems.push(format!(
                "expected replies to MOs 1..={n} only; got one to MO {k}"
            ));
        }
        for mt in replies {
            let want = (SHORTCODE, sender(*k), "text", reply_text(*k));
            let got = (
                mt.sender.as_str(),
                mt.receiver.clone(),
                mt.kind.as_str(),
                mt.data.clone(),
            );
            if (want.0, &want.1, want.2, &want.3) != (got.0, &got.1, got.2, &got.3) {
                problems.push(format!(
                    "reply to MO {k}: expected (sender, receiver, type, text) {want:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the MTs fakesmsc received are wrong:\n  {}",
        problems.join("\n  ")
    );
    by_number.into_iter().map(|(k, r)| (k, r.len())).collect()
}

/// Checks the store against MOs 1..=n: each stored exactly once (one
/// incoming message per number, every Kannel UUID once, found again by its
/// UUID), handled, with its sender's exact address and the shortcode; each
/// answered by exactly one stored reply in `reply_statuses`, to that
/// address, from the shortcode, in response to it; and nothing else.
/// Returns each MO's reply.
async fn check_store(store: &Store, n: u32, reply_statuses: &[Status]) -> BTreeMap<u32, Message> {
    let messages = rb::all_messages(store).await;
    let incoming = rb::of_direction(&messages, Direction::Incoming);
    let outgoing = rb::of_direction(&messages, Direction::Outgoing);
    let mut problems = Vec::new();

    let mut mos: BTreeMap<u32, Vec<&Message>> = BTreeMap::new();
    let mut uuids: BTreeMap<[u8; 16], Vec<u64>> = BTreeMap::new();
    for mo in &incoming {
        let k = mo
            .text
            .strip_prefix("msg ")
            .and_then(|k| k.parse::<u32>().ok());
        let Some(k) = k.filter(|k| (1..=n).contains(k)) else {
            problems.push(format!(
                "expected only MOs \"msg 1\"..=\"msg {n}\" in the store, found message {} {:?}",
                mo.id, mo.text
            ));
            continue;
        };
        mos.entry(k).or_default().push(mo);
        let kannel = mo.kannel.as_ref();
        match kannel.and_then(|k| k.uuid) {
            Some(uuid) => {
                uuids.entry(uuid).or_default().push(mo.id);
                // A bearerbox always sets `time`; the key leads with it.
                let key = MoKey::of(mo).filter(|key| key.time > 0);
                let found = match key {
                    Some(key) => Some(store.message_id_by_mo(&key).await),
                    None => None,
                };
                match found {
                    Some(Ok(Some(id))) if id == mo.id => {}
                    other => problems.push(format!(
                        "MO {k} (message {}): expected its Kannel time and UUID to find it \
                         again, got {other:?}",
                        mo.id
                    )),
                }
            }
            None => problems.push(format!("MO {k} (message {}): no Kannel UUID", mo.id)),
        }
        let want = (
            sender(k),
            Some(SHORTCODE.to_owned()),
            Some(conf::FAKE_SMSC_ID.to_owned()),
            Status::Handled,
        );
        let got = (
            mo.connection.address.clone(),
            kannel.and_then(|k| k.shortcode.clone()),
            kannel.and_then(|k| k.smsc_id.clone()),
            mo.status,
        );
        if want != got {
            problems.push(format!(
                "MO {k} (message {}): expected (address, shortcode, smsc_id, status) \
                 {want:?}, got {got:?}",
                mo.id
            ));
        }
    }
    let absent: Vec<u32> = (1..=n).filter(|k| !mos.contains_key(k)).collect();
    if !absent.is_empty() {
        problems.push(format!(
            "expected every MO 1..={n} stored; MOs {} are not",
            first(&absent, 20)
        ));
    }
    let twice: Vec<(u32, Vec<u64>)> = mos
        .iter()
        .filter(|(_, m)| m.len() > 1)
        .map(|(k, m)| (*k, m.iter().map(|m| m.id).collect()))
        .collect();
    if !twice.is_empty() {
        problems.push(format!(
            "expected each MO stored once; stored more than once (MO, message ids): {}",
            first(&twice, 10)
        ));
    }
    let shared: Vec<&Vec<u64>> = uuids.values().filter(|ids| ids.len() > 1).collect();
    if !shared.is_empty() {
        problems.push(format!(
            "expected one stored MO per Kannel UUID; these message ids share one: {}",
            first(&shared, 10)
        ));
    }

    let number_of: BTreeMap<u64, u32> = mos
        .iter()
        .flat_map(|(k, ms)| ms.iter().map(move |m| (m.id, *k)))
        .collect();
    let mut replies: BTreeMap<u32, Vec<&Message>> = BTreeMap::new();
    for reply in &outgoing {
        let Some(k) = reply.in_response_to.and_then(|id| number_of.get(&id)) else {
            problems.push(format!(
                "expected every outgoing message to answer a stored MO; message {} {:?} \
                 answers {:?}",
                reply.id, reply.text, reply.in_response_to
            ));
            continue;
        };
        replies.entry(*k).or_default().push(reply);
        let kannel = reply.kannel.as_ref();
        let want = (
            reply_text(*k),
            sender(*k),
            Some(SHORTCODE.to_owned()),
            Some(conf::FAKE_SMSC_ID.to_owned()),
        );
        let got = (
            reply.text.clone(),
            reply.connection.address.clone(),
            kannel.and_then(|k| k.shortcode.clone()),
            kannel.and_then(|k| k.smsc_id.clone()),
        );
        if want != got {
            problems.push(format!(
                "reply {} to MO {k}: expected (text, address, sender, smsc_id) {want:?}, \
                 got {got:?}",
                reply.id
            ));
        }
        // A delivered report is final: whatever else happened to the
        // reply, and in whatever order, it must end Delivered.
        let events = store
            .dlr_events(reply.id)
            .await
            .unwrap_or_else(|e| panic!("cannot read the reports of message {}: {e}", reply.id));
        if events.iter().any(|e| e.mask == 1)
            && (reply.status != Status::Delivered || reply.delivered.is_none())
        {
            problems.push(format!(
                "reply {} to MO {k}: a delivered report (1) is recorded, so expected status \
                 Delivered with a delivered time, got status {:?}, delivered {:?}, sent {:?}, \
                 reports {:?}",
                reply.id,
                reply.status,
                reply.delivered,
                reply.sent,
                events.iter().map(|e| (e.mask, e.time)).collect::<Vec<_>>()
            ));
        }
        if !reply_statuses.contains(&reply.status) {
            problems.push(format!(
                "reply {} to MO {k}: expected status in {reply_statuses:?}, got {:?}",
                reply.id, reply.status
            ));
        }
    }
    let unanswered: Vec<u32> = mos
        .keys()
        .copied()
        .filter(|k| !replies.contains_key(k))
        .collect();
    if !unanswered.is_empty() {
        problems.push(format!(
            "expected a stored reply to every MO; none for MOs {}",
            first(&unanswered, 20)
        ));
    }
    let answered_twice: Vec<u32> = replies
        .iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(k, _)| *k)
        .collect();
    if !answered_twice.is_empty() {
        problems.push(format!(
            "expected one stored reply per MO (an MO routed twice?); MOs {} have more",
            first(&answered_twice, 20)
        ));
    }

    // The counts table must agree with the messages.
    let counts = store
        .counts()
        .await
        .unwrap_or_else(|e| panic!("cannot read the store's counts: {e}"));
    let mut counted: BTreeMap<(char, char), u64> = BTreeMap::new();
    for (d, s, c) in &counts {
        counted.insert((d.code(), s.code()), *c);
    }
    let mut actual: BTreeMap<(char, char), u64> = BTreeMap::new();
    for m in &messages {
        *actual
            .entry((m.direction.code(), m.status.code()))
            .or_default() += 1;
    }
    if counted != actual {
        problems.push(format!(
            "expected the store's counts (direction, status) to match its messages: \
             counts {counted:?}, messages {actual:?}"
        ));
    }

    assert!(
        problems.is_empty(),
        "rapidbox's store is wrong ({} incoming, {} outgoing messages):\n  {}",
        incoming.len(),
        outgoing.len(),
        problems.join("\n  ")
    );
    replies
        .into_iter()
        .map(|(k, r)| (k, r[0].clone()))
        .collect()
}

/// The statuses a reply may end in once the bearerbox has accepted it:
/// sent, or delivered once the fake SMSC's report is in.
const SENT_OR_DELIVERED: &[Status] = &[Status::Sent, Status::Delivered];

// ---------------------------------------------------------------------------
// 1. Volume, with and without an smsbox-id.

/// Sends [`VOLUME`] numbered MOs and checks every reply, at fakesmsc and in
/// the store.
async fn volume(test: &str, smsbox_id: Option<&str>) {
    let Some(mut rig) = Rig::new(
        test,
        |bb, _| {
            if let Some(id) = smsbox_id {
                bb.push(conf::smsbox_route(id, Some(conf::FAKE_SMSC_ID), None));
            }
        },
        |p| p.smsbox_id = smsbox_id.map(str::to_owned),
    )
    .await
    else {
        return;
    };
    let started = Instant::now();
    let mut rapidbox = rig.start_rapidbox("rapidbox").await;
    let mut phone = rig.phone("fakesmsc");
    send_mos(&mut phone, 1..=VOLUME).await;
    let sent_in = started.elapsed();
    wait_for_replies(&[&phone], VOLUME, REPLIES_WAIT, &rig.bearerbox, &rapidbox).await;
    let status = rig
        .bearerbox
        .wait_settled(
            &format!("{VOLUME} MOs received and {VOLUME} MTs sent"),
            SHORT_WAIT,
            |s| s.sms_received == u64::from(VOLUME) && s.sms_sent >= u64::from(VOLUME),
        )
        .await;
    let mts = wait_for_mt_count(&phone, status.sms_sent, SHORT_WAIT).await;
    let answered_in = started.elapsed();
    rapidbox.stop().await;
    phone.stop();

    let per_mo = check_replies(&mts, VOLUME);
    let repeated: Vec<u32> = per_mo
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(k, _)| *k)
        .collect();
    assert!(
        repeated.is_empty() && mts.len() == VOLUME as usize,
        "expected exactly one reply per MO ({VOLUME} MTs), got {} MTs; repeated for MOs {}",
        mts.len(),
        first(&repeated, 20)
    );
    let store = rb::open_store(&rig.params.store);
    let replies = check_store(&store, VOLUME, SENT_OR_DELIVERED).await;
    let delivered = replies
        .values()
        .filter(|r| r.status == Status::Delivered)
        .count();
    eprintln!(
        "{TEST}::{test}: {VOLUME} MOs sent in {sent_in:?}, all answered and settled after \
         {answered_in:?}; {delivered} replies already Delivered, the rest Sent"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_mos_are_answered_without_an_smsbox_id() {
    volume("volume_without_id", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_mos_are_answered_with_an_smsbox_id_and_its_route() {
    volume("volume_with_id", Some("rapidbox")).await;
}

/// The trap the README warns about: a box that identifies with an
/// smsbox-id gets only the MOs an `smsbox-route` sends it. With none, the
/// bearerbox keeps the MOs queued and rapidbox receives nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smsbox_id_without_a_route_receives_nothing() {
    const MOS: u32 = 5;
    const QUIET: Duration = Duration::from_secs(3);
    let Some(mut rig) = Rig::new(
        "smsbox_id_trap",
        |_, _| {},
        |p| p.smsbox_id = Some("rapidbox".to_owned()),
    )
    .await
    else {
        return;
    };
    let mut rapidbox = rig.start_rapidbox("rapidbox").await;
    let mut phone = rig.phone("fakesmsc");
    send_mos(&mut phone, 1..=MOS).await;
    rig.bearerbox
        .wait_status(
            &format!("{MOS} MOs received from the fake SMSC"),
            SHORT_WAIT,
            |s| s.sms_received == u64::from(MOS),
        )
        .await;
    tokio::time::sleep(QUIET).await;
    let status = rig.bearerbox.status().await;
    let boxes: Vec<(String, u64)> = status
        .boxes
        .iter()
        .map(|b| (b.id.clone(), b.queued))
        .collect();
    assert_eq!(
        (status.sms_received_queued, boxes),
        (u64::from(MOS), vec![("rapidbox".to_owned(), 0)]),
        "expected the bearerbox to hold all {MOS} MOs (received-queued) and to offer none to \
         the box `rapidbox` after {QUIET:?}\n{}",
        status.text
    );
    let mts = phone.mts();
    assert!(
        mts.is_empty(),
        "expected no reply when rapidbox has an smsbox-id and no route, got {mts:?}"
    );
    rapidbox.stop().await;
    phone.stop();
    // Bearerbox would wait 10 s for a box to take the queued MOs; nothing
    // here needs them.
    rig.bearerbox.daemon().kill();

    let store = rb::open_store(&rig.params.store);
    let messages = rb::all_messages(&store).await;
    assert!(
        messages.is_empty(),
        "expected rapidbox to store nothing without an smsbox-route for its id, found {} \
         messages: {:?}",
        messages.len(),
        messages.iter().map(|m| &m.text).collect::<Vec<_>>()
    );
    store.close().await;
}

// ---------------------------------------------------------------------------
// 2. UCS-2.

/// URL-encodes every byte, as fakesmsc's `ucs2` type expects.
fn url_encode_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Decodes fakesmsc's URL encoding (Kannel's: `+` for a space byte).
fn url_decode(text: &str) -> Result<Vec<u8>, String> {
    let raw = text.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .ok_or_else(|| format!("cut short escape at {i} in {text:?}"))?;
                let byte = u8::from_str_radix(hex, 16)
                    .map_err(|_| format!("bad escape %{hex} in {text:?}"))?;
                out.push(byte);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    Ok(out)
}

fn utf16be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ucs2_mo_gets_a_ucs2_reply() {
    // Cyrillic is outside GSM 03.38, so the reply must go as UCS-2 too.
    const TEXT: &str = "Привет, мир";
    let Some(mut rig) = Rig::new("ucs2", |_, _| {}, |_| {}).await else {
        return;
    };
    let mut rapidbox = rig.start_rapidbox("rapidbox").await;
    let mut phone = rig.phone("fakesmsc");
    let from = sender(1);
    let line = format!("{from} {SHORTCODE} ucs2 {}", url_encode_all(&utf16be(TEXT)));
    if let Err(e) = phone.send(&line).await {
        panic!("expected fakesmsc to send the UCS-2 MO: {e}");
    }
    let mts = phone.wait_for_mts(1, SHORT_WAIT).await;
    rig.bearerbox
        .wait_settled("the UCS-2 MO answered", SHORT_WAIT, |s| {
            s.sms_received == 1 && s.sms_sent == 1
        })
        .await;
    rapidbox.stop().await;
    phone.stop();

    let expected = format!("You said: {TEXT}");
    let mt = &mts[0];
    let bytes = url_decode(&mt.data).unwrap_or_else(|e| panic!("the reply's data: {e}"));
    assert_eq!(
        (mt.sender.as_str(), mt.receiver.as_str(), mt.kind.as_str()),
        (SHORTCODE, from.as_str(), "ucs-2"),
        "expected a UCS-2 reply from the shortcode to the MO's sender, got {mt:?}"
    );
    assert_eq!(
        bytes,
        utf16be(&expected),
        "expected the reply to carry {expected:?} as UTF-16BE; it carried {:?} (fakesmsc: {:?})",
        String::from_utf16_lossy(
            &bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect::<Vec<_>>()
        ),
        mt.data
    );
    assert_eq!(mts.len(), 1, "expected one reply, got {mts:?}");

    let store = rb::open_store(&rig.params.store);
    let messages = rb::all_messages(&store).await;
    let summary: Vec<(Direction, &str, Option<u64>)> = messages
        .iter()
        .map(|m| (m.direction, m.text.as_str(), m.in_response_to))
        .collect();
    let mo_id = messages.first().map(|m| m.id);
    assert_eq!(
        summary,
        [
            (Direction::Incoming, TEXT, None),
            (Direction::Outgoing, expected.as_str(), mo_id),
        ],
        "expected the MO stored as decoded Unicode, and its reply"
    );
    let mo = &messages[0];
    assert_eq!(
        (
            mo.connection.address.as_str(),
            mo.kannel.as_ref().map(|k| k.coding)
        ),
        (from.as_str(), Some(2)),
        "expected the MO stored with its sender and coding 2 (UCS-2)"
    );
    store.close().await;
}

// ---------------------------------------------------------------------------
// 3. Delivery reports.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_asked_for_a_report_ends_delivered() {
    let Some(mut rig) = Rig::new("dlr", |_, _| {}, |p| p.dlr_mask = 27).await else {
        return;
    };
    let mut rapidbox = rig.start_rapidbox("rapidbox").await;
    let mut phone = rig.phone("fakesmsc");
    send_mos(&mut phone, 1..=1).await;
    phone.wait_for_mts(1, SHORT_WAIT).await;
    // The fake SMSC reports acceptance (8) and delivery (1) for an MT
    // whose mask asks for them; once both are in and no box has one
    // unacknowledged, rapidbox has committed them.
    rig.bearerbox
        .wait_settled("both reports of the reply received", SHORT_WAIT, |s| {
            s.dlr_received >= 2
        })
        .await;
    rapidbox.stop().await;
    phone.stop();

    let store = rb::open_store(&rig.params.store);
    let replies = check_store(&store, 1, &[Status::Delivered]).await;
    let reply = &replies[&1];
    let events = store
        .dlr_events(reply.id)
        .await
        .unwrap_or_else(|e| panic!("cannot read the reply's reports: {e}"));
    let masks: BTreeSet<i32> = events.iter().map(|e| e.mask).collect();
    assert!(
        reply.sent.is_some() && reply.delivered.is_some(),
        "expected the reply's sent and delivered times set, got sent {:?} delivered {:?}",
        reply.sent,
        reply.delivered
    );
    assert_eq!(
        masks,
        BTreeSet::from([1, 8]),
        "expected the reports 8 (accepted by the SMSC) and 1 (delivered) recorded, got {events:?}"
    );
    assert_eq!(
        reply.kannel.as_ref().map(|k| k.dlr_mask),
        Some(27),
        "expected the reply to carry the configured dlr_mask"
    );
    store.close().await;
}

// ---------------------------------------------------------------------------
// 4. Bearerbox restart.

/// Bearerbox is stopped (SIGTERM) and started again in the middle of the
/// stream, with a message store, so that what it held survives. rapidbox
/// is left alone: it must reconnect by itself.
///
/// fakesmsc's line protocol has no acknowledgement, so an MO it writes
/// while bearerbox is shutting down may be lost with no trace on either
/// side: the test stops feeding MOs before the SIGTERM, once bearerbox has
/// received every MO sent so far, and sends the rest after the restart
/// through a new fakesmsc (the old one exits when bearerbox closes the
/// SMSC connection). At the SIGTERM rapidbox is still working through the
/// first half: MOs wait in bearerbox for it, and replies wait for the SMSC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearerbox_restart_loses_and_duplicates_no_mo() {
    const BEFORE: u32 = VOLUME / 2;
    // Few MOs unacknowledged at a time, so that rapidbox takes them slower
    // than fakesmsc sends them and the bearerbox still holds some when it
    // is stopped.
    const SMSBOX_MAX_PENDING: u32 = 2;
    let Some(mut rig) = Rig::new(
        "bearerbox_restart",
        |bb, dir| {
            bb.set("core", "store-type", "file")
                .set(
                    "core",
                    "store-location",
                    dir.join("bearerbox.store").display(),
                )
                .set("core", "smsbox-max-pending", SMSBOX_MAX_PENDING);
        },
        |_| {},
    )
    .await
    else {
        return;
    };
    let mut rapidbox = rig.start_rapidbox("rapidbox").await;
    let mut phone1 = rig.phone("fakesmsc-1");
    send_mos(&mut phone1, 1..=BEFORE).await;
    let at_stop = rig
        .bearerbox
        .wait_status(&format!("{BEFORE} MOs received"), SHORT_WAIT, |s| {
            s.sms_received == u64::from(BEFORE)
        })
        .await;
    let stopping = Instant::now();
    let sigterm_at: Micros = now_micros();
    rig.bearerbox.stop(BEARERBOX_EXIT_WAIT).await;
    let stop_took = stopping.elapsed();
    if phone1.daemon().wait_exit(SHORT_WAIT).await.is_none() {
        panic!("expected fakesmsc to exit when the bearerbox closed the SMSC connection");
    }
    rapidbox.assert_running("while the bearerbox is down");
    let restarted_at: Micros = now_micros();
    rig.bearerbox.restart().await;
    rig.bearerbox.wait_for_box(None, SHORT_WAIT).await;
    let mut phone2 = rig.phone("fakesmsc-2");
    send_mos(&mut phone2, BEFORE + 1..=VOLUME).await;
    wait_for_replies(
        &[&phone1, &phone2],
        VOLUME,
        REPLIES_WAIT,
        &rig.bearerbox,
        &rapidbox,
    )
    .await;
    let status = rig
        .bearerbox
        .wait_settled("every MO answered after the restart", SHORT_WAIT, |s| {
            s.sms_received >= u64::from(VOLUME - BEFORE)
        })
        .await;
    let mts2 = wait_for_mt_count(&phone2, status.sms_sent, SHORT_WAIT).await;
    rapidbox.stop().await;
    phone2.stop();
    rig.bearerbox.stop(BEARERBOX_EXIT_WAIT).await;

    let mut mts = phone1.mts();
    let before_restart = mts.len();
    mts.extend(mts2);
    let store = rb::open_store(&rig.params.store);
    // What happened, printed before any assertion so that a failure shows
    // it too.
    let messages = rb::all_messages(&store).await;
    let during_stop = mo_numbers(&messages, |_, mo| {
        (sigterm_at..restarted_at).contains(&mo.date)
    });
    let after_restart = mo_numbers(&messages, |k, mo| k <= BEFORE && mo.date >= restarted_at);
    let repeated = repeats(&mts);
    let box_queue: u64 = at_stop.boxes.iter().map(|b| b.queued).sum();
    eprintln!(
        "{TEST}::bearerbox_restart: when the bearerbox got SIGTERM it had received {} MOs, \
         had {} unrouted and {box_queue} MOs and reports queued for or unacknowledged by \
         rapidbox, and had sent {} replies; it took {stop_took:?} to exit. rapidbox stored {} \
         MOs while it was stopping and {} of MOs 1..={BEFORE} only after the restart; its log \
         shows {} redelivered MOs recognized as stored and {} MTs answered failed_tmp. \
         fakesmsc got {before_restart} replies before the restart and {} after; {} MOs were \
         answered more than once (MO, replies): {repeated:?}",
        at_stop.sms_received,
        at_stop.sms_received_queued,
        at_stop.sms_sent,
        during_stop.len(),
        after_restart.len(),
        count_in_log(&rapidbox, "MO already stored"),
        count_in_log(&rapidbox, "cannot take the MT now"),
        mts.len() - before_restart,
        repeated.len(),
    );
    assert!(
        at_stop.sms_received_queued + box_queue > 0,
        "expected the bearerbox to hold MOs or reports for rapidbox when it was stopped; it \
         held none, so this run did not restart it mid-stream"
    );
    check_replies(&mts, VOLUME);
    check_store(&store, VOLUME, SENT_OR_DELIVERED).await;
    store.close().await;
}

/// The numbers of the stored MOs (`msg K`) for which `pick` holds.
fn mo_numbers(messages: &[Message], mut pick: impl FnMut(u32, &Message) -> bool) -> Vec<u32> {
    messages
        .iter()
        .filter(|m| m.direction == Direction::Incoming)
        .filter_map(|m| Some((m.text.strip_prefix("msg ")?.parse::<u32>().ok()?, m)))
        .filter(|(k, m)| pick(*k, m))
        .map(|(k, _)| k)
        .collect()
}

/// The MOs answered more than once among `mts`, with their reply counts.
fn repeats(mts: &[FakeMt]) -> Vec<(u32, usize)> {
    replies_by_number(mts)
        .0
        .into_iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(k, r)| (k, r.len()))
        .collect()
}

/// How many lines of rapidbox's log contain `needle`: for diagnostics
/// only, never for assertions.
fn count_in_log(rapidbox: &Rapidbox, needle: &str) -> usize {
    std::fs::read_to_string(rapidbox.console_path())
        .map(|text| text.lines().filter(|l| l.contains(needle)).count())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// 5. rapidbox killed.

/// rapidbox is killed (SIGKILL) in the middle of the stream; MOs keep
/// coming while it is down; then it starts again on the same store. Every
/// MO must be stored once and answered. An MT whose acceptance rapidbox had
/// not recorded when it died is sent again, so some replies may repeat,
/// but only as many as it can have had in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rapidbox_loses_no_mo_and_repeats_only_what_was_in_flight() {
    const MAX_IN_FLIGHT: usize = 32;
    const KILL_AFTER: u32 = VOLUME / 2;
    const RESTART_AFTER: u32 = VOLUME * 3 / 4;
    let Some(mut rig) = Rig::new(
        "rapidbox_killed",
        |_, _| {},
        |p| p.max_in_flight = Some(MAX_IN_FLIGHT),
    )
    .await
    else {
        return;
    };
    let mut first = rig.start_rapidbox("rapidbox-1").await;
    let mut phone = rig.phone("fakesmsc");
    send_mos(&mut phone, 1..=KILL_AFTER).await;
    let at_kill = rig.bearerbox.status().await;
    first.kill();
    let killed_at = now_micros();
    // The store as the kill left it, read from a copy so that the second
    // rapidbox still starts on the crashed file itself.
    let at_kill_path = rig.dir.path().join("rapidbox-at-kill.redb");
    rb::copy_store(&rig.params.store, &at_kill_path)
        .unwrap_or_else(|e| panic!("cannot copy rapidbox's store after the kill: {e}"));
    let at_kill_store = rb::open_store(&at_kill_path);
    let replies_at_kill: Vec<(u32, Status)> = rb::all_messages(&at_kill_store)
        .await
        .iter()
        .filter(|m| m.direction == Direction::Outgoing)
        .filter_map(|m| {
            Some((
                m.text.strip_prefix("You said: msg ")?.parse().ok()?,
                m.status,
            ))
        })
        .collect();
    at_kill_store.close().await;
    let unsent_at_kill: BTreeSet<u32> = replies_at_kill
        .iter()
        .filter(|(_, status)| !matches!(status, Status::Sent | Status::Delivered | Status::Failed))
        .map(|(k, _)| *k)
        .collect();
    send_mos(&mut phone, KILL_AFTER + 1..=RESTART_AFTER).await;
    let mut second = rig.start_rapidbox("rapidbox-2").await;
    send_mos(&mut phone, RESTART_AFTER + 1..=VOLUME).await;
    wait_for_replies(&[&phone], VOLUME, REPLIES_WAIT, &rig.bearerbox, &second).await;
    let status = rig
        .bearerbox
        .wait_settled("every MO answered after the kill", SHORT_WAIT, |s| {
            s.sms_received == u64::from(VOLUME)
        })
        .await;
    let mts = wait_for_mt_count(&phone, status.sms_sent, SHORT_WAIT).await;
    // A repeated MT could still be on its way from a sweep; give fakesmsc
    // one more read.
    tokio::time::sleep(FAKESMSC_READ_PERIOD).await;
    let status = rig.bearerbox.status().await;
    let mts = if status.sms_sent as usize > mts.len() {
        wait_for_mt_count(&phone, status.sms_sent, SHORT_WAIT).await
    } else {
        mts
    };
    second.stop().await;
    phone.stop();

    let store = rb::open_store(&rig.params.store);
    let messages = rb::all_messages(&store).await;
    let repeated = repeats(&mts);
    let extra: usize = repeated.iter().map(|(_, c)| c - 1).sum();
    let stored_before_kill = mo_numbers(&messages, |_, mo| mo.date < killed_at).len();
    eprintln!(
        "{TEST}::rapidbox_killed: at the kill the bearerbox had received {} MOs and sent {} \
         replies; the first rapidbox had stored {stored_before_kill} MOs and {} replies, {} of \
         them not yet recorded as sent; the second's log shows {} redeliveries of MOs already \
         stored; {extra} duplicate replies in all (MO, replies): {repeated:?}",
        at_kill.sms_received,
        at_kill.sms_sent,
        replies_at_kill.len(),
        unsent_at_kill.len(),
        count_in_log(&second, "MO already stored"),
    );
    assert!(
        at_kill.sms_received > stored_before_kill as u64 || !unsent_at_kill.is_empty(),
        "expected rapidbox to be killed with work in hand (MOs received by the bearerbox and \
         not stored, or replies not recorded as sent); it had none, so this run did not kill \
         it mid-stream"
    );
    check_replies(&mts, VOLUME);
    check_store(&store, VOLUME, SENT_OR_DELIVERED).await;
    let resent_though_recorded: Vec<u32> = repeated
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !unsent_at_kill.contains(k))
        .collect();
    assert!(
        resent_though_recorded.is_empty(),
        "expected only replies that were not yet recorded as sent when rapidbox was killed to \
         be sent again; the replies to MOs {resent_though_recorded:?} were sent twice though \
         the store held them as sent (or held no reply for them) at the kill"
    );
    assert!(
        extra <= MAX_IN_FLIGHT,
        "expected at most max_in_flight = {MAX_IN_FLIGHT} repeated replies (the MTs in flight \
         at the kill), got {extra}: {repeated:?}"
    );
    store.close().await;
}

/// An app that waits on a slow application must neither cap the MOs the
/// bearerbox can hand over at its pending window (`smsbox-max-pending`,
/// 100) nor lose the MOs it acknowledged early: 150 MOs to an application
/// that never answers are all stored and acknowledged; rapidbox is then
/// killed, the application recovers, and the second rapidbox answers every
/// one of them exactly once.
#[tokio::test]
async fn a_slow_app_does_not_hold_the_window_and_its_mos_are_answered_after_a_kill() {
    const MOS: u32 = 150;
    let service = Service::start(Answer::Never).await;
    let hook = format!(
        "[apps.hook]\nkind = \"webhook\"\nurl = {}\ntimeout_ms = 60000\n",
        toml::Value::String(service.url("/sms"))
    );
    let Some(mut rig) = Rig::new(
        "slow_app",
        |_, _| {},
        |p| {
            p.apps = vec!["hook".to_owned()];
            p.extra_toml = hook;
        },
    )
    .await
    else {
        return;
    };
    let mut hanging = rig.start_rapidbox("rapidbox-1").await;
    let mut phone = rig.phone("fakesmsc");
    send_mos(&mut phone, 1..=MOS).await;
    let status = rig
        .bearerbox
        .wait_settled(
            "every MO acknowledged while the application hangs",
            REPLIES_WAIT,
            |s| {
                s.sms_received == u64::from(MOS)
                    && s.sms_received_queued == 0
                    && s.boxes.iter().all(|b| b.queued == 0)
            },
        )
        .await;
    assert_eq!(status.sms_sent, 0, "nothing can have been answered yet");
    hanging.kill();
    let at_kill = rb::open_store(&rig.params.store);
    let received = rb::all_messages(&at_kill)
        .await
        .iter()
        .filter(|m| m.direction == Direction::Incoming && m.status == Status::Received)
        .count();
    at_kill.close().await;
    assert_eq!(
        received, MOS as usize,
        "every MO stored as received before its ack"
    );

    service.answer(Answer::Text("Got it"));
    let mut second = rig.start_rapidbox("rapidbox-2").await;
    let mts = wait_for_mt_count(&phone, u64::from(MOS), REPLIES_WAIT).await;
    // One more read: a second answer to any MO would show now.
    tokio::time::sleep(FAKESMSC_READ_PERIOD).await;
    let status = rig.bearerbox.status().await;
    second.stop().await;
    phone.stop();
    assert_eq!(status.sms_sent, u64::from(MOS), "one answer per MO");
    assert!(
        mts.iter().all(|mt| mt.data == "Got it"),
        "{}",
        first(&mts, 3)
    );
    let store = rb::open_store(&rig.params.store);
    let messages = rb::all_messages(&store).await;
    let handled = messages
        .iter()
        .filter(|m| m.direction == Direction::Incoming && m.status == Status::Handled)
        .count();
    let replies = messages
        .iter()
        .filter(|m| m.direction == Direction::Outgoing)
        .count();
    store.close().await;
    assert_eq!((handled, replies), (MOS as usize, MOS as usize));
}

// ---------------------------------------------------------------------------
// The checks themselves, without Kannel: each must catch what it is for.

/// A stored message for the checks' own tests.
fn stored(id: u64, direction: Direction, text: &str, k: u32, answers: Option<u64>) -> Message {
    let (status, shortcode) = match direction {
        Direction::Incoming => (Status::Handled, SHORTCODE),
        Direction::Outgoing => (Status::Sent, SHORTCODE),
    };
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&id.to_be_bytes());
    Message {
        id,
        connection: rapidbox::model::Connection::new(conf::FAKE_SMSC_ID, &sender(k)),
        text: text.to_owned(),
        direction,
        status,
        date: 0,
        updated: 0,
        sent: None,
        delivered: None,
        in_response_to: answers,
        external_id: None,
        kannel: Some(rapidbox::model::KannelInfo {
            uuid: Some(uuid),
            shortcode: Some(shortcode.to_owned()),
            smsc_id: Some(conf::FAKE_SMSC_ID.to_owned()),
            coding: 0,
            dlr_mask: 27,
            time: (direction == Direction::Incoming).then_some(1_764_000_000),
            ..Default::default()
        }),
        attempts: 0,
        retry_after: None,
    }
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) else {
        panic!("expected the check to fail, but it passed");
    };
    text_of(panic)
}

/// [`panic_message`] of a future.
async fn async_panic_message(f: impl std::future::Future<Output = ()>) -> String {
    use futures_util::FutureExt;
    let Err(panic) = std::panic::AssertUnwindSafe(f).catch_unwind().await else {
        panic!("expected the check to fail, but it passed");
    };
    text_of(panic)
}

fn text_of(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[tokio::test]
async fn the_store_check_catches_lost_repeated_and_unanswered_mos() {
    let dir = tempfile::tempdir().unwrap();
    let store = rb::open_store(&dir.path().join("check.redb"));
    let messages = [
        // MO 1, answered: fine.
        stored(1, Direction::Incoming, "msg 1", 1, None),
        stored(2, Direction::Outgoing, &reply_text(1), 1, Some(1)),
        // MO 2 stored twice (two UUIDs), each copy answered.
        stored(3, Direction::Incoming, "msg 2", 2, None),
        stored(4, Direction::Outgoing, &reply_text(2), 2, Some(3)),
        stored(5, Direction::Incoming, "msg 2", 2, None),
        stored(6, Direction::Outgoing, &reply_text(2), 2, Some(5)),
        // MO 3 never stored; MO 4 stored and never answered.
        stored(7, Direction::Incoming, "msg 4", 4, None),
    ];
    let mut unit = rapidbox::store::Unit::new();
    for m in messages {
        unit.push(rapidbox::store::Op::put(m));
    }
    let outcome = store.commit(unit).await.unwrap();
    assert_eq!(outcome, rapidbox::store::Outcome::Applied);
    let message = async_panic_message(async {
        check_store(&store, 4, SENT_OR_DELIVERED).await;
    })
    .await;
    for expected in [
        "MOs [3] are not",
        "stored more than once (MO, message ids): [(2, [3, 5])]",
        "none for MOs [4]",
        "MOs [2] have more",
    ] {
        assert!(
            message.contains(expected),
            "expected the store check to report {expected:?}, it said:\n{message}"
        );
    }
    // Checked for MO 1 alone, every other MO is one too many.
    let message = async_panic_message(async {
        check_store(&store, 1, SENT_OR_DELIVERED).await;
    })
    .await;
    assert!(
        message.contains("expected only MOs \"msg 1\"..=\"msg 1\""),
        "expected MOs beyond n reported, got:\n{message}"
    );
    store.close().await;
}

#[test]
fn the_reply_check_catches_missing_misaddressed_and_stray_replies() {
    let mt = |sender: &str, receiver: String, data: String| FakeMt {
        number: 0,
        sender: sender.to_owned(),
        receiver,
        kind: "text".to_owned(),
        data,
    };
    let good = vec![
        mt(SHORTCODE, sender(1), reply_text(1)),
        mt(SHORTCODE, sender(2), reply_text(2)),
    ];
    assert_eq!(check_replies(&good, 2), BTreeMap::from([(1, 1), (2, 1)]));
    let bad = vec![
        mt(SHORTCODE, sender(1), reply_text(1)),
        mt(SHORTCODE, sender(1), reply_text(1)),
        mt("6666", sender(2), reply_text(2)),
        mt(SHORTCODE, sender(3), "You sad: msg 3".to_owned()),
    ];
    let message = panic_message(|| {
        check_replies(&bad, 3);
    });
    for expected in [
        "were not: [FakeMt",
        "none to MOs [3]",
        "reply to MO 2: expected (sender, receiver, type, text) (\"5555\"",
    ] {
        assert!(
            message.contains(expected),
            "expected the reply check to report {expected:?}, it said:\n{message}"
        );
    }
    assert_eq!(repeats(&bad), [(1, 2)], "MO 1 was answered twice");
}
