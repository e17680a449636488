//! A [`KannelConf`] to rapidbox's TOML, as smsbox 1.4.5 would have read it
//! (its `init_smsbox` and urltrans.c's sendsms users):
//!
//! | Kannel | rapidbox |
//! |---|---|
//! | smsbox `bearerbox-host` (default `localhost`) | `kannel.host` |
//! | core `smsbox-port`, then smsbox `bearerbox-port` (default 13001) | `kannel.port` |
//! | core `smsbox-port-ssl`, then smsbox `bearerbox-port-ssl` | `kannel.tls` |
//! | core `ssl-trusted-ca-file`, with TLS | `kannel.tls_ca_file` |
//! | smsbox `smsbox-id`, `global-sender` | `kannel.smsbox_id`, `kannel.global_sender` |
//! | smsbox `sendsms-interface` (default every interface) and `sendsms-port` | `http.listen` |
//! | each `sendsms-user` | `[[sendsms_users]]` (`faked-sender` is `forced_sender`) |
//! | each `sms-service` smsbox accepts | `[[sms_services]]`, keys in snake_case, `;`-lists as lists, `exec` split into arguments |
//! | smsbox `reply-*`, `mo-recode`, `http-request-retry`, `http-queue-delay`, `max-pending-requests`, `http-timeout`, `sms-length` | `[smsbox]` |
//! | smsbox `max-pending-requests` (default 512), with services | also `router.max_deferred`, twice as many |
//!
//! `router.apps` is `["sms_services"]` when there are services, else
//! empty: rapidbox's default apps would echo every MO, and smsbox replied
//! only through sms-services. Everything else becomes a [`Note`] saying
//! why.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use super::{keys, reasons, Group, KannelConf, Location, Var};
use crate::config::Report;

mod services;
mod users;

/// The conversion's result.
#[derive(Debug)]
pub struct Conversion {
    /// rapidbox's configuration, the notes as comments at its top.
    pub toml: String,
    /// Everything not carried over, with why, and what else to know.
    pub notes: Vec<Note>,
    /// What `rapidbox check-config` says of `toml`. Errors mean it needs
    /// an edit before rapidbox runs on it (a TLS bearerbox without a CA
    /// file, say); the notes say which.
    pub report: Report,
}

/// One thing said about the conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub at: Location,
    /// The group, the key and its value, as in the Kannel file.
    pub subject: String,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.subject, self.message)
    }
}

/// Why there is nothing to convert.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(
        "no `group = smsbox`: there is no smsbox to convert \
         (Kannel's smsbox refuses such a file too: \"No 'smsbox' group in configuration\")"
    )]
    NoSmsbox,
}

/// Kannel's smsbox's bearerbox port when nothing sets one.
const DEFAULT_BEARERBOX_PORT: i64 = 13001;

/// Converts `conf`. Fails only without an smsbox group.
pub fn convert(conf: &KannelConf) -> Result<Conversion, ConvertError> {
    let smsbox = conf.single("smsbox").ok_or(ConvertError::NoSmsbox)?;
    let mut out = Converter::default();
    out.duplicated_singles(conf);
    let mut doc = toml::Table::new();
    doc.insert(
        "kannel".into(),
        out.kannel(conf.single("core"), smsbox).into(),
    );
    if let Some(http) = out.http(smsbox) {
        doc.insert("http".into(), http.into());
    }
    let services = services::convert(conf, &mut out);
    let mut router = toml::Table::new();
    let apps = if services.is_empty() {
        out.note(
            &smsbox.at,
            "rapidbox's apps".into(),
            "none: rapidbox's default apps (optout, echo) would answer every MO, and smsbox \
             answered only through sms-services, of which there are none; MOs are stored \
             and acknowledged, and nothing replies"
                .into(),
        );
        Vec::new()
    } else {
        vec![toml::Value::from("sms_services")]
    };
    router.insert("apps".into(), toml::Value::Array(apps));
    let shaping = services::smsbox(smsbox, &mut out);
    // smsbox has up to max-pending-requests fetches under way. rapidbox's
    // services fetch for MOs deferred ([router] max_deferred), each of
    // which holds its slot for its fetch and then its commit: twice as
    // many slots as fetches keep every fetch busy, as smsbox keeps its own.
    if !services.is_empty() {
        let pending = shaping
            .get("max_pending_requests")
            .and_then(toml::Value::as_integer)
            .unwrap_or(crate::config::SmsboxConfig::default().max_pending_requests as i64);
        router.insert(
            "max_deferred".into(),
            toml::Value::from(pending.saturating_mul(2)),
        );
    }
    doc.insert("router".into(), router.into());
    if !services.is_empty() {
        doc.insert("sms_services".into(), toml::Value::Array(services));
    }
    if !shaping.is_empty() {
        doc.insert("smsbox".into(), shaping.into());
    }
    let global_sender = smsbox.get("global-sender").filter(|var| usable(var));
    let users = users::convert(conf, global_sender, &mut out);
    if !users.is_empty() {
        doc.insert("sendsms_users".into(), toml::Value::Array(users));
    }
    out.other_groups(conf);

    let body = toml::to_string(&doc).unwrap_or_else(|e| format!("# cannot write TOML: {e}\n"));
    let mut text = String::from(
        "# rapidbox configuration, converted from Kannel's by `rapidbox import-kannel-conf`.\n\
         # Check it with `rapidbox check-config FILE`; rapidbox.example.toml has every key.\n",
    );
    if !out.notes.is_empty() {
        text.push_str("#\n# Not carried over, and worth knowing:\n");
        for note in &out.notes {
            text.push_str(&format!("#   {}\n", comment_safe(&note.to_string())));
        }
    }
    text.push('\n');
    text.push_str(&body);
    let report = crate::config::check(&text);
    Ok(Conversion {
        toml: text,
        notes: out.notes,
        report,
    })
}

/// A line safe in a TOML comment: control characters (which TOML does not
/// allow there, and which end a line) are shown as `?`.
fn comment_safe(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

/// Whether a value can be carried: UTF-8, and not empty.
fn usable(var: &Var) -> bool {
    !var.lossy && !var.value.trim().is_empty()
}

/// `KEY = VALUE` for a note; secrets are not repeated.
fn shown(var: &Var) -> String {
    if var.key.contains("password") || var.key.contains("secret") {
        format!("{} = (hidden)", var.key)
    } else {
        format!("{} = {:?}", var.key, var.value)
    }
}

/// The notes gathered while converting.
#[derive(Debug, Default)]
pub(super) struct Converter {
    notes: Vec<Note>,
}

impl Converter {
    fn note(&mut self, at: &Location, subject: String, message: String) {
        self.notes.push(Note {
            at: at.clone(),
            subject,
            message,
        });
    }

    /// Notes `var` of `subject` as not carried over, for `why`.
    fn skip(&mut self, subject: &str, var: &Var, why: &str) {
        let message = format!("not carried over: {why}");
        self.note(&var.at, format!("{subject} {}", shown(var)), message);
    }

    /// Notes `var` of `subject` as not carried over when it cannot be.
    /// `true` when it can.
    fn check_usable(&mut self, subject: &str, var: &Var) -> bool {
        if var.lossy {
            self.skip(
                subject,
                var,
                "not UTF-8; write the file in UTF-8 and convert it again",
            );
        } else if var.value.trim().is_empty() {
            self.skip(subject, var, "empty");
        }
        usable(var)
    }

    fn duplicated_singles(&mut self, conf: &KannelConf) {
        for known in keys::GROUPS.iter().filter(|group| group.single) {
            let Some(last) = conf.single(known.name) else {
                continue;
            };
            for earlier in conf.all(known.name).filter(|group| group.at != last.at) {
                let message = format!(
                    "not carried over: Kannel uses only the last group {}, at {}",
                    known.name, last.at
                );
                self.note(&earlier.at, format!("group {}", known.name), message);
            }
        }
    }

    /// `[kannel]`: the bearerbox connection, from core and smsbox.
    fn kannel(&mut self, core: Option<&Group>, smsbox: &Group) -> toml::Table {
        let mut kannel = toml::Table::new();
        let mut used = BTreeSet::from(["bearerbox-host", "bearerbox-port", "bearerbox-port-ssl"]);
        let host = smsbox
            .get("bearerbox-host")
            .filter(|var| self.check_usable("smsbox", var));
        let host = host.map_or("localhost", |var| var.value.as_str());
        kannel.insert("host".into(), host.into());

        let mut port = DEFAULT_BEARERBOX_PORT;
        let mut tls = false;
        let sources = [
            (core, "core", "smsbox-port"),
            (Some(smsbox), "smsbox", "bearerbox-port"),
        ];
        for (group, name, key) in sources {
            match group
                .and_then(|group| group.get(key))
                .map(|var| (var, var.integer()))
            {
                Some((_, Some(n))) if (1..=65535).contains(&n) => port = n,
                Some((var, Some(_))) => self.skip(name, var, "not a port number (1 to 65535)"),
                Some((var, None)) => self.skip(name, var, "not a number; Kannel ignores it too"),
                None => {}
            }
        }
        kannel.insert("port".into(), port.into());
        for (group, key) in [
            (core, "smsbox-port-ssl"),
            (Some(smsbox), "bearerbox-port-ssl"),
        ] {
            if let Some(var) = group.and_then(|group| group.get(key)) {
                tls = var.flag();
            }
        }
        if tls {
            kannel.insert("tls".into(), true.into());
            let message = format!(
                "rapidbox also checks that the bearerbox's certificate names {host:?}, which \
                 Kannel's smsbox did not; set kannel.tls_server_name if it names another"
            );
            self.note(&smsbox.at, "kannel.tls".into(), message);
            match core.and_then(|core| core.get("ssl-trusted-ca-file")) {
                Some(ca) if self.check_usable("core", ca) => {
                    kannel.insert("tls_ca_file".into(), ca.value.clone().into());
                }
                _ => self.note(
                    &smsbox.at,
                    "kannel.tls_ca_file".into(),
                    "needs an edit: without core's ssl-trusted-ca-file Kannel's smsbox did not \
                     check the bearerbox's certificate; rapidbox always checks it: set \
                     kannel.tls_ca_file to the PEM file of the CA that signed it"
                        .into(),
                ),
            }
        }
        for (key, name) in [
            ("smsbox-id", "smsbox_id"),
            ("global-sender", "global_sender"),
        ] {
            used.insert(key);
            if let Some(var) = smsbox
                .get(key)
                .filter(|var| self.check_usable("smsbox", var))
            {
                kannel.insert(name.into(), var.value.clone().into());
            }
        }
        // smsbox asks the bearerbox for no delivery reports on its replies
        // unless a service, an answer's X-Kannel-DLR-Mask or a sendsms
        // request asks; rapidbox's default (27) asks for every reply.
        kannel.insert("dlr_mask".into(), 0.into());
        match core {
            Some(core) => self.core_rest(core, tls),
            None => self.note(
                &smsbox.at,
                "(no group core)".into(),
                format!(
                    "Kannel's smsbox 1.4.5 refuses to start without one (\"Trying to fetch \
                     variable `smsbox-port' in non-existing group\"); rapidbox takes port {port}"
                ),
            ),
        }
        used.extend(["sendsms-port", "sendsms-interface"]);
        used.extend(services::SMSBOX_KEYS);
        for var in smsbox
            .vars
            .iter()
            .filter(|var| !used.contains(var.key.as_str()))
        {
            // The default URL is the one rapidbox serves.
            if var.key == "sendsms-url" && var.value == "/cgi-bin/sendsms" {
                continue;
            }
            self.skip("smsbox", var, reasons::smsbox_key(&var.key));
        }
        kannel
    }

    /// Notes core's keys beyond the port and TLS: smsbox's few, and the
    /// bearerbox's many in one note.
    fn core_rest(&mut self, core: &Group, tls: bool) {
        let mut bearerbox_keys = Vec::new();
        for var in &core.vars {
            match var.key.as_str() {
                "smsbox-port" | "smsbox-port-ssl" => {}
                "ssl-trusted-ca-file" if tls => {}
                key => match reasons::core_key_read_by_smsbox(key) {
                    Some(why) => self.skip("core", var, why),
                    None => bearerbox_keys.push(var.key.as_str()),
                },
            }
        }
        if !bearerbox_keys.is_empty() {
            let message = "not carried over: the bearerbox's settings, not smsbox's: \
                           nothing for rapidbox; the bearerbox keeps reading them";
            let subject = format!("core {}", bearerbox_keys.join(", "));
            self.note(&core.at, subject, message.into());
        }
    }

    /// `[http]`: smsbox's sendsms port, when it opened one.
    fn http(&mut self, smsbox: &Group) -> Option<toml::Table> {
        let var = smsbox.get("sendsms-port");
        let port = match var.map(|var| (var, var.integer())) {
            Some((_, Some(n))) if (1..=65535).contains(&n) => u16::try_from(n).ok(),
            Some((var, Some(n))) if n > 65535 => {
                self.skip("smsbox", var, "not a port number (1 to 65535)");
                return None;
            }
            // Kannel opens no sendsms port for 0, a negative number or none.
            _ => None,
        };
        let Some(port) = port else {
            let subject = match var {
                Some(var) => format!("smsbox {}", shown(var)),
                None => "smsbox (no sendsms-port)".into(),
            };
            let message = "smsbox served no HTTP; rapidbox always does, on [http] listen's \
                           default 127.0.0.1:8080";
            self.note(
                var.map_or(&smsbox.at, |var| &var.at),
                subject,
                message.into(),
            );
            return None;
        };
        let ip = match smsbox.get("sendsms-interface") {
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(var) => self.interface(var, port)?,
        };
        let listen = SocketAddr::new(ip, port);
        if !ip.is_loopback() {
            let message = "rapidbox serves rapidsms-httprouter's endpoints (/router/...) on \
                           this address too, which smsbox did not: set [http] password, or \
                           listen where only trusted clients reach";
            let at = smsbox.get("sendsms-port").map_or(&smsbox.at, |var| &var.at);
            self.note(at, format!("[http] listen = \"{listen}\""), message.into());
        }
        let mut http = toml::Table::new();
        http.insert("listen".into(), listen.to_string().into());
        Some(http)
    }

    /// The address of `sendsms-interface`: an IP address, or a name that
    /// resolves to one (Kannel listens on its first IPv4 address).
    fn interface(&mut self, var: &Var, port: u16) -> Option<IpAddr> {
        if !self.check_usable("smsbox", var) {
            return None;
        }
        if let Ok(ip) = var.value.trim().parse::<IpAddr>() {
            return Some(ip);
        }
        let resolved = (var.value.trim(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.find(SocketAddr::is_ipv4).map(|addr| addr.ip()));
        match resolved {
            Some(ip) => {
                let message = format!("resolved to {ip} for [http] listen");
                self.note(&var.at, format!("smsbox {}", shown(var)), message);
                Some(ip)
            }
            None => {
                self.skip("smsbox", var, "not an IP address, and it does not resolve");
                None
            }
        }
    }

    /// Every group but core, smsbox, sendsms-user and sms-service: one
    /// note each.
    fn other_groups(&mut self, conf: &KannelConf) {
        for group in &conf.groups {
            if matches!(
                group.name,
                "core" | "smsbox" | "sendsms-user" | "sms-service"
            ) {
                continue;
            }
            let label = [
                "keyword",
                "keyword-regex",
                "smsbox-id",
                "smsc-id",
                "id",
                "name",
            ]
            .iter()
            .find_map(|key| group.get(key))
            .map(|var| format!(" {}", shown(var)))
            .unwrap_or_default();
            let message = format!("not carried over: {}", reasons::group(group.name));
            self.note(&group.at, format!("{}{label}", group.name), message);
        }
    }
}

#[cfg(test)]
mod tests;
