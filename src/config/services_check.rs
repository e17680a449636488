//! The checks of `[[sms_services]]` and `[smsbox]`: what Kannel's
//! `create_onetrans` refuses (no action, two keywords, a regex that does
//! not compile), what it only warned about, and what rapidbox adds (an
//! escape that does not exist, an empty program).

use super::report::{KeyPath, Problem, Report};
use super::services::{SmsService, SmsboxConfig};
use super::{AppConfig, Config};
use crate::escape::Pattern;

/// The largest compiled regex rapidbox accepts: a service's regexes run on
/// every message, so a pathological one must not eat memory.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a service regex as rapidbox runs it (Kannel's POSIX extended
/// regexes, unanchored unless they say `^`/`$`). `icase` for keywords.
pub(crate) fn compile_regex(source: &str, icase: bool) -> Result<regex::Regex, regex::Error> {
    let build = |unicode: bool| {
        regex::RegexBuilder::new(source)
            .case_insensitive(icase)
            .unicode(unicode)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    if icase {
        // Kannel never sets a locale, so its REG_ICASE folds ASCII letters
        // only: `Привет` is not the keyword `привет`. Without Unicode the
        // regex crate folds as C does; a pattern that then could match
        // bytes that are not UTF-8 (a `.`) keeps Unicode, and its folding.
        if let Ok(ascii) = build(false) {
            return Ok(ascii);
        }
    }
    build(true)
}

/// Every problem of the services and the smsbox section.
pub(super) fn check(config: &Config, root: &KeyPath, report: &mut Report) {
    let at = root.key("sms_services");
    let runs = config
        .router_apps()
        .any(|(_, app)| matches!(app, AppConfig::SmsServices(_)));
    if !config.sms_services.is_empty() && !runs {
        warning(
            report,
            &at,
            "no app of kind sms_services in router.apps: these services never run \
             (add \"sms_services\" to router.apps)",
        );
    }
    if runs && config.sms_services.is_empty() {
        warning(
            report,
            &root.key("router").key("apps"),
            "an sms_services app without [[sms_services]]: it answers every message with \
             smsbox.reply_requestfailed",
        );
    }
    if runs
        && !config.sms_services.is_empty()
        && !config.sms_services.iter().any(SmsService::is_default)
    {
        warning(
            report,
            &at,
            "no service with keyword = \"default\": a message no service takes is answered \
             with smsbox.reply_requestfailed, as smsbox does",
        );
    }
    for (i, service) in config.sms_services.iter().enumerate() {
        one(service, &at.index(i), report);
    }
    smsbox(&config.smsbox, &root.key("smsbox"), report);
}

fn one(service: &SmsService, at: &KeyPath, report: &mut Report) {
    match (&service.keyword, &service.keyword_regex) {
        (None, None) => error(
            report,
            at,
            "needs keyword or keyword_regex (keyword = \"default\" for the fallback service)",
        ),
        (Some(_), Some(_)) => error(
            report,
            &at.key("keyword_regex"),
            "give either keyword or keyword_regex, not both",
        ),
        (Some(k), None) if k.trim().is_empty() => error(report, &at.key("keyword"), "empty"),
        _ => {}
    }
    if !service.aliases.is_empty() && (service.keyword.is_none() || service.is_default()) {
        warning(
            report,
            &at.key("aliases"),
            "ignored: aliases only go with a keyword other than \"default\"",
        );
    }
    match service.actions().as_slice() {
        [] => error(
            report,
            at,
            "needs one of get_url (or url), post_url, post_xml, text, file, exec",
        ),
        [_] => {}
        [first, rest @ ..] => error(
            report,
            &at.key(rest[0]),
            format!(
                "a service does one thing: {first} and {} are both set",
                rest.join(", ")
            ),
        ),
    }
    for (key, source) in service.patterns() {
        if let Err(e) = Pattern::compile(source) {
            error(report, &at.key(&key), e.to_string());
        }
    }
    for (key, url) in [
        ("get_url", &service.get_url),
        ("url", &service.url),
        ("post_url", &service.post_url),
        ("post_xml", &service.post_xml),
    ] {
        if let Some(url) = url {
            let lower = url.to_ascii_lowercase();
            if url.trim().is_empty() {
                // smsbox accepts it too, and fails every fetch.
                warning(
                    report,
                    &at.key(key),
                    "empty: every message this service takes is answered with \
                     smsbox.reply_couldnotfetch, as smsbox does",
                );
            } else if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                error(report, &at.key(key), "must start with http:// or https://");
            }
        }
    }
    if let Some(exec) = &service.exec {
        if exec.first().is_none_or(|program| program.trim().is_empty()) {
            error(
                report,
                &at.key("exec"),
                "the program to run comes first: [\"/path/to/program\", \"arg\", ...]",
            );
        }
    }
    for (key, source) in service.regexes() {
        if let Some(source) = source {
            let icase = false;
            if let Err(e) = compile_regex(source, icase) {
                error(report, &at.key(key), format!("not a regex: {e}"));
            }
        }
    }
    if let Some(source) = service.keyword_pattern() {
        if let Err(e) = compile_regex(&source, true) {
            error(
                report,
                &at.key("keyword"),
                format!("the keyword and aliases make the regex {source:?}, which does not compile: {e}"),
            );
        }
    }
    if service.max_messages > SmsService::MAX_PARTS {
        warning(
            report,
            &at.key("max_messages"),
            format!(
                "rapidbox sends at most {} SMS for one reply",
                SmsService::MAX_PARTS
            ),
        );
    }
    if let Some(mask) = service.dlr_mask {
        if !(0..=31).contains(&mask) {
            error(report, &at.key("dlr_mask"), "a dlr_mask is 0 to 31");
        }
    }
    if service.dlr_mask.is_some() && service.dlr_url.is_none() {
        warning(report, &at.key("dlr_mask"), "ignored without dlr_url");
    }
    if service.prefix.is_some() != service.suffix.is_some() {
        warning(
            report,
            at,
            "prefix and suffix are only used if both are set (as in smsbox)",
        );
    }
    if service.prefix.is_some() && service.get_url.is_none() && service.url.is_none() {
        warning(
            report,
            &at.key("prefix"),
            "prefix and suffix are only used with get_url (as in smsbox)",
        );
    }
    for (key, set) in [
        ("forced_smsc", service.forced_smsc.is_some()),
        ("default_smsc", service.default_smsc.is_some()),
    ] {
        // urltrans.c's create_onetrans reads them only for sendsms users.
        if set {
            warning(
                report,
                &at.key(key),
                "ignored, as smsbox 1.4.5 ignores it in an sms-service: replies go back \
                 through the smsc the MO came from",
            );
        }
    }
}

fn smsbox(smsbox: &SmsboxConfig, at: &KeyPath, report: &mut Report) {
    for (key, value) in [
        ("max_pending_requests", smsbox.max_pending_requests as u64),
        ("http_timeout", smsbox.http_timeout),
        ("http_queue_delay", smsbox.http_queue_delay),
    ] {
        if value == 0 {
            error(report, &at.key(key), "must be at least 1");
        }
    }
    if smsbox.sms_length < 10 {
        error(
            report,
            &at.key("sms_length"),
            "must be at least 10 octets: a part must hold some text",
        );
    }
    if smsbox.http_request_retry > 100 {
        error(
            report,
            &at.key("http_request_retry"),
            "at most 100: each try holds the message",
        );
    }
}

fn error(report: &mut Report, at: &KeyPath, message: impl Into<String>) {
    report.errors.push(Problem::new(at, message));
}

fn warning(report: &mut Report, at: &KeyPath, message: impl Into<String>) {
    report.warnings.push(Problem::new(at, message));
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn problems(text: &str) -> (Vec<String>, Vec<String>) {
        let report = crate::config::check(text);
        let show = |ps: &[crate::config::Problem]| ps.iter().map(|p| p.to_string()).collect();
        (show(&report.errors), show(&report.warnings))
    }

    #[test]
    fn a_kannel_like_service_set_loads() {
        let config = Config::from_toml_str(
            r#"
            [router]
            apps = ["sms_services"]
            [[sms_services]]
            keyword = "help"
            aliases = ["aide", "hilfe"]
            text = "Send INFO for news"
            [[sms_services]]
            keyword = "default"
            get_url = "http://127.0.0.1:9/?from=%p&text=%a"
            max_messages = 3
            [smsbox]
            reply_requestfailed = "Nope"
            http_timeout = 5
            "#,
        )
        .unwrap();
        assert_eq!(config.sms_services.len(), 2);
        assert_eq!(config.sms_services[0].max_messages, 1);
        assert_eq!(config.sms_services[1].max_messages, 3);
        assert_eq!(config.smsbox.reply_requestfailed, "Nope");
        assert_eq!(
            config.smsbox.reply_emptymessage,
            "<Empty reply from service provider>"
        );
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());
        let again = Config::from_toml_str(&config.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let (errors, _) = problems(
            r#"
            [router]
            apps = ["sms_services"]
            [[sms_services]]
            text = "x"
            [[sms_services]]
            keyword = "a"
            keyword_regex = "b"
            text = "x"
            get_url = "http://h/"
            [[sms_services]]
            keyword = "c"
            [[sms_services]]
            keyword = "d"
            get_url = "http://h/%z"
            black_list_regex = "(("
            [[sms_services]]
            keyword = "e"
            exec = []
            dlr_mask = 99
            [smsbox]
            http_timeout = 0
            "#,
        );
        let want = [
            "sms_services[0]: needs keyword or keyword_regex",
            "sms_services[1].keyword_regex: give either",
            "sms_services[1].text: a service does one thing: get_url and text",
            "sms_services[2]: needs one of get_url",
            "sms_services[3].get_url: unknown escape `%z`",
            "sms_services[3].black_list_regex: not a regex",
            "sms_services[4].exec: the program to run comes first",
            "sms_services[4].dlr_mask: a dlr_mask is 0 to 31",
            "smsbox.http_timeout: must be at least 1",
        ];
        for want in want {
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "missing {want:?} in {errors:#?}"
            );
        }
    }

    #[test]
    fn services_that_never_run_or_no_default_are_warned_about() {
        let (_, warnings) = problems(
            r#"
            [[sms_services]]
            keyword = "a"
            text = "x"
            "#,
        );
        assert!(
            warnings.iter().any(|w| w.contains("never run")),
            "{warnings:?}"
        );
        let (_, warnings) = problems(
            r#"
            [router]
            apps = ["sms_services"]
            [[sms_services]]
            keyword = "a"
            text = "x"
            "#,
        );
        assert!(warnings.iter().any(|w| w.contains("keyword = \"default\"")));
    }
}
