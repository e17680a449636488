//! Checks that need more than a type: ranges, required keys, keys that
//! only make sense together, and the warnings.

use std::collections::BTreeSet;

use super::apps::{same_word, AppConfig, KeywordConfig, OnFailure, OptoutConfig, WebhookConfig};
use super::report::{KeyPath, Problem, Report};
use super::sections::{
    HttpConfig, KannelConfig, PostgresConfig, RouterConfig, StoreBackend, StoreConfig,
};
use super::{smsbox_id_warning, Config};
use crate::template::Template;

/// The smallest `max_frame_bytes` that holds an `sms` frame with a
/// full-length text, its addresses, UUID, DLR URL and meta-data.
const MIN_FRAME_BYTES: usize = 1024;

/// Every semantic problem of `config`. Apps named in `broken` had sections
/// that could not be read; that has been reported, so they are not
/// reported again as missing.
pub(super) fn check(config: &Config, broken: &BTreeSet<String>) -> Report {
    let mut report = Report::default();
    let root = KeyPath::root();
    store(&config.store, &root.key("store"), &mut report);
    kannel(&config.kannel, &root.key("kannel"), &mut report);
    http(&config.http, &root.key("http"), &mut report);
    metrics(config, &root.key("metrics"), &mut report);
    if config.runtime.worker_threads > super::RuntimeConfig::MAX_WORKER_THREADS {
        error(
            &mut report,
            &root.key("runtime").key("worker_threads"),
            format!(
                "at most {} (0: one less than the CPUs)",
                super::RuntimeConfig::MAX_WORKER_THREADS
            ),
        );
    }
    router(config, broken, &root.key("router"), &mut report);
    push(config, &root.key("push"), &mut report);
    sendsms_users(config, &root.key("sendsms_users"), &mut report);
    console(config, &root, &mut report);
    super::services_check::check(config, &root, &mut report);
    for (name, backend) in &config.backends {
        let at = root.key("backends").key(name);
        if backend.transport == super::TransportKind::Kannel && !config.kannel.enabled {
            error(
                &mut report,
                &at.key("transport"),
                "kannel, but kannel.enabled = false",
            );
        }
        if backend.transport == super::TransportKind::Push && config.push.url_for(name).is_none() {
            error(&mut report, &at.key("transport"), "push, but [push] has no URL for it (set push.url, push.urls.NAME or push.urls.default)");
        }
    }
    let at = root.key("apps");
    for (name, app) in &config.apps {
        let at = at.key(name);
        if !config.router.apps.contains(name) {
            warning(&mut report, &at, "not listed in router.apps, so not used");
        }
        match app {
            AppConfig::Echo(echo) => reply(&echo.template, &at.key("template"), &mut report),
            AppConfig::Keyword(keyword) => keyword_app(keyword, &at, &mut report),
            AppConfig::Webhook(webhook) => webhook_app(webhook, &at, &mut report),
            AppConfig::Optout(optout) => optout_app(optout, &at, &mut report),
            // Its settings are [[sms_services]] and [smsbox], checked above.
            AppConfig::SmsServices(_) => {}
        }
    }
    report.sort();
    report
}

fn push(config: &Config, at: &KeyPath, report: &mut Report) {
    let push = &config.push;
    if push.url.is_some() && !push.urls.is_empty() {
        error(
            report,
            &at.key("urls"),
            "give either push.url or push.urls, not both",
        );
    }
    if let Some(url) = &push.url {
        if let Err(e) = super::transport::check_push_url(url) {
            error(report, &at.key("url"), e);
        }
    }
    for (name, url) in &push.urls {
        if let Err(e) = super::transport::check_push_url(url) {
            error(report, &at.key("urls").key(name), e);
        }
    }
    if push.timeout_ms == 0 {
        error(report, &at.key("timeout_ms"), "must be at least 1");
    }
    if push.max_in_flight == 0 {
        error(report, &at.key("max_in_flight"), "must be at least 1");
    }
    if push.max_attempts == 0 {
        error(report, &at.key("max_attempts"), "must be at least 1");
    }
    for (key, value) in [
        ("sweep_secs", push.sweep_secs),
        ("retry_secs", push.retry_secs),
    ] {
        if value == 0 {
            error(report, &at.key(key), "must be at least 1");
        }
    }
}

fn sendsms_users(config: &Config, at: &KeyPath, report: &mut Report) {
    let mut seen = BTreeSet::new();
    for (i, user) in config.sendsms_users.iter().enumerate() {
        let at = at.index(i);
        username(&user.username, "sendsms", &mut seen, &at, report);
        if user.password.is_empty() {
            error(
                report,
                &at.key("password"),
                "empty: a sendsms user needs a password",
            );
        }
        for (key, value) in [
            ("default_sender", &user.default_sender),
            ("forced_sender", &user.forced_sender),
            ("default_smsc", &user.default_smsc),
            ("forced_smsc", &user.forced_smsc),
            ("name", &user.name),
            ("user_deny_ip", &user.user_deny_ip),
            ("user_allow_ip", &user.user_allow_ip),
        ] {
            blank(
                value.as_deref(),
                &at.key(key),
                "empty: remove the key instead",
                report,
            );
        }
        for (key, value) in [
            ("user_deny_ip", &user.user_deny_ip),
            ("user_allow_ip", &user.user_allow_ip),
        ] {
            let bad = value.as_deref().is_some_and(|list| {
                list.split(';').any(|p| {
                    let p = p.trim();
                    p.is_empty()
                        || !p
                            .bytes()
                            .all(|b| b.is_ascii_hexdigit() || b"*.:".contains(&b))
                })
            });
            if bad {
                error(
                    report,
                    &at.key(key),
                    "must be `;`-separated addresses, `*` for any number in a place",
                );
            }
        }
        // A space is a fine split character; nothing at all is not.
        if user.split_chars.as_deref() == Some("") {
            error(
                report,
                &at.key("split_chars"),
                "empty: remove the key instead",
            );
        }
        // smsbox 1.4.5 never answers a request of a user with
        // max-messages = 0; 255 is the most parts a concatenation UDH
        // can count.
        if user.max_messages.is_some_and(|n| n == 0 || n > 255) {
            error(
                report,
                &at.key("max_messages"),
                "must be 1 to 255 (leave it out for no limit)",
            );
        }
    }
}

/// A user's `username` (at `at`): not empty, at most
/// [`MAX_USERNAME_CHARS`](super::MAX_USERNAME_CHARS) characters, and not
/// one of the `kind` users' names already `seen`.
fn username<'a>(
    name: &'a str,
    kind: &str,
    seen: &mut BTreeSet<&'a str>,
    at: &KeyPath,
    report: &mut Report,
) {
    let max = super::MAX_USERNAME_CHARS;
    if name.trim().is_empty() {
        error(report, &at.key("username"), "empty: give the user a name");
    } else if name.chars().count() > max {
        error(
            report,
            &at.key("username"),
            format!("longer than {max} characters"),
        );
    } else if !seen.insert(name) {
        error(
            report,
            &at.key("username"),
            format!("{name:?} is already a {kind} user"),
        );
    }
}

fn console(config: &Config, root: &KeyPath, report: &mut Report) {
    let mut seen = BTreeSet::new();
    for (i, user) in config.console_users.iter().enumerate() {
        let at = root.key("console_users").index(i);
        username(&user.username, "console", &mut seen, &at, report);
        if let Err(e) = super::check_password_hash(&user.password_hash) {
            error(report, &at.key("password_hash"), e);
        }
    }
    let at = root.key("console");
    if !config.console_users.is_empty()
        && !config.console.secure_cookie
        && !config.http.listen.ip().is_loopback()
    {
        warning(
            report,
            &at.key("secure_cookie"),
            format!(
                "false while the console listens on {}: console passwords and session cookies \
                 cross the network unencrypted; serve it through a TLS proxy and set \
                 console.secure_cookie = true",
                config.http.listen
            ),
        );
    }
    for (key, value) in [
        ("max_sessions", config.console.max_sessions as u64),
        ("session_idle_secs", config.console.session_idle_secs),
        ("max_live_clients", config.console.max_live_clients as u64),
    ] {
        if value == 0 {
            error(report, &at.key(key), "must be at least 1");
        }
    }
    let at = root.key("alerts");
    if let Some(url) = &config.alerts.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            error(
                report,
                &at.key("url"),
                "must start with http:// or https://",
            );
        }
    }
    if config.alerts.timeout_ms == 0 {
        error(report, &at.key("timeout_ms"), "must be at least 1");
    }
    smtp(&config.alerts, &at, report);
}

fn smtp(alerts: &super::AlertsConfig, at: &KeyPath, report: &mut Report) {
    use lettre::message::Mailbox;
    let address = |text: &str| text.parse::<Mailbox>().is_ok();
    if !alerts.mails() {
        let unused = [
            ("from", alerts.from.is_some()),
            ("to", !alerts.to.is_empty()),
            ("smtp_username", alerts.smtp_username.is_some()),
            ("smtp_password", alerts.smtp_password.is_some()),
        ];
        for (key, set) in unused {
            if set {
                error(
                    report,
                    &at.key(key),
                    "only used with alerts.smtp_host: set it, or remove this",
                );
            }
        }
        return;
    }
    blank(
        alerts.smtp_host.as_deref(),
        &at.key("smtp_host"),
        "empty: remove the key instead",
        report,
    );
    if alerts.smtp_port == 0 {
        error(report, &at.key("smtp_port"), "must be a port, 1 to 65535");
    }
    match &alerts.from {
        None => error(
            report,
            &at.key("from"),
            "required to mail alerts: the sender's address",
        ),
        Some(from) if !address(from) => error(
            report,
            &at.key("from"),
            format!("{from:?} is not an email address"),
        ),
        Some(_) => {}
    }
    if alerts.to.is_empty() {
        error(
            report,
            &at.key("to"),
            "required to mail alerts: the administrators' addresses",
        );
    }
    for (i, to) in alerts.to.iter().enumerate() {
        if !address(to) {
            error(
                report,
                &at.key("to").index(i),
                format!("not an email address: {to:?}"),
            );
        }
    }
    match (&alerts.smtp_username, &alerts.smtp_password) {
        (Some(_), None) => error(
            report,
            &at.key("smtp_password"),
            "required with smtp_username",
        ),
        (None, Some(_)) => error(
            report,
            &at.key("smtp_username"),
            "required with smtp_password",
        ),
        (Some(_), Some(_)) if alerts.smtp_security == super::SmtpSecurity::None => error(
            report,
            &at.key("smtp_username"),
            "would be sent unencrypted with smtp_security = \"none\": use \"starttls\" or \"tls\"",
        ),
        _ => {}
    }
}

fn error(report: &mut Report, at: &KeyPath, message: impl Into<String>) {
    report.errors.push(Problem::new(at, message));
}

fn warning(report: &mut Report, at: &KeyPath, message: impl Into<String>) {
    report.warnings.push(Problem::new(at, message));
}

/// An error at `at` when an optional text is set but blank; `why` says
/// what to do instead.
fn blank(value: Option<&str>, at: &KeyPath, why: &str, report: &mut Report) {
    if value.is_some_and(|v| v.trim().is_empty()) {
        error(report, at, why);
    }
}

/// The longest `[store] commit_delay_us`: every ack may wait this long,
/// and past a few milliseconds the wait costs more latency than the
/// fdatasyncs it saves are worth.
const MAX_COMMIT_DELAY_US: u64 = 10_000;

fn store(store: &StoreConfig, at: &KeyPath, report: &mut Report) {
    if !store.backend.is_built() {
        error(
            report,
            &at.key("backend"),
            format!(
                "{}: not built in this version of rapidbox (use \"redb\")",
                store.backend.name()
            ),
        );
    }
    postgres(&store.postgres, &at.key("postgres"), report);
    if store.backend != StoreBackend::Postgres && store.postgres != PostgresConfig::default() {
        warning(
            report,
            &at.key("postgres"),
            "ignored: store.backend is not \"postgres\"",
        );
    }
    if store.path.as_os_str().is_empty() {
        error(report, &at.key("path"), "empty: give the store file's path");
    }
    if store.cache_mb == 0 || store.cache_mb > 1 << 20 {
        error(report, &at.key("cache_mb"), "must be 1 to 1048576 (MiB)");
    }
    if store.checkpoint_secs == 0 || store.checkpoint_secs > 3600 {
        error(
            report,
            &at.key("checkpoint_secs"),
            "must be 1 to 3600 (seconds)",
        );
    }
    if store.commit_delay_us > MAX_COMMIT_DELAY_US {
        error(
            report,
            &at.key("commit_delay_us"),
            format!("must be 0 to {MAX_COMMIT_DELAY_US} (microseconds)"),
        );
    }
    if store.retention_days.is_some_and(|d| d == 0 || d > 36_500) {
        error(
            report,
            &at.key("retention_days"),
            "must be 1 to 36500 (days)",
        );
    }
    if store.retention_max_messages == Some(0) {
        error(
            report,
            &at.key("retention_max_messages"),
            "must be at least 1; leave it out for no limit",
        );
    }
    if store.retention_report_window_hours > 24 * 36_500 {
        error(
            report,
            &at.key("retention_report_window_hours"),
            "must be at most 876000 (hours)",
        );
    }
    if store.retention_batch == 0 || store.retention_batch > 100_000 {
        error(
            report,
            &at.key("retention_batch"),
            "must be 1 to 100000 (messages per transaction)",
        );
    }
    if store.retention_every_secs == 0 || store.retention_every_secs > 86_400 {
        error(
            report,
            &at.key("retention_every_secs"),
            "must be 1 to 86400 (seconds)",
        );
    }
}

/// `[store.postgres]`, checked whichever backend is chosen, so that a
/// switch to it finds the section sound.
fn postgres(pg: &PostgresConfig, at: &KeyPath, report: &mut Report) {
    if let Some(url) = &pg.url {
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"));
        match rest {
            None => error(
                report,
                &at.key("url"),
                "not a PostgreSQL URL: give postgres://USER@HOST:PORT/DBNAME",
            ),
            Some(rest) => {
                // The credentials are what comes before the host's `@`.
                let authority = rest.split(['/', '?']).next().unwrap_or("");
                if authority
                    .rsplit_once('@')
                    .is_some_and(|(userinfo, _)| userinfo.contains(':'))
                {
                    warning(
                        report,
                        &at.key("url"),
                        "holds a password, readable by whoever reads this file: use password_file",
                    );
                }
            }
        }
        let parts = [
            ("host", pg.host.is_some()),
            ("port", pg.port.is_some()),
            ("user", pg.user.is_some()),
            ("dbname", pg.dbname.is_some()),
        ];
        for (key, set) in parts {
            if set {
                error(
                    report,
                    &at.key(key),
                    "set together with url: give either url or the parts",
                );
            }
        }
    }
    let why = "blank: leave it out for the default";
    blank(pg.host.as_deref(), &at.key("host"), why, report);
    blank(pg.user.as_deref(), &at.key("user"), why, report);
    blank(pg.dbname.as_deref(), &at.key("dbname"), why, report);
    if pg.port == Some(0) {
        error(report, &at.key("port"), "must be 1 to 65535");
    }
    if pg
        .password_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        error(
            report,
            &at.key("password_file"),
            "empty: give the file's path, or leave it out",
        );
    }
    if pg.pool_size == 0 || pg.pool_size > 1000 {
        error(
            report,
            &at.key("pool_size"),
            "must be 1 to 1000 (connections)",
        );
    }
    if pg.statement_timeout_ms == 0 || pg.statement_timeout_ms > 3_600_000 {
        error(
            report,
            &at.key("statement_timeout_ms"),
            "must be 1 to 3600000 (milliseconds)",
        );
    }
    if pg.claim_lease_secs == 0 || pg.claim_lease_secs > 86_400 {
        error(
            report,
            &at.key("claim_lease_secs"),
            "must be 1 to 86400 (seconds)",
        );
    }
}

fn kannel(kannel: &KannelConfig, at: &KeyPath, report: &mut Report) {
    let host = kannel.host.trim();
    if host.is_empty() {
        error(
            report,
            &at.key("host"),
            "empty: give the bearerbox's host name or IP address",
        );
    } else if host.chars().any(char::is_whitespace) {
        error(report, &at.key("host"), "a host name has no spaces");
    } else if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
        error(
            report,
            &at.key("host"),
            "a host name or IP address only: the port goes in kannel.port",
        );
    }
    if kannel.heartbeat_secs == 0 {
        error(
            report,
            &at.key("heartbeat_secs"),
            "must be at least 1 (seconds between heartbeats)",
        );
    }
    if kannel.answer_timeout_secs == 0 {
        error(
            report,
            &at.key("answer_timeout_secs"),
            "must be at least 1: every MT would find the link dead",
        );
    }
    match &kannel.smsbox_id {
        Some(id) if id.trim().is_empty() => error(
            report,
            &at.key("smsbox_id"),
            "empty: remove the key to identify with a NULL id",
        ),
        Some(id) if kannel.enabled => warning(report, &at.key("smsbox_id"), smsbox_id_warning(id)),
        _ => {}
    }
    if kannel.tls {
        if kannel.tls_ca_file.is_none() {
            error(
                report,
                &at.key("tls_ca_file"),
                "required when tls = true: rapidbox carries no list of public certificate \
                 authorities, so give the PEM file of the CA that signed the bearerbox's \
                 certificate",
            );
        }
    } else {
        for (key, set) in [
            ("tls_ca_file", kannel.tls_ca_file.is_some()),
            ("tls_server_name", kannel.tls_server_name.is_some()),
        ] {
            if set {
                warning(report, &at.key(key), "ignored: kannel.tls is false");
            }
        }
    }
    if kannel
        .tls_ca_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        error(
            report,
            &at.key("tls_ca_file"),
            "empty: give a PEM file's path",
        );
    }
    blank(
        kannel.tls_server_name.as_deref(),
        &at.key("tls_server_name"),
        "empty: remove the key to use kannel.host",
        report,
    );
    if !(0..=31).contains(&kannel.dlr_mask) {
        error(
            report,
            &at.key("dlr_mask"),
            format!(
                "{} is not a dlr_mask: add up the reports wanted, 1 delivered, 2 undelivered, \
                 4 buffered, 8 accepted by the SMSC, 16 rejected by the SMSC (0 for none)",
                kannel.dlr_mask
            ),
        );
    }
    blank(
        kannel.global_sender.as_deref(),
        &at.key("global_sender"),
        "empty: remove the key to reply from the number the MO was sent to",
        report,
    );
    for (key, value) in [
        ("max_in_flight", kannel.max_in_flight),
        ("max_routing", kannel.max_routing),
    ] {
        if value == 0 {
            error(
                report,
                &at.key(key),
                "must be at least 1: nothing would ever move",
            );
        }
    }
    if kannel.reconnect_min_ms == 0 {
        error(
            report,
            &at.key("reconnect_min_ms"),
            "must be at least 1: rapidbox would reconnect in a busy loop",
        );
    }
    if kannel.reconnect_max_secs == 0 {
        error(report, &at.key("reconnect_max_secs"), "must be at least 1");
    } else if u128::from(kannel.reconnect_min_ms) > u128::from(kannel.reconnect_max_secs) * 1000 {
        error(
            report,
            &at.key("reconnect_min_ms"),
            format!(
                "{} ms is more than reconnect_max_secs ({} s)",
                kannel.reconnect_min_ms, kannel.reconnect_max_secs
            ),
        );
    }
    if kannel.max_frame_bytes < MIN_FRAME_BYTES {
        error(
            report,
            &at.key("max_frame_bytes"),
            format!("must be at least {MIN_FRAME_BYTES}: a frame carries a whole SMS with its addresses, UUID and DLR URL"),
        );
    } else if kannel.max_frame_bytes > boxproto::msg::MAX_WIRE_BODY {
        error(
            report,
            &at.key("max_frame_bytes"),
            format!(
                "must be at most {}: the box protocol's lengths are 32-bit",
                boxproto::msg::MAX_WIRE_BODY
            ),
        );
    }
}

/// The largest `max_body_bytes` and `max_header_bytes`: the server holds
/// a whole body or head in memory, once per connection.
const MAX_HTTP_BYTES: usize = 16 << 20;

/// The smallest `max_body_bytes`: a form with a full-length SMS, escaped,
/// and its other fields.
const MIN_BODY_BYTES: usize = 1024;

fn metrics(config: &Config, at: &KeyPath, report: &mut Report) {
    let Some(listen) = config.metrics.listen else {
        return;
    };
    let http = config.http.listen;
    let overlaps =
        listen.ip() == http.ip() || listen.ip().is_unspecified() || http.ip().is_unspecified();
    if listen.port() != 0 && listen.port() == http.port() && overlaps {
        error(
            report,
            &at.key("listen"),
            format!("{listen} is http.listen's port ({http}): the metrics listener needs one of its own"),
        );
    }
    if !listen.ip().is_loopback() {
        warning(
            report,
            &at.key("listen"),
            format!(
                "{listen} is reachable from other machines: /metrics is served there without a \
                 password, so bind it to an address only the monitoring can reach"
            ),
        );
    }
}

fn http(http: &HttpConfig, at: &KeyPath, report: &mut Report) {
    match &http.password {
        Some(p) if p.trim().is_empty() => error(
            report,
            &at.key("password"),
            "empty: remove the key to serve without a password",
        ),
        None if !http.listen.ip().is_loopback() => warning(
            report,
            &at.key("listen"),
            format!(
                "{} is reachable from other machines and http.password is not set: anyone who \
                 can connect can inject messages and read the outbox",
                http.listen
            ),
        ),
        _ => {}
    }
    if http.max_connections == 0 {
        error(
            report,
            &at.key("max_connections"),
            "must be at least 1: no request would ever be served",
        );
    }
    if http.max_auth_failures > 10_000 {
        error(
            report,
            &at.key("max_auth_failures"),
            "at most 10000 (each failure is remembered for 5 minutes); 0 turns the limit off",
        );
    }
    if http.max_connections_per_address == 0 {
        error(
            report,
            &at.key("max_connections_per_address"),
            "must be at least 1: no request would ever be served",
        );
    } else if http.max_connections > 0 && http.max_connections_per_address >= http.max_connections {
        warning(
            report,
            &at.key("max_connections_per_address"),
            format!(
                "not below max_connections ({}): one address can take every slot and keep \
                 the others waiting",
                http.max_connections
            ),
        );
    }
    for (key, value, min) in [
        ("max_body_bytes", http.max_body_bytes, MIN_BODY_BYTES),
        (
            "max_header_bytes",
            http.max_header_bytes,
            HttpConfig::MIN_HEADER_BYTES,
        ),
    ] {
        if value < min {
            error(report, &at.key(key), format!("must be at least {min}"));
        } else if value > MAX_HTTP_BYTES {
            error(
                report,
                &at.key(key),
                format!("must be at most {MAX_HTTP_BYTES}: it is held in memory per connection"),
            );
        }
    }
    for (key, value) in [
        ("header_timeout_ms", http.header_timeout_ms),
        ("body_timeout_ms", http.body_timeout_ms),
    ] {
        if value == 0 {
            error(report, &at.key(key), "must be at least 1");
        }
    }
}

fn router(config: &Config, broken: &BTreeSet<String>, at: &KeyPath, report: &mut Report) {
    let RouterConfig {
        apps,
        defer_after_ms,
        max_deferred,
    } = &config.router;
    if *defer_after_ms > 0 && *max_deferred == 0 {
        warning(
            report,
            &at.key("max_deferred"),
            "0 with defer_after_ms set: no MO is ever deferred (set defer_after_ms = 0 to say so)",
        );
    }
    let at = at.key("apps");
    if apps.is_empty() {
        warning(
            report,
            &at,
            "no apps: messages are stored and acknowledged, and nothing replies",
        );
    }
    for (i, name) in apps.iter().enumerate() {
        let at = at.index(i);
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            error(
                report,
                &at,
                format!("{name:?} is not an app name: use letters, digits, `_` and `-`"),
            );
        } else if let Some(first) = apps[..i].iter().position(|other| other == name) {
            error(
                report,
                &at,
                format!("{name:?} is listed twice (also router.apps[{first}])"),
            );
        } else if !config.apps.contains_key(name) && !broken.contains(name) {
            error(
                report,
                &at,
                format!(
                    "no app {name:?}: it is not a built-in app ({}) and no [apps.{name}] section \
                     gives it a kind",
                    super::apps::AppKind::list()
                ),
            );
        }
    }
}

/// A reply template must say something: an empty SMS helps nobody.
fn reply(template: &Template, at: &KeyPath, report: &mut Report) {
    if template.source().trim().is_empty() {
        error(report, at, "empty: a reply must say something");
    }
}

/// A keyword list entry or rule key: one word, not seen before (ignoring
/// case) among `seen`.
fn keyword(word: &str, seen: &mut Vec<String>, at: &KeyPath, report: &mut Report) {
    if word.trim().is_empty() {
        error(report, at, "empty keyword");
    } else if word.split_whitespace().count() > 1 {
        error(
            report,
            at,
            "a keyword is one word: it is matched against a message's first word",
        );
    } else if let Some(other) = seen.iter().find(|other| same_word(other, word)) {
        error(
            report,
            at,
            format!(
                "{word:?} is the same keyword as {other:?} (keywords are matched ignoring case)"
            ),
        );
    } else {
        seen.push(word.to_owned());
    }
}

fn keyword_app(app: &KeywordConfig, at: &KeyPath, report: &mut Report) {
    let mut seen = Vec::new();
    for (word, template) in &app.rules {
        let at = at.key("rules").key(word);
        keyword(word, &mut seen, &at, report);
        reply(template, &at, report);
    }
    if let Some(default) = &app.default {
        reply(default, &at.key("default"), report);
    }
    if app.rules.is_empty() && app.default.is_none() {
        warning(
            report,
            at,
            "no rules and no default: this app never replies",
        );
    }
}

fn webhook_app(app: &WebhookConfig, at: &KeyPath, report: &mut Report) {
    let url = app.url.source();
    let url_at = at.key("url");
    if url.trim().is_empty() {
        error(
            report,
            &url_at,
            "required: the URL to call, http:// or https://",
        );
    } else {
        let lower = url.to_ascii_lowercase();
        let rest = ["http://", "https://"]
            .into_iter()
            .find_map(|scheme| lower.strip_prefix(scheme));
        match rest {
            None => error(report, &url_at, "must start with http:// or https://"),
            Some(rest) => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                if host.is_empty() {
                    error(report, &url_at, "no host after the scheme");
                } else if host.contains('%') {
                    // A host filled in from a message would let any phone
                    // choose where rapidbox sends requests.
                    error(
                        report,
                        &url_at,
                        "the host must be written out: escapes may only come after it",
                    );
                }
            }
        }
    }
    if app.timeout_ms == 0 {
        error(report, &at.key("timeout_ms"), "must be at least 1");
    }
    match (app.on_failure, &app.failure_reply) {
        (OnFailure::Reply, None) => error(
            report,
            &at.key("failure_reply"),
            "required when on_failure = \"reply\"",
        ),
        (OnFailure::Reply, Some(failure)) => reply(failure, &at.key("failure_reply"), report),
        (OnFailure::None, Some(_)) => warning(
            report,
            &at.key("failure_reply"),
            "ignored: on_failure is \"none\"",
        ),
        (OnFailure::None, None) => {}
    }
}

fn optout_app(app: &OptoutConfig, at: &KeyPath, report: &mut Report) {
    let mut seen = Vec::new();
    for (key, words) in [
        ("stop_keywords", &app.stop_keywords),
        ("start_keywords", &app.start_keywords),
    ] {
        for (i, word) in words.iter().enumerate() {
            keyword(word, &mut seen, &at.key(key).index(i), report);
        }
    }
    if app.stop_keywords.is_empty() {
        warning(
            report,
            &at.key("stop_keywords"),
            "empty: nobody can opt out",
        );
    }
    for (key, template) in [
        ("stop_reply", &app.stop_reply),
        ("start_reply", &app.start_reply),
    ] {
        if let Some(template) = template {
            reply(template, &at.key(key), report);
        }
    }
}
