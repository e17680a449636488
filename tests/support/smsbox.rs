//! Kannel's smsbox, started on a configuration and waited for: the one
//! way every differential test (`*_vs_smsbox`, `kannel_conf`) brings up
//! the smsbox that rapidbox is compared with.
//!
//! smsbox is ready when the bearerbox lists it among its boxes (it has
//! identified, so MOs reach it) and, when it serves sendsms, its HTTP port
//! listens. Its console goes to `smsbox.out`, its log to `smsbox.log` in
//! the test directory (where [`conf::smsbox`] writes it), both shown when
//! a wait fails; it is stopped when dropped, like every [`Daemon`].

use std::path::Path;
use std::time::{Duration, Instant};

use super::bearerbox::Bearerbox;
use super::conf::{self, Conf};
use super::process::Daemon;

/// How long smsbox gets to connect and open its sendsms port. It takes
/// well under a second here; the margin is for a loaded machine (and a
/// tap between it and the bearerbox).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How often the bearerbox's status page is read while waiting.
const POLL: Duration = Duration::from_millis(50);

/// What tells that a started smsbox is ready.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready<'a> {
    /// The `smsbox-id` it identifies with; `None` for none.
    pub smsbox_id: Option<&'a str>,
    /// Its `sendsms-port`, when it has one.
    pub sendsms_port: Option<u16>,
}

/// Writes `conf` to `dir/name` and starts smsbox on it: see [`start`].
/// Returns the running smsbox and the file's path (which
/// `import-kannel-conf` can read afterwards).
pub async fn start_conf(
    dir: &Path,
    name: &str,
    conf: &Conf,
    bearerbox: &mut Bearerbox,
    ready: Ready<'_>,
) -> (Daemon, std::path::PathBuf) {
    let path = conf.write(dir, name);
    let smsbox = start(dir, &path, bearerbox, ready).await;
    (smsbox, path)
}

/// Starts `smsbox CONF` in `dir` (where Kannel opens a relative
/// `include`) and waits until `bearerbox` lists it and its sendsms port
/// listens, as `ready` says. Panics with the logs of both if it does not
/// within [`READY_TIMEOUT`].
pub async fn start(
    dir: &Path,
    conf_path: &Path,
    bearerbox: &mut Bearerbox,
    ready: Ready<'_>,
) -> Daemon {
    let mut smsbox = Daemon::spawn(
        "smsbox",
        super::SMSBOX,
        [conf_path],
        dir,
        vec![conf::log_path(dir, "smsbox")],
    );
    if let Some(port) = ready.sendsms_port {
        smsbox.wait_for_tcp_port(port, READY_TIMEOUT).await;
    }
    // Waited for here rather than by `Bearerbox::wait_for_box`, so that a
    // failure shows smsbox's own logs (why it did not connect) beside the
    // bearerbox's.
    let id = ready.smsbox_id.unwrap_or("(none)");
    let started = Instant::now();
    loop {
        if let Some(status) = smsbox.try_exit_status() {
            panic!(
                "smsbox exited ({status}) at start-up\n{}\n{}",
                smsbox.log_tails(),
                bearerbox.log_tails()
            );
        }
        let status = bearerbox.status().await;
        if status.boxes.iter().any(|b| b.id == id) {
            return smsbox;
        }
        if started.elapsed() >= READY_TIMEOUT {
            panic!(
                "smsbox: not listed by the bearerbox as {id} within {READY_TIMEOUT:?}; \
                 its status page:\n{}\n{}\n{}",
                status.text,
                smsbox.log_tails(),
                bearerbox.log_tails()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}
