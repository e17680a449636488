//! rapidbox's TLS link against Debian's real Kannel 1.4.5 bearerbox with
//! `smsbox-port-ssl = true`.
//!
//! Each test makes a throwaway CA and, signed by it, a certificate for
//! `localhost` and 127.0.0.1 (rcgen, ECDSA P-256), gives the certificate to
//! bearerbox (core group `ssl-server-cert-file`, `ssl-server-key-file`),
//! and runs the `rapidbox` binary against it with `[kannel] tls = true`,
//! while Kannel's fakesmsc plays the phone.
//!
//! - [`mos_are_answered_over_tls`]: rapidbox trusts that CA; every MO is
//!   routed, stored and answered, and the replies and their delivery
//!   reports are in the store after a SIGTERM stop.
//! - [`an_untrusted_certificate_is_refused_and_retried`] and
//!   [`a_certificate_for_another_name_is_refused_and_retried`]: rapidbox
//!   trusts another CA, or expects another name; it logs the TLS error,
//!   keeps retrying without exiting, and takes no MO (bearerbox keeps it
//!   queued, the store stays empty).
//!
//! What bearerbox 1.4.5 needs, found by running it: the two file keys in
//! the core group, PEM. It loads the PKCS#8 ECDSA key rcgen writes, needs
//! no chain file (the leaf alone, the CA being the box's to trust), and
//! without `ssl-trusted-ca-file` accepts a box that sends no client
//! certificate, as rapidbox does not. `openssl s_client` against it
//! negotiates TLS 1.3 (Debian's OpenSSL 3). With `smsbox-port-ssl = true`
//! the port speaks only TLS. Bearerbox logs each box it accepts there as
//! `Client connected from <127.0.0.1> using SSL`, refused handshakes
//! included, and accepts at most one box a second.
//!
//! `KANNEL_KEEP_TEST_DIR=1` keeps the configurations, certificates and logs.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rapidbox::model::{Direction, Status};
use rapidbox::store::{Store, StoreOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use support::conf::{self, BearerboxPorts};
use support::fakesmsc::FakeSmsc;
use support::process::{Daemon, SpawnOptions, START_TIMEOUT};
use support::{BEARERBOX, FAKESMSC};

const TEST: &str = "kannel_tls";

/// The number the phone writes to, and the phone.
const SHORTCODE: &str = "5555";
const PHONE: &str = "+256772000001";

/// The name in the bearerbox's certificate that rapidbox checks.
const SERVER_NAME: &str = "localhost";

/// Bound for anything that involves no timer of its own: a TLS handshake,
/// an MO routed and answered, a report. They take milliseconds here.
const EXCHANGE_WAIT: Duration = Duration::from_secs(15);

/// How long rapidbox gets to stop after SIGTERM (it allows itself 30 s for
/// the messages in hand; here there are none left by then).
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Refused handshakes the negative tests wait for: more than one shows
/// rapidbox retries rather than giving up after the first. Bearerbox
/// accepts at most one box connection a second (it sleeps 1 s after each
/// accept), so this takes about 2 s whatever rapidbox's backoff.
const REFUSALS: usize = 3;

/// How often log files are read again.
const POLL: Duration = Duration::from_millis(20);

// --- certificates --------------------------------------------------------

/// A throwaway certificate authority.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// A fresh self-signed CA called `name`.
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new())
            .unwrap_or_else(|e| panic!("{TEST}: CA parameters: {e}"));
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{TEST}: CA key: {e}"));
        let issuer = CertifiedIssuer::self_signed(params, key)
            .unwrap_or_else(|e| panic!("{TEST}: CA certificate: {e}"));
        Ca { issuer }
    }

    /// Writes the CA's certificate to `dir/name` and returns its path.
    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        write(dir, name, &self.issuer.pem())
    }

    /// A server certificate for `localhost` and 127.0.0.1 signed by this
    /// CA, written to `dir` as `server.pem` and `server.key`: (cert, key).
    fn server(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(vec![SERVER_NAME.to_owned(), "127.0.0.1".to_owned()])
                .unwrap_or_else(|e| panic!("{TEST}: server parameters: {e}"));
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{TEST}: server key: {e}"));
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("{TEST}: server certificate: {e}"));
        (
            write(dir, "server.pem", &cert.pem()),
            write(dir, "server.key", &key.serialize_pem()),
        )
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

// --- the daemons ---------------------------------------------------------

/// A bearerbox whose smsbox-port speaks only TLS, with this certificate.
struct TlsBearerbox {
    daemon: Daemon,
    ports: BearerboxPorts,
}

impl TlsBearerbox {
    async fn start(dir: &Path, cert: &Path, key: &Path) -> TlsBearerbox {
        let ports = BearerboxPorts::free();
        let mut bb_conf = conf::bearerbox(dir, &ports);
        bb_conf
            .set("core", "smsbox-port-ssl", true)
            .set("core", "ssl-server-cert-file", cert.display())
            .set("core", "ssl-server-key-file", key.display());
        let path = bb_conf.write(dir, "bearerbox.conf");
        let mut daemon = Daemon::spawn(
            "bearerbox",
            BEARERBOX,
            [&path],
            dir,
            vec![
                conf::log_path(dir, "bearerbox"),
                conf::access_log_path(dir, "bearerbox"),
            ],
        );
        for port in [ports.admin, ports.smsbox, ports.fake_smsc] {
            daemon.wait_for_tcp_port(port, START_TIMEOUT).await;
        }
        TlsBearerbox { daemon, ports }
    }

    /// Waits until at least `n` lines of bearerbox's own log contain
    /// `part`. Bearerbox writes its log after the event, so a test that
    /// saw the other end of it must still wait for the line.
    async fn wait_for_log_lines(&mut self, dir: &Path, part: &str, n: usize) {
        let log = conf::log_path(dir, "bearerbox");
        self.daemon
            .wait_until(
                &format!("{n} log lines with {part:?}"),
                EXCHANGE_WAIT,
                || count_lines(&read(&log), &[part]) >= n,
            )
            .await;
    }
}

/// The `rapidbox` binary, running `run --config`, stopped when dropped.
struct Rapidbox {
    daemon: Daemon,
    store: PathBuf,
}

impl Rapidbox {
    /// Starts rapidbox against the TLS bearerbox on `port`, trusting the
    /// CA in `ca_file` and checking for `server_name`, answering every MO
    /// with `tls: ` and its words.
    fn start(dir: &Path, port: u16, ca_file: &Path, server_name: &str) -> Rapidbox {
        let store = dir.join("data").join("rapidbox.redb");
        let quote = |path: &Path| toml::Value::String(path.display().to_string()).to_string();
        let (store_path, ca_path) = (quote(&store), quote(ca_file));
        let server_name = toml::Value::String(server_name.to_owned());
        let config = format!(
            r#"
[store]
path = {store_path}

[kannel]
host = "127.0.0.1"
port = {port}
tls = true
tls_ca_file = {ca_path}
tls_server_name = {server_name}
# Retry quickly: the negative tests count the retries.
reconnect_min_ms = 100
reconnect_max_secs = 1

# Any free port: tests run in parallel.
[http]
listen = "127.0.0.1:0"

[router]
apps = ["echo"]

[apps.echo]
template = "tls: %a"
"#
        );
        let config_path = write(dir, "rapidbox.toml", &config);
        let options = SpawnOptions {
            // The test reads info lines; RUST_LOG from the caller must not
            // hide them, nor colours split them.
            env: vec![
                ("RUST_LOG".to_owned(), "info".to_owned()),
                ("NO_COLOR".to_owned(), "1".to_owned()),
            ],
            piped_stdin: false,
        };
        let config_arg = config_path.display().to_string();
        let daemon = Daemon::spawn_with(
            "rapidbox",
            env!("CARGO_BIN_EXE_rapidbox"),
            ["run", "--config", config_arg.as_str()],
            dir,
            Vec::new(),
            options,
        );
        Rapidbox { daemon, store }
    }

    /// rapidbox's log (its stderr) so far.
    fn log(&self) -> String {
        read(self.daemon.console_path())
    }

    /// How many lines of the log contain every one of `parts`.
    fn count(&self, parts: &[&str]) -> usize {
        count_lines(&self.log(), parts)
    }

    /// Waits until `n` log lines contain every one of `parts`, panicking
    /// with the log if rapidbox exits or `timeout` passes.
    async fn wait_for_lines(&mut self, parts: &[&str], n: usize, timeout: Duration) {
        let what = format!("{n} log lines with {parts:?}");
        let log = self.daemon.console_path().to_owned();
        self.daemon
            .wait_until(&what, timeout, || count_lines(&read(&log), parts) >= n)
            .await;
    }

    /// SIGTERM, then the store it leaves, opened once rapidbox has exited.
    async fn stop(mut self) -> Store {
        self.daemon.signal(libc::SIGTERM);
        let Some(status) = self.daemon.wait_exit(STOP_WAIT).await else {
            panic!(
                "{TEST}: rapidbox did not exit within {STOP_WAIT:?} of SIGTERM\n{}",
                self.daemon.log_tails()
            );
        };
        assert!(
            status.success(),
            "{TEST}: rapidbox exited with {status} after SIGTERM\n{}",
            self.daemon.log_tails()
        );
        Store::open(&self.store, StoreOptions::default())
            .unwrap_or_else(|e| panic!("{TEST}: cannot open rapidbox's store: {e}"))
    }
}

fn read(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// How many lines of `text` contain every one of `parts`.
fn count_lines(text: &str, parts: &[&str]) -> usize {
    text.lines()
        .filter(|line| parts.iter().all(|p| line.contains(p)))
        .count()
}

// --- the tests -----------------------------------------------------------

/// MOs sent through the fake SMSC in the positive test.
const MOS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mos_are_answered_over_tls() {
    const NAME: &str = "mos_are_answered_over_tls";
    if !support::require_kannel(NAME, &[BEARERBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(NAME);
    let dir = dir.path();
    let ca = Ca::new("rapidbox test CA");
    let ca_file = ca.write(dir, "ca.pem");
    let (cert, key) = ca.server(dir);
    let mut bearerbox = TlsBearerbox::start(dir, &cert, &key).await;

    let mut rapidbox = Rapidbox::start(dir, bearerbox.ports.smsbox, &ca_file, SERVER_NAME);
    rapidbox
        .wait_for_lines(&["connected to the bearerbox"], 1, EXCHANGE_WAIT)
        .await;
    // bearerbox's word that the box it accepted speaks TLS.
    bearerbox.wait_for_log_lines(dir, "using SSL", 1).await;

    let mo = format!("{PHONE} {SHORTCODE} text hello over tls");
    let mut fakesmsc = FakeSmsc::spawn(
        "fakesmsc",
        dir,
        bearerbox.ports.fake_smsc,
        &[&mo],
        MOS as u32,
        0.1,
    );
    let mts = fakesmsc.wait_for_mts(MOS, EXCHANGE_WAIT).await;
    for mt in &mts {
        assert_eq!(
            (mt.sender.as_str(), mt.receiver.as_str(), mt.kind.as_str()),
            (SHORTCODE, PHONE, "text"),
            "{NAME}: each reply goes from the shortcode to the phone"
        );
        assert_eq!(
            mt.data, "tls: hello over tls",
            "{NAME}: the echo app's reply"
        );
    }
    assert_eq!(mts.len(), MOS, "{NAME}: one reply per MO, no more");
    // Each reply asked for the default reports (27: 1 delivered, 8
    // accepted by the SMSC, ...); the fake SMSC gives both, and bearerbox
    // sends them back over the same TLS link.
    rapidbox
        .wait_for_lines(&["delivery report recorded"], 2 * MOS, EXCHANGE_WAIT)
        .await;
    assert_eq!(
        rapidbox.count(&["cannot connect"]),
        0,
        "{NAME}: no failed connection\n{}",
        rapidbox.log()
    );

    let store = rapidbox.stop().await;
    let messages = store
        .recent_messages(None, 100)
        .await
        .unwrap_or_else(|e| panic!("{NAME}: reading the store: {e}"));
    let (incoming, outgoing): (Vec<_>, Vec<_>) = messages
        .into_iter()
        .partition(|m| m.direction == Direction::Incoming);
    assert_eq!(
        incoming.len(),
        MOS,
        "{NAME}: every MO stored: {incoming:#?}"
    );
    assert_eq!(
        outgoing.len(),
        MOS,
        "{NAME}: every reply stored: {outgoing:#?}"
    );
    for mo in &incoming {
        assert_eq!(mo.status, Status::Handled, "{NAME}: MO {} handled", mo.id);
        assert_eq!(mo.text, "hello over tls");
        assert_eq!(mo.connection.address, PHONE);
        assert_eq!(mo.connection.backend, conf::FAKE_SMSC_ID);
        let replies: Vec<_> = outgoing
            .iter()
            .filter(|r| r.in_response_to == Some(mo.id))
            .collect();
        assert_eq!(replies.len(), 1, "{NAME}: one reply answers MO {}", mo.id);
        let reply = replies[0];
        assert_eq!(reply.text, "tls: hello over tls");
        assert!(
            reply.sent.is_some(),
            "{NAME}: bearerbox acknowledged reply {}",
            reply.id
        );
        assert_eq!(
            reply.status,
            Status::Delivered,
            "{NAME}: reply {} delivered",
            reply.id
        );
        let mut masks: Vec<i32> = store
            .dlr_events(reply.id)
            .await
            .unwrap_or_else(|e| panic!("{NAME}: reading reports: {e}"))
            .iter()
            .map(|r| r.mask)
            .collect();
        masks.sort();
        assert_eq!(masks, [1, 8], "{NAME}: reply {}'s reports", reply.id);
    }
    let mut uuids: Vec<_> = incoming
        .iter()
        .map(|m| m.kannel.as_ref().and_then(|k| k.uuid))
        .collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), MOS, "{NAME}: three distinct Kannel MOs");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_and_retried() {
    const NAME: &str = "an_untrusted_certificate_is_refused_and_retried";
    if !support::require_kannel(NAME, &[BEARERBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(NAME);
    let dir = dir.path();
    let bearerbox_ca = Ca::new("the bearerbox's CA");
    let impostor = Ca::new("not the bearerbox's CA");
    let trusted = impostor.write(dir, "impostor-ca.pem");
    refused_and_retried(
        NAME,
        dir,
        &bearerbox_ca,
        &trusted,
        SERVER_NAME,
        "UnknownIssuer",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused_and_retried() {
    const NAME: &str = "a_certificate_for_another_name_is_refused_and_retried";
    if !support::require_kannel(NAME, &[BEARERBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(NAME);
    let dir = dir.path();
    let ca = Ca::new("the bearerbox's CA");
    let trusted = ca.write(dir, "ca.pem");
    refused_and_retried(
        NAME,
        dir,
        &ca,
        &trusted,
        "bearerbox.invalid",
        "certificate not valid for name \"bearerbox.invalid\"",
    )
    .await;
}

/// Runs a TLS bearerbox with a certificate from `bearerbox_ca`, and
/// rapidbox trusting the CA in `trusted` and checking for `server_name`,
/// one of which does not fit. Proves rapidbox logs the TLS error (`why` is
/// a piece of rustls's message for it), retries, never exits, and takes no
/// MO.
async fn refused_and_retried(
    name: &str,
    dir: &Path,
    bearerbox_ca: &Ca,
    trusted: &Path,
    server_name: &str,
    why: &str,
) {
    let (cert, key) = bearerbox_ca.server(dir);
    let mut bearerbox = TlsBearerbox::start(dir, &cert, &key).await;

    // The MO waits in bearerbox first: it is there for rapidbox to take,
    // had the handshake succeeded.
    let mo = format!("{PHONE} {SHORTCODE} text never routed");
    let mut fakesmsc = FakeSmsc::spawn("fakesmsc", dir, bearerbox.ports.fake_smsc, &[&mo], 1, 0.1);
    wait_for_status(name, &bearerbox, "received 1 (1 queued)").await;

    let mut rapidbox = Rapidbox::start(dir, bearerbox.ports.smsbox, trusted, server_name);
    rapidbox
        .wait_for_lines(
            &[
                "cannot connect to the bearerbox",
                "invalid peer certificate",
                why,
            ],
            REFUSALS,
            EXCHANGE_WAIT,
        )
        .await;
    assert!(
        rapidbox.daemon.try_exit_status().is_none(),
        "{name}: rapidbox keeps running after refusing the certificate"
    );
    assert_eq!(
        rapidbox.count(&["connected to the bearerbox"]),
        0,
        "{name}: no connection was ever established\n{}",
        rapidbox.log()
    );
    // Each retry reached bearerbox's TLS port.
    bearerbox
        .wait_for_log_lines(dir, "using SSL", REFUSALS)
        .await;
    // Still queued in bearerbox, no box attached, nothing at the phone.
    wait_for_status(name, &bearerbox, "received 1 (1 queued)").await;
    let status = support::bearerbox_status(bearerbox.ports.admin).await;
    assert!(
        status.contains("No boxes connected"),
        "{name}: bearerbox lists no box:\n{status}"
    );
    assert!(
        fakesmsc.mts().is_empty(),
        "{name}: no reply reached the phone: {:?}",
        fakesmsc.mts()
    );
    assert!(
        fakesmsc.daemon().try_exit_status().is_none(),
        "{name}: fakesmsc still connected"
    );

    let store = rapidbox.stop().await;
    let messages = store
        .recent_messages(None, 100)
        .await
        .unwrap_or_else(|e| panic!("{name}: reading the store: {e}"));
    assert!(
        messages.is_empty(),
        "{name}: nothing was routed: {messages:#?}"
    );
    store.close().await;
    // A bearerbox told to stop waits for its queued MO to be taken, which
    // no box will do: kill it rather than wait out the harness's grace.
    bearerbox.daemon.kill();
}

/// Waits until bearerbox's status page says `what` about its SMS counts
/// (`SMS: received N (M queued), ...`).
async fn wait_for_status(name: &str, bearerbox: &TlsBearerbox, what: &str) {
    let started = Instant::now();
    loop {
        let status = support::bearerbox_status(bearerbox.ports.admin).await;
        let sms_line = status
            .lines()
            .find(|line| line.starts_with("SMS:"))
            .unwrap_or("")
            .to_owned();
        if sms_line.contains(what) {
            return;
        }
        assert!(
            started.elapsed() < EXCHANGE_WAIT,
            "{name}: bearerbox's status never said {what:?}:\n{status}\n{}",
            bearerbox.daemon.log_tails()
        );
        tokio::time::sleep(POLL).await;
    }
}
