//! `rapidbox run`: builds every part from the configuration, runs them
//! until SIGINT or SIGTERM, then shuts down in order — stop taking
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

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::apps;
use crate::client::HttpClient;
use crate::config::{smsbox_id_warning, Config, KannelConfig, TransportKind, Transports};
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
use crate::router::{App, ReplySettings, Router};
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
        start(&self.config, self.apps).await
    }
}

/// rapidbox, running: what an embedder or a test may look at, and the
/// handle that stops it.
pub struct Running {
    store: Store,
    app_names: Vec<String>,
    intake: Intake,
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

    /// The apps every incoming message goes through, in order.
    pub fn app_names(&self) -> &[String] {
        &self.app_names
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

/// Starts rapidbox as `config` says, with `extra` apps after the
/// configured ones.
async fn start(config: &Config, extra: Vec<Box<dyn App>>) -> Result<Running, StartError> {
    for warning in config.warnings() {
        warn!("{warning}");
    }
    let options = StoreOptions {
        cache_bytes: config.store.cache_mb << 20,
        journal: config.store.journal,
        checkpoint_interval: Duration::from_secs(config.store.checkpoint_secs),
        ..StoreOptions::default()
    };
    let store = Store::open(&config.store.path, options)?;
    let http = HttpClient::new()?;
    let mut app_list = apps::build_for(config, &store, &http);
    app_list.extend(extra);
    let router = Router::new(
        app_list,
        Arc::new(store.clone()),
        ReplySettings {
            global_sender: config.kannel.global_sender.clone(),
            dlr_mask: config.kannel.dlr_mask,
        },
    );
    let app_names: Vec<String> = router.app_names().into_iter().map(str::to_owned).collect();
    info!(apps = ?app_names, "router ready");

    let shutdown = CancellationToken::new();
    let link_status = Arc::new(LinkStatus::default());
    // Every part reports here; `/metrics` reads it.
    let metrics = Arc::new(Metrics::new(link_status.clone(), &app_names, Some(&store)));
    let mut tasks = JoinSet::new();
    let transports = config.transports();
    let serves = |kind: TransportKind| -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let transports: Transports = transports.clone();
        Arc::new(move |backend: &str| transports.transport_for(backend) == kind)
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
    let dispatch = Dispatch::new(
        transports.clone(),
        kannel_outbox.clone(),
        push_outbox.clone(),
    );
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
    let mut intake = Intake::new(store.clone(), router, dispatch, metrics.clone());
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
                    users: config.sendsms_users.clone(),
                    global_sender: config.kannel.global_sender.clone(),
                },
                alerts: Alerts::new(&config.alerts, &http)?,
                backup: Default::default(),
            },
            console: Console::new(&config.console, &config.console_users, shutdown.clone()),
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
                    sendsms: Sendsms {
                        users: Vec::new(),
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
        app_names,
        intake,
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
pub async fn run(config: Config) -> Result<(), StartError> {
    let running = Daemon::builder(config).start().await?;
    let systemd = crate::notify::Notifier::from_env();
    systemd.notify("READY=1");
    let watchdog = CancellationToken::new();
    tokio::spawn(systemd.clone().keep_watchdog(watchdog.clone()));
    wait_for_signal().await;
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

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops rapidbox");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
