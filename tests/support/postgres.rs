//! A real PostgreSQL for tests: Debian's server binaries, a cluster made
//! by `initdb` in a temporary directory, run as an unprivileged user.
//!
//! The server listens on 127.0.0.1 at a port from [`super::ports`] and on
//! a unix socket in its directory; clients connect through the socket
//! (`host=<dir>`), as trust-authenticated user `rapidbox`. `fsync` stays
//! on: the store's durability is what the tests are about.
//!
//! PostgreSQL refuses to run as root, and CI runs the tests as root: then
//! the cluster belongs to the `postgres` system user (Debian's package
//! creates it) or, failing that, `nobody`, and every server command runs
//! through `runuser -u USER --`.
//!
//! A server is stopped (`pg_ctl stop -m fast`) when its [`PgServer`] is
//! dropped. A watchdog process also stops it, and removes its directory,
//! once the test process is gone, however it ended: that is what stops
//! [`PgServer::shared`], the one server of a test binary, which is never
//! dropped.
//!
//! This file is also compiled into the library's own tests (see
//! `src/store/pg/mod.rs`), so it uses only std, `tempfile` and
//! [`super::ports`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where Debian installs the server binaries, one directory per major
/// version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The role every test connects as (created by `initdb -U`).
pub const USER: &str = "rapidbox";

/// How long `pg_ctl start` may take (it waits for the server to accept
/// connections); generous for a loaded CI machine.
const START_TIMEOUT_SECS: u32 = 60;

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the newest
/// version Debian installed, or `RAPIDBOX_PG_BIN`.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RAPIDBOX_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("postgres").is_file().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// True when running under CI, where a missing PostgreSQL fails the tests
/// that need it instead of skipping them.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether `test` can run: true when PostgreSQL's server is installed.
/// Otherwise prints why the test is skipped and returns false, or panics
/// under CI.
pub fn require_postgres(test: &str) -> bool {
    if bin_dir().is_some() {
        return true;
    }
    if in_ci() {
        panic!(
            "{test}: PostgreSQL is required under CI but no server is installed under \
             {DEBIAN_ROOT}; install it with `apt-get install -y postgresql`"
        );
    }
    eprintln!("{test}: skipped: PostgreSQL not installed (no {DEBIAN_ROOT}/*/bin/postgres)");
    false
}

/// A running PostgreSQL cluster of the test's own.
#[derive(Debug)]
pub struct PgServer {
    /// Holds `data/` (the cluster), the socket and `server.log`.
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The unprivileged user server commands run as, when the tests run
    /// as root.
    run_as: Option<String>,
    watchdog: Option<Child>,
    running: bool,
}

impl PgServer {
    /// Makes a cluster in a fresh temporary directory and starts it.
    /// Panics (with the server's log) if it cannot; call
    /// [`require_postgres`] first.
    pub fn start() -> PgServer {
        let bin = bin_dir().expect("PostgreSQL is not installed (see require_postgres)");
        let dir = tempfile::Builder::new()
            .prefix("rapidbox-pg")
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        let path = dir.path().to_owned();
        let run_as = unprivileged_user();
        if let Some(user) = &run_as {
            // The directory tempfile made is root's and 0700.
            run(Command::new("chown").arg(user).arg(&path), "chown");
        }
        let mut server = PgServer {
            dir: Some(dir),
            path,
            bin,
            port: super::ports::free_port(),
            run_as,
            watchdog: None,
            running: false,
        };
        let data = server.data_dir();
        let mut initdb = server.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C"])
            // initdb's own final fsync of the template files is skipped:
            // it is about this throwaway cluster's creation, not about
            // what the tests commit (the server runs with fsync on).
            .arg("--no-sync");
        run(&mut initdb, "initdb");
        server.watchdog = Some(server.spawn_watchdog());
        server.start_server();
        server
    }

    /// The one server of this test process, started on first use and
    /// stopped by its watchdog when the process ends. Tests that share it
    /// each take a database of their own ([`PgServer::create_database`]).
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        SHARED.get_or_init(PgServer::start)
    }

    /// The port it listens on at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of its unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.path
    }

    /// A connection string (libpq's key/value form, which tokio-postgres
    /// reads) for database `dbname` through the unix socket.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user={USER} dbname={dbname}",
            self.path.display(),
            self.port
        )
    }

    /// The same database through TCP on 127.0.0.1.
    pub fn tcp_url(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname={dbname}",
            self.port
        )
    }

    /// Creates a database no other test uses and returns its name.
    pub fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb
            .arg("-h")
            .arg(&self.path)
            .args(["-p", &self.port.to_string(), "-U", USER, &name]);
        self.run_logged(&mut createdb, "createdb");
        name
    }

    /// Runs `sql` in database `dbname` with `psql` (stopping at the first
    /// error) and returns what it printed, unaligned and without headers.
    pub fn psql(&self, dbname: &str, sql: &str) -> String {
        let mut psql = Command::new(self.bin.join("psql"));
        psql.arg("-h")
            .arg(&self.path)
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", dbname])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql]);
        self.run_logged(&mut psql, "psql")
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, the
    /// data is checkpointed). [`PgServer::restart`] starts it again.
    pub fn stop(&mut self) {
        if self.running {
            self.pg_ctl_stop("fast");
        }
    }

    /// Stops the server as a crash would (`-m immediate`: no checkpoint;
    /// recovery replays the WAL on the next start).
    pub fn crash(&mut self) {
        if self.running {
            self.pg_ctl_stop("immediate");
        }
    }

    /// Starts a stopped server again, on the same port and data.
    pub fn restart(&mut self) {
        if !self.running {
            self.start_server();
        }
    }

    /// The tail of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.path.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn data_dir(&self) -> PathBuf {
        self.path.join("data")
    }

    fn start_server(&mut self) {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c fsync=on -c synchronous_commit=on -c max_connections=200 \
             -c shared_buffers=32MB",
            self.port,
            self.path.display()
        );
        // Statements slower than this many milliseconds go to server.log
        // (see `log_tail`), for finding out what is slow.
        if let Ok(ms) = std::env::var("RAPIDBOX_PG_LOG_MS") {
            options.push_str(&format!(" -c log_min_duration_statement={ms}"));
        }
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.path.join("server.log"))
            .args(["-o", &options, "-w", "-t", &START_TIMEOUT_SECS.to_string()])
            .arg("start")
            // pg_ctl's server is a daemon: it must not hold the test's
            // output pipes open.
            .stdin(Stdio::null());
        self.run_logged(&mut pg_ctl, "pg_ctl start");
        self.running = true;
    }

    fn pg_ctl_stop(&mut self, mode: &str) {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", "30", "stop"]);
        let out = pg_ctl.output();
        self.running = false;
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "pg_ctl stop -m {mode}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("pg_ctl stop -m {mode}: {e}"),
        }
    }

    /// A server binary, run as the unprivileged user if there is one.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// Runs `command`, panicking with its output and the server's log if
    /// it fails; returns its standard output.
    fn run_logged(&self, command: &mut Command, what: &str) -> String {
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
        if !out.status.success() {
            panic!(
                "{what} failed ({}):\n{}{}\n--- server.log ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A shell that waits for this process to end, then stops the server
    /// at once and removes its directory.
    fn spawn_watchdog(&self) -> Child {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]);
        let stop = shell_words(&stop);
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.path.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the PostgreSQL watchdog")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if let Some(dir) = self.dir.take() {
            // Files the server's user made are removable by root; as that
            // user, they are ours anyway.
            let _ = dir.close();
        }
    }
}

/// The user to run the server as: none when the tests do not run as root,
/// else `postgres` if it exists, else `nobody`.
fn unprivileged_user() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let has = |user: &str| {
        Command::new("id")
            .arg(user)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    Some(
        if has("postgres") {
            "postgres"
        } else {
            "nobody"
        }
        .to_owned(),
    )
}

/// Runs a setup command, panicking with its output if it fails.
fn run(command: &mut Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `command` as a line for `sh`, each word single-quoted.
fn shell_words(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|w| format!("'{}'", w.to_string_lossy().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits until `ready` holds, up to `timeout`.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ready()
}
