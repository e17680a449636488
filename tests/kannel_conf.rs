//! `rapidbox import-kannel-conf` against real Kannel files and binaries:
//! the key table matches what Debian's smsbox compiles in; the repository's
//! bearerbox-test.conf converts; and a realistic smsbox.conf that Debian's
//! smsbox 1.4.5 runs on converts to a configuration rapidbox runs on,
//! without edits, serving the same sendsms users. And the reader accepts
//! and refuses what smsbox does, reading the same values.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rapidbox::config::Config;
use rapidbox::kannel_conf::{self, keys, ReadOptions};
use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::FakeSmsc;
use support::http;
use support::ports::free_port;
use support::rapidbox::{Rapidbox, RAPIDBOX};
use support::smsbox::{self, Ready};
use support::SMSBOX;

const WAIT: Duration = Duration::from_secs(20);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kannel-conf")
}

/// `smsbox -g` prints the group and key table compiled into the binary;
/// `keys::GROUPS` was made from it and must still match it.
#[test]
fn the_key_table_is_the_one_compiled_into_smsbox() {
    if !support::require_kannel("kannel_conf_keys", &[SMSBOX]) {
        return;
    }
    let output = Command::new(SMSBOX).arg("-g").output().unwrap();
    assert!(output.status.success(), "smsbox -g: {}", output.status);
    let mut dumped: Vec<(String, bool, Vec<String>)> = Vec::new();
    let mut single = false;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if line.contains("Single Group") || line.contains("Multi Group") {
            single = line.contains("Single");
        } else if let Some(name) = line.strip_prefix("group = ") {
            dumped.push((name.to_owned(), single, Vec::new()));
        } else if let Some((key, _)) = line.split_once(" = <please consult user doc>") {
            dumped
                .last_mut()
                .expect("a key before any group")
                .2
                .push(key.to_owned());
        }
    }
    let table: Vec<(String, bool, Vec<String>)> = keys::GROUPS
        .iter()
        .map(|g| {
            (
                g.name.to_owned(),
                g.single,
                g.keys.iter().map(|k| k.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(table, dumped);
}

/// What smsbox 1.4.5 makes of `dir/main.conf`, run in `dir`: `Ok` with the
/// global sender it logs when it read the configuration (it then stops,
/// finding no bearerbox on port 1), `Err` with its output when it refused.
fn smsbox_reads(dir: &Path) -> Result<Option<String>, String> {
    let out = dir.join("smsbox.out");
    let mut child = Command::new(SMSBOX)
        .arg("main.conf")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(dir.join("smsbox.err")).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > WAIT {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("smsbox on {} did not stop", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = String::from_utf8_lossy(&std::fs::read(dir.join("smsbox.err")).unwrap()).into_owned();
    if !log.contains("Couldn't connect to the bearerbox") {
        return Err(log);
    }
    let marker = "Service global sender set as '";
    Ok(log.lines().find_map(|line| {
        let start = line.find(marker)? + marker.len();
        Some(line[start..line.rfind('\'')?].to_owned())
    }))
}

/// Small files on the edges of Kannel's syntax, each read by smsbox 1.4.5
/// and by the reader: both accept it or both refuse it, and when they
/// accept it they read the same global-sender.
#[test]
fn the_reader_accepts_refuses_and_reads_what_smsbox_does() {
    const TEST: &str = "kannel_conf_reader";
    if !support::require_kannel(TEST, &[SMSBOX]) {
        return;
    }
    let head = "group = core\nsmsbox-port = 1\n\ngroup = smsbox\nbearerbox-host = 127.0.0.1\n";
    // (name, the rest of main.conf's smsbox group, other files: path, text)
    type Case<'a> = (&'a str, &'a [u8], &'a [(&'a str, &'a [u8])]);
    let cases: &[Case] = &[
        ("quotes", br#"global-sender = "a\"b\\c\d #x\n""#, &[]),
        ("continued", b"global-sender = \"a \\\nb\"", &[]),
        (
            "double backslash",
            b"global-sender = x\\\\\nlog-level = 0",
            &[],
        ),
        ("hash in a value", b"global-sender = 55 # five", &[]),
        ("lone quote", b"global-sender = \"", &[]),
        ("latin-1", b"global-sender = caf\xe9", &[]),
        ("crlf", b"global-sender = \"crlf\"\r\nlog-level = 0\r", &[]),
        (
            "set twice",
            b"global-sender = one\nglobal-sender = two",
            &[],
        ),
        ("unknown key", b"foo = 1", &[]),
        ("core's key", b"admin-port = 1", &[]),
        ("group case", b"\ngroup = SMSBOX", &[]),
        ("no equals", b"global-sender 5", &[]),
        ("blank inside", b"\nglobal-sender = 5", &[]),
        ("include in a value", b"global-sender = \"include\"", &[]),
        (
            "include",
            b"include = sub/part.conf",
            &[("sub/part.conf", b"global-sender = part")],
        ),
        (
            "include beside",
            b"include = sub/inner.conf",
            &[
                ("sub/inner.conf", b"include = part.conf"),
                ("sub/part.conf", b""),
            ],
        ),
        (
            "directory",
            b"global-sender = d\n\ninclude = conf.d",
            &[(
                "conf.d/a.conf",
                b"group = sendsms-user\nusername = u\npassword = p",
            )],
        ),
        (
            "twice",
            b"\ninclude = p.conf\ninclude = p.conf",
            &[("p.conf", b"")],
        ),
    ];
    let root = support::test_dir(TEST);
    let mut accepted = 0;
    for (i, (name, smsbox, files)) in cases.iter().enumerate() {
        let dir = root.path().join(i.to_string());
        let mut main = head.as_bytes().to_vec();
        main.extend_from_slice(smsbox);
        main.push(b'\n');
        for (path, text) in files.iter().chain([&("main.conf", &main[..])]) {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let kannel = smsbox_reads(&dir);
        let ours = kannel_conf::read(&dir.join("main.conf"), &ReadOptions::new(&dir));
        match (&kannel, &ours) {
            (Ok(sender), Ok(conf)) => {
                accepted += 1;
                let read = conf.single("smsbox").and_then(|g| g.get("global-sender"));
                assert_eq!(read.map(|var| var.value.clone()), *sender, "{name}");
            }
            (Err(_), Err(_)) => {}
            _ => panic!("{name}: smsbox: {kannel:?}\nthe reader: {ours:?}"),
        }
    }
    assert!((4..cases.len()).contains(&accepted), "{accepted} accepted");
}

#[test]
fn the_repositorys_bearerbox_test_conf_converts_to_a_valid_configuration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let conf = kannel_conf::read(
        &root.join("kannel-conf/bearerbox-test.conf"),
        &ReadOptions::new(root),
    )
    .unwrap();
    let conversion = kannel_conf::convert(&conf).unwrap();
    assert!(conversion.report.is_ok(), "{:?}", conversion.report.errors);
    let config = Config::from_toml_str(&conversion.toml).unwrap();
    assert_eq!(
        (config.kannel.host.as_str(), config.kannel.port),
        ("127.0.0.1", 13001)
    );
    assert!(config.sendsms_users.is_empty());
    let notes: Vec<String> = conversion.notes.iter().map(|n| n.to_string()).collect();
    let notes = notes.join("\n");
    for expected in [
        "bearerbox-test.conf:15: core admin-port, admin-password, admin-deny-ip, admin-allow-ip, \
         box-deny-ip, box-allow-ip, dlr-storage, log-level: not carried over: the bearerbox's",
        "bearerbox-test.conf:30: smsc smsc-id = \"fake\": not carried over: the bearerbox's",
        "smsbox (no sendsms-port): smsbox served no HTTP",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in\n{notes}");
    }
}

/// A conversion that check-config would refuse is written, and the command
/// fails saying why.
#[test]
fn import_fails_when_its_output_needs_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let conf = "group = core\nsmsbox-port-ssl = true\n\ngroup = smsbox\n";
    std::fs::write(dir.path().join("tls.conf"), conf).unwrap();
    let output = Command::new(RAPIDBOX)
        .args(["import-kannel-conf", "tls.conf", "-o", "out.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("check-config error: kannel.tls_ca_file"),
        "{stderr}"
    );
    assert!(stderr.contains("needs an edit"), "{stderr}");
    let written = std::fs::read_to_string(dir.path().join("out.toml")).unwrap();
    assert!(written.contains("tls = true"), "{written}");
}

/// The fixture, with its bearerbox and sendsms ports replaced by `ports`,
/// copied into `dir` with the file it includes.
fn fixture_in(dir: &Path, bearerbox_port: u16, sendsms_port: u16) -> PathBuf {
    let text = std::fs::read_to_string(fixtures().join("smsbox.conf")).unwrap();
    for line in ["smsbox-port = 13001\n", "sendsms-port = 13013\n"] {
        assert!(text.contains(line), "the fixture has no {line:?}");
    }
    let text = text
        .replace(
            "smsbox-port = 13001\n",
            &format!("smsbox-port = {bearerbox_port}\n"),
        )
        .replace(
            "sendsms-port = 13013\n",
            &format!("sendsms-port = {sendsms_port}\n"),
        );
    std::fs::write(dir.join("smsbox.conf"), text).unwrap();
    std::fs::copy(
        fixtures().join("sendsms-users.conf"),
        dir.join("sendsms-users.conf"),
    )
    .unwrap();
    dir.join("smsbox.conf")
}

/// The sendsms answers for the fixture's two users, on `port`.
async fn sendsms_answers(port: u16) -> Vec<(u16, String)> {
    let mut answers = Vec::new();
    for query in [
        "/cgi-bin/sendsms?username=shop&password=s3cret&to=4912345&text=hi",
        "/cgi-bin/sendsms?username=alerts&password=al%22erts&to=4912345&text=hi",
        "/cgi-bin/sendsms?username=shop&password=wrong&to=4912345&text=hi",
    ] {
        let response = http::get(port, query).await;
        answers.push((response.status, response.body.trim().to_owned()));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapidbox_runs_without_edits_on_a_conversion_of_what_smsbox_runs_on() {
    const TEST: &str = "kannel_conf_e2e";
    if !support::require_kannel(TEST, &[support::BEARERBOX, SMSBOX]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let dir = dir.path();
    let ports = BearerboxPorts::free();
    let mut bearerbox = Bearerbox::start(dir, &conf::bearerbox(dir, &ports), ports).await;
    // With its SMSC online the bearerbox accepts MTs at once, and smsbox
    // answers "0: Accepted for delivery" as rapidbox does.
    let _fakesmsc = FakeSmsc::spawn(
        "fakesmsc",
        dir,
        ports.fake_smsc,
        &["+4912345 5555 text x"],
        0,
        0.1,
    );
    bearerbox
        .wait_status("the fake SMSC online", WAIT, |status| {
            status.fake_smsc_online
        })
        .await;
    let sendsms_port = free_port();
    let smsbox_conf = fixture_in(dir, ports.smsbox, sendsms_port);

    // Kannel's smsbox runs on it, in `dir`, where its include is.
    let ready = Ready {
        smsbox_id: None,
        sendsms_port: Some(sendsms_port),
    };
    let mut smsbox = smsbox::start(dir, &smsbox_conf, &mut bearerbox, ready).await;
    let smsbox_answers = sendsms_answers(sendsms_port).await;
    smsbox.stop();

    // The real binary converts it, and check-config passes the result.
    let converted = dir.join("rapidbox.toml");
    let output = Command::new(RAPIDBOX)
        .args([
            "import-kannel-conf",
            "smsbox.conf",
            "-o",
            "rapidbox.toml",
            "--kannel-dir",
        ])
        .arg(dir)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "import-kannel-conf: {}\n{stderr}",
        output.status
    );
    let expected = "smsbox.conf:19: smsbox log-file = \"smsbox.log\": not carried over";
    assert!(stderr.contains(expected), "{expected:?} not in\n{stderr}");
    // The user's message shaping is carried over, not noted.
    assert!(!stderr.contains("concatenation"), "{stderr}");
    let toml_text = std::fs::read_to_string(dir.join("rapidbox.toml")).unwrap();
    let users = rapidbox::config::Config::from_toml_str(&toml_text)
        .unwrap()
        .sendsms_users;
    let shop = &users[0];
    assert_eq!((shop.max_messages, shop.concatenation), (Some(3), true));
    let check = Command::new(RAPIDBOX)
        .args(["check-config", "rapidbox.toml"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check-config: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let config = Config::load(&converted).unwrap();
    assert_eq!(
        config.http.listen.to_string(),
        format!("127.0.0.1:{sendsms_port}")
    );
    assert_eq!(config.kannel.port, ports.smsbox);
    // Both sms-services run, as rapidbox's sms_services app.
    assert_eq!(config.router.apps, ["sms_services"]);
    assert_eq!(config.sms_services.len(), 2);
    assert_eq!(config.smsbox.http_timeout, 30);
    assert_eq!(config.smsbox.reply_emptymessage, "");

    // rapidbox runs on it as it is, and its sendsms answers as smsbox's did.
    let mut rapidbox = Rapidbox::start("rapidbox", dir, &converted);
    bearerbox.wait_for_box(None, WAIT).await;
    rapidbox
        .daemon()
        .wait_for_tcp_port(sendsms_port, WAIT)
        .await;
    let rapidbox_answers = sendsms_answers(sendsms_port).await;
    rapidbox.stop().await;
    assert_eq!(
        smsbox_answers[..2],
        [
            (202, "0: Accepted for delivery".to_owned()),
            (202, "0: Accepted for delivery".to_owned())
        ]
    );
    assert_eq!(smsbox_answers[2].0, 403, "{smsbox_answers:?}");
    assert_eq!(rapidbox_answers, smsbox_answers);
}
