//! The bearerbox link: rapidbox's connection to Kannel's bearerbox, as an
//! SMS box.
//!
//! - [`connect`] opens the stream (TCP, or TLS with rustls);
//! - [`session`] runs one connection: identify, heartbeats, MOs and reports
//!   in, MTs out within a bounded window, admin commands;
//! - [`hold`] keeps MTs back while the store cannot record their answers;
//! - [`inbound`] routes and stores what arrives, and decides each ack;
//! - [`convert`] maps between `sms` frames and stored messages;
//! - [`backoff`] spaces out reconnections.
//!
//! [`Link::run`] reconnects whenever a session ends, however it ends, until
//! rapidbox shuts down: the bearerbox going away never stops rapidbox.

pub mod backoff;
pub mod connect;
pub mod convert;
pub mod hold;
pub mod inbound;
pub mod session;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::dispatch::outbox::Outbox;
use crate::metrics::LinkStatus;
use crate::model::now_micros;
use backoff::Backoff;
use connect::Endpoint;
use convert::MtSettings;
use inbound::Inbound;
use session::{Session, SessionEnd};

/// How the link behaves.
#[derive(Clone)]
pub struct LinkConfig {
    pub endpoint: Endpoint,
    /// Our smsbox-id; `None` identifies with a NULL id.
    pub smsbox_id: Option<String>,
    pub heartbeat: Duration,
    /// Silence after which a link with MTs unanswered is dead.
    pub answer_timeout: Duration,
    /// Silence after which an idle link is replaced; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// MTs sent and not yet answered by the bearerbox.
    pub max_in_flight: usize,
    /// MOs and reports being routed and stored at once.
    pub max_routing: usize,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub max_frame_bytes: usize,
    pub mt: MtSettings,
}

/// The bearerbox link.
pub struct Link {
    pub config: LinkConfig,
    pub inbound: Inbound,
    /// The MTs this link sends.
    pub outbox: Outbox,
    pub status: Arc<LinkStatus>,
}

impl Link {
    /// Connects, runs sessions and reconnects until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        let address = self.config.endpoint.address();
        let mut backoff = Backoff::new(self.config.reconnect_min, self.config.reconnect_max);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = self.config.endpoint.connect() => c,
            };
            match connected {
                Ok(stream) => {
                    match &self.config.smsbox_id {
                        Some(id) => {
                            info!(bearerbox = %address, smsbox_id = %id, "connected to the bearerbox; only MOs an smsbox-route sends to this id will arrive")
                        }
                        None => info!(bearerbox = %address, "connected to the bearerbox"),
                    }
                    self.status.connected.store(true, Ordering::Relaxed);
                    self.status.since.store(now_micros(), Ordering::Relaxed);
                    self.status.connects.fetch_add(1, Ordering::Relaxed);
                    let started = tokio::time::Instant::now();
                    let session = Session {
                        config: &self.config,
                        inbound: &self.inbound,
                        outbox: &self.outbox,
                        status: &self.status,
                    };
                    let end = session.run(stream, &shutdown).await;
                    self.status.connected.store(false, Ordering::Relaxed);
                    self.status.since.store(now_micros(), Ordering::Relaxed);
                    match end {
                        SessionEnd::Idle { silent } => {
                            // Our own choice, not a failure: redial at once.
                            info!(?silent, "nothing from the bearerbox for a while; replacing the connection in case it is dead");
                            backoff.reset();
                            continue;
                        }
                        SessionEnd::Dead { silent, unanswered } => {
                            self.status.dead.fetch_add(1, Ordering::Relaxed);
                            warn!(
                                ?silent,
                                unanswered,
                                "the bearerbox link is dead: MTs got no answer; reconnecting"
                            )
                        }
                        SessionEnd::BadFrame(e) => {
                            self.status.bad_frames.fetch_add(1, Ordering::Relaxed);
                            warn!(error = %e, "the bearerbox sent a frame rapidbox cannot read; dropping the connection, the bearerbox will redeliver")
                        }
                        SessionEnd::Shutdown => return,
                        SessionEnd::BearerboxLeaving(command) => {
                            info!(
                                ?command,
                                "the bearerbox is going away; reconnecting when it is back"
                            )
                        }
                        SessionEnd::Closed => warn!("the bearerbox closed the connection"),
                        SessionEnd::Broken(e) => {
                            warn!(error = %e, "the bearerbox connection broke")
                        }
                    }
                    // A session that lasted shows the bearerbox was fine:
                    // start over from the shortest delay.
                    if started.elapsed() > self.config.reconnect_max {
                        backoff.reset();
                    }
                }
                Err(e) => {
                    warn!(bearerbox = %address, error = %e, "cannot connect to the bearerbox")
                }
            }
            let delay = backoff.next_delay();
            info!(?delay, "reconnecting to the bearerbox");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}
