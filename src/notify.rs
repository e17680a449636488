//! systemd's service notifications (`sd_notify(3)`), for `Type=notify`:
//! `READY=1` once rapidbox serves, `RELOADING=1` then `READY=1` again
//! around a SIGHUP reload, `STOPPING=1` when it starts shutting down, and `WATCHDOG=1` at half the unit's `WatchdogSec=` while the
//! runtime runs, so systemd restarts a rapidbox whose tasks stopped being
//! scheduled.
//!
//! The protocol is one datagram of `KEY=VALUE` lines to the Unix socket
//! in `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
//! Without that variable (not started by systemd) nothing is sent. A
//! notification that cannot be sent is logged and otherwise ignored:
//! systemd then sees the service as not ready, which is its to act on.

use std::ffi::OsString;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Where notifications go; `None` when not run by systemd.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<OsString>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier systemd asked for through `$NOTIFY_SOCKET` and
    /// `$WATCHDOG_USEC` (honoured only when `$WATCHDOG_PID` is unset or
    /// names this process, as `sd_watchdog_enabled(3)` says).
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty());
        let for_us = std::env::var("WATCHDOG_PID")
            .map(|pid| pid.trim() == std::process::id().to_string())
            .unwrap_or(true);
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .filter(|_| for_us)
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|&usec| usec > 0)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    /// A notifier sending to the socket at `path` (tests).
    #[cfg(test)]
    fn to_path(path: &std::path::Path, watchdog: Option<Duration>) -> Notifier {
        Notifier {
            socket: Some(path.as_os_str().to_owned()),
            watchdog,
        }
    }

    /// Sends `state` (`READY=1`, `STOPPING=1`, ...); logs a failure.
    pub fn notify(&self, state: &str) {
        if let Err(e) = self.send(state) {
            warn!(error = %e, state, "cannot notify systemd");
        }
    }

    fn send(&self, state: &str) -> io::Result<()> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        let datagram = UnixDatagram::unbound()?;
        let bytes = socket.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) => send_abstract(&datagram, name, state),
            None => datagram.send_to(state.as_bytes(), socket).map(drop),
        }
    }

    /// Sends `WATCHDOG=1` every half `WatchdogSec=` until `shutdown`, when
    /// the unit has a watchdog; returns at once otherwise.
    pub async fn keep_watchdog(self, shutdown: CancellationToken) {
        let Some(period) = self.watchdog.map(|w| w / 2) else {
            return;
        };
        let mut every = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => self.notify("WATCHDOG=1"),
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(datagram: &UnixDatagram, name: &[u8], state: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    datagram.send_to_addr(state.as_bytes(), &addr).map(drop)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (dir, path, socket)
    }

    #[test]
    fn states_reach_the_notify_socket_as_one_datagram() {
        let (_dir, path, socket) = listener();
        Notifier::to_path(&path, None).notify("READY=1");
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        Notifier::default().notify("READY=1");
    }

    // The test thread blocks on the socket; the feeding runs on a worker.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_watchdog_is_fed_at_half_its_period_until_shutdown() {
        let (_dir, path, socket) = listener();
        let shutdown = CancellationToken::new();
        let notifier = Notifier::to_path(&path, Some(Duration::from_millis(100)));
        let feeding = tokio::spawn(notifier.keep_watchdog(shutdown.clone()));
        let mut buf = [0u8; 64];
        for _ in 0..2 {
            let n = socket.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"WATCHDOG=1");
        }
        shutdown.cancel();
        feeding.await.unwrap();
    }
}
