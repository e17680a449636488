//! Kannel daemons as child processes that cannot outlive their test.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon gets to exit after SIGTERM before it is killed.
/// Bearerbox needs about a second to tell its boxes and close its ports.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// How long a daemon gets to open a port. Kannel starts in well under a
/// second here; the margin is for a loaded CI machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How often waits poll.
const POLL: Duration = Duration::from_millis(20);

/// Lines of each log shown when a wait fails.
const TAIL_LINES: usize = 30;

/// A child process that is stopped when dropped: SIGTERM, up to
/// [`STOP_GRACE`] to exit, then SIGKILL.
///
/// Its stdout and stderr go to `NAME.out` in the test directory, a file
/// rather than a pipe so that a chatty daemon can never block on a pipe
/// nobody reads.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    exited: Option<ExitStatus>,
    /// Files whose tails explain a failure: the console output first, then
    /// the daemon's own logs.
    logs: Vec<PathBuf>,
}

impl Daemon {
    /// Starts `program` with `args` in `dir`. `logs` are the log files the
    /// daemon writes (from its configuration), shown when something fails.
    pub fn spawn<I, S>(name: &str, program: &str, args: I, dir: &Path, logs: Vec<PathBuf>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::spawn_with(name, program, args, dir, logs, SpawnOptions::default())
    }

    /// Like [`spawn`](Self::spawn), with environment variables and, if
    /// asked, a pipe to the daemon's stdin (see [`take_stdin`](Self::take_stdin)).
    pub fn spawn_with<I, S>(
        name: &str,
        program: &str,
        args: I,
        dir: &Path,
        logs: Vec<PathBuf>,
        options: SpawnOptions,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out_path = dir.join(format!("{name}.out"));
        let out = File::create(&out_path)
            .unwrap_or_else(|e| panic!("{name}: cannot create {}: {e}", out_path.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("{name}: cannot share {}: {e}", out_path.display()));
        let stdin = if options.piped_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let child = Command::new(program)
            .args(args)
            .envs(options.env)
            .current_dir(dir)
            .stdin(stdin)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {program}: {e}"));
        let mut all_logs = vec![out_path];
        all_logs.extend(logs);
        Daemon {
            name: name.to_owned(),
            child,
            exited: None,
            logs: all_logs,
        }
    }

    /// The daemon's name, as given to [`spawn`](Self::spawn).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The write end of the daemon's stdin, if it was spawned with
    /// [`SpawnOptions::piped_stdin`] and not taken before.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// The file with the daemon's stdout and stderr.
    pub fn console_path(&self) -> &Path {
        &self.logs[0]
    }

    /// Exit status, if the daemon has exited (reaping it if needed).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            match self.child.try_wait() {
                Ok(status) => self.exited = status,
                Err(e) => panic!("{}: cannot check the process: {e}", self.name),
            }
        }
        self.exited
    }

    /// Sends `signal` (a `libc::SIG*`) to the daemon, unless it has exited.
    pub fn signal(&mut self, signal: libc::c_int) {
        if self.try_exit_status().is_some() {
            return;
        }
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            panic!("{}: pid {} does not fit pid_t", self.name, self.child.id());
        };
        // SAFETY: kill(2) takes plain integers and touches no memory. The
        // pid is our own unreaped child, so it cannot have been reused.
        let rc = unsafe { libc::kill(pid, signal) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            // ESRCH: it died between the check above and the signal.
            if e.raw_os_error() != Some(libc::ESRCH) {
                panic!("{}: kill({pid}, {signal}) failed: {e}", self.name);
            }
        }
    }

    /// The most memory the daemon has had resident so far (`VmHWM`), in
    /// KiB; `None` once it has exited or when /proc cannot say.
    pub fn peak_rss_kib(&mut self) -> Option<u64> {
        if self.try_exit_status().is_some() {
            return None;
        }
        proc_status_kib(self.child.id(), "VmHWM:")
    }

    /// Waits up to `timeout` for the daemon to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until something listens on TCP `port`, panicking with the
    /// tails of the daemon's logs if it exits or `timeout` passes first.
    ///
    /// Readiness is read from /proc/net/tcp rather than by connecting, so
    /// the wait leaves no trace: a probe connection to Kannel's fake SMSC
    /// port, for one, would be taken for the SMSC client itself.
    pub async fn wait_for_tcp_port(&mut self, port: u16, timeout: Duration) {
        self.wait_until(&format!("TCP port {port}"), timeout, || tcp_listening(port))
            .await;
    }

    /// Waits until something is bound to UDP `port`, like
    /// [`wait_for_tcp_port`](Self::wait_for_tcp_port).
    pub async fn wait_for_udp_port(&mut self, port: u16, timeout: Duration) {
        self.wait_until(&format!("UDP port {port}"), timeout, || udp_bound(port))
            .await;
    }

    /// Waits until `ready` returns true, panicking with the log tails if
    /// the daemon exits or `timeout` passes first. `what` names the
    /// condition in the panic message.
    pub async fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) {
        let started = Instant::now();
        loop {
            if ready() {
                return;
            }
            if let Some(status) = self.try_exit_status() {
                panic!(
                    "{} exited ({status}) while the test waited for {what}\n{}",
                    self.name,
                    self.log_tails()
                );
            }
            if started.elapsed() >= timeout {
                panic!(
                    "{} did not get to {what} within {timeout:?}\n{}",
                    self.name,
                    self.log_tails()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last lines of each of the daemon's logs, for panic messages.
    pub fn log_tails(&self) -> String {
        let mut text = String::new();
        for path in &self.logs {
            text.push_str(&format!("--- tail of {} ---\n", path.display()));
            text.push_str(&tail(path, TAIL_LINES));
        }
        text
    }

    /// Stops the daemon: SIGTERM, up to [`STOP_GRACE`] to exit, then
    /// SIGKILL. Returns how it exited. Safe to call more than once.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit_status() {
            return status;
        }
        self.signal(libc::SIGTERM);
        // Drop cannot be async; a short blocking poll is the price of
        // guaranteeing the process is gone when the guard is.
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.try_exit_status() {
                return status;
            }
            std::thread::sleep(POLL);
        }
        eprintln!(
            "{}: still running {STOP_GRACE:?} after SIGTERM; killing it",
            self.name
        );
        if let Err(e) = self.child.kill() {
            eprintln!("{}: SIGKILL failed: {e}", self.name);
        }
        match self.child.wait() {
            Ok(status) => {
                self.exited = Some(status);
                status
            }
            Err(e) => panic!("{}: cannot reap the process: {e}", self.name),
        }
    }

    /// Kills the daemon at once with SIGKILL, as a crash or the OOM killer
    /// would, and reaps it. Returns how it exited (killed, unless it had
    /// already exited).
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit_status() {
            return status;
        }
        if let Err(e) = self.child.kill() {
            panic!("{}: SIGKILL failed: {e}", self.name);
        }
        match self.child.wait() {
            Ok(status) => {
                self.exited = Some(status);
                status
            }
            Err(e) => panic!("{}: cannot reap the process: {e}", self.name),
        }
    }
}

/// How to start a daemon, beyond its program and arguments.
#[derive(Debug, Default)]
pub struct SpawnOptions {
    /// Environment variables set for the daemon, on top of the test's own.
    pub env: Vec<(String, String)>,
    /// Give the daemon a pipe as stdin instead of /dev/null.
    pub piped_stdin: bool,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Never panic in drop: it may run while a failed test unwinds, and
        // a second panic would abort before the other daemons are stopped.
        if self.exited.is_some() {
            return;
        }
        let stop = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
        if stop.is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `KEY: N kB` line of /proc/PID/status, in KiB.
pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The last `lines` lines of the file at `path`, or why it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let mut out = all[all.len().saturating_sub(lines)..].join("\n");
            out.push('\n');
            out
        }
        Err(e) => format!("(cannot read: {e})\n"),
    }
}

/// True when /proc/net/tcp or /proc/net/tcp6 shows a socket listening on
/// `port` (any address).
pub fn tcp_listening(port: u16) -> bool {
    // State 0A is TCP_LISTEN in the kernel's numbering.
    proc_net_has(&["/proc/net/tcp", "/proc/net/tcp6"], port, Some("0A"))
}

/// True when /proc/net/udp or /proc/net/udp6 shows a socket bound to
/// `port` (any address).
pub fn udp_bound(port: u16) -> bool {
    proc_net_has(&["/proc/net/udp", "/proc/net/udp6"], port, None)
}

/// Looks for a local port (and, if given, a state) in /proc/net tables:
/// lines of `sl local_address rem_address st ...`, where the local address
/// is `HEXADDR:HEXPORT`.
fn proc_net_has(tables: &[&str], port: u16, state: Option<&str>) -> bool {
    let wanted = format!("{port:04X}");
    tables.iter().any(|table| {
        let Ok(text) = std::fs::read_to_string(table) else {
            return false;
        };
        text.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let local = fields.next().unwrap_or("");
            let st = fields.nth(1).unwrap_or("");
            local.rsplit(':').next() == Some(wanted.as_str()) && state.is_none_or(|s| s == st)
        })
    })
}
