//! Headless Chromium driven over WebDriver, for the console's browser
//! tests: chromedriver on a free port, a fresh profile in the test's
//! directory, and nothing left running when the test ends, also when it
//! panics.
//!
//! A test starts with [`require_browser`]: without Chromium and
//! chromedriver it prints why it is skipped, except under CI
//! (`CI=true`), where their absence fails the test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use super::ports::free_port;
use super::process::Daemon;

/// Debian's `chromium` package.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's `chromium-driver` package.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long chromedriver gets to listen.
const START: Duration = Duration::from_secs(20);

/// Whether `test` can run: true when Chromium and chromedriver are
/// installed. Otherwise prints why the test is skipped and returns false,
/// or panics under CI.
pub fn require_browser(test: &str) -> bool {
    let missing = super::missing_binaries(&[CHROMIUM, CHROMEDRIVER]);
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    if super::in_ci() {
        panic!(
            "{test}: Chromium is required under CI but {what} is missing; \
             install it with `apt-get install -y chromium chromium-driver`"
        );
    }
    eprintln!("{test}: skipped: Chromium not installed ({what} missing)");
    false
}

/// A WebDriver session on a headless Chromium of its own.
///
/// Dropping it stops chromedriver (SIGTERM, then SIGKILL) and then kills,
/// by pid, every process still running with this session's profile
/// directory on its command line: the Chromium processes chromedriver
/// started, which a killed chromedriver would leave behind.
pub struct Browser {
    pub client: Client,
    driver: Option<Daemon>,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium whose profile and logs
    /// live in `dir`.
    pub async fn start(dir: &Path) -> Browser {
        let port = free_port();
        let profile = dir.join("chromium-profile");
        let mut driver = Daemon::spawn(
            "chromedriver",
            CHROMEDRIVER,
            [format!("--port={port}"), "--log-level=WARNING".to_owned()],
            dir,
            Vec::new(),
        );
        driver.wait_for_tcp_port(port, START).await;
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                // As root in a container: no sandbox; no GPU to use.
                "args": [
                    "--no-sandbox",
                    "--headless=new",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal");
        };
        let connected = tokio::time::timeout(
            START,
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await;
        let client = match connected {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("no WebDriver session: {e}\n{}", driver.log_tails()),
            Err(_) => panic!(
                "no WebDriver session within {START:?}\n{}",
                driver.log_tails()
            ),
        };
        Browser {
            client,
            driver: Some(driver),
            profile,
        }
    }

    /// Ends the session (Chromium quits), then stops chromedriver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        if let Some(mut driver) = self.driver.take() {
            driver.stop();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            driver.stop();
        }
        kill_by_argument(&format!("--user-data-dir={}", self.profile.display()));
    }
}

/// SIGKILLs every process of ours whose command line has `argument`.
fn kill_by_argument(argument: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let found = cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == argument.as_bytes());
        if found {
            // SAFETY: kill(2) with a pid read from /proc; a process that has
            // exited meanwhile just makes it fail with ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}
