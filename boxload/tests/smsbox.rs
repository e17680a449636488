//! boxload against Kannel's own smsbox 1.4.5, the box it was built to
//! measure rapidbox against: smsbox attaches to boxload as to a bearerbox,
//! answers every MO from a static-text sms-service that quotes it (`%a`),
//! and boxload must match every reply to its MO, with nothing lost,
//! duplicated or mismatched, and no frame it cannot read.
//!
//! Needs Kannel (`apt-get install -y kannel`): skipped without it, except
//! under CI (`CI=true`), where a missing smsbox fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use boxload::Options;
use tokio::net::TcpListener;

const SMSBOX: &str = "/usr/sbin/smsbox";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// smsbox as a child process, killed when dropped (also when the test
/// panics), so no test leaves a box behind.
struct Smsbox {
    child: Child,
    log: PathBuf,
}

impl Smsbox {
    /// Starts smsbox with a configuration that points it at `port` and
    /// answers every MO with "You said: %a".
    fn start(dir: &Path, port: u16) -> Smsbox {
        let log = dir.join("smsbox.log");
        let conf = dir.join("smsbox.conf");
        // smsbox reads the core group of its file too, which must exist;
        // its admin port is never opened by smsbox.
        let text = format!(
            "group = core\n\
             admin-port = 1\n\
             admin-password = unused\n\
             smsbox-port = {port}\n\
             \n\
             group = smsbox\n\
             bearerbox-host = \"127.0.0.1\"\n\
             bearerbox-port = {port}\n\
             log-file = \"{log}\"\n\
             log-level = 1\n\
             \n\
             group = sms-service\n\
             keyword = default\n\
             text = \"You said: %a\"\n\
             max-messages = 1\n",
            log = log.display()
        );
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
        let child = Command::new(SMSBOX)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SMSBOX}: {e}"));
        Smsbox { child, log }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Smsbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_smsbox_answers_every_mo_exactly_once() {
    if !Path::new(SMSBOX).exists() {
        assert!(
            !in_ci(),
            "{SMSBOX} is required under CI; install it with `apt-get install -y kannel`"
        );
        eprintln!("skipped: Kannel's smsbox is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot listen: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local addr: {e}"))
        .port();
    let smsbox = Smsbox::start(dir.path(), port);
    let options = Options {
        messages: 1000,
        window: 50,
        senders: 7,
        grace: Duration::from_secs(10),
        timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let report = boxload::run(listener, &options)
        .await
        .unwrap_or_else(|e| panic!("load: {e}\nsmsbox log:\n{}", smsbox.log_tail()));
    eprintln!("{}", report.to_text());

    assert!(
        report.passed(),
        "smsbox failed the load:\n{}\nsmsbox log:\n{}",
        report.to_text(),
        smsbox.log_tail()
    );
    assert_eq!(report.counts.replies, 1000);
    assert_eq!(report.counts.mts, 1000, "one MT per MO, and no more");
    assert_eq!(report.counts.bad_frames, 0);
    assert_eq!(report.counts.unexpected_frames, 0);
    assert_eq!(report.end, "complete");
    assert!(report.reply_latency_ms.count == 1000 && report.reply_rate > 0.0);
}
