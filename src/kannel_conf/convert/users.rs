//! `group = sendsms-user` to `[[sendsms_users]]`, as urltrans.c reads a
//! sendsms user and smsbox.c's `smsbox_req_handle` picks a sender:
//! `faked-sender`, else the request's `from`, else `default-sender`, else
//! smsbox's `global-sender`. rapidbox's sendsms has no global fallback, so
//! `global-sender` becomes the `default_sender` of each user without one.

use std::collections::BTreeSet;

use super::{reasons, shown, Converter, KannelConf, Var};

/// Each sendsms user rapidbox can take, as a TOML table; notes in `out`.
pub(super) fn convert(
    conf: &KannelConf,
    global_sender: Option<&Var>,
    out: &mut Converter,
) -> Vec<toml::Value> {
    let mut users = Vec::new();
    let mut names = BTreeSet::new();
    for group in conf.all("sendsms-user") {
        let subject = match group.get("username") {
            Some(var) => format!("sendsms-user username={:?}", var.value),
            None => "sendsms-user".to_owned(),
        };
        let why = match (group.get("username"), group.get("password")) {
            (None, _) => Some("no username: nobody could use it"),
            (_, None) => Some("no password; Kannel's smsbox refuses it too"),
            (Some(user), Some(password)) if user.lossy || password.lossy => {
                Some("its username or password is not UTF-8; write the file in UTF-8")
            }
            (Some(user), _) if user.value.trim().is_empty() => Some("an empty username"),
            (_, Some(password)) if password.value.is_empty() => {
                Some("an empty password, which rapidbox does not allow")
            }
            (Some(user), _) if !names.insert(user.value.clone()) => {
                Some("a second user with this username; Kannel's smsbox only ever uses the first")
            }
            _ => None,
        };
        if let Some(why) = why {
            out.note(&group.at, subject, format!("not carried over: {why}"));
            continue;
        }
        let mut user = toml::Table::new();
        let mut used = BTreeSet::from(["username", "password"]);
        for key in ["username", "password"] {
            if let Some(var) = group.get(key) {
                user.insert(key.into(), var.value.clone().into());
            }
        }
        let forced_smsc = group.get("forced-smsc").is_some();
        for (key, name) in [
            ("faked-sender", "forced_sender"),
            ("default-sender", "default_sender"),
            ("forced-smsc", "forced_smsc"),
            ("default-smsc", "default_smsc"),
        ] {
            let Some(var) = group.get(key) else {
                continue;
            };
            used.insert(key);
            if key == "default-smsc" && forced_smsc {
                out.skip(&subject, var, "Kannel ignores it when forced-smsc is set");
            } else if out.check_usable(&subject, var) {
                user.insert(name.into(), var.value.clone().into());
            }
        }
        shaping(group, &subject, &mut used, &mut user, out);
        // With a forced sender Kannel never falls back to global-sender.
        let needs_default =
            !user.contains_key("default_sender") && !user.contains_key("forced_sender");
        if let Some(global) = global_sender.filter(|_| needs_default) {
            user.insert("default_sender".into(), global.value.clone().into());
            let message = "becomes this user's default_sender, as Kannel's sendsms falls back \
                           to it for a request without `from`";
            out.note(
                &global.at,
                format!("smsbox {} for {subject}", shown(global)),
                message.into(),
            );
        }
        for var in group
            .vars
            .iter()
            .filter(|var| !used.contains(var.key.as_str()))
        {
            out.skip(&subject, var, reasons::sendsms_user_key(&var.key));
        }
        users.push(user.into());
    }
    users
}

/// The keys that shape a user's messages and who may send as it, which
/// rapidbox's `[[sendsms_users]]` take under their snake_case names.
fn shaping<'g>(
    group: &'g super::Group,
    subject: &str,
    used: &mut BTreeSet<&'g str>,
    user: &mut toml::Table,
    out: &mut Converter,
) {
    const TEXTS: [&str; 9] = [
        "name",
        "split-chars",
        "split-suffix",
        "header",
        "footer",
        "user-allow-ip",
        "user-deny-ip",
        "white-list-regex",
        "black-list-regex",
    ];
    for var in &group.vars {
        let key = var.key.as_str();
        let name = key.replace('-', "_");
        if TEXTS.contains(&key) {
            if out.check_usable(subject, var) {
                user.insert(name, var.value.clone().into());
            }
        } else if key == "concatenation" {
            user.insert(name, var.flag().into());
        } else if key == "max-messages" {
            match var.integer() {
                Some(n) if n > 0 => {
                    user.insert(name, u32::try_from(n).unwrap_or(u32::MAX).into());
                }
                Some(0) => out.skip(
                    subject,
                    var,
                    "smsbox 1.4.5 never answers a request of a user with max-messages = 0;                      rapidbox refuses the setting",
                ),
                Some(_) => out.skip(
                    subject,
                    var,
                    "a negative cap: rapidbox then sends the whole text, as it does by default",
                ),
                None => out.skip(subject, var, "not a number; Kannel keeps its default too"),
            }
        } else {
            continue;
        }
        used.insert(key);
    }
}
