//! `rapidbox run`: builds every part from the configuration, runs them
//! (reloading what can change on SIGHUP) until SIGINT or SIGTERM, then
//! shuts down in order — stop taking
//! messages, let the ones in hand finish and be acknowledged, commit the
//! store, close it.
//!
//! [`Daemon::builder`] is also the way to embed rapidbox in a binary of
//! one's own, with apps of one's own:
//!
//! ```no_run
//! # async fn run(my_app: Box<dyn rapidbox::router::App>) -> Result<(), rapidbox::StartError> {
//! let config = rapidbox::config::Config::load("rapidbox.toml").expect("configuration");
//! let running = rapidbox::Daemon::builder(config).app(my_app).start().await?;
//! // ... until it is time to stop:
//! running.stop().await;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::client::HttpClient;
use crate::config::{smsbox_id_warning, Config, ConfigErrors, KannelConfig, TransportKind};
use crate::dispatch::outbox::{self, Outbox};
use crate::dispatch::push::{self, Pusher};
use crate::dispatch::Dispatch;
use crate::dlr_callback::{self, DlrCallbacks};
use crate::http::api::alert::Alerts;
use crate::http::api::{Api, Sendsms};
use crate::http::console::Console;
use crate::http::{HttpServer, Parts, Role};
use crate::intake::deferred::Deferrals;
use crate::intake::Intake;
use crate::link::connect::{Endpoint, TlsSettings};
use crate::link::convert::MtSettings;
use crate::link::inbound::Inbound;
use crate::link::{Link, LinkConfig};
use crate::metrics::{LinkStatus, Metrics};
use crate::reload::{self, Reloadable, Snapshot};
use crate::router::App;
use crate::store::{Retention, Store, StoreOptions};

/// Why rapidbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("kannel TLS: {0}")]
    Tls(#[from] crate::link::connect::TlsSetupError),
    #[error("kannel.tls is set but kannel.tls_ca_file is not: no CA to trust")]
    TlsWithoutCa,
    #[error("HTTP client: {0}")]
    Http(#[from] crate::client::HttpError),
    #[error("HTTP server: {0}")]
    HttpListen(#[from] crate::http::ListenError),
    #[error(transparent)]
    Alerts(#[from] crate::http::api::alert::AlertsError),
}

/// rapidbox, to be started: [`Daemon::builder`].
pub struct Daemon;

impl Daemon {
    /// A rapidbox that will run as `config` says, with the apps it
    /// configures and any added with [`DaemonBuilder::app`].
    pub fn builder(config: Config) -> DaemonBuilder {
        DaemonBuilder {
            config,
            apps: Vec::new(),
        }
    }
}

/// What [`Daemon::builder`] gathers before [`DaemonBuilder::start`].
pub struct DaemonBuilder {
    config: Config,
    apps: Vec<Box<dyn App>>,
}

impl DaemonBuilder {
    /// Adds an app of your own. Your apps run after the configured ones
    /// (`[router] apps`), in the order added; the outgoing phase runs over
    /// all of them in reverse, so yours see outgoing messages first.
    pub fn app(mut self, app: Box<dyn App>) -> DaemonBuilder {
        self.apps.push(app);
        self
    }

    /// Opens the store, connects, listens: everything runs once this
    /// returns, until [`Running::stop`].
    pub async fn start(self) -> Result<Running, StartError> {
        let extra = self.apps.into_iter().map(Arc::from).collect();
        start(self.config, extra).await
    }
}

/// rapidbox, running: what an embedder or a test may look at, and the
/// handle that stops it.
pub struct Running {
    store: Store,
    intake: Intake,
    /// What a reload replaces.
    settings: Reloadable,
    /// The configuration running now (its restart-only keys as at the
    /// start), and what a reload rebuilds the apps with.
    running: std::sync::Mutex<Config>,
    http: HttpClient,
    /// An embedder's own apps, kept across reloads.
    extra: Vec<Arc<dyn App>>,
    link_status: Arc<LinkStatus>,
    http_addr: std::net::SocketAddr,
    metrics_addr: Option<std::net::SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// The store every message is committed to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The way in for messages of an embedder's own (see
    /// [`Intake::send`]).
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// The apps every incoming message goes through now, in order.
    pub fn app_names(&self) -> Vec<String> {
        let settings = self.settings.load();
        let names = settings.router.app_names();
        names.into_iter().map(str::to_owned).collect()
    }

    /// Applies `new` (read and checked, as [`Config::load`] does) to the
    /// running rapidbox: its apps (and `[[sms_services]]`, `[smsbox]`),
    /// `[backends]`, `[[sendsms_users]]` and `[[console_users]]` take
    /// effect for every message that comes in from now on; messages being
    /// routed finish on the apps they started with. Nothing is
    /// disconnected and no message is dropped.
    ///
    /// Keys that only a restart applies are kept as they run and named
    /// in [`Reloaded::needs_restart`] (and a warning). A configuration
    /// with errors ([`Config::check`]: what `check-config` reports) is
    /// refused whole, and the running one kept.
    pub fn reload(&self, new: Config) -> Result<Reloaded, ConfigErrors> {
        let report = new.check();
        if !report.is_ok() {
            self.intake.metrics().reloads.refused();
            return Err(ConfigErrors {
                origin: "<reload>".to_owned(),
                errors: report.errors,
            });
        }
        let mut running = match self.running.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let needs_restart = reload::restart_only_changes(&running, &new);
        if !needs_restart.is_empty() {
            warn!(
                keys = ?needs_restart,
                "configuration reloaded, but these keys take effect only after a restart"
            );
        }
        for warning in report.warnings {
            warn!("{warning}");
        }
        let effective = reload::effective(&running, &new);
        let snapshot = Snapshot::build(&effective, &self.store, &self.http, &self.extra);
        let apps: Vec<String> = snapshot
            .router
            .app_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let generation = self.settings.replace(snapshot);
        self.intake.metrics().reloads.applied(generation);
        *running = effective;
        info!(generation, apps = ?apps, "configuration reloaded");
        Ok(Reloaded {
            generation,
            needs_restart,
        })
    }

    /// Whether the bearerbox link is connected right now.
    pub fn link_connected(&self) -> bool {
        self.link_status
            .connected
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where the HTTP server listens (the port chosen, for port 0).
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.http_addr
    }

    /// Where the `[metrics] listen` listener listens, when one is
    /// configured.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    /// Stops everything gracefully and closes the store.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while let Some(result) = self.tasks.join_next().await {
            if let Err(e) = result {
                error!(error = %e, "a task failed while stopping");
            }
        }
        let stats = self.store.stats();
        self.store.close().await;
        info!(
            transactions = stats.transactions,
            units = stats.units,
            largest_batch = stats.largest_batch,
            purged = stats.purged,
            purge_transactions = stats.purge_transactions,
            purge = ?stats.purge_time,
            apply = ?stats.apply_time,
            commit = ?stats.commit_time,
            "rapidbox stopped"
        );
    }
}

/// What [`Running::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The new snapshot's number: 1 for the first reload, and so on.
    pub generation: u64,
    /// Keys that changed but keep their running values until a restart.
    pub needs_restart: Vec<&'static str>,
}

/// Starts rapidbox as `config` says, with `extra` apps after the
/// configured ones.
async fn start(config: Config, extra: Vec<Arc<dyn App>>) -> Result<Running, StartError> {
    let config = &config;
    for warning in config.warnings() {
        warn!("{warning}");
    }
    let options = StoreOptions {
        cache_bytes: config.store.cache_mb << 20,
        journal: config.store.journal,
        checkpoint_interval: Duration::from_secs(config.store.checkpoint_secs),
        commit_delay: Duration::from_micros(config.store.commit_delay_us),
        ..StoreOptions::default()
    };
    let store = Store::open(&config.store.path, options)?;
    let http = HttpClient::new()?;
    let settings = Reloadable::new(Snapshot::build(config, &store, &http, &extra));
    let app_names: Vec<String> = settings
        .load()
        .router
        .app_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    info!(apps = ?app_names, "router ready");

    let shutdown = CancellationToken::new();
    let link_status = Arc::new(LinkStatus::default());
    // Every part reports here; `/metrics` reads it.
    let metrics = Arc::new(Metrics::new(link_status.clone(), &app_names, Some(&store)));
    let mut tasks = JoinSet::new();
    // The outboxes' sweeps ask the current transports: a backend a
    // reload moved is swept by its new transport.
    let serves = |kind: TransportKind| -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let settings = settings.clone();
        Arc::new(move |backend: &str| settings.load().transports.transport_for(backend) == kind)
    };

    // One outbox per transport that runs; each sweeps the store for its
    // own backends' messages.
    let kannel_outbox = config.kannel.enabled.then(|| {
        let policy = outbox::Policy {
            serves: serves(TransportKind::Kannel),
            ..outbox::Policy::every_backend()
        };
        Outbox::new(outbox::DEFAULT_CAPACITY, policy)
    });
    let push_outbox = config.push.is_set().then(|| {
        let policy = push::policy(&config.push, serves(TransportKind::Push));
        Outbox::new(outbox::DEFAULT_CAPACITY, policy)
    });
    let dispatch = Dispatch::new(settings.clone(), kannel_outbox.clone(), push_outbox.clone());
    for outbox in kannel_outbox.iter().chain(push_outbox.iter()) {
        tasks.spawn(sweep(outbox.clone(), store.clone(), shutdown.clone()));
    }
    if let Some(outbox) = &push_outbox {
        let pusher = Pusher {
            config: Arc::new(config.push.clone()),
            http: http.clone(),
            store: store.clone(),
            outbox: outbox.clone(),
            metrics: metrics.clone(),
        };
        tasks.spawn(pusher.run(shutdown.clone()));
        info!(method = ?config.push.method, "push transport ready");
    }
    let mut intake = Intake::new(store.clone(), settings.clone(), dispatch, metrics.clone());
    if let Some(after) = config.router.defer_after() {
        let deferrals = Deferrals::new(after, config.router.max_deferred);
        intake = intake.with_deferrals(deferrals.clone());
        tasks.spawn(deferrals.resume(intake.clone(), shutdown.clone()));
    }

    // Retention: purges what `[store] retention_*` say is too old, in
    // small transactions between the hot path's (store/retention.rs).
    let retention = Retention::from_config(&config.store);
    if retention.is_set() {
        info!(?retention, "retention on");
        tasks.spawn(retention.run(store.clone(), shutdown.clone()));
    }

    // sendsms callers' dlr-urls, called when their reports arrive.
    let (dlr_callbacks, callback_worker) = DlrCallbacks::new(
        http.clone(),
        store.clone(),
        dlr_callback::FIRST_RETRY,
        metrics.clone(),
        shutdown.clone(),
    );
    tasks.spawn(callback_worker);

    match &kannel_outbox {
        Some(outbox) => {
            let link = Link {
                config: link_config(&config.kannel)?,
                inbound: Inbound {
                    intake: intake.clone(),
                    dlr_callbacks: Some(dlr_callbacks.clone()),
                },
                outbox: outbox.clone(),
                status: link_status.clone(),
            };
            tasks.spawn(link.run(shutdown.clone()));
        }
        None => info!("kannel.enabled = false: not connecting to a bearerbox"),
    }

    // The HTTP endpoints (httprouter's and Kannel's sendsms) and the
    // console (when users are configured).
    let http_server = HttpServer::bind(
        &config.http,
        Parts {
            intake: intake.clone(),
            link_status: link_status.clone(),
            kannel_enabled: config.kannel.enabled,
            api: Api {
                sendsms: Sendsms {
                    settings: settings.clone(),
                    global_sender: config.kannel.global_sender.clone(),
                },
                alerts: Alerts::new(&config.alerts, &http)?,
                backup: Default::default(),
            },
            console: Some(Console::new(
                &config.console,
                settings.clone(),
                shutdown.clone(),
            )),
        },
        Role::Main {
            metrics: config.metrics.listen.is_none(),
        },
    )
    .await?;
    let http_addr = http_server.local_addr();

    // `[metrics] listen`: a listener of its own for /metrics, /health and
    // /ready, with `[http]`'s bounds.
    let metrics_server = match config.metrics.listen {
        Some(listen) => {
            let http_config = crate::config::HttpConfig {
                listen,
                ..config.http.clone()
            };
            let parts = Parts {
                intake: intake.clone(),
                link_status: link_status.clone(),
                kannel_enabled: config.kannel.enabled,
                api: Api {
                    // Not served here either.
                    sendsms: Sendsms {
                        settings: settings.clone(),
                        global_sender: None,
                    },
                    alerts: None,
                    // Not served here: this listener answers only the ops
                    // paths.
                    backup: Default::default(),
                },
                console: None,
            };
            Some(HttpServer::bind(&http_config, parts, Role::OpsOnly).await?)
        }
        None => None,
    };
    let metrics_addr = metrics_server.as_ref().map(HttpServer::local_addr);
    tasks.spawn(http_server.run(shutdown.clone()));
    if let Some(server) = metrics_server {
        tasks.spawn(server.run(shutdown.clone()));
    }

    Ok(Running {
        store,
        intake,
        settings,
        running: std::sync::Mutex::new(config.clone()),
        http,
        extra,
        link_status,
        http_addr,
        metrics_addr,
        shutdown,
        tasks,
    })
}

/// The bearerbox link's settings from `[kannel]`.
fn link_config(k: &KannelConfig) -> Result<LinkConfig, StartError> {
    if let Some(id) = &k.smsbox_id {
        warn!("{}", smsbox_id_warning(id));
    }
    let tls = match (k.tls, &k.tls_ca_file) {
        (true, Some(ca)) => Some(Arc::new(TlsSettings::new(ca.clone(), k.tls_server_name())?)),
        // Never fall back to plain TCP when TLS was asked for.
        (true, None) => return Err(StartError::TlsWithoutCa),
        (false, _) => None,
    };
    Ok(LinkConfig {
        endpoint: Endpoint {
            host: k.host.clone(),
            port: k.port,
            tls,
        },
        smsbox_id: k.smsbox_id.clone(),
        heartbeat: k.heartbeat(),
        answer_timeout: k.answer_timeout(),
        idle_timeout: k.idle_timeout(),
        max_in_flight: k.max_in_flight,
        max_routing: k.max_routing,
        reconnect_min: k.reconnect_min(),
        reconnect_max: k.reconnect_max(),
        max_frame_bytes: k.max_frame_bytes,
        mt: MtSettings {
            boxc_id: k.smsbox_id.clone(),
            global_sender: k.global_sender.clone(),
            dlr_mask: k.dlr_mask,
        },
    })
}

/// Sweeps the store into an outbox at start and then as its policy says:
/// queued messages from before a restart, messages the outbox had no room
/// for, errored messages due for a retry.
async fn sweep(outbox: Outbox, store: Store, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(outbox.sweep_every());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let (o, s) = (outbox.clone(), store.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || o.sweep(&s)).await {
            error!(error = %e, "outbox sweep failed");
        }
    }
}

/// Runs rapidbox as `config` says until SIGINT or SIGTERM. Under systemd
/// (`Type=notify`) it says READY once everything runs, feeds the unit's
/// watchdog, and says STOPPING when the shutdown starts.
///
/// On SIGHUP it reads `config_file` again and reloads
/// ([`Running::reload`]); a file that fails `check-config`'s checks is
/// refused, its errors logged, and the running configuration kept.
/// Without a file (embedded defaults) there is nothing to re-read.
pub async fn run(config: Config, config_file: Option<PathBuf>) -> Result<(), StartError> {
    let running = Daemon::builder(config).start().await?;
    let systemd = crate::notify::Notifier::from_env();
    systemd.notify("READY=1");
    let watchdog = CancellationToken::new();
    tokio::spawn(systemd.clone().keep_watchdog(watchdog.clone()));
    let mut signals = Signals::new();
    while let Signal::Reload = signals.next().await {
        reload_from(&running, config_file.as_deref(), &systemd).await;
    }
    info!("shutting down: finishing the messages in hand");
    systemd.notify("STOPPING=1");
    // Fed until the end: a shutdown that hangs past the unit's stop
    // timeout is systemd's to end, not the watchdog's.
    let stopping = running.stop();
    if tokio::time::timeout(Duration::from_secs(30), stopping)
        .await
        .is_err()
    {
        warn!("shutdown took over 30 s; exiting anyway (unacknowledged MOs will be redelivered)");
    }
    watchdog.cancel();
    Ok(())
}

/// One SIGHUP: reads `file` and reloads, or logs why not.
async fn reload_from(running: &Running, file: Option<&Path>, systemd: &crate::notify::Notifier) {
    let Some(file) = file else {
        warn!("SIGHUP: running on embedded defaults (no --config), nothing to reload");
        return;
    };
    info!(file = %file.display(), "SIGHUP: reloading the configuration");
    systemd.notify("RELOADING=1");
    // Reading and checking may touch the disk (includes, regexes): off
    // the runtime's workers.
    let path = file.to_owned();
    let loaded = tokio::task::spawn_blocking(move || Config::load(path)).await;
    let refused = match loaded {
        Ok(Ok(config)) => running.reload(config).err(),
        Ok(Err(errors)) => {
            running.intake.metrics().reloads.refused();
            Some(errors)
        }
        Err(e) => {
            running.intake.metrics().reloads.refused();
            error!(error = %e, "reading the configuration failed; the running one is kept");
            None
        }
    };
    if let Some(errors) = refused {
        for problem in &errors.errors {
            error!(file = %file.display(), "{problem}");
        }
        error!(
            file = %file.display(),
            errors = errors.errors.len(),
            "configuration refused; the running one is kept"
        );
    }
    systemd.notify("READY=1");
}

/// What the signal loop hears.
enum Signal {
    /// SIGHUP.
    Reload,
    /// SIGINT or SIGTERM.
    Stop,
}

/// SIGINT, SIGTERM and SIGHUP, installed once so that no signal arriving
/// between two waits is missed.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate())
                .map_err(
                    |e| warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops rapidbox"),
                )
                .ok();
            let hup = signal(SignalKind::hangup())
                .map_err(|e| warn!(error = %e, "cannot listen for SIGHUP; reloading is off"))
                .ok();
            Signals { term, hup }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            let term = async {
                match &mut self.term {
                    Some(term) => term.recv().await,
                    None => std::future::pending().await,
                }
            };
            let hup = async {
                match &mut self.hup {
                    Some(hup) => hup.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Signal::Stop,
                _ = term => Signal::Stop,
                _ = hup => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}
