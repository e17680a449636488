//! rapidbox started inside the test process (`daemon::start`), for tests
//! that talk to its HTTP server: a real store in a temporary directory, the
//! bearerbox link off, HTTP on a free loopback port, and the echo app
//! answering every message "You said: %a"; and a plain HTTP client for it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ALLOW, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use rapidbox::config::{Config, ConfigErrors};
use rapidbox::store::Store;
use rapidbox::{Daemon, Reloaded, Running};

/// Bound on starting and on stopping.
const BOUND: Duration = Duration::from_secs(20);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took over {BOUND:?}"))
}

/// A running rapidbox and the directory of its store (removed when the rig
/// is dropped).
pub struct Rig {
    running: Option<Running>,
    pub addr: SocketAddr,
    /// Where `[metrics] listen` listens, when the test set it.
    pub metrics_addr: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
}

impl Rig {
    /// Starts rapidbox; `http` is added to the `[http]` section, `extra`
    /// at the end of the configuration.
    pub async fn start(http: &str, extra: &str) -> Rig {
        Rig::start_with_kannel("enabled = false", http, extra).await
    }

    /// [`Rig::start`] with `kannel` as the `[kannel]` section's keys.
    pub async fn start_with_kannel(kannel: &str, http: &str, extra: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let toml = config_toml(&dir, kannel, http, &format!("{ECHO}{extra}"));
        let config = Config::from_toml_str(&toml)
            .unwrap_or_else(|e| panic!("the test's configuration does not load: {e}\n{toml}"));
        let running = bounded("start", Daemon::builder(config).start())
            .await
            .unwrap_or_else(|e| panic!("rapidbox does not start: {e}"));
        let addr = running.http_addr();
        let metrics_addr = running.metrics_addr();
        Rig {
            running: Some(running),
            addr,
            metrics_addr,
            dir,
        }
    }

    pub fn store(&self) -> &Store {
        self.running().store()
    }

    /// The running rapidbox.
    pub fn running(&self) -> &Running {
        self.running
            .as_ref()
            .unwrap_or_else(|| panic!("rapidbox was stopped"))
    }

    /// Reloads as SIGHUP would, from a configuration of the same store,
    /// kannel disabled, `[http]` with `http` and then `rest` (the router
    /// and apps included): read and checked, then applied, or refused
    /// with its errors.
    pub fn reload(&self, http: &str, rest: &str) -> Result<Reloaded, ConfigErrors> {
        let toml = config_toml(&self.dir, "enabled = false", http, rest);
        self.running().reload(Config::from_toml_str(&toml)?)
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops rapidbox gracefully (and waits, within the bound).
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            bounded("stop", running.stop()).await;
        }
    }
}

/// The router a rig starts with: the echo app.
pub const ECHO: &str = "[router]\napps = [\"echo\"]\n[apps.echo]\ntemplate = \"You said: %a\"\n";

/// The configuration of a rig in `dir`: its store, `[kannel]` and
/// `[http]` with these keys, then `rest`.
fn config_toml(dir: &tempfile::TempDir, kannel: &str, http: &str, rest: &str) -> String {
    let store = dir.path().join("rapidbox.redb");
    format!(
        "[store]\npath = {}\n[kannel]\n{kannel}\n\
         [http]\nlisten = \"127.0.0.1:0\"\n{http}\n{rest}",
        toml::Value::String(store.display().to_string())
    )
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub location: String,
    pub allow: String,
    /// Every `Set-Cookie`.
    pub cookies: Vec<String>,
    pub content_type: String,
    /// Lossily decoded as UTF-8.
    pub body: String,
}

/// Sends `request` with a fresh client and reads the whole answer,
/// within the bound; panics on any failure.
pub async fn send(request: Request<Full<Bytes>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let what = format!("{} {}", request.method(), request.uri());
    let response = bounded(&what, client.request(request))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let location = header(LOCATION);
    let allow = header(ALLOW);
    let content_type = header(CONTENT_TYPE);
    let cookies = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let body = bounded(&what, response.into_body().collect())
        .await
        .unwrap_or_else(|e| panic!("{what}: body: {e}"))
        .to_bytes();
    Reply {
        status,
        location,
        allow,
        cookies,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

impl Reply {
    /// The body as JSON; panics when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {:?}", self.status, self.body))
    }
}
