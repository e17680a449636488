//! The conversion, its output read back by rapidbox's own loader.

use std::path::Path;

use crate::config::Config;
use crate::kannel_conf::{convert, read, Conversion, ConvertError, ReadOptions};

fn convert_text(text: &str) -> Result<Conversion, ConvertError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kannel.conf"), text).unwrap();
    let conf = read(
        &dir.path().join("kannel.conf"),
        &ReadOptions::new(dir.path()),
    )
    .unwrap();
    convert(&conf)
}

/// The conversion's output, which must load and pass check-config.
fn loaded(conversion: &Conversion) -> Config {
    assert!(
        conversion.report.is_ok(),
        "{:?}\n{}",
        conversion.report.errors,
        conversion.toml
    );
    Config::from_toml_str(&conversion.toml).unwrap_or_else(|e| panic!("{e}\n{}", conversion.toml))
}

fn notes(conversion: &Conversion) -> String {
    let lines: Vec<_> = conversion
        .notes
        .iter()
        .map(|note| note.to_string())
        .collect();
    lines.join("\n")
}

#[test]
fn the_bearerbox_connection_comes_from_core_then_smsbox() {
    let conversion = convert_text(
        "group = core\nsmsbox-port = 0x32C9\nadmin-port = 13000\nadmin-password = s3cret\n\n\
         group = smsbox\nbearerbox-host = bb.example\nsmsbox-id = rapid\n\
         global-sender = 5555\nlog-file = /var/log/kannel/smsbox.log\n",
    )
    .unwrap();
    let config = loaded(&conversion);
    assert_eq!(config.kannel.host, "bb.example");
    // strtol with base 0, as Kannel: 0x32C9 is 13001.
    assert_eq!(config.kannel.port, 13001);
    assert_eq!(config.kannel.smsbox_id.as_deref(), Some("rapid"));
    assert_eq!(config.kannel.global_sender.as_deref(), Some("5555"));
    assert!(!config.kannel.tls);
    // smsbox's replies ask for no delivery reports unless told to.
    assert_eq!(config.kannel.dlr_mask, 0);
    // smsbox answered only through sms-services: no echo.
    assert!(config.router.apps.is_empty());
    let notes = notes(&conversion);
    assert!(notes.contains("kannel.conf:10: smsbox log-file = \"/var/log/kannel/smsbox.log\": not carried over: rapidbox logs to stderr"), "{notes}");
    assert!(
        notes.contains("core admin-port, admin-password: not carried over: the bearerbox's"),
        "{notes}"
    );
    // Secrets are not repeated, in notes or comments.
    assert!(!conversion.toml.contains("s3cret"), "{}", conversion.toml);

    let overridden = convert_text(
        "group = core\nsmsbox-port = 13001\n\ngroup = smsbox\nbearerbox-port = 14001\n",
    )
    .unwrap();
    let config = loaded(&overridden);
    assert_eq!(
        (config.kannel.host.as_str(), config.kannel.port),
        ("localhost", 14001)
    );
}

#[test]
fn sendsms_port_and_interface_become_the_http_listen_address() {
    let on = |extra: &str| convert_text(&format!("group = smsbox\n{extra}\n"));
    let conversion = on("sendsms-port = 13013\nsendsms-interface = 127.0.0.1").unwrap();
    assert_eq!(
        loaded(&conversion).http.listen.to_string(),
        "127.0.0.1:13013"
    );

    // Without an interface smsbox listened on every one, and so does rapidbox,
    // with a note that /router/* is served there too.
    let conversion = on("sendsms-port = 13013").unwrap();
    assert_eq!(loaded(&conversion).http.listen.to_string(), "0.0.0.0:13013");
    assert!(
        notes(&conversion).contains("set [http] password"),
        "{}",
        notes(&conversion)
    );

    let conversion = on("sendsms-port = 70000").unwrap();
    assert_eq!(
        loaded(&conversion).http.listen,
        Config::default().http.listen
    );
    assert!(notes(&conversion).contains("sendsms-port = \"70000\": not carried over: not a port"));

    let conversion = on("").unwrap();
    assert!(notes(&conversion).contains("(no group core): Kannel's smsbox 1.4.5 refuses"));
    assert_eq!(
        loaded(&conversion).http.listen,
        Config::default().http.listen
    );
    assert!(notes(&conversion).contains("smsbox served no HTTP"));
}

#[test]
fn sendsms_users_carry_their_senders_and_smscs() {
    let conversion = convert_text(
        "group = smsbox\nglobal-sender = 1000\n\n\
         group = sendsms-user\nusername = shop\npassword = \"p\\\"w\"\nfaked-sender = 8500\n\
         forced-smsc = tigo\ndefault-smsc = airtel\nmax-messages = 3\nuser-allow-ip = 10.*\n\n\
         group = sendsms-user\nusername = plain\npassword = x\ndefault-sender = 2000\n\n\
         group = sendsms-user\nusername = fallback\npassword = x\n\n\
         group = sendsms-user\nusername = plain\npassword = again\n\n\
         group = sendsms-user\nusername = nopass\n",
    )
    .unwrap();
    let config = loaded(&conversion);
    let users = &config.sendsms_users;
    assert_eq!(users.len(), 3, "{users:?}");
    assert_eq!(
        (users[0].username.as_str(), users[0].password.as_str()),
        ("shop", "p\"w")
    );
    assert_eq!(users[0].forced_sender.as_deref(), Some("8500"));
    assert_eq!(users[0].forced_smsc.as_deref(), Some("tigo"));
    assert_eq!(users[0].default_smsc, None);
    // Kannel's sendsms falls back to global-sender; rapidbox's to default_sender.
    // Kannel's faked-sender leaves no use for a default.
    assert_eq!(users[0].default_sender, None);
    assert_eq!(users[1].default_sender.as_deref(), Some("2000"));
    assert_eq!(users[2].default_sender.as_deref(), Some("1000"));
    // The keys that shape a user's messages and who may send as it.
    assert_eq!(users[0].max_messages, Some(3));
    assert_eq!(users[0].user_allow_ip.as_deref(), Some("10.*"));
    let notes = notes(&conversion);
    assert!(!notes.contains("max-messages"), "{notes}");
    assert!(!notes.contains("user-allow-ip"), "{notes}");
    for expected in [
        "default-smsc = \"airtel\": not carried over: Kannel ignores it when forced-smsc is set",
        "sendsms-user username=\"plain\": not carried over: a second user",
        "sendsms-user username=\"nopass\": not carried over: no password",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in\n{notes}");
    }
}

#[test]
fn a_sendsms_users_message_shaping_keys_are_carried_over() {
    let conversion = convert_text(
        "group = smsbox\n\n\
         group = sendsms-user\nusername = u\npassword = p\nname = shop\nconcatenation = true\n\
         max-messages = 0\nsplit-chars = \" .\"\nsplit-suffix = +\nheader = \"H:\"\nfooter = \":F\"\n\
         user-deny-ip = \"10.0.0.9\"\nwhite-list-regex = \"^256\"\nblack-list-regex = \"^2567\"\n\
         allowed-prefix = 256\n",
    )
    .unwrap();
    let config = loaded(&conversion);
    let user = &config.sendsms_users[0];
    assert_eq!(user.name.as_deref(), Some("shop"));
    assert!(user.concatenation);
    assert_eq!(user.max_messages, None, "0 is refused, not carried");
    assert_eq!(
        (user.split_chars.as_deref(), user.split_suffix.as_deref()),
        (Some(" ."), Some("+"))
    );
    assert_eq!(
        (user.header.as_deref(), user.footer.as_deref()),
        (Some("H:"), Some(":F"))
    );
    assert_eq!(user.user_deny_ip.as_deref(), Some("10.0.0.9"));
    assert!(user.white_list_regex.is_some() && user.black_list_regex.is_some());
    let notes = notes(&conversion);
    for expected in [
        "max-messages = \"0\": not carried over: smsbox 1.4.5 never answers",
        "allowed-prefix = \"256\": not carried over: Kannel 1.4.5's smsbox does nothing with it",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in\n{notes}");
    }
}

#[test]
fn foreign_groups_are_noted() {
    let conversion = convert_text(
        "group = smsbox\n\n\
         group = sms-service\nkeyword = foo\nget-url = \"http://app/x?t=%a\"\n\n\
         group = smsc\nsmsc = fake\nsmsc-id = fake\nport = 10000\n\n\
         group = smsbox-route\nsmsbox-id = rapid\nsmsc-id = fake\n",
    )
    .unwrap();
    loaded(&conversion);
    let notes = notes(&conversion);
    for expected in [
        "kannel.conf:7: smsc smsc-id = \"fake\": not carried over: the bearerbox's",
        "kannel.conf:12: smsbox-route smsbox-id = \"rapid\": not carried over: the bearerbox's",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in\n{notes}");
    }
    // Each note is also a comment in the output.
    assert!(
        conversion.toml.lines().any(|line| line.starts_with("#   ")
            && line.ends_with(
                "kannel.conf:7: smsc smsc-id = \"fake\": not carried over: the bearerbox's, \
                 not smsbox's: nothing for rapidbox; the bearerbox keeps reading it"
            )),
        "{}",
        conversion.toml
    );
}

#[test]
fn every_sms_service_becomes_an_sms_services_entry_and_the_app_runs_them() {
    let conversion = convert_text(
        "group = smsbox\nreply-couldnotfetch = \"no luck\"\nreply-couldnotrepresent = x\n\
         http-request-retry = 2\nhttp-timeout = 9\nmo-recode = true\nsms-length = 120\n\n\
         group = sms-service\nkeyword = foo\naliases = \"bar;baz\"\n\
         get-url = \"http://app/x?t=%a&z=%z\"\nurl = \"http://app/old\"\n\
         max-messages = 3\nsplit-chars = \" \"\nomit-empty = yes\nsend-sender = true\n\
         accepted-smsc = \"a;b\"\ndlr-mask = 3\ndlr-url = \"http://app/d?%d\"\n\n\
         group = sms-service\nkeyword-regex = ^[0-9]+$\nexec = \"/bin/answer '%p x' %a\"\n\n\
         group = sms-service\nkeyword = default\ntext = \"Unknown: %k\"\n\
         white-list = http://lists/white\n\n\
         group = sms-service\nkeyword = broken\n",
    )
    .unwrap();
    let config = loaded(&conversion);
    assert_eq!(config.router.apps, ["sms_services"]);
    assert_eq!(config.sms_services.len(), 3);
    let foo = &config.sms_services[0];
    assert_eq!(foo.keyword.as_deref(), Some("foo"));
    assert_eq!(foo.aliases, ["bar", "baz"]);
    // smsbox leaves %z as written; rapidbox needs it doubled.
    assert_eq!(foo.get_url.as_deref(), Some("http://app/x?t=%a&z=%%z"));
    assert_eq!(foo.url, None, "get-url wins, as in smsbox");
    assert_eq!(foo.max_messages, 3);
    assert!(foo.omit_empty && foo.send_sender);
    assert_eq!(foo.accepted_smsc, ["a", "b"]);
    assert_eq!(foo.dlr_mask, Some(3));
    let exec = &config.sms_services[1];
    assert_eq!(
        exec.exec.as_deref(),
        Some(&["/bin/answer".to_owned(), "%p x".into(), "%a".into()][..])
    );
    let default = &config.sms_services[2];
    assert!(default.is_default());
    assert_eq!(default.white_list.as_deref(), Some(&[][..]));
    assert_eq!(config.smsbox.reply_couldnotfetch, "no luck");
    assert_eq!(
        config.smsbox.reply_couldnotrepresent, "no luck",
        "smsbox 1.4.5's key mix-up"
    );
    assert_eq!(config.smsbox.http_request_retry, 2);
    assert_eq!(config.smsbox.http_timeout, 9);
    assert!(config.smsbox.mo_recode);
    assert_eq!(config.smsbox.sms_length, 120);
    let notes = notes(&conversion);
    for expected in [
        "sms-service keyword=\"foo\" url: not carried over: smsbox uses only the first",
        "sms-service keyword=\"default\" white-list = \"http://lists/white\": needs an edit",
        "sms-service keyword=\"broken\": not carried over: no get-url",
        "smsbox reply-couldnotrepresent = \"x\": not carried over",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in\n{notes}");
    }
}

#[test]
fn hostile_values_stay_valid_toml() {
    let conversion = convert_text(
        "group = smsbox\nglobal-sender = \"\\\"]\\n[x]\"\nsmsbox-id = 'a\"b'\n\
         reply-emptymessage = \"\u{7}bell\"\n\n\
         group = sendsms-user\nusername = \"u\\\"\"\npassword = \"\"\"\"\"\"\n",
    )
    .unwrap();
    let config = loaded(&conversion);
    assert_eq!(config.kannel.global_sender.as_deref(), Some("\"]\\n[x]"));
    assert_eq!(config.kannel.smsbox_id.as_deref(), Some("'a\"b'"));
    assert_eq!(config.sendsms_users[0].username, "u\"");
    assert_eq!(config.sendsms_users[0].password, "\"\"\"\"");
}

#[test]
fn tls_without_a_ca_file_needs_an_edit_and_says_so() {
    let conversion =
        convert_text("group = core\nsmsbox-port-ssl = yes\n\ngroup = smsbox\n").unwrap();
    assert!(!conversion.report.is_ok(), "{}", conversion.toml);
    assert!(
        notes(&conversion).contains("needs an edit"),
        "{}",
        notes(&conversion)
    );
    let conversion = convert_text(
        "group = core\nsmsbox-port-ssl = true\nssl-trusted-ca-file = /etc/ca.pem\n\n\
         group = smsbox\nbearerbox-port-ssl = on\n",
    )
    .unwrap();
    let config = loaded(&conversion);
    assert!(config.kannel.tls);
    assert!(notes(&conversion).contains("certificate names \"localhost\""));
    assert_eq!(
        config.kannel.tls_ca_file.as_deref(),
        Some(Path::new("/etc/ca.pem"))
    );
}

#[test]
fn values_that_are_not_utf8_are_not_carried() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.conf"),
        b"group = smsbox\nglobal-sender = caf\xe9\n# comment \xff\n",
    )
    .unwrap();
    let conf = read(&dir.path().join("k.conf"), &ReadOptions::new(dir.path())).unwrap();
    let conversion = convert(&conf).unwrap();
    assert_eq!(loaded(&conversion).kannel.global_sender, None);
    assert!(
        notes(&conversion).contains("not UTF-8"),
        "{}",
        notes(&conversion)
    );
}

#[test]
fn without_an_smsbox_group_there_is_nothing_to_convert() {
    let err = convert_text("group = core\nsmsbox-port = 13001\n").unwrap_err();
    assert!(err.to_string().contains("no `group = smsbox`"));
}

#[test]
fn services_get_twice_max_pending_requests_background_slots() {
    let service = "group = sms-service\nkeyword = default\nget-url = \"http://h/?a=%a\"\n";
    let default = convert_text(&format!("group = smsbox\n\n{service}")).unwrap();
    assert_eq!(loaded(&default).router.max_deferred, 1024);
    let set = convert_text(&format!(
        "group = smsbox\nmax-pending-requests = 2000\n\n{service}"
    ))
    .unwrap();
    let config = loaded(&set);
    assert_eq!(
        (
            config.smsbox.max_pending_requests,
            config.router.max_deferred
        ),
        (2000, 4000)
    );
    let none = convert_text("group = smsbox\nmax-pending-requests = 2000\n").unwrap();
    assert_eq!(
        loaded(&none).router.max_deferred,
        crate::config::RouterConfig::default().max_deferred,
        "no services: nothing to fetch"
    );
}

#[test]
fn an_empty_text_service_is_carried_as_smsbox_runs_it() {
    let conversion = convert_text(
        "group = smsbox\n\ngroup = sms-service\nkeyword = default\ntext = \"\"\n\
         omit-empty = true\n",
    )
    .unwrap();
    let config = loaded(&conversion);
    assert_eq!(config.sms_services.len(), 1, "{}", conversion.toml);
    assert_eq!(config.sms_services[0].text.as_deref(), Some(""));
    assert!(config.sms_services[0].omit_empty);
    assert!(
        !notes(&conversion).contains("sms-service"),
        "{}",
        notes(&conversion)
    );
}

#[test]
fn an_empty_url_is_carried_as_smsbox_runs_it() {
    let conversion = convert_text(
        "group = smsbox\n\n\
         group = sms-service\nkeyword = g\nget-url = \"\"\n\n\
         group = sms-service\nkeyword = p\npost-url = \"\"\n",
    )
    .unwrap();
    // `loaded` also proves the output passes check-config.
    let config = loaded(&conversion);
    assert_eq!(config.sms_services[0].get_url.as_deref(), Some(""));
    assert_eq!(config.sms_services[1].post_url.as_deref(), Some(""));
    let notes = notes(&conversion);
    assert!(
        notes.contains("get-url: empty: every MO this service takes is answered with"),
        "{notes}"
    );
}
