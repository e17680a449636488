//! `group = sms-service` to `[[sms_services]]`, and the smsbox keys that
//! shape services to `[smsbox]`, as urltrans.c's `create_onetrans` and
//! smsbox.c's `init_smsbox` read them.

use std::collections::BTreeSet;

use super::{Converter, Group, KannelConf, Var};
use crate::escape::{EscapeError, Pattern};

/// The keys read as booleans (`cfg_get_bool`).
const FLAGS: [&str; 7] = [
    "catch-all",
    "concatenation",
    "omit-empty",
    "assume-plain-text",
    "accept-x-kannel-headers",
    "strip-keyword",
    "send-sender",
];

/// The keys Kannel splits on `;`.
const LISTS: [&str; 7] = [
    "aliases",
    "accepted-smsc",
    "accepted-account",
    "allowed-prefix",
    "denied-prefix",
    "allowed-receiver-prefix",
    "denied-receiver-prefix",
];

/// The keys taken as they are.
const TEXTS: [&str; 22] = [
    "name",
    "keyword",
    "keyword-regex",
    "forced-smsc",
    "default-smsc",
    "faked-sender",
    "split-chars",
    "split-suffix",
    "header",
    "footer",
    "prefix",
    "suffix",
    "accepted-smsc-regex",
    "accepted-account-regex",
    "allowed-prefix-regex",
    "denied-prefix-regex",
    "allowed-receiver-prefix-regex",
    "denied-receiver-prefix-regex",
    "white-list-regex",
    "black-list-regex",
    "dlr-url",
    "alt-charset",
];

/// The action keys in `create_onetrans`'s order: the first set wins.
const ACTIONS: [&str; 7] = [
    "get-url", "url", "post-url", "post-xml", "file", "text", "exec",
];

/// The actions that fetch a URL.
const URLS: [&str; 4] = ["get-url", "url", "post-url", "post-xml"];

/// Every sms-service smsbox would run, as TOML tables; notes in `out`.
pub(super) fn convert(conf: &KannelConf, out: &mut Converter) -> Vec<toml::Value> {
    conf.all("sms-service")
        .filter_map(|group| one(group, out).map(toml::Value::Table))
        .collect()
}

fn subject(group: &Group) -> String {
    match group.get("keyword").or_else(|| group.get("keyword-regex")) {
        Some(var) => format!("sms-service {}={:?}", var.key, var.value),
        None => "sms-service".to_owned(),
    }
}

fn one(group: &Group, out: &mut Converter) -> Option<toml::Table> {
    let subject = subject(group);
    let refuse = match (group.get("keyword"), group.get("keyword-regex")) {
        (None, None) => Some("no keyword or keyword-regex; Kannel's smsbox refuses to start"),
        (Some(_), Some(_)) => {
            Some("both keyword and keyword-regex; Kannel's smsbox refuses to start")
        }
        _ => None,
    };
    let action = ACTIONS.iter().find_map(|key| group.get(key));
    let refuse = refuse.or(action
        .is_none()
        .then_some("no get-url, post-url, post-xml, file, text or exec; smsbox refuses it"));
    if let Some(why) = refuse {
        out.note(&group.at, subject, format!("not carried over: {why}"));
        return None;
    }
    let mut service = toml::Table::new();
    let mut used = BTreeSet::new();
    if let Some(action) = action {
        used.insert(action.key.as_str());
        // An empty text is an empty answer smsbox gives (then
        // reply-emptymessage, or nothing with omit-empty): carried too.
        if action.key == "text" && !action.lossy && action.value.trim().is_empty() {
            service.insert("text".to_owned(), action.value.clone().into());
        } else if URLS.contains(&action.key.as_str()) && action.value.trim().is_empty() {
            // smsbox takes an empty URL and fails to fetch it for every MO
            // the service matches, answering reply-couldnotfetch; rapidbox
            // runs it the same way rather than refusing the file.
            service.insert(action.key.replace('-', "_"), "".into());
            let message = "empty: every MO this service takes is answered with \
                           reply-couldnotfetch, in smsbox and in rapidbox";
            out.note(
                &action.at,
                format!("{subject} {}", action.key),
                message.into(),
            );
        } else if out.check_usable(&subject, action) {
            let key = action.key.replace('-', "_");
            let value = if action.key == "exec" {
                exec(action, &subject, out)
            } else {
                pattern(action, &subject, out).into()
            };
            service.insert(key, value);
        }
    }
    for var in &group.vars {
        let key = var.key.as_str();
        if used.contains(key) {
            continue;
        }
        let name = key.replace('-', "_");
        if ACTIONS.contains(&key) {
            let message = "not carried over: smsbox uses only the first of get-url, url, \
                           post-url, post-xml, file, text, exec";
            out.note(&var.at, format!("{subject} {key}"), message.into());
        } else if FLAGS.contains(&key) {
            service.insert(name, var.flag().into());
        } else if LISTS.contains(&key) {
            let items: Vec<toml::Value> = var
                .value
                .split(';')
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::from(s.to_owned()))
                .collect();
            service.insert(name, items.into());
        } else if TEXTS.contains(&key) {
            if !var.lossy {
                service.insert(name, var.value.clone().into());
            } else {
                out.check_usable(&subject, var);
            }
        } else if key == "max-messages" || key == "dlr-mask" {
            integer(var, &name, &subject, &mut service, out);
        } else if key == "white-list" || key == "black-list" {
            lists(var, &name, &subject, &mut service, out);
        } else {
            out.skip(&subject, var, super::reasons::NO_SUCH_SETTING);
        }
    }
    Some(service)
}

fn integer(var: &Var, name: &str, subject: &str, service: &mut toml::Table, out: &mut Converter) {
    let Some(n) = var.integer() else {
        out.skip(subject, var, "not a number; Kannel keeps its default too");
        return;
    };
    let value = if name == "max_messages" {
        // A negative max-messages never stops sms_split: every part goes.
        let cap = i64::from(crate::config::SmsService::MAX_PARTS);
        if n < 0 || n > cap {
            let message = format!("becomes {cap}, the most parts rapidbox sends for one reply");
            out.note(&var.at, format!("{subject} max-messages = {n}"), message);
        }
        if n < 0 {
            cap
        } else {
            n.min(cap)
        }
    } else if !(0..=31).contains(&n) {
        out.skip(subject, var, "not a dlr-mask (0 to 31)");
        return;
    } else {
        n
    };
    service.insert(name.to_owned(), value.into());
}

/// white-list and black-list name a URL of numbers that smsbox fetched at
/// start-up; rapidbox takes the numbers themselves.
fn lists(var: &Var, name: &str, subject: &str, service: &mut toml::Table, out: &mut Converter) {
    let message = if name == "white_list" {
        // An empty white list takes nobody: safer than taking everybody.
        service.insert(name.to_owned(), toml::Value::Array(Vec::new()));
        "needs an edit: smsbox fetched the numbers from this URL; list them in white_list \
         (until then the service takes no sender)"
    } else {
        "not carried over, needs an edit: smsbox fetched the numbers from this URL; list \
         them in black_list"
    };
    out.note(
        &var.at,
        format!("{subject} {} = {:?}", var.key, var.value),
        message.into(),
    );
}

/// The pattern as rapidbox compiles it: where smsbox leaves an unknown
/// escape or a final `%` as written, rapidbox needs `%%`.
fn pattern(var: &Var, subject: &str, out: &mut Converter) -> String {
    let mut text = var.value.clone();
    // Each round doubles one `%`; a text has finitely many.
    for _ in 0..=var.value.len() {
        let position = match Pattern::compile(&text) {
            Ok(_) => return text,
            Err(EscapeError::UnknownEscape { position, .. })
            | Err(EscapeError::TrailingPercent { position }) => position,
            Err(EscapeError::UnclosedMeta { .. }) => break,
        };
        let byte = text
            .char_indices()
            .nth(position - 1)
            .map_or(text.len(), |(i, _)| i);
        text.insert(byte, '%');
        let message = "a % that is no escape: written %% so it stays as smsbox left it";
        out.note(&var.at, format!("{subject} {}", var.key), message.into());
    }
    out.note(
        &var.at,
        format!("{subject} {}", var.key),
        "needs an edit: an unclosed %#group#key# escape".into(),
    );
    text
}

/// `exec`'s command line as an argument list: split on blanks, quotes
/// grouping as a shell would. smsbox ran it with /bin/sh; rapidbox runs
/// no shell, so pipes, redirections and `$(...)` stop working.
fn exec(var: &Var, subject: &str, out: &mut Converter) -> toml::Value {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    let mut any = false;
    for c in var.value.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !current.is_empty() {
                    args.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            (None, c) => current.push(c),
        }
    }
    if any || !current.is_empty() {
        args.push(current);
    }
    let shell = ['|', '&', ';', '<', '>', '$', '`', '\\', '*', '?'];
    if var.value.contains(shell) {
        let message = "needs a look: smsbox ran this with /bin/sh, rapidbox runs the program \
                       directly, so shell syntax reaches it as plain arguments";
        out.note(&var.at, format!("{subject} exec"), message.into());
    }
    let args: Vec<toml::Value> = args.into_iter().map(toml::Value::from).collect();
    args.into()
}

/// The smsbox group's keys that [`smsbox`] converts.
pub(super) const SMSBOX_KEYS: [&str; 10] = [
    "reply-couldnotfetch",
    "reply-couldnotrepresent",
    "reply-requestfailed",
    "reply-emptymessage",
    "mo-recode",
    "http-request-retry",
    "http-queue-delay",
    "max-pending-requests",
    "http-timeout",
    "sms-length",
];

/// `[smsbox]` from the smsbox group's keys that shape services.
pub(super) fn smsbox(group: &Group, out: &mut Converter) -> toml::Table {
    let mut table = toml::Table::new();
    for key in [
        "reply-couldnotfetch",
        "reply-requestfailed",
        "reply-emptymessage",
    ] {
        // An empty reply is a reply smsbox sends: empty is carried too.
        let Some(var) = group.get(key) else {
            continue;
        };
        if var.lossy {
            out.check_usable("smsbox", var);
        } else {
            table.insert(key.replace('-', "_"), var.value.clone().into());
        }
    }
    // init_smsbox reads reply-couldnotrepresent from the key
    // reply-couldnotfetch: the first's own key does nothing in 1.4.5.
    if let Some(fetch) = table.get("reply_couldnotfetch").cloned() {
        table.insert("reply_couldnotrepresent".into(), fetch);
    }
    if let Some(var) = group.get("reply-couldnotrepresent") {
        out.skip(
            "smsbox",
            var,
            "smsbox 1.4.5 reads reply-couldnotrepresent from the key reply-couldnotfetch, \
             and so does the conversion",
        );
    }
    if let Some(var) = group.get("mo-recode") {
        table.insert("mo_recode".into(), var.flag().into());
    }
    for key in [
        "http-request-retry",
        "http-queue-delay",
        "max-pending-requests",
        "http-timeout",
        "sms-length",
    ] {
        let Some(var) = group.get(key) else {
            continue;
        };
        match var.integer() {
            Some(n) if key == "http-request-retry" && (0..=100).contains(&n) => {
                table.insert(key.replace('-', "_"), n.into());
            }
            Some(n) if key != "http-request-retry" && n > 0 => {
                table.insert(key.replace('-', "_"), n.into());
            }
            _ => out.skip(
                "smsbox",
                var,
                "out of range for rapidbox (a positive number; retries at most 100)",
            ),
        }
    }
    table
}
