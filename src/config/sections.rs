//! The configuration's sections other than the apps, with their defaults.
//!
//! Every key has a default, so a missing file, section or key means "the
//! default". Numbers carry their unit in their name (`_ms`, `_secs`,
//! `_bytes`); the methods turn them into `Duration`s.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// `[store]`: where rapidbox keeps its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [store] section (a table)")]
pub struct StoreConfig {
    /// What keeps the state: `redb` (one file, the default) or `postgres`
    /// (a PostgreSQL database several instances can share, configured in
    /// `[store.postgres]`). The keys below up to `checkpoint_secs` are
    /// redb's; the retention keys apply to either.
    pub backend: StoreBackend,
    /// The redb file; its directory is created when missing.
    pub path: PathBuf,
    /// redb's page cache, in MiB. It is most of rapidbox's memory; the
    /// operating system's file cache sits behind it anyway.
    pub cache_mb: usize,
    /// Make each batch durable with one append and fsync of a journal
    /// beside the redb file, and commit redb durably only every
    /// `checkpoint_secs` (see README, "The write-ahead journal"). On by
    /// default.
    pub journal: bool,
    /// With `journal`: the most seconds between durable redb commits,
    /// after each of which the journal is emptied.
    pub checkpoint_secs: u64,
    /// With `journal`: the most microseconds a group of units waits for
    /// more before the journal's fdatasync, only while units come fast
    /// enough for the wait to gather some (0: never wait).
    pub commit_delay_us: u64,
    /// Purge messages older than this many days (`None`: keep them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u64>,
    /// Purge the oldest messages beyond this many (`None`: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_max_messages: Option<u64>,
    /// A sent message is kept this long for its delivery report, however
    /// old it is.
    pub retention_report_window_hours: u64,
    /// Most messages purged per transaction.
    pub retention_batch: usize,
    /// Seconds between two retention sweeps.
    pub retention_every_secs: u64,
    /// `[store.postgres]`: the database, with `backend = "postgres"`.
    pub postgres: PostgresConfig,
}

/// `[store] backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "\"redb\" or \"postgres\"")]
pub enum StoreBackend {
    /// One redb file on this machine.
    #[default]
    Redb,
    /// A PostgreSQL database (`[store.postgres]`).
    Postgres,
}

impl StoreBackend {
    /// The name as the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            StoreBackend::Redb => "redb",
            StoreBackend::Postgres => "postgres",
        }
    }

    /// Whether this build of rapidbox has the backend (both are built in;
    /// `check-config` and the start refuse one that is not).
    pub fn is_built(self) -> bool {
        match self {
            StoreBackend::Redb => true,
            StoreBackend::Postgres => true,
        }
    }
}

/// `[store.postgres]`: where the PostgreSQL store is and how rapidbox uses
/// it. Give either `url` or the parts (`host`, `port`, `user`, `dbname`);
/// the password, if the server asks for one, comes from `password_file`
/// rather than this file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [store.postgres] section (a table)")]
pub struct PostgresConfig {
    /// A libpq connection URI, `postgres://USER@HOST:PORT/DBNAME` (with
    /// `?sslmode=...` and the like if wanted). Instead of the parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The server's host name, IP address, or Unix socket directory (an
    /// absolute path). Default `localhost`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The server's port. Default 5432.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The role to connect as. Default `rapidbox`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The database. Default `rapidbox`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dbname: Option<String>,
    /// A file holding the password (its first line), readable by
    /// rapidbox's user only; none: connect without one (peer or trust
    /// authentication; `~/.pgpass` is not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Most connections this instance holds open. Several instances share
    /// the server's `max_connections`.
    pub pool_size: usize,
    /// Most milliseconds one statement may run before the server cancels
    /// it (PostgreSQL's `statement_timeout`); a commit that takes longer
    /// fails, and its MOs are acked `failed_tmp`.
    pub statement_timeout_ms: u64,
    /// With several instances on one database: seconds an instance's
    /// claim on a queued MT, push retry or `dlr-url` call lasts without
    /// being renewed, after which another instance takes the work over
    /// (an instance that died leaves its claims behind this long).
    pub claim_lease_secs: u64,
}

impl Default for PostgresConfig {
    fn default() -> PostgresConfig {
        PostgresConfig {
            url: None,
            host: None,
            port: None,
            user: None,
            dbname: None,
            password_file: None,
            // The writer needs few: group commit puts many units on one
            // connection; the rest serve reads.
            pool_size: 8,
            statement_timeout_ms: 30_000,
            claim_lease_secs: 60,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            backend: StoreBackend::Redb,
            path: PathBuf::from("./data/rapidbox.redb"),
            cache_mb: 32,
            journal: true,
            checkpoint_secs: 5,
            commit_delay_us: crate::store::DEFAULT_COMMIT_DELAY.as_micros() as u64,
            retention_days: None,
            retention_max_messages: None,
            // Kannel's SMSCs usually report within hours; a message's
            // validity is at most days.
            retention_report_window_hours: 72,
            retention_batch: 1000,
            retention_every_secs: 60,
            postgres: PostgresConfig::default(),
        }
    }
}

/// `[kannel]`: the connection to a bearerbox's smsbox-port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [kannel] section (a table)")]
pub struct KannelConfig {
    /// Whether to connect at all (false: HTTP backends only).
    pub enabled: bool,
    /// The bearerbox's host name or IP address.
    pub host: String,
    /// The bearerbox's `smsbox-port`.
    #[serde(deserialize_with = "port")]
    pub port: u16,
    /// The `smsbox-id` to identify with; `None` identifies with a NULL id,
    /// which gets every MO no `smsbox-route` claims. See
    /// [`smsbox_id_warning`](super::smsbox_id_warning) before setting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smsbox_id: Option<String>,
    /// Seconds between heartbeats (Kannel's smsbox sends one every 30).
    pub heartbeat_secs: u64,
    /// Seconds of silence from the bearerbox, while MTs wait for its
    /// answer, after which the link is taken for dead and redialled.
    pub answer_timeout_secs: u64,
    /// Seconds of silence from the bearerbox, with nothing owed, after
    /// which the connection is replaced; 0: never. The bearerbox sends no
    /// heartbeats, so this is the only bound on how long a dead link that
    /// carries no MTs can hold MOs back.
    pub idle_timeout_secs: u64,
    /// Whether the smsbox-port speaks TLS (`smsbox-port-ssl = true`).
    pub tls: bool,
    /// PEM file of the CA(s) to trust for the bearerbox's certificate.
    /// Required with `tls`: rapidbox carries no list of public CAs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// The name the bearerbox's certificate must carry; `None` means
    /// [`host`](Self::host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// The delivery reports asked for on every MT (box protocol dlr_mask
    /// bits: 1 delivered, 2 undelivered, 4 buffered, 8 accepted by the
    /// SMSC, 16 rejected by the SMSC); 0 asks for none.
    pub dlr_mask: i32,
    /// Sender for replies instead of the MO's receiver (the shortcode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_sender: Option<String>,
    /// MTs sent to the bearerbox and not yet acknowledged, at most.
    pub max_in_flight: usize,
    /// MOs being routed at once, at most.
    pub max_routing: usize,
    /// First wait before reconnecting; it doubles up to
    /// `reconnect_max_secs`.
    pub reconnect_min_ms: u64,
    /// Longest wait between reconnection attempts.
    pub reconnect_max_secs: u64,
    /// Largest frame accepted from the bearerbox.
    pub max_frame_bytes: usize,
}

impl KannelConfig {
    /// Default `dlr_mask`: 1 + 2 + 8 + 16, every report that settles a
    /// message's status (delivered, undelivered, accepted or rejected by
    /// the SMSC); 4 (buffered) is left out because it is intermediate and
    /// changes no status, so it would only cost a frame and a write.
    pub const DEFAULT_DLR_MASK: i32 = 27;

    /// Default `answer_timeout_secs`. Kannel 1.4.5's bearerbox answers an
    /// MT as soon as it has stored and queued it (`deliver_sms_to_queue`
    /// in gw/bb_boxc.c), so 30 s of silence with MTs waiting is far past
    /// any busy bearerbox and short enough that MOs held back at the
    /// bearerbox by a dead connection come again within a minute.
    pub const DEFAULT_ANSWER_TIMEOUT_SECS: u64 = 30;

    /// Default `idle_timeout_secs`. A half-open or stalled link carries no
    /// MOs to rapidbox, so rapidbox sends no replies on it and has no MT
    /// whose missing answer would give the link away: silence is the only
    /// sign, and this is how long MOs can be held back at the bearerbox.
    /// A vanished host or a cut network is found sooner, by TCP keepalive
    /// (about 25 s, `link/connect.rs`); this catches what keepalive cannot:
    /// a bearerbox whose kernel still answers but which sends nothing.
    /// Five minutes keeps the reconnections of a link with no traffic at
    /// all (one per timeout, logged by the bearerbox) rare.
    pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;

    /// The time between heartbeats.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }

    /// Silence while MTs are unanswered after which the link is dead.
    pub fn answer_timeout(&self) -> Duration {
        Duration::from_secs(self.answer_timeout_secs)
    }

    /// Silence after which an idle connection is replaced, if ever.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_secs > 0).then(|| Duration::from_secs(self.idle_timeout_secs))
    }

    /// The first wait before reconnecting.
    pub fn reconnect_min(&self) -> Duration {
        Duration::from_millis(self.reconnect_min_ms)
    }

    /// The longest wait between reconnection attempts.
    pub fn reconnect_max(&self) -> Duration {
        Duration::from_secs(self.reconnect_max_secs)
    }

    /// The name to check the bearerbox's certificate against.
    pub fn tls_server_name(&self) -> &str {
        self.tls_server_name.as_deref().unwrap_or(&self.host)
    }
}

impl Default for KannelConfig {
    fn default() -> KannelConfig {
        KannelConfig {
            enabled: true,
            host: "127.0.0.1".to_owned(),
            // Kannel's customary smsbox-port.
            port: 13001,
            smsbox_id: None,
            heartbeat_secs: 30,
            answer_timeout_secs: KannelConfig::DEFAULT_ANSWER_TIMEOUT_SECS,
            idle_timeout_secs: KannelConfig::DEFAULT_IDLE_TIMEOUT_SECS,
            tls: false,
            tls_ca_file: None,
            tls_server_name: None,
            dlr_mask: KannelConfig::DEFAULT_DLR_MASK,
            global_sender: None,
            // The bearerbox answers an MT as soon as it has queued it, so
            // the window only has to cover a round trip at full rate.
            max_in_flight: 256,
            // Above the bearerbox's default smsbox-max-pending (100), so
            // the bearerbox, not rapidbox, is what holds MOs back.
            max_routing: 512,
            reconnect_min_ms: 500,
            reconnect_max_secs: 30,
            max_frame_bytes: boxproto::DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// `[metrics]`: where `/metrics` is served.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [metrics] section (a table)")]
pub struct MetricsConfig {
    /// A second, small listener serving only `/metrics`, `/health` and
    /// `/ready`, without a password (bind it to an address only the
    /// monitoring can reach). When set, the main listener no longer
    /// serves `/metrics`. Unset: `/metrics` is on `[http] listen`, behind
    /// `[http] password` when one is set.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_socket_addr"
    )]
    pub listen: Option<SocketAddr>,
}

/// `[log]`: how rapidbox writes its log (to stderr; the journal under
/// systemd). What is logged is `RUST_LOG`'s to say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [log] section (a table)")]
pub struct LogConfig {
    /// `text` (for people) or `json` (one object a line, for log
    /// shippers); `rapidbox run --log-format` overrides it.
    pub format: LogFormat,
}

/// The log's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "\"text\" or \"json\"")]
pub enum LogFormat {
    /// tracing's human-readable lines.
    #[default]
    Text,
    /// One JSON object a line: timestamp, level, message, the event's
    /// fields, and the span it is in (a message's `message_id` and
    /// `kannel_uuid`).
    Json,
}

/// `[runtime]`: the threads rapidbox runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [runtime] section (a table)")]
pub struct RuntimeConfig {
    /// tokio's worker threads, which run the link, the HTTP server and the
    /// apps. 0: chosen at start, see [`RuntimeConfig::workers`].
    pub worker_threads: usize,
}

impl RuntimeConfig {
    /// The most worker threads the configuration may ask for.
    pub const MAX_WORKER_THREADS: usize = 512;

    /// How many worker threads to start on a machine that lets rapidbox
    /// use `cpus` CPUs; `None` leaves it to tokio (which reads
    /// `TOKIO_WORKER_THREADS`, else starts one per CPU).
    ///
    /// With `worker_threads = 0` and no `TOKIO_WORKER_THREADS`: one less
    /// than the CPUs, at least one. The store's writer is a thread of its
    /// own that works for every message, so a worker per CPU leaves it
    /// sharing one with a worker; measured on 2 CPUs (BENCHMARKS.md), one
    /// worker instead of two cost 11% less CPU per MO at 10,000 MOs/s and
    /// carried 10% more at saturation, with the same HTTP throughput.
    pub fn workers(&self, cpus: usize, env_set: bool) -> Option<usize> {
        match self.worker_threads {
            0 if env_set => None,
            0 => Some(cpus.saturating_sub(1).max(1)),
            n => Some(n),
        }
    }
}

/// `[http]`: the HTTP server (httprouter endpoints, sendsms, console).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [http] section (a table)")]
pub struct HttpConfig {
    /// Address to listen on, `IP:PORT`; port 0 takes any free port.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// httprouter's `ROUTER_PASSWORD`: when set, `/router/receive`,
    /// `/router/outbox` and `/router/delivered` require it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// httprouter's `ROUTER_SILENT`: `/router/receive` answers an empty 200
    /// unless the request says `echo`.
    pub silent: bool,
    /// Connections served at once; more wait for a free slot (each
    /// address's still counted against `max_connections_per_address`).
    pub max_connections: usize,
    /// Connections one client address may hold at once, served or
    /// waiting; more from it are closed at once. Below `max_connections`,
    /// so that one address (a slowloris, a runaway client) cannot take
    /// every slot and starve the others (check-config warns when it is not).
    pub max_connections_per_address: usize,
    /// Wrong credentials (sendsms users', `password`) one address may give
    /// within 5 minutes, counted together; after that it gets 429 until
    /// the oldest is 5 minutes old. 0: no limit, as Kannel's smsbox.
    pub max_auth_failures: usize,
    /// Largest request body (a POSTed form); bigger ones get 413.
    pub max_body_bytes: usize,
    /// Largest request line plus headers; bigger ones get 431.
    pub max_header_bytes: usize,
    /// Time a client has to send a request's headers, counted from the
    /// moment the server waits for them; also how long an idle keep-alive
    /// connection is kept.
    pub header_timeout_ms: u64,
    /// Time a client has to send a request's body once its headers are in.
    pub body_timeout_ms: u64,
}

impl HttpConfig {
    /// The smallest `max_header_bytes`: hyper's HTTP/1 read buffer cannot
    /// be smaller.
    pub const MIN_HEADER_BYTES: usize = 8192;

    /// The header (and idle) timeout.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// The body timeout.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            // Loopback: anyone who can reach the endpoints can inject
            // messages unless a password is set.
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            password: None,
            silent: false,
            // Relays and monitoring make a handful of connections; 256
            // leaves room for bursts while bounding sockets and memory.
            max_connections: 256,
            // A relay or a load test uses a few dozen; a quarter of the
            // slots leaves three quarters to everyone else.
            max_connections_per_address: 64,
            // An application with a typo in its password fails ten times
            // before it is slowed; a guesser gets ten guesses per window.
            max_auth_failures: 10,
            // A form with a long SMS is under 2 KiB; 64 KiB is generous.
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
        }
    }
}

/// `[router]`: which apps see incoming messages, in order, and how long
/// an MO from the bearerbox may wait for them before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [router] section (a table)")]
pub struct RouterConfig {
    /// App names, in the order the router runs them. An app's kind is its
    /// name unless its `[apps.NAME]` section says `kind = ...`.
    pub apps: Vec<String>,
    /// An MO whose routing takes longer than this is stored as received
    /// (R) and acknowledged, and its routing finishes in the background
    /// (and after a restart, if rapidbox stops first). 0: every MO is
    /// acknowledged only once routed, however long that takes.
    pub defer_after_ms: u64,
    /// MOs being routed in the background at once; when all are taken, an
    /// MO waits for its routing before it is acknowledged (as with
    /// `defer_after_ms = 0`), which pushes back on the bearerbox. Kannel's
    /// smsbox bounds its URL fetches the same way (`max-pending-requests`,
    /// 512).
    pub max_deferred: usize,
}

impl RouterConfig {
    /// How long an MO's routing may take before it is deferred; `None`
    /// when deferring is off.
    pub fn defer_after(&self) -> Option<Duration> {
        (self.defer_after_ms > 0 && self.max_deferred > 0)
            .then(|| Duration::from_millis(self.defer_after_ms))
    }
}

impl Default for RouterConfig {
    fn default() -> RouterConfig {
        RouterConfig {
            // A fresh rapidbox answers every message with its own words,
            // which shows at once that the whole path works, but honours
            // STOP first: nobody who opted out is echoed at.
            apps: vec!["optout".to_owned(), "echo".to_owned()],
            // Well above what a local app takes (the built-in ones answer
            // in microseconds), well below an HTTP application's latency.
            defer_after_ms: 100,
            max_deferred: 512,
        }
    }
}

/// A TCP port, 1..=65535, with an error that says so.
fn port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let number = i64::deserialize(deserializer)?;
    match u16::try_from(number) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(D::Error::custom(format!(
            "{number} is not a port number: use 1 to 65535"
        ))),
    }
}

/// `IP:PORT`, with an error that shows the expected form.
fn optional_socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    socket_addr(deserializer).map(Some)
}

fn socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        D::Error::custom(format!(
            "{text:?} is not an IP address and port such as \"127.0.0.1:8080\" or \"[::]:8080\""
        ))
    })
}
