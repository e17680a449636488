//! `rapidbox run`: builds every part from the configuration, runs them
//! until SIGINT or SIGTERM, then shuts down in order — stop taking
//! messages, let the ones in hand finish and be acknowledged, commit the
//! store, close it.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::apps;
use crate::client::HttpClient;
use crate::config::{smsbox_id_warning, Config};
use crate::link::connect::{Endpoint, TlsSettings};
use crate::link::convert::MtSettings;
use crate::link::inbound::Inbound;
use crate::link::outbox::{self, Outbox};
use crate::link::{Link, LinkConfig, LinkStatus};
use crate::model::MessageId;
use crate::router::{Ids, ReplySettings, Router};
use crate::store::{Store, StoreOptions};

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
}

/// Message ids come from the store's counter.
struct StoreIds(Store);

impl Ids for StoreIds {
    fn next_id(&self) -> MessageId {
        self.0.allocate_id()
    }
}

/// Everything running, for tests and embedding: the parts a caller may
/// want to look at, and the handle that stops them.
pub struct Running {
    pub store: Store,
    pub router: Router,
    pub outbox: Outbox,
    pub link_status: Arc<LinkStatus>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops everything gracefully and closes the store.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while let Some(result) = self.tasks.join_next().await {
            if let Err(e) = result {
                error!(error = %e, "a task failed while stopping");
            }
        }
        self.store.close().await;
        info!("rapidbox stopped");
    }

    /// The token whose cancellation stops everything.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Starts rapidbox as `config` says.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    for warning in config.warnings() {
        warn!("{warning}");
    }
    let store = Store::open(&config.store.path, StoreOptions::default())?;
    info!(path = %config.store.path.display(), "store open");
    let http = HttpClient::new()?;
    let app_list = apps::build(config, &store, &http);
    let router = Router::new(
        app_list,
        Arc::new(StoreIds(store.clone())),
        ReplySettings {
            global_sender: config.kannel.global_sender.clone(),
            dlr_mask: config.kannel.dlr_mask,
        },
    );
    info!(apps = ?router.app_names(), "router ready");

    let outbox = Outbox::new(outbox::DEFAULT_CAPACITY);
    let shutdown = CancellationToken::new();
    let link_status = Arc::new(LinkStatus::default());
    let mut tasks = JoinSet::new();

    if config.kannel.enabled {
        let k = &config.kannel;
        if let Some(id) = &k.smsbox_id {
            warn!("{}", smsbox_id_warning(id));
        }
        let tls = match (k.tls, &k.tls_ca_file) {
            (true, Some(ca)) => Some(Arc::new(TlsSettings::new(ca.clone(), k.tls_server_name())?)),
            // Never fall back to plain TCP when TLS was asked for.
            (true, None) => return Err(StartError::TlsWithoutCa),
            (false, _) => None,
        };
        let link = Link {
            config: LinkConfig {
                endpoint: Endpoint {
                    host: k.host.clone(),
                    port: k.port,
                    tls,
                },
                smsbox_id: k.smsbox_id.clone(),
                heartbeat: k.heartbeat(),
                max_in_flight: k.max_in_flight,
                max_routing: k.max_routing,
                reconnect_min: k.reconnect_min(),
                reconnect_max: k.reconnect_max(),
                max_frame_bytes: k.max_frame_bytes,
                mt: MtSettings {
                    boxc_id: k.smsbox_id.clone(),
                    global_sender: k.global_sender.clone(),
                },
            },
            inbound: Inbound {
                store: store.clone(),
                router: router.clone(),
                outbox: outbox.clone(),
            },
            status: link_status.clone(),
        };
        tasks.spawn(link.run(shutdown.clone()));
        tasks.spawn(sweep(outbox.clone(), store.clone(), shutdown.clone()));
    } else {
        info!("kannel.enabled = false: not connecting to a bearerbox");
    }

    Ok(Running {
        store,
        router,
        outbox,
        link_status,
        shutdown,
        tasks,
    })
}

/// Sweeps the store into the outbox at start and every
/// [`outbox::SWEEP_EVERY`]: queued messages from before a restart, replies
/// the outbox had no room for, errored messages due for a retry.
async fn sweep(outbox: Outbox, store: Store, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(outbox::SWEEP_EVERY);
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

/// Runs rapidbox until SIGINT or SIGTERM.
pub async fn run(config: &Config) -> Result<(), StartError> {
    let running = start(config).await?;
    wait_for_signal().await;
    info!("shutting down: finishing the messages in hand");
    let stopping = running.stop();
    if tokio::time::timeout(Duration::from_secs(30), stopping)
        .await
        .is_err()
    {
        warn!("shutdown took over 30 s; exiting anyway (unacknowledged MOs will be redelivered)");
    }
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
