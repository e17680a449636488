//! The store's commands against a real store: `rapidbox backup` of a
//! running rapidbox under load (through `POST /admin/backup`), and
//! `purge`, `compact` and `verify` on a stopped store.

mod support;

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};

use rapidbox::config::Config;
use rapidbox::model::{Connection, Direction, Message, Status};
use rapidbox::store::{verify, Op, Outcome, Unit};
use rapidbox::Daemon;
use support::in_process::{send, Reply, Rig};
use support::rapidbox::{all_messages, open_store, RAPIDBOX};

const PASSWORD: &str = "s3cret";

async fn post(rig: &Rig, path: &str, form: &str) -> Reply {
    let request = Request::post(rig.url(path))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap();
    send(request).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Runs the rapidbox binary with `args`, within a minute.
async fn rapidbox(args: Vec<String>) -> Output {
    let what = format!("rapidbox {}", args.join(" "));
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(RAPIDBOX)
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
    });
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("{what} took over a minute"))
        .unwrap()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!(
        "{what}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write_config(dir: &Path, store: &Path, http: &str) -> String {
    let path = dir.join("rapidbox.toml");
    let text = format!(
        "[store]\npath = {}\n[kannel]\nenabled = false\n[http]\n{http}\n",
        toml::Value::String(store.display().to_string())
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The texts of the MOs in `messages`.
fn mo_texts(messages: &[Message]) -> std::collections::HashSet<String> {
    messages
        .iter()
        .filter(|m| m.direction == Direction::Incoming)
        .map(|m| m.text.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_running_rapidbox_under_load_holds_everything_committed_before_it() {
    let rig = Rig::start(&format!("password = {PASSWORD:?}"), "").await;
    // Backups outlive the rig (which removes its directory when stopped).
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().to_owned();

    // Traffic: MOs through /router/receive, each answered once committed.
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let url = rig.url("/router/receive");
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let body = form(&[
                    ("backend", "load"),
                    ("sender", "2507"),
                    ("message", &format!("load {n}")),
                    ("password", PASSWORD),
                ]);
                let request = Request::post(url.as_str())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                let reply = send(request).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                n += 1;
                acked.store(n, Ordering::Release);
            }
            n
        })
    };
    let started = Instant::now();
    while acked.load(Ordering::Acquire) < 200 {
        assert!(started.elapsed() < Duration::from_secs(30), "no traffic");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The endpoint's refusals.
    let dest = dir.join("http-backup.redb");
    let to = dest.display().to_string();
    let no_password = post(&rig, "/admin/backup", &form(&[("to", &to)])).await;
    assert_eq!(no_password.status, StatusCode::FORBIDDEN);
    let relative = form(&[("to", "backup.redb"), ("password", PASSWORD)]);
    let relative = post(&rig, "/admin/backup", &relative).await;
    assert_eq!(
        relative.status,
        StatusCode::BAD_REQUEST,
        "{}",
        relative.body
    );

    // Through the endpoint, while the load goes on.
    let before_http = acked.load(Ordering::Acquire);
    let reply = post(
        &rig,
        "/admin/backup",
        &form(&[("to", &to), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["path"], to.as_str());
    let again = post(
        &rig,
        "/admin/backup",
        &form(&[("to", &to), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "never over a file");

    // Through the command line, which finds the store held and asks the
    // running rapidbox.
    let cli_dest = dir.join("cli-backup.redb");
    let config = write_config(
        &dir,
        &rig.dir.path().join("rapidbox.redb"),
        &format!("listen = \"{}\"\npassword = {PASSWORD:?}", rig.addr),
    );
    let before_cli = acked.load(Ordering::Acquire);
    let output = rapidbox(vec![
        "backup".into(),
        cli_dest.display().to_string(),
        "--config".into(),
        config,
    ])
    .await;
    assert!(output.status.success());
    assert!(
        stdout(&output).contains(": ok, schema"),
        "the CLI verified it"
    );
    let during = acked.load(Ordering::Acquire);

    stop.store(true, Ordering::Relaxed);
    let total = load.await.unwrap();
    assert!(total > during, "the load ran on during the backups");
    rig.stop().await;

    for (file, before) in [(&dest, before_http), (&cli_dest, before_cli)] {
        let report = verify(file).unwrap();
        assert!(report.is_ok(), "{report:#?}");
        let store = open_store(file);
        let texts = mo_texts(&all_messages(&store).await);
        for n in 0..before {
            assert!(
                texts.contains(&format!("load {n}")),
                "{}: MO {n} was acknowledged before the backup started",
                file.display()
            );
        }
        // A snapshot, not the end state: the load went on after it.
        assert!((texts.len() as u64) < total, "{}", file.display());
        store.close().await;
    }
}

#[tokio::test]
async fn purge_compact_and_verify_work_on_a_stopped_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rapidbox.redb");
    let config = write_config(dir.path(), &path, "");
    let store = open_store(&path);
    let old = |id| {
        let mut m = Message::new(
            id,
            Connection::new("s", "1"),
            Direction::Incoming,
            "x".repeat(300),
        );
        m.status = Status::Handled;
        m.date = 1_000_000; // 1970
        m
    };
    let mut unit = Unit::new();
    for id in 1..=1000 {
        unit.push(Op::put(old(id)));
    }
    let mut queued = Message::new(1001, Connection::new("s", "1"), Direction::Outgoing, "q");
    queued.date = 1_000_000;
    unit.push(Op::put(queued));
    let young = Message::new(1002, Connection::new("s", "1"), Direction::Incoming, "new");
    unit.push(Op::put(young));
    assert_eq!(store.commit(unit).await.unwrap(), Outcome::Applied);

    // Not while rapidbox has the store open.
    let cmd = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(["--config".to_owned(), config.clone()]);
        all
    };
    let refused = rapidbox(cmd(&["purge", "--before", "2000-01-01"])).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop it first"));
    store.close().await;

    let purged = rapidbox(cmd(&["purge", "--before", "2000-01-01"])).await;
    assert!(purged.status.success());
    assert!(
        stdout(&purged).contains("purged 1000 message(s); kept 1 still owed work"),
        "{}",
        stdout(&purged)
    );
    let compacted = rapidbox(cmd(&["compact"])).await;
    assert!(compacted.status.success());
    let verified = rapidbox(cmd(&["verify"])).await;
    assert!(verified.status.success());
    assert!(stdout(&verified).contains("ok, schema"));

    let store = open_store(&path);
    let left: Vec<_> = all_messages(&store).await.iter().map(|m| m.id).collect();
    assert_eq!(left, [1001, 1002]);
    store.close().await;
    let bad_date = rapidbox(cmd(&["purge", "--before", "last tuesday"])).await;
    assert!(!bad_date.status.success());
}

#[tokio::test]
async fn a_running_rapidbox_purges_down_to_its_maximum_and_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rapidbox.redb");
    let toml = format!(
        "[store]\npath = {}\nretention_max_messages = 10\nretention_every_secs = 1\n\
         [kannel]\nenabled = false\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [router]\napps = []\n",
        toml::Value::String(path.display().to_string())
    );
    let running = Daemon::builder(Config::from_toml_str(&toml).unwrap())
        .start()
        .await
        .unwrap();
    for n in 0..30 {
        running
            .intake()
            .receive(Connection::new("s", "2507"), format!("mo {n}"))
            .await
            .unwrap();
    }
    // 30 MOs, no apps and so no replies (a queued reply with nowhere to
    // go would be owed work, and kept); the sweep runs every second.
    let started = Instant::now();
    loop {
        let total: u64 = running
            .store()
            .counts()
            .await
            .unwrap()
            .iter()
            .map(|c| c.2)
            .sum();
        if total <= 10 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still {total} messages: {:?}",
            running.store().counts().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(running.store().stats().purged, 20);
    // Retention's progress, as monitoring sees it.
    let request = hyper::Request::get(format!("http://{}/metrics", running.http_addr()))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let scrape = send(request).await;
    assert!(
        scrape
            .body
            .lines()
            .any(|l| l == "rapidbox_store_purged_messages_total 20"),
        "{}",
        scrape.body
    );
    running.stop().await;
    assert!(verify(&path).unwrap().is_ok());
    let store = open_store(&path);
    let texts = mo_texts(&all_messages(&store).await);
    assert!(texts.contains("mo 29"), "the newest stay: {texts:?}");
    assert!(!texts.contains("mo 0"), "the oldest go: {texts:?}");
    store.close().await;
}
