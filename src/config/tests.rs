//! Whole-file tests: defaults, the example file, and problems reported
//! with their key paths, many at once.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::*;
use crate::template::{Mode, TemplateContext};

const EXAMPLE: &str = include_str!("../../rapidbox.example.toml");

/// The key paths of `problems`, as a set.
fn keys(problems: &[Problem]) -> BTreeSet<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

fn set<'a>(keys: &[&'a str]) -> BTreeSet<&'a str> {
    keys.iter().copied().collect()
}

/// The message of the one problem at `key`.
fn message<'a>(problems: &'a [Problem], key: &str) -> &'a str {
    let found: Vec<&Problem> = problems.iter().filter(|p| p.key == key).collect();
    assert_eq!(found.len(), 1, "one problem at {key}: {problems:#?}");
    &found[0].message
}

#[test]
fn defaults_are_the_documented_ones() {
    let config = Config::default();
    assert_eq!(config.store.path, PathBuf::from("./data/rapidbox.redb"));
    let kannel = &config.kannel;
    assert!(kannel.enabled);
    assert_eq!((kannel.host.as_str(), kannel.port), ("127.0.0.1", 13001));
    assert_eq!(kannel.smsbox_id, None);
    assert_eq!(kannel.heartbeat_secs, 30);
    assert_eq!(kannel.answer_timeout(), std::time::Duration::from_secs(30));
    assert_eq!(
        kannel.idle_timeout(),
        Some(std::time::Duration::from_secs(300))
    );
    assert!(!kannel.tls);
    assert_eq!(kannel.tls_ca_file, None);
    assert_eq!(kannel.tls_server_name(), "127.0.0.1");
    assert_eq!(kannel.dlr_mask, 27);
    assert_eq!(kannel.global_sender, None);
    assert_eq!((kannel.max_in_flight, kannel.max_routing), (256, 512));
    assert_eq!(
        kannel.reconnect_min(),
        std::time::Duration::from_millis(500)
    );
    assert_eq!(kannel.reconnect_max(), std::time::Duration::from_secs(30));
    assert_eq!(kannel.max_frame_bytes, 1024 * 1024);
    assert_eq!(
        config.http.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.router.apps, ["optout", "echo"]);

    let apps: Vec<(&str, AppKind)> = config.router_apps().map(|(n, a)| (n, a.kind())).collect();
    assert_eq!(apps, [("optout", AppKind::Optout), ("echo", AppKind::Echo)]);
    let AppConfig::Optout(optout) = &config.apps["optout"] else {
        panic!("optout is an optout app");
    };
    assert_eq!(
        optout.stop_keywords,
        ["STOP", "UNSUBSCRIBE", "QUIT", "CANCEL", "END"]
    );
    assert_eq!(optout.start_keywords, ["START", "SUBSCRIBE"]);
    assert_eq!((&optout.stop_reply, &optout.start_reply), (&None, &None));
    let AppConfig::Echo(echo) = &config.apps["echo"] else {
        panic!("echo is an echo app");
    };
    assert_eq!(echo.template.source(), "%a");
}

#[test]
fn no_file_at_all_means_the_defaults_with_nothing_to_say() {
    assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
    assert_eq!(check(""), Report::default());
    assert_eq!(Config::default().check(), Report::default());
    // Sections present but empty change nothing either.
    let empty = "[store]\n[kannel]\n[http]\n[router]\n[apps]\n";
    assert_eq!(Config::from_toml_str(empty).unwrap(), Config::default());
}

#[test]
fn the_example_file_parses_with_no_errors_or_warnings() {
    let report = check(EXAMPLE);
    assert_eq!(report, Report::default(), "{report:#?}");
    let config = Config::from_toml_str(EXAMPLE).unwrap();
    let apps: Vec<(&str, AppKind)> = config.router_apps().map(|(n, a)| (n, a.kind())).collect();
    assert_eq!(
        apps,
        [
            ("optout", AppKind::Optout),
            ("menu", AppKind::Keyword),
            ("webhook", AppKind::Webhook),
            ("echo", AppKind::Echo),
        ]
    );
    // Every value the example writes out is the default, except where it
    // shows an app.
    let mut defaults = config.clone();
    defaults.router = RouterConfig::default();
    defaults.apps = Config::default().apps;
    assert_eq!(defaults, Config::default());

    let AppConfig::Keyword(menu) = &config.apps["menu"] else {
        panic!("menu is a keyword app");
    };
    let ctx = TemplateContext {
        text: "JOIN Amani",
        sender: "+250788",
        ..Default::default()
    };
    let join = menu.rule("join").unwrap();
    assert_eq!(
        join.render(&ctx, Mode::Text),
        "Thanks Amani, you are signed up with +250788."
    );
    let AppConfig::Webhook(webhook) = &config.apps["webhook"] else {
        panic!("webhook is a webhook app");
    };
    assert_eq!(webhook.on_failure, OnFailure::Reply);
    assert_eq!(
        webhook.url.render(&ctx, Mode::Url),
        "http://127.0.0.1:9000/sms?from=%2B250788&to=&text=JOIN%20Amani&id="
    );
}

#[test]
fn the_example_documents_every_key() {
    // Every key the effective configuration has appears in the example,
    // written out or commented out.
    let mut config = Config::from_toml_str(EXAMPLE).unwrap();
    config.kannel.smsbox_id = Some("x".into());
    config.kannel.tls_ca_file = Some("x".into());
    config.kannel.tls_server_name = Some("x".into());
    config.kannel.global_sender = Some("x".into());
    config.metrics.listen = Some("127.0.0.1:9187".parse().unwrap());
    config.store.retention_days = Some(1);
    config.store.retention_max_messages = Some(1);
    config.store.postgres = PostgresConfig {
        url: Some("postgres://x@y/z".into()),
        host: Some("x".into()),
        port: Some(1),
        user: Some("x".into()),
        dbname: Some("x".into()),
        password_file: Some("x".into()),
        ..PostgresConfig::default()
    };
    let AppConfig::Keyword(menu) = config.apps.get_mut("menu").unwrap() else {
        panic!("menu is a keyword app");
    };
    menu.default = Some(crate::template::Template::compile("x").unwrap());
    let printed: toml::Table = toml::from_str(&config.to_toml_string().unwrap()).unwrap();
    fn walk(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (key, value) in table {
            match value {
                toml::Value::Table(inner) if key != "rules" => {
                    walk(inner, &format!("{prefix}{key}."), out)
                }
                _ => out.push(key.clone()),
            }
        }
    }
    let mut all = Vec::new();
    walk(&printed, "", &mut all);
    for key in all {
        let written = format!("\n{key} = ");
        let commented = format!("\n#{key} = ");
        let table = format!(".{key}]");
        assert!(
            [written, commented, table]
                .iter()
                .any(|form| EXAMPLE.contains(form.as_str())),
            "rapidbox.example.toml does not document `{key}`"
        );
    }
}

#[test]
fn printing_gives_back_the_same_configuration() {
    for text in ["", EXAMPLE] {
        let config = Config::from_toml_str(text).unwrap();
        let printed = config.to_toml_string().unwrap();
        assert_eq!(
            Config::from_toml_str(&printed).unwrap(),
            config,
            "{printed}"
        );
    }
    let mut config = Config::default();
    config.kannel.smsbox_id = Some("rb".into());
    config.kannel.tls = true;
    config.kannel.tls_ca_file = Some("/ca.pem".into());
    let printed = config.to_toml_string().unwrap();
    assert!(printed.contains("smsbox_id = \"rb\""), "{printed}");
    assert!(
        printed.contains("[apps.echo]\nkind = \"echo\"\ntemplate = \"%a\""),
        "{printed}"
    );
    assert_eq!(Config::from_toml_str(&printed).unwrap(), config);
}

#[test]
fn every_kind_of_problem_is_reported_at_once_with_its_key() {
    let text = r#"
[kannel]
port = 70000
host = ""
heartbeat_secs = 0
answer_timeout_secs = 0
tls = true
dlr_mask = 64
max_in_flight = 0
max_routing = 0
reconnect_min_ms = 60000
reconnect_max_secs = 30
max_frame_bytes = 10
global_sender = ""

[store]
path = ""
retention_days = 0
retention_max_messages = 0
retention_batch = 0
retention_every_secs = 0

[http]
listen = "localhost:80"

[router]
apps = ["optout", "echo", "echo", "nosuch", "menu", "hook", "bad name"]

[apps.menu]
kind = "keyword"

[apps.menu.rules]
help = "Hi %x"
info = "ok %y"
"two words" = "x"
JOIN = "ok"
join = "again"
empty = ""

[apps.hook]
kind = "webhook"
url = "ftp://x"
timeout_ms = 0
on_failure = "reply"

[apps.echo]
template = ""

[apps.extra]
kind = "echo"
"#;
    let report = check(text);
    assert_eq!(
        keys(&report.errors),
        set(&[
            "kannel.port",
            "kannel.host",
            "kannel.heartbeat_secs",
            "kannel.answer_timeout_secs",
            "kannel.tls_ca_file",
            "kannel.dlr_mask",
            "kannel.max_in_flight",
            "kannel.max_routing",
            "kannel.reconnect_min_ms",
            "kannel.max_frame_bytes",
            "kannel.global_sender",
            "store.path",
            "store.retention_days",
            "store.retention_max_messages",
            "store.retention_batch",
            "store.retention_every_secs",
            "http.listen",
            "router.apps[2]",
            "router.apps[3]",
            "router.apps[6]",
            "apps.menu.rules.help",
            "apps.menu.rules.info",
            "apps.menu.rules.\"two words\"",
            "apps.menu.rules.join",
            "apps.menu.rules.empty",
            "apps.hook.url",
            "apps.hook.timeout_ms",
            "apps.hook.failure_reply",
            "apps.echo.template",
        ]),
        "{report:#?}"
    );
    assert_eq!(keys(&report.warnings), set(&["apps.extra"]), "{report:#?}");
    let errors = &report.errors;
    assert_eq!(
        message(errors, "kannel.port"),
        "70000 is not a port number: use 1 to 65535"
    );
    assert!(message(errors, "kannel.tls_ca_file").starts_with("required when tls = true"));
    assert!(message(errors, "apps.menu.rules.help").contains("unknown escape `%x` at character 4"));
    assert!(message(errors, "apps.menu.rules.info").contains("`%y`"));
    assert!(message(errors, "apps.menu.rules.join").contains("same keyword as \"JOIN\""));
    assert!(message(errors, "router.apps[2]").contains("listed twice (also router.apps[1])"));
    assert!(message(errors, "router.apps[3]").starts_with("no app \"nosuch\""));
    assert!(message(errors, "http.listen").contains("\"localhost:80\" is not an IP address"));
    assert!(message(errors, "apps.hook.url").contains("http:// or https://"));
    assert!(message(errors, "kannel.reconnect_min_ms").contains("more than reconnect_max_secs"));
    // Sorted by key, so a section's problems read together.
    let order: Vec<&str> = errors.iter().map(|p| p.key.as_str()).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    let errors = Config::from_toml_str(text).unwrap_err();
    assert_eq!(errors.errors, report.errors);
    assert_eq!(errors.origin, "<string>");
    assert!(errors
        .to_string()
        .starts_with("<string>: 29 errors\n  apps.echo.template: "));
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    let text = r#"
top = 1

[store]
paht = "x"

[kannel]
prot = 1

[kannel.nested]
a = 1

[http]
listen = "127.0.0.1:1"
pasword = "x"

[router]
app = []

[apps.echo]
templat = "x"

[apps.menu]
kind = "keyword"
rules = { a = "b" }
bogus = 1

[apps.webhook]
url = "http://x/"
extra = { deep = 1 }

[apps.optout]
stop_reply = "bye"
stopkeywords = []

[backends.x]
transport = "pull"
url = "http://y/"
"#;
    let report = check(text);
    assert_eq!(
        keys(&report.errors),
        set(&[
            "top",
            "store.paht",
            "kannel.prot",
            "kannel.nested",
            "http.pasword",
            "router.app",
            "apps.echo.templat",
            "apps.menu.bogus",
            "apps.webhook.extra",
            "apps.optout.stopkeywords",
            "backends.x.url",
        ]),
        "{report:#?}"
    );
    for problem in &report.errors {
        assert!(problem.message.starts_with("unknown key"), "{problem}");
    }
    // Nothing else was wrong, so nothing else is said; the apps sections
    // not in router.apps are warned about.
    assert_eq!(keys(&report.warnings), set(&["apps.menu", "apps.webhook"]));
}

#[test]
fn a_bad_section_does_not_hide_another_sections_problems() {
    let text = r#"
store = 5

[kannel]
enabled = "yes"
port = "13001"
heartbeat_secs = -1

[http]
listen = 8080

[router]
apps = "echo"

[apps.webhook]
url = 42
timeout_ms = "5s"
on_failure = "maybe"

[apps.optout]
stop_keywords = "STOP"
"#;
    let report = check(text);
    assert_eq!(
        keys(&report.errors),
        set(&[
            "store",
            "kannel.enabled",
            "kannel.port",
            "kannel.heartbeat_secs",
            "http.listen",
            "router.apps",
            "apps.webhook.url",
            "apps.webhook.timeout_ms",
            "apps.webhook.on_failure",
            "apps.optout.stop_keywords",
        ]),
        "{report:#?}"
    );
    let errors = &report.errors;
    assert!(
        message(errors, "store").contains("the [store] section"),
        "{errors:#?}"
    );
    assert!(
        message(errors, "apps.webhook.on_failure").contains("`none`"),
        "{errors:#?}"
    );
    // With the bad values at their defaults, router.apps is the default,
    // which does not list the webhook: a warning, as for any unused app.
    assert_eq!(keys(&report.warnings), set(&["apps.webhook"]));
}

#[test]
fn several_problems_in_one_array_or_table() {
    let report = check(
        r#"
[apps.menu]
kind = "keyword"
rules = { a = "%1", b = "%2", c = "fine", d = "%3" }
[router]
apps = ["menu"]
"#,
    );
    assert_eq!(
        keys(&report.errors),
        set(&[
            "apps.menu.rules.a",
            "apps.menu.rules.b",
            "apps.menu.rules.d"
        ]),
        "{report:#?}"
    );
}

#[test]
fn a_toml_syntax_error_is_reported_with_its_line() {
    let report = check("[kannel]\nport = \n");
    assert_eq!(report.errors.len(), 1, "{report:#?}");
    assert_eq!(report.errors[0].key, "");
    assert!(report.errors[0].message.contains("line 2"), "{report:#?}");
    assert!(Config::from_toml_str("[[[").is_err());
}

#[test]
fn smsbox_id_is_a_loud_warning() {
    let report = check("[kannel]\nsmsbox_id = \"rapidbox\"\n");
    assert!(report.is_ok());
    let warning = message(&report.warnings, "kannel.smsbox_id");
    assert_eq!(warning, smsbox_id_warning("rapidbox"));
    assert!(warning.contains(
        "a bearerbox sends a box that identifies with an smsbox-id only the MOs that a \
         `group = smsbox-route` routes to that id (and the reports of its own MTs); without a \
         matching smsbox-route in bearerbox.conf rapidbox receives no MOs at all"
    ));
    assert!(warning.starts_with("!!! MOs WILL NOT ARRIVE"));
    assert!(warning.contains("smsbox-id = rapidbox"));
    let config = Config::from_toml_str("[kannel]\nsmsbox_id = \"rapidbox\"\n").unwrap();
    assert_eq!(config.warnings(), report.warnings);

    // Not connecting to Kannel: the id does not matter.
    assert_eq!(
        check("[kannel]\nenabled = false\nsmsbox_id = \"x\"\n"),
        Report::default()
    );
    // An empty id is neither NULL nor an id.
    let report = check("[kannel]\nsmsbox_id = \"\"\n");
    assert!(message(&report.errors, "kannel.smsbox_id").contains("remove the key"));
}

#[test]
fn tls_needs_a_ca_file_and_tls_keys_without_tls_are_ignored() {
    let with_ca = "[kannel]\ntls = true\ntls_ca_file = \"/etc/ca.pem\"\ntls_server_name = \"bb\"\n";
    let config = Config::from_toml_str(with_ca).unwrap();
    assert_eq!(config.kannel.tls_server_name(), "bb");
    assert_eq!(check(with_ca), Report::default());

    let report = check("[kannel]\ntls_ca_file = \"/etc/ca.pem\"\ntls_server_name = \"bb\"\n");
    assert!(report.is_ok());
    assert_eq!(
        keys(&report.warnings),
        set(&["kannel.tls_ca_file", "kannel.tls_server_name"])
    );
}

#[test]
fn app_kinds_come_from_the_name_or_the_kind_key() {
    let text = r#"
[router]
apps = ["foo", "bar", "baz", "hello", "keyword", "webhook"]

[apps.foo]
template = "x"

[apps.bar]
kind = "nope"

[apps.baz]
kind = 3

[apps.hello]
kind = "echo"
template = "Hello %p"
"#;
    let report = check(text);
    // foo, bar and baz are reported once each, where the fix goes; the
    // keyword app without a section never replies; the webhook has no url.
    assert_eq!(
        keys(&report.errors),
        set(&[
            "apps.foo",
            "apps.bar.kind",
            "apps.baz.kind",
            "apps.webhook.url"
        ]),
        "{report:#?}"
    );
    assert!(message(&report.errors, "apps.foo").contains("set `kind` to one of echo, keyword"));
    assert!(message(&report.errors, "apps.bar.kind").contains("unknown app kind \"nope\""));
    assert!(message(&report.errors, "apps.baz.kind").contains("not integer"));
    assert_eq!(keys(&report.warnings), set(&["apps.keyword"]));
    assert!(message(&report.errors, "apps.webhook.url").starts_with("required"));
}

#[test]
fn two_apps_of_one_kind_coexist() {
    let config = Config::from_toml_str(
        r#"
[router]
apps = ["sales", "support", "keyword"]
[apps.sales]
kind = "keyword"
rules = { buy = "Sales here" }
[apps.support]
kind = "keyword"
rules = { help = "Support here" }
[apps.keyword]
default = "Sorry?"
"#,
    )
    .unwrap();
    let kinds: Vec<AppKind> = config.router_apps().map(|(_, app)| app.kind()).collect();
    assert_eq!(kinds, [AppKind::Keyword; 3]);
    let AppConfig::Keyword(support) = &config.apps["support"] else {
        panic!("support is a keyword app");
    };
    assert_eq!(
        support.rule("HELP").map(|t| t.source()),
        Some("Support here")
    );
}

#[test]
fn webhook_urls_must_be_http_with_a_written_host() {
    let webhook =
        |url: &str| format!("[router]\napps = [\"webhook\"]\n[apps.webhook]\nurl = {url:?}\n");
    for good in [
        "http://h/",
        "HTTPS://Example.org:8443/in?t=%a&k=%k",
        "http://10.0.0.1",
    ] {
        assert_eq!(check(&webhook(good)), Report::default(), "{good}");
    }
    for (bad, why) in [
        ("%b", "must start with http"),
        ("example.org/x", "must start with http"),
        ("http:///path", "no host"),
        ("https://%p.example.org/", "host must be written out"),
        ("   ", "required"),
    ] {
        let report = check(&webhook(bad));
        assert!(
            message(&report.errors, "apps.webhook.url").contains(why),
            "{bad}: {report:#?}"
        );
    }
    let report = check(
        "[router]\napps = [\"webhook\"]\n[apps.webhook]\nurl = \"http://h/\"\nfailure_reply = \"x\"\n",
    );
    assert!(report.is_ok());
    assert!(message(&report.warnings, "apps.webhook.failure_reply").contains("ignored"));
}

#[test]
fn optout_keywords_are_single_distinct_words() {
    let report = check(
        r#"
[apps.optout]
stop_keywords = ["STOP", "", "stop now"]
start_keywords = ["Stop", "START"]
stop_reply = ""
"#,
    );
    assert_eq!(
        keys(&report.errors),
        set(&[
            "apps.optout.stop_keywords[1]",
            "apps.optout.stop_keywords[2]",
            "apps.optout.start_keywords[0]",
            "apps.optout.stop_reply",
        ]),
        "{report:#?}"
    );
    let report = check("[apps.optout]\nstop_keywords = []\n");
    assert!(report.is_ok());
    assert_eq!(keys(&report.warnings), set(&["apps.optout.stop_keywords"]));
}

#[test]
fn an_empty_router_and_a_silent_keyword_app_are_warnings() {
    let report = check("[router]\napps = []\n");
    assert!(report.is_ok());
    assert_eq!(keys(&report.warnings), set(&["router.apps"]));
    let report = check("[router]\napps = [\"keyword\"]\n");
    assert!(report.is_ok());
    assert!(message(&report.warnings, "apps.keyword").contains("never replies"));
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rapidbox.toml");
    std::fs::write(&path, "[kannel]\nport = 13013\n").unwrap();
    assert_eq!(Config::load(&path).unwrap().kannel.port, 13013);

    std::fs::write(&path, "[kannel]\nport = 0\nhots = 1\n").unwrap();
    let errors = Config::load(&path).unwrap_err();
    assert_eq!(errors.origin, path.display().to_string());
    assert_eq!(keys(&errors.errors), set(&["kannel.hots", "kannel.port"]));
    assert!(errors.to_string().contains("rapidbox.toml: 2 errors"));

    let missing = Config::load(dir.path().join("nope.toml")).unwrap_err();
    assert_eq!(missing.errors.len(), 1);
    assert!(missing.errors[0]
        .message
        .starts_with("cannot read the configuration file"));
}

#[test]
fn http_bounds_and_password_are_checked() {
    let text = r#"
[http]
listen = "0.0.0.0:8080"
password = " "
max_connections = 0
max_body_bytes = 10
max_header_bytes = 100000000
header_timeout_ms = 0
body_timeout_ms = 0
"#;
    let report = check(text);
    assert_eq!(
        keys(&report.errors),
        set(&[
            "http.password",
            "http.max_connections",
            "http.max_body_bytes",
            "http.max_header_bytes",
            "http.header_timeout_ms",
            "http.body_timeout_ms",
        ]),
        "{report:#?}"
    );
    // A password is set (if empty), so no warning about the open address.
    assert!(!keys(&report.warnings).contains("http.listen"));
    let open = check("[http]\nlisten = \"0.0.0.0:8080\"\n");
    assert!(open.errors.is_empty(), "{open:#?}");
    assert!(open
        .warnings
        .iter()
        .all(|w| w.key != "http.max_connections_per_address"));
    let none = check("[http]\nmax_connections_per_address = 0\n");
    assert!(keys(&none.errors).contains("http.max_connections_per_address"));
    let greedy = check("[http]\nmax_connections = 10\nmax_connections_per_address = 10\n");
    assert!(message(&greedy.warnings, "http.max_connections_per_address").contains("every slot"));
    assert!(message(&open.warnings, "http.listen").contains("password is not set"));
    let defaults = Config::default().http;
    assert_eq!((defaults.password, defaults.silent), (None, false));
    assert_eq!(defaults.max_body_bytes, 64 * 1024);
}

#[test]
fn sendsms_usernames_must_be_given_unique_and_bounded() {
    let long = "k".repeat(65);
    let report = check(&format!(
        "[[sendsms_users]]\nusername = \"kim\"\npassword = \"p\"\n\
         [[sendsms_users]]\nusername = \"kim\"\npassword = \"q\"\n\
         [[sendsms_users]]\nusername = \" \"\npassword = \"r\"\n\
         [[sendsms_users]]\nusername = \"{long}\"\npassword = \"s\"\n\
         [[sendsms_users]]\nusername = \"{}\"\npassword = \"t\"\n",
        "é".repeat(64)
    ));
    let errors = &report.errors;
    assert_eq!(
        keys(errors),
        set(&[
            "sendsms_users[1].username",
            "sendsms_users[2].username",
            "sendsms_users[3].username"
        ]),
        "{report:#?}"
    );
    assert_eq!(
        message(errors, "sendsms_users[3].username"),
        "longer than 64 characters"
    );
    assert_eq!(
        message(errors, "sendsms_users[1].username"),
        "\"kim\" is already a sendsms user"
    );
    assert_eq!(
        message(errors, "sendsms_users[2].username"),
        "empty: give the user a name"
    );
}

#[test]
fn metrics_listen_needs_a_port_of_its_own_and_warns_when_open() {
    let clash =
        check("[http]\nlisten = \"127.0.0.1:8080\"\n[metrics]\nlisten = \"0.0.0.0:8080\"\n");
    assert!(
        message(&clash.errors, "metrics.listen").contains("http.listen's port"),
        "{clash:#?}"
    );
    assert!(message(&clash.warnings, "metrics.listen").contains("without a password"));
    let fine = check("[metrics]\nlisten = \"127.0.0.1:9187\"\n");
    assert!(
        fine.errors.is_empty() && fine.warnings.is_empty(),
        "{fine:#?}"
    );
    let config = Config::from_toml_str("[metrics]\nlisten = \"127.0.0.1:9187\"\n").unwrap();
    assert_eq!(
        config.metrics.listen,
        Some("127.0.0.1:9187".parse().unwrap())
    );
    let bad = check("[metrics]\nlisten = \"nowhere\"\n");
    assert_eq!(keys(&bad.errors), set(&["metrics.listen"]), "{bad:#?}");
    assert_eq!(Config::default().metrics.listen, None);
}

#[test]
fn the_log_format_is_text_or_json_and_check_config_names_a_wrong_one() {
    let json = Config::from_toml_str("[log]\nformat = \"json\"\n").unwrap();
    assert_eq!(json.log.format, crate::config::LogFormat::Json);
    assert_eq!(Config::default().log.format, crate::config::LogFormat::Text);
    let err = Config::from_toml_str("[log]\nformat = \"xml\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("log.format"), "{err}");
}

#[test]
fn max_auth_failures_is_bounded_and_zero_turns_the_limit_off() {
    let off = check("[http]\nmax_auth_failures = 0\n");
    assert!(!keys(&off.errors).contains("http.max_auth_failures"));
    let huge = check("[http]\nmax_auth_failures = 10001\n");
    assert!(keys(&huge.errors).contains("http.max_auth_failures"));
}

#[test]
fn worker_threads_leave_a_cpu_to_the_store_unless_told() {
    let auto = Config::default().runtime;
    assert_eq!(auto.workers(2, false), Some(1));
    assert_eq!(auto.workers(8, false), Some(7));
    assert_eq!(auto.workers(1, false), Some(1));
    // TOKIO_WORKER_THREADS, when set, is tokio's to read.
    assert_eq!(auto.workers(8, true), None);
    let four = Config::from_toml_str("[runtime]\nworker_threads = 4\n").unwrap();
    assert_eq!(four.runtime.workers(2, true), Some(4));
    let huge = check("[runtime]\nworker_threads = 513\n");
    assert!(keys(&huge.errors).contains("runtime.worker_threads"));
}

#[test]
fn the_store_backend_is_redb_unless_postgres_is_chosen() {
    let config = Config::default();
    assert_eq!(config.store.backend, StoreBackend::Redb);
    assert_eq!(config.store.postgres, PostgresConfig::default());
    let redb = check("[store]\nbackend = \"redb\"\n");
    assert!(
        redb.errors.is_empty() && redb.warnings.is_empty(),
        "{redb:#?}"
    );
    let pg = check("[store]\nbackend = \"postgres\"\n[store.postgres]\nhost = \"db\"\n");
    assert!(pg.errors.is_empty() && pg.warnings.is_empty(), "{pg:#?}");
    let other = Config::from_toml_str("[store]\nbackend = \"mysql\"\n")
        .unwrap_err()
        .to_string();
    assert!(other.contains("store.backend"), "{other}");
    assert!(other.contains("`redb` or `postgres`"), "{other}");
}

#[test]
fn the_postgres_section_is_checked_with_its_key_paths() {
    let bad = check(
        "[store.postgres]\n\
         url = \"mysql://db/x\"\n\
         host = \"db\"\n\
         port = 0\n\
         user = \" \"\n\
         password_file = \"\"\n\
         pool_size = 0\n\
         statement_timeout_ms = 0\n\
         claim_lease_secs = 86401\n",
    );
    assert_eq!(
        keys(&bad.errors),
        set(&[
            "store.postgres.url",
            "store.postgres.host",
            "store.postgres.port",
            "store.postgres.user",
            "store.postgres.password_file",
            "store.postgres.pool_size",
            "store.postgres.statement_timeout_ms",
            "store.postgres.claim_lease_secs",
        ]),
        "{bad:#?}"
    );
    assert!(message(&bad.errors, "store.postgres.host").contains("together with url"));
    // Set while the backend is redb: ignored, and said so.
    assert_eq!(keys(&bad.warnings), set(&["store.postgres"]), "{bad:#?}");

    // A URL with a password works, but the file would hold a secret.
    let secret = check("[store.postgres]\nurl = \"postgresql://rb:hunter2@db:5432/rb\"\n");
    assert!(secret.errors.is_empty(), "{secret:#?}");
    assert!(
        message(&secret.warnings, "store.postgres.url").contains("password_file"),
        "{secret:#?}"
    );
    let parts = Config::from_toml_str(
        "[store.postgres]\nhost = \"/run/postgresql\"\nport = 5433\nuser = \"rb\"\n\
         dbname = \"sms\"\npassword_file = \"/etc/rapidbox/pg\"\npool_size = 4\n",
    )
    .unwrap();
    assert_eq!(
        parts.store.postgres,
        PostgresConfig {
            host: Some("/run/postgresql".into()),
            port: Some(5433),
            user: Some("rb".into()),
            dbname: Some("sms".into()),
            password_file: Some("/etc/rapidbox/pg".into()),
            pool_size: 4,
            ..PostgresConfig::default()
        }
    );
    let bad_port = Config::from_toml_str("[store.postgres]\nport = 70000\n")
        .unwrap_err()
        .to_string();
    assert!(bad_port.contains("store.postgres.port"), "{bad_port}");
}

#[test]
fn the_commit_delay_is_bounded_and_reaches_the_store() {
    let report = check("[store]\ncommit_delay_us = 10001\n");
    assert_eq!(
        keys(&report.errors),
        BTreeSet::from(["store.commit_delay_us"])
    );
    assert!(message(&report.errors, "store.commit_delay_us").contains("0 to 10000"));
    let report = check("[store]\ncommit_delay_us = 500\n");
    assert!(report.errors.is_empty(), "{report:#?}");
    let config = Config::from_toml_str("[store]\ncommit_delay_us = 500\n").unwrap();
    assert_eq!(config.store.commit_delay_us, 500);
    assert_eq!(Config::default().store.commit_delay_us, 0, "off by default");
}
