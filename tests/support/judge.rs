//! What a run under faults left behind, judged one way for every test
//! that kills, stops or starves rapidbox under a stream of MOs from
//! fakesmsc (`crash_loop`, `storage_faults`): from rapidbox's store, read
//! after it has stopped, and from the MTs the phone (fakesmsc) logged.
//!
//! - *lost*: MOs offered that are not stored; *stored twice*: MOs stored
//!   more than once, by sender and text and by Kannel UUID;
//! - every MO handled and answered by exactly one stored reply, every
//!   reply recorded as sent (S or D);
//! - at the phone: every stored reply at least once, no MT that answers
//!   no stored reply; *repeated*: MTs beyond one per stored reply.
//!
//! And the waits that make the phone's count exact. The bearerbox having
//! nothing queued does not mean rapidbox is done: under full load
//! thousands of replies may still wait in rapidbox's store for their turn
//! in its MT window. So a test first waits until rapidbox has recorded
//! every reply as sent ([`wait_replies_sent`], from `/router/stats`),
//! then until the bearerbox has written them all to fakesmsc, and only
//! then reads the phone. (Reading it at the bearerbox's first calm moment
//! is what made the SIGTERM loop at full load look as if replies had been
//! lost on the way: see RELIABILITY.md.)

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rapidbox::model::{Direction, Message, MessageId, Status};

use super::fakesmsc::FakeMt;
use super::rapidbox as rb;

/// The store's account of a run: messages by direction and what is wrong
/// with them.
#[derive(Debug)]
pub struct Stored<'a> {
    pub incoming: Vec<&'a Message>,
    pub outgoing: Vec<&'a Message>,
    /// MOs offered and not stored.
    pub lost: u64,
    /// MOs stored more than once, by sender and text.
    pub stored_twice: Vec<(&'a str, &'a str)>,
    /// Kannel UUIDs stored on more than one MO.
    pub uuid_twice: usize,
    /// The stored replies of each MO (by the MO's id).
    pub replies_of: HashMap<MessageId, Vec<&'a Message>>,
    /// Every promise broken, in words.
    pub problems: Vec<String>,
}

impl Stored<'_> {
    /// MOs stored twice by sender and text plus UUIDs stored twice.
    pub fn twice(&self) -> usize {
        self.stored_twice.len() + self.uuid_twice
    }
}

/// `items`, or its first `count` and how many more.
pub fn first<T: std::fmt::Debug>(items: &[T], count: usize) -> String {
    if items.len() <= count {
        format!("{items:?}")
    } else {
        format!("{:?} and {} more", &items[..count], items.len() - count)
    }
}

/// Judges the store's `messages` after `offered` distinct MOs, each to be
/// answered by one reply.
pub fn store(messages: &[Message], offered: u64) -> Stored<'_> {
    let mut problems = Vec::new();
    let incoming = rb::of_direction(messages, Direction::Incoming);
    let outgoing = rb::of_direction(messages, Direction::Outgoing);
    let mut by_mo: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut by_uuid: HashMap<[u8; 16], usize> = HashMap::new();
    for mo in &incoming {
        *by_mo
            .entry((mo.connection.address.as_str(), mo.text.as_str()))
            .or_default() += 1;
        match mo.kannel.as_ref().and_then(|k| k.uuid) {
            Some(uuid) => *by_uuid.entry(uuid).or_default() += 1,
            None => problems.push(format!("MO {} has no Kannel UUID", mo.id)),
        }
        if mo.status != Status::Handled {
            problems.push(format!("MO {} ended {:?}, not Handled", mo.id, mo.status));
        }
    }
    let stored_twice: Vec<(&str, &str)> = by_mo
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| *k)
        .collect();
    let uuid_twice = by_uuid.values().filter(|n| **n > 1).count();
    let lost = offered.saturating_sub(by_mo.len() as u64);
    if lost > 0 {
        problems.push(format!(
            "{lost} of the {offered} MOs offered are not in the store ({} distinct stored)",
            by_mo.len()
        ));
    }
    if !stored_twice.is_empty() || uuid_twice > 0 {
        problems.push(format!(
            "MOs stored more than once: {} by sender and text ({}), {uuid_twice} by UUID",
            stored_twice.len(),
            first(&stored_twice, 5)
        ));
    }
    let ids: HashMap<MessageId, &Message> = incoming.iter().map(|m| (m.id, *m)).collect();
    let mut replies_of: HashMap<MessageId, Vec<&Message>> = HashMap::new();
    for reply in &outgoing {
        match reply.in_response_to.and_then(|id| ids.get(&id)) {
            Some(mo) => replies_of.entry(mo.id).or_default().push(reply),
            None => problems.push(format!(
                "outgoing message {} {:?} answers no stored MO",
                reply.id, reply.text
            )),
        }
        if !matches!(reply.status, Status::Sent | Status::Delivered) {
            problems.push(format!("reply {} ended {:?}", reply.id, reply.status));
        }
    }
    let unanswered = incoming
        .iter()
        .filter(|m| !replies_of.contains_key(&m.id))
        .count();
    let answered_twice = replies_of.values().filter(|r| r.len() > 1).count();
    if unanswered > 0 || answered_twice > 0 {
        problems.push(format!(
            "expected one stored reply per MO: {unanswered} MOs have none, {answered_twice} \
             more than one (routed twice)"
        ));
    }
    Stored {
        incoming,
        outgoing,
        lost,
        stored_twice,
        uuid_twice,
        replies_of,
        problems,
    }
}

/// What reached the phone, reply by reply.
#[derive(Debug)]
pub struct AtPhone {
    /// MTs at the phone per stored reply (by the reply's id); a reply that
    /// never came is absent.
    pub copies: HashMap<MessageId, usize>,
    /// Stored replies that never reached the phone.
    pub never: usize,
    /// MTs that answer no stored reply.
    pub unmatched: usize,
    /// MTs beyond one per stored reply.
    pub repeated: usize,
    /// Every promise broken, in words.
    pub problems: Vec<String>,
}

/// Matches the phone's `mts` to the stored replies, by receiver and text.
pub fn at_phone(outgoing: &[&Message], mts: &[FakeMt]) -> AtPhone {
    let mut at_phone: HashMap<(&str, &str), usize> = HashMap::new();
    for mt in mts {
        *at_phone
            .entry((mt.receiver.as_str(), mt.data.as_str()))
            .or_default() += 1;
    }
    let mut copies = HashMap::new();
    let mut never = 0;
    let mut matched = 0;
    for reply in outgoing {
        let key = (reply.connection.address.as_str(), reply.text.as_str());
        match at_phone.get(&key).copied().unwrap_or(0) {
            0 => never += 1,
            n => {
                matched += n;
                copies.insert(reply.id, n);
            }
        }
    }
    let unmatched = mts.len().saturating_sub(matched);
    let mut problems = Vec::new();
    if never > 0 {
        problems.push(format!("{never} stored replies never reached the phone"));
    }
    if unmatched > 0 {
        problems.push(format!(
            "{unmatched} MTs at the phone answer no stored reply"
        ));
    }
    AtPhone {
        copies,
        never,
        unmatched,
        repeated: mts.len().saturating_sub(outgoing.len()),
        problems,
    }
}

/// Outgoing messages not yet settled (R, P, L, Q, I or E), and all
/// outgoing messages, from rapidbox's `/router/stats`; `None` when it does
/// not answer.
pub async fn outgoing_counts(http_port: u16) -> Option<(u64, u64)> {
    let answer = super::http::try_get(http_port, "/router/stats").await?;
    let stats: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
    let outgoing = stats.get("messages")?.get("O");
    let count = |codes: &str| -> u64 {
        codes
            .chars()
            .filter_map(|c| outgoing?.get(c.to_string())?.as_u64())
            .sum()
    };
    Some((count("RPLQIE"), count("RPLQIESDCF")))
}

/// Waits until rapidbox on `http_port` holds at least `replies` outgoing
/// messages and none of them waits to be sent; panics with `what` after
/// `timeout`.
pub async fn wait_replies_sent(http_port: u16, replies: u64, timeout: Duration, what: &str) {
    let started = Instant::now();
    let mut last = None;
    loop {
        let counts = outgoing_counts(http_port).await;
        if let Some((open, all)) = counts {
            if open == 0 && all >= replies {
                return;
            }
            last = counts;
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: rapidbox did not send all {replies} replies within {timeout:?} \
             (open, all outgoing): {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
