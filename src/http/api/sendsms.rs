//! `GET`/`POST /cgi-bin/sendsms`: Kannel smsbox's sendsms interface, for
//! the applications that send through smsbox today.
//!
//! The parameters, checks, status codes and answers are smsbox 1.4.5's,
//! copied from the real binary by experiment (the checks run in its order,
//! so a request with several problems gets the same answer):
//!
//! | answer | status | when |
//! | --- | --- | --- |
//! | `Authorization failed for sendsms` | 403 | unknown user or wrong password |
//! | `Missing receiver number, rejected` | 400 | no `to` |
//! | `Empty receiver number not allowed, rejected` | 400 | `to=` |
//! | `Sender missing and no global set, rejected` | 400 | no `from` (nor a default) |
//! | `Number(s) has/have been denied by white- and/or black-lists.` | 400 | no receiver made only of `0-9 +-` |
//! | `UDH field misformed, rejected` | 400 | the UDH's first byte is not its length |
//! | `DLR-Mask field misformed, rejected` | 400 | dlr-mask outside -1..=66 |
//! | `MClass field misformed, rejected` (also MWI, PID, RPI, Alt-DCS, Coding, Compress, Validity, Deferred, Priority) | 400 | out of Kannel's range |
//! | `Charset or body misformed, rejected` | 400 | an unknown charset, or text that is not in it |
//! | `0: Accepted for delivery` | 202 | every message durably queued |
//!
//! Kannel reads a number that does not parse as "not set", and so does
//! this. Several receivers, separated by spaces, make one message each and
//! one answer; receivers with other characters are dropped (smsbox logs
//! them) as long as one remains.
//!
//! Where rapidbox differs, on purpose:
//! - the answer comes once the messages are durably committed as queued
//!   (smsbox answers after the bearerbox's ack); a store that cannot commit
//!   answers 503 `Temporal failure, try again later.` (smsbox's words for a
//!   full bearerbox queue), so the caller retries;
//! - a message the router's outgoing phase cancels is stored cancelled
//!   (C); when every message of a request was cancelled the answer is 403
//!   `Not routable. Do not try again.` (smsbox's words for an MT the
//!   bearerbox refuses), because the caller should not retry it;
//! - a POST takes the same parameters as a form
//!   (`application/x-www-form-urlencoded`) body, as well as smsbox's POST
//!   (the text as the body, its charset in the content type, the rest in
//!   `X-Kannel-*` headers, the UDH in hex);
//! - `coding` 0 text that does not fit the GSM alphabet goes as UCS-2
//!   instead of losing characters.

use std::collections::BTreeSet;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use crate::config::SendsmsUser;
use crate::http::answer::HttpResponse;
use crate::http::context::Context;
use crate::http::request::Params;
use crate::model::{now_micros, Connection, Direction, KannelInfo, Message, MtOptions, Status};
use crate::text;

/// The backend of a message whose request names no SMSC (nor the user a
/// default): the bearerbox then picks the SMSC, as for smsbox's MTs
/// without an smsc-id.
pub const DEFAULT_BACKEND: &str = "kannel";

/// smsbox's answer when it has queued the messages.
pub const ACCEPTED: &str = "0: Accepted for delivery";

/// Why a request was refused: smsbox's status and words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Authorization failed for sendsms")]
    Unauthorized,
    #[error("Missing receiver number, rejected")]
    NoReceiver,
    #[error("Empty receiver number not allowed, rejected")]
    EmptyReceiver,
    #[error("Sender missing and no global set, rejected")]
    NoSender,
    #[error("Number(s) has/have been denied by white- and/or black-lists.")]
    Denied,
    /// A field out of range: smsbox's name for it.
    #[error("{0} field misformed, rejected")]
    Misformed(&'static str),
    #[error("Charset or body misformed, rejected")]
    Charset,
    #[error("Not routable. Do not try again.")]
    AllCancelled,
    #[error("Temporal failure, try again later.")]
    StorageUnavailable,
    #[error("Internal error, try again later.")]
    Storage,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::Unauthorized | Refusal::AllCancelled => StatusCode::FORBIDDEN,
            Refusal::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Storage => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// smsbox answers `text/html` whatever it says.
fn answer(status: StatusCode, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

/// A valid request, ready to become messages.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    username: String,
    sender: String,
    receivers: Vec<String>,
    backend: String,
    /// `smsc_id` on the wire: the backend when the request or the user
    /// named one, else NULL.
    smsc_id: Option<String>,
    text: String,
    coding: i32,
    charset: Option<String>,
    udh: Option<Vec<u8>>,
    /// For coding 1: the payload exactly as given.
    binary: Option<Vec<u8>>,
    dlr_mask: i32,
    options: MtOptions,
}

/// The user `params` names, if its password matches. Every user is
/// compared, in constant time, so the answer's timing tells nothing.
fn authorize<'u>(users: &'u [SendsmsUser], params: &Params) -> Option<&'u SendsmsUser> {
    let username = params.get("username").or_else(|| params.get("user"))?;
    let password = params.get("password").or_else(|| params.get("pass"))?;
    let mut found = None;
    for user in users {
        let name: bool = user.username.as_bytes().ct_eq(username.as_bytes()).into();
        let pass: bool = user.password.as_bytes().ct_eq(password.as_bytes()).into();
        if name && pass {
            found = Some(user);
        }
    }
    found
}

/// An integer parameter as smsbox reads it: absent or not a number is -1
/// ("not set").
fn int(params: &Params, name: &str) -> i32 {
    params
        .get(name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

/// A receiver smsbox accepts: only digits, `+`, `-` (and it was split on
/// spaces).
fn routable(number: &str) -> bool {
    number
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'+' || b == b'-')
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_owned)
}

/// Checks a request as smsbox does, in smsbox's order.
fn parse(users: &[SendsmsUser], params: &Params, now_secs: i64) -> Result<Request, Refusal> {
    let user = authorize(users, params).ok_or(Refusal::Unauthorized)?;
    let to = params.get("to").ok_or(Refusal::NoReceiver)?;
    if to.is_empty() {
        return Err(Refusal::EmptyReceiver);
    }
    let sender = user
        .forced_sender
        .clone()
        .or_else(|| non_empty(params.get("from")))
        .or_else(|| user.default_sender.clone())
        .ok_or(Refusal::NoSender)?;
    let mut seen = BTreeSet::new();
    let mut receivers = Vec::new();
    for number in to.split(' ').filter(|n| !n.is_empty()) {
        if !routable(number) {
            info!(
                receiver = number,
                "sendsms: illegal characters in a receiver; dropped"
            );
        } else if seen.insert(number) {
            receivers.push(number.to_owned());
        }
    }
    if receivers.is_empty() {
        return Err(Refusal::Denied);
    }

    let udh = params.bytes("udh").filter(|u| !u.is_empty());
    if udh
        .as_ref()
        .is_some_and(|u| usize::from(u[0]) + 1 != u.len())
    {
        return Err(Refusal::Misformed("UDH"));
    }
    let dlr_mask = int(params, "dlr-mask");
    let ranges: [(&str, &'static str, i32, i32); 11] = [
        ("dlr-mask", "DLR-Mask", -1, 66),
        ("mclass", "MClass", -1, 3),
        ("pid", "PID", -1, 255),
        ("rpi", "RPI", -1, 2),
        ("alt-dcs", "Alt-DCS", -1, 1),
        ("mwi", "MWI", -1, 7),
        ("coding", "Coding", -1, 2),
        ("compress", "Compress", -1, 1),
        ("validity", "Validity", -1, i32::MAX),
        ("deferred", "Deferred", -1, i32::MAX),
        ("priority", "Priority", -1, 3),
    ];
    for (name, shown, low, high) in ranges {
        if !(low..=high).contains(&int(params, name)) {
            return Err(Refusal::Misformed(shown));
        }
    }
    let coding = int(params, "coding").max(text::coding::SEVEN_BIT);

    let charset = non_empty(params.get("charset"));
    if charset
        .as_deref()
        .is_some_and(|c| !text::is_known_charset(c))
    {
        return Err(Refusal::Charset);
    }
    let raw = params.bytes("text").unwrap_or_default();
    let (text, binary) = match coding {
        text::coding::EIGHT_BIT => {
            let shown = text::decode_mo(&raw, coding, charset.as_deref()).text;
            (shown, Some(raw))
        }
        // smsbox reads UCS-2 text as UTF-16BE unless a charset says
        // otherwise.
        text::coding::UCS2 if charset.is_none() => {
            if raw.len() % 2 != 0 {
                return Err(Refusal::Charset);
            }
            (text::decode_mo(&raw, coding, None).text, None)
        }
        _ => {
            let charset = charset.as_deref().unwrap_or("UTF-8");
            // Bytes that are not UTF-8 without a charset saying what they
            // are would be guesswork; refused rather than mangled.
            if charset.eq_ignore_ascii_case("UTF-8") && std::str::from_utf8(&raw).is_err() {
                return Err(Refusal::Charset);
            }
            let decoded = text::decode_mo(&raw, text::coding::SEVEN_BIT, Some(charset));
            (decoded.text, None)
        }
    };

    let smsc = user
        .forced_smsc
        .clone()
        .or_else(|| non_empty(params.get("smsc")))
        .or_else(|| user.default_smsc.clone());
    // smsbox turns minutes into the absolute time the bearerbox expects.
    let absolute = |minutes: i32| {
        if minutes < 0 {
            -1
        } else {
            i32::try_from(now_secs + i64::from(minutes) * 60).unwrap_or(i32::MAX)
        }
    };
    let options = MtOptions {
        dlr_url: non_empty(params.get("dlr-url")),
        mclass: int(params, "mclass"),
        mwi: int(params, "mwi"),
        pid: int(params, "pid"),
        alt_dcs: int(params, "alt-dcs"),
        rpi: int(params, "rpi"),
        validity: absolute(int(params, "validity")),
        deferred: absolute(int(params, "deferred")),
        priority: int(params, "priority"),
        account: non_empty(params.get("account")),
        binfo: non_empty(params.get("binfo")),
        meta_data: non_empty(params.get("meta-data")),
    };
    Ok(Request {
        username: user.username.clone(),
        sender,
        receivers,
        backend: smsc.clone().unwrap_or_else(|| DEFAULT_BACKEND.to_owned()),
        smsc_id: smsc,
        text,
        coding,
        charset,
        udh,
        binary,
        dlr_mask,
        options,
    })
}

/// The outgoing message for one receiver of `request`.
fn message(request: &Request, receiver: &str, id: u64) -> Message {
    let mut msg = Message::new(
        id,
        Connection::new(&request.backend, receiver),
        Direction::Outgoing,
        request.text.clone(),
    );
    let uuid = *uuid::Uuid::new_v4().as_bytes();
    msg.external_id = Some(uuid::Uuid::from_bytes(uuid).to_string());
    msg.kannel = Some(KannelInfo {
        uuid: Some(uuid),
        shortcode: Some(request.sender.clone()),
        smsc_id: request.smsc_id.clone(),
        coding: request.coding,
        charset: request.charset.clone(),
        udh: request.udh.clone(),
        binary: request.binary.clone(),
        dlr_mask: request.dlr_mask,
        service: Some(request.username.clone()),
        meta_data: None,
        foreign_id: None,
        mt_options: Some(Box::new(request.options.clone())),
        time: None,
    });
    msg
}

/// Answers one sendsms request from one of `users`.
pub async fn handle(ctx: &Context, users: &[SendsmsUser], params: &Params) -> HttpResponse {
    match send(ctx, users, params).await {
        Ok(()) => answer(StatusCode::ACCEPTED, ACCEPTED.to_owned()),
        Err(refusal) => answer(refusal.status(), refusal.to_string()),
    }
}

async fn send(ctx: &Context, users: &[SendsmsUser], params: &Params) -> Result<(), Refusal> {
    let request = parse(users, params, now_micros() / 1_000_000)?;
    let store = ctx.store();
    let messages = request
        .receivers
        .iter()
        .map(|receiver| message(&request, receiver, store.allocate_id()))
        .collect();
    let sent = ctx.intake.send(messages).await.map_err(|e| {
        warn!(error = %e, "sendsms: could not store the messages");
        if e.is_transient() {
            Refusal::StorageUnavailable
        } else {
            Refusal::Storage
        }
    })?;
    let queued = sent.iter().filter(|m| m.status == Status::Queued).count();
    info!(
        user = %request.username,
        backend = %request.backend,
        receivers = request.receivers.len(),
        queued,
        "sendsms stored"
    );
    if queued == 0 {
        return Err(Refusal::AllCancelled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_700_040;

    fn users() -> Vec<SendsmsUser> {
        vec![
            SendsmsUser {
                username: "u".into(),
                password: "p".into(),
                default_sender: None,
                forced_sender: None,
                default_smsc: None,
                forced_smsc: None,
            },
            SendsmsUser {
                username: "u2".into(),
                password: "p2".into(),
                default_sender: Some("9999".into()),
                forced_sender: None,
                default_smsc: Some("tigo".into()),
                forced_smsc: None,
            },
        ]
    }

    fn parsed(query: &str) -> Result<Request, Refusal> {
        parse(&users(), &Params::from_query(query), NOW)
    }

    fn refusal(query: &str) -> String {
        match parsed(query) {
            Err(r) => format!("{} {r}", r.status().as_u16()),
            Ok(r) => panic!("{query}: expected a refusal, got {r:?}"),
        }
    }

    /// Each answer as smsbox 1.4.5 gave it for the same query.
    #[test]
    fn refusals_are_smsboxs_in_smsboxs_order() {
        let ok = "username=u&password=p&from=5&to=1&text=x";
        for (query, expected) in [
            ("", "403 Authorization failed for sendsms"),
            ("username=u", "403 Authorization failed for sendsms"),
            (
                "username=u&password=bad&to=1&text=x",
                "403 Authorization failed for sendsms",
            ),
            (
                "username=u&password=p&text=x&coding=9",
                "400 Missing receiver number, rejected",
            ),
            (
                "username=u&password=p&to=&text=x&from=5",
                "400 Empty receiver number not allowed, rejected",
            ),
            (
                "username=u&password=p&to=1&text=x&coding=9",
                "400 Sender missing and no global set, rejected",
            ),
            (
                "username=u&password=p&to=1&text=x&from=",
                "400 Sender missing and no global set, rejected",
            ),
            (
                "username=u&password=p&to=abc&text=x&from=5&coding=9",
                "400 Number(s) has/have been denied by white- and/or black-lists.",
            ),
            (
                "username=u&password=p&to=+++&from=5&text=x",
                "400 Number(s) has/have been denied by white- and/or black-lists.",
            ),
        ] {
            assert_eq!(refusal(query), expected, "{query}");
        }
        for (extra, expected) in [
            ("udh=%06&dlr-mask=99", "UDH"),
            ("udh=%06%05", "UDH"),
            ("dlr-mask=67", "DLR-Mask"),
            ("dlr-mask=-2", "DLR-Mask"),
            ("mwi=9&dlr-mask=99", "DLR-Mask"),
            ("mwi=-2&mclass=-2", "MClass"),
            ("pid=999&mclass=9", "MClass"),
            ("mwi=9&pid=999", "PID"),
            ("coding=9&pid=999", "PID"),
            ("rpi=3", "RPI"),
            ("alt-dcs=3", "Alt-DCS"),
            ("mwi=8", "MWI"),
            ("coding=3", "Coding"),
            ("coding=-2", "Coding"),
            ("validity=-1&coding=9", "Coding"),
            ("compress=3", "Compress"),
            ("validity=-5", "Validity"),
            ("deferred=-5", "Deferred"),
            ("coding=9&priority=9", "Coding"),
            ("priority=5", "Priority"),
        ] {
            assert_eq!(
                refusal(&format!("{ok}&{extra}")),
                format!("400 {expected} field misformed, rejected"),
                "{extra}"
            );
        }
        for extra in [
            "charset=FOO",
            "coding=2&charset=FOO",
            "priority=-1&charset=FOO",
        ] {
            assert_eq!(
                refusal(&format!("{ok}&{extra}")),
                "400 Charset or body misformed, rejected",
                "{extra}"
            );
        }
        assert_eq!(
            refusal(&format!("{ok}&priority=9&charset=FOO")),
            "400 Priority field misformed, rejected"
        );
    }

    #[test]
    fn what_smsbox_accepts_is_accepted() {
        let ok = "username=u&password=p&from=5&to=1&text=x";
        for extra in [
            "coding=abc",
            "coding=-1",
            "mclass=abc",
            "dlr-mask=abc",
            "dlr-mask=66",
            "dlr-mask=0",
            "validity=abc",
            "validity=-1&deferred=-1",
            "priority=abc",
            "priority=0",
            "udh=%02%00%00",
            "smsc=nosuch",
            "meta-data=abc",
        ] {
            assert!(parsed(&format!("{ok}&{extra}")).is_ok(), "{extra}");
        }
        // smsbox's aliases for the credentials, and an empty text.
        assert!(parsed("user=u&pass=p&to=1&text=&from=5").is_ok());
        assert!(parsed("username=u&password=p&to=1&from=5").is_ok());
    }

    #[test]
    fn receivers_split_on_spaces_and_bad_ones_are_dropped() {
        let r = parsed("username=u&password=p&from=5&to=1+%2B2-3+abc++1&text=x").unwrap();
        assert_eq!(r.receivers, ["1", "+2-3"]);
    }

    #[test]
    fn the_users_defaults_and_forced_values_apply() {
        let r = parsed("username=u2&password=p2&to=1&text=x").unwrap();
        assert_eq!((r.sender.as_str(), r.backend.as_str()), ("9999", "tigo"));
        assert_eq!(r.smsc_id.as_deref(), Some("tigo"));
        let r = parsed("username=u&password=p&from=5&to=1&text=x").unwrap();
        assert_eq!((r.backend.as_str(), r.smsc_id), (DEFAULT_BACKEND, None));
        let mut forced = users();
        forced[0].forced_sender = Some("8500".into());
        forced[0].forced_smsc = Some("mtn".into());
        let p = Params::from_query("username=u&password=p&from=5&to=1&text=x&smsc=tigo");
        let r = parse(&forced, &p, NOW).unwrap();
        assert_eq!((r.sender.as_str(), r.backend.as_str()), ("8500", "mtn"));
    }

    #[test]
    fn text_is_read_by_coding_and_charset() {
        let base = "username=u&password=p&from=5&to=1";
        let r = parsed(&format!("{base}&text=h%E9llo&charset=ISO-8859-1")).unwrap();
        assert_eq!(r.text, "héllo");
        assert_eq!(
            refusal(&format!("{base}&text=h%E9llo")),
            "400 Charset or body misformed, rejected"
        );
        let r = parsed(&format!("{base}&text=%00h%00%E9&coding=2")).unwrap();
        assert_eq!((r.text.as_str(), r.coding), ("hé", 2));
        let r = parsed(&format!("{base}&text=h%C3%A9&coding=2&charset=UTF-8")).unwrap();
        assert_eq!(r.text, "hé");
        let r = parsed(&format!("{base}&text=%FF%00&coding=1&udh=%02%00%00")).unwrap();
        assert_eq!(r.binary.as_deref(), Some(&[0xff, 0][..]));
        assert_eq!(r.udh.as_deref(), Some(&[2, 0, 0][..]));
        assert_eq!(r.coding, 1);
    }

    #[test]
    fn mt_fields_are_kept_with_validity_and_deferred_made_absolute() {
        let r = parsed(
            "username=u&password=p&from=5&to=1&text=x&mclass=1&mwi=2&pid=65&alt-dcs=1&rpi=1\
             &validity=1440&deferred=0&priority=3&account=a&binfo=b&meta-data=%3Fsmpp%3Fx%3D1\
             &dlr-mask=27&dlr-url=http%3A%2F%2Fh%2Fd%3Ft%3D%25d",
        )
        .unwrap();
        let o = &r.options;
        assert_eq!(
            (o.mclass, o.mwi, o.pid, o.alt_dcs, o.rpi, o.priority),
            (1, 2, 65, 1, 1, 3)
        );
        // As smsbox put them on the wire for validity=1440, deferred=0.
        assert_eq!((o.validity, o.deferred), (1_795_786_440, 1_795_700_040));
        assert_eq!(o.dlr_url.as_deref(), Some("http://h/d?t=%d"));
        assert_eq!(o.meta_data.as_deref(), Some("?smpp?x=1"));
        assert_eq!(
            (o.account.as_deref(), o.binfo.as_deref()),
            (Some("a"), Some("b"))
        );
        assert_eq!(r.dlr_mask, 27);
    }
}
