//! Harness for end-to-end tests against real Kannel (Debian's 1.4.5).
//!
//! A test that needs Kannel starts with [`require_kannel`]: without the
//! binaries it prints "skipped: Kannel not installed" and returns, except
//! under CI (`CI=true`), where a missing Kannel fails the test loudly.
//!
//! Then it builds what it needs from these parts:
//!
//! - [`ports`]: free TCP ports, never the same one twice in a process, and
//!   a check for Kannel's fixed WAP ports.
//! - [`conf`]: bearerbox, smsbox and wapbox configurations generated from
//!   parameters into a temporary directory.
//! - [`process`]: Kannel daemons as child processes, with readiness waits
//!   that panic with the tail of their logs, stopped on drop (SIGTERM, then
//!   SIGKILL) so that no test leaves a process behind.
//! - [`fakesmsc`]: Kannel's fake SMSC client, and the MTs it reports; a
//!   [`fakesmsc::Phone`] sends numbered MOs one by one and counts them.
//! - [`faults`]: storage that fails on demand (a small ext4 on a loop
//!   device that fills up; a FUSE layer that returns EIO), root only.
//! - [`judge`]: what a run under faults left behind, judged (lost, stored
//!   twice, one reply per MO, repeats at the phone), and the waits that
//!   make the phone's count exact.
//! - [`bearerbox`]: a bearerbox that can be stopped and restarted on the
//!   same configuration, and its status page read as numbers.
//! - [`rapidbox`]: the `rapidbox` binary, configured from parameters,
//!   stopped gracefully or killed, and its store read afterwards.
//! - [`faulty_link`]: `boxtap`'s relay in process, with its fault switch
//!   (cut, stall, half-open, drip, corrupt) in the test's hands.
//! - [`loopback`]: MOs with any field (message class, PID, validity...)
//!   through a real bearerbox, by a loopback SMSC and a box of the test's
//!   own.
//! - [`smsbox`]: Kannel's smsbox started on a configuration and waited
//!   for (the bearerbox lists it, its sendsms port listens): the smsbox
//!   of every differential test.
//! - [`differential`]: what a differential test compares (requests at
//!   the application, MTs at the SMSC, by phone) and the wait for a run's
//!   last MT.
//! - [`http_smsc`]: Kannel's HTTP SMSC (`system-type = kannel`) in the
//!   bearerbox, to inject MOs of any coding, charset and UDH (fakesmsc
//!   sends no UCS-2) and record the MTs it sends out.
//! - [`recorder`]: `boxtap` relays between a bearerbox and its boxes,
//!   all recording into one timeline of frames.
//! - [`wire`]: the box protocol's layout read without `boxproto`, to look
//!   at recorded frames independently of the crate under test.
//! - [`service`]: a recording HTTP service that answers on demand
//!   (webhook target, push relay).
//! - [`browser`]: headless Chromium over WebDriver (fantoccini), for the
//!   console's tests, skipped like Kannel's when it is not installed.
//! - [`postgres`]: a real PostgreSQL (Debian's server binaries) in a
//!   temporary directory, run as an unprivileged user, stopped on drop:
//!   for the PostgreSQL store's tests.
//! - [`promtool`]: Prometheus' `promtool check metrics` over a scrape,
//!   skipped like Kannel when it is not installed.
//! - [`misbehaving`]: HTTP peers that are down, never answer, answer
//!   gigabytes, redirect forever or send garbage.
//! - [`raw`]: raw HTTP/1.1 exchanges (malformed requests) and connections
//!   from a chosen loopback address.
//! - [`http`]: a plain HTTP/1.0 GET (for smsbox's sendsms interface) and a
//!   stub HTTP server (for sms-service get-url and dlr-url callbacks), and
//!   `/metrics` scrapes read series by series.
//!
//! Every integration test binary compiles this module on its own and uses a
//! different part of it, hence the `dead_code` allowance below.
#![allow(dead_code)]

pub mod bearerbox;
pub mod browser;
pub mod conf;
pub mod differential;
pub mod fakesmsc;
pub mod faults;
pub mod faulty_link;
pub mod http;
pub mod http_smsc;
pub mod in_process;
pub mod judge;
pub mod loopback;
pub mod misbehaving;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod promtool;
pub mod rapidbox;
pub mod raw;
pub mod recorder;
pub mod service;
pub mod smsbox;
pub mod wire;

use std::path::Path;

/// Kannel's bearerbox, as installed by Debian's `kannel` package.
pub const BEARERBOX: &str = "/usr/sbin/bearerbox";
/// Kannel's smsbox (package `kannel`).
pub const SMSBOX: &str = "/usr/sbin/smsbox";
/// Kannel's wapbox (package `kannel`).
pub const WAPBOX: &str = "/usr/sbin/wapbox";
/// The fake SMSC client (package `kannel-extras`).
pub const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";
/// The fake WAP phone (package `kannel-extras`).
pub const FAKEWAP: &str = "/usr/lib/kannel/test/fakewap";

/// The binaries of `wanted` that are not installed.
pub fn missing_binaries<'a>(wanted: &[&'a str]) -> Vec<&'a str> {
    wanted
        .iter()
        .copied()
        .filter(|path| !Path::new(path).is_file())
        .collect()
}

/// True when every binary in `wanted` is installed.
pub fn kannel_available(wanted: &[&str]) -> bool {
    missing_binaries(wanted).is_empty()
}

/// True when running under CI, where a missing Kannel must fail the run
/// instead of silently skipping the tests that need it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether `test` can run: true when every binary in `wanted` is installed.
/// Otherwise prints why the test is skipped and returns false, or panics
/// under CI.
///
/// ```ignore
/// if !support::require_kannel("kannel_fidelity", &[support::BEARERBOX]) {
///     return;
/// }
/// ```
pub fn require_kannel(test: &str, wanted: &[&str]) -> bool {
    let missing = missing_binaries(wanted);
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    if in_ci() {
        panic!(
            "{test}: Kannel is required under CI but {what} is missing; \
             install it with `apt-get install -y kannel kannel-extras`"
        );
    }
    eprintln!("{test}: skipped: Kannel not installed ({what} missing)");
    false
}

/// The bearerbox's status page (`/status.txt` on its admin port), as
/// written by [`conf::bearerbox`]. It lists each SMSC connection with its
/// state, e.g. `fake[fake]    FAKE:10000 (online 1s, ...` or
/// `(re-connecting, ...`.
pub async fn bearerbox_status(admin_port: u16) -> String {
    let path = format!("/status.txt?password={}", conf::ADMIN_PASSWORD);
    let response = http::get(admin_port, &path).await;
    assert_eq!(
        response.status, 200,
        "bearerbox status page: {}",
        response.body
    );
    response.body
}

/// A temporary directory for one test's configurations and logs. It is
/// removed when dropped, unless `KANNEL_KEEP_TEST_DIR` is set, in which case
/// its path is printed and it is left for inspection.
pub fn test_dir(test: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("rapidbox-{test}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("{test}: cannot create a temporary directory: {e}"));
    if std::env::var_os("KANNEL_KEEP_TEST_DIR").is_some() {
        eprintln!("{test}: keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    dir
}
