//! `rapidbox run --log-format json` attached to a real bearerbox (Debian's
//! Kannel 1.4.5) with fakesmsc as the SMSC: every line of the log is a
//! JSON object, and every line about a message carries the message's id
//! and, when Kannel gave it one, its Kannel UUID (as an event field or in
//! the line's span), so a log shipper can follow one message through.
//!
//! Without Kannel this prints that it is skipped (and fails under
//! `CI=true`).

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use rapidbox::model::Direction;
use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::Phone;
use support::rapidbox::{all_messages, open_store, Rapidbox, RapidboxParams};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "kannel_logs";

/// MOs the phone sends; each is answered by the echo app.
const MOS: usize = 5;

/// Bound for what takes milliseconds when things work.
const WAIT: Duration = Duration::from_secs(20);

/// Every MT and ack is logged at debug: the most lines about messages.
const LOG_FILTER: &str = "info,rapidbox=debug";

/// `key` from the line's event fields, else from its span.
fn field<'a>(line: &'a Value, key: &str) -> Option<&'a Value> {
    line.get("fields")
        .and_then(|f| f.get(key))
        .or_else(|| line.get("span").and_then(|s| s.get(key)))
}

#[tokio::test]
async fn every_json_line_about_a_message_carries_its_id_and_kannel_uuid() {
    if !support::require_kannel(TEST, &[BEARERBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let ports = BearerboxPorts::free();
    let mut bearerbox =
        Bearerbox::start(dir.path(), &conf::bearerbox(dir.path(), &ports), ports).await;
    let params = RapidboxParams::new(dir.path(), ports.smsbox);
    let config = params.write(dir.path(), "rapidbox.toml");
    let mut rapidbox = Rapidbox::start_with(
        "rapidbox",
        dir.path(),
        &config,
        &["--log-format", "json"],
        LOG_FILTER,
    );
    bearerbox.wait_for_box(None, WAIT).await;
    let mut phone = Phone::start("fakesmsc", dir.path(), ports.fake_smsc);
    for k in 1..=MOS {
        if let Err(e) = phone
            .send(&format!("+2567721{k:05} 5555 text msg {k}"))
            .await
        {
            panic!("expected fakesmsc to send MO {k}: {e}");
        }
    }
    let mts = phone.wait_for_mts(MOS, WAIT).await;
    assert_eq!(mts.len(), MOS, "replies at the phone: {mts:?}");
    phone.stop();
    rapidbox.stop().await;
    bearerbox.stop(Duration::from_secs(30)).await;

    let log = std::fs::read_to_string(rapidbox.console_path()).expect("rapidbox's log");
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "rapidbox logged nothing");

    let store = open_store(&params.store);
    let messages = all_messages(&store).await;
    let mos: Vec<_> = messages
        .iter()
        .filter(|m| m.direction == Direction::Incoming)
        .collect();
    assert_eq!(mos.len(), MOS);
    let uuids: HashMap<u64, Option<String>> = messages
        .iter()
        .map(|m| (m.id, m.kannel_uuid().map(|u| u.to_string())))
        .collect();

    let mut lines_about: HashMap<u64, usize> = HashMap::new();
    for line in &lines {
        let Some(id) = field(line, "message_id").and_then(Value::as_u64) else {
            continue;
        };
        let Some(uuid) = uuids.get(&id) else {
            panic!("a line about message {id}, which is not in the store: {line}");
        };
        *lines_about.entry(id).or_default() += 1;
        if let Some(uuid) = uuid {
            assert_eq!(
                field(line, "kannel_uuid").and_then(Value::as_str),
                Some(uuid.as_str()),
                "a line about message {id} without its Kannel UUID: {line}"
            );
        }
    }
    for mo in &mos {
        assert!(
            mo.kannel_uuid().is_some(),
            "MO {} has no Kannel UUID in the store",
            mo.id
        );
        assert!(
            lines_about.get(&mo.id).is_some_and(|&n| n >= 2),
            "MO {} has fewer than two lines (routed, stored) in the log:\n{log}",
            mo.id
        );
    }
    for reply in messages
        .iter()
        .filter(|m| m.direction == Direction::Outgoing)
    {
        assert!(
            lines_about.contains_key(&reply.id),
            "reply {} is in no line of the log:\n{log}",
            reply.id
        );
    }
}
