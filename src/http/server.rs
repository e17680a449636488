//! The accept loop: one task per connection, HTTP/1.1 by hyper, every
//! resource bounded, and a graceful stop.
//!
//! Bounds, from `[http]`:
//! - `max_connections_per_address`: connections one client address holds
//!   at once, served or waiting. A connection beyond it is closed as soon
//!   as it is accepted, so one address (a slowloris, a runaway client)
//!   never holds more than its share;
//! - `max_connections`: connections served at once (a [`Semaphore`]
//!   permit each, granted in arrival order). Up to as many again wait for
//!   a permit, holding only their socket; beyond that a new connection is
//!   closed at once. Because no address may hold more than its share, a
//!   client from another address always finds a slot or a short queue;
//! - `max_header_bytes`: hyper's read buffer, so an endless request line or
//!   header section is answered 431 (or the connection closed) instead of
//!   growing memory;
//! - `header_timeout_ms`: hyper's header read timeout. In hyper 1.x its
//!   clock starts whenever the connection waits for a request head, so it
//!   drops both a client that trickles its headers (slowloris) and a
//!   keep-alive connection left idle;
//! - `max_body_bytes` and `body_timeout_ms`: applied where a body is read
//!   (`request.rs`).
//!
//! On shutdown the listener is closed at once, idle connections are
//! closed, and requests in progress get [`SHUTDOWN_GRACE`] to finish
//! (a receive in progress commits and answers) before they are dropped.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::context::Context;
use super::ops::Role;
use super::request::BodyLimits;
use super::service::{self, Service};
use super::throttle::AddressThrottle;
use super::Parts;
use crate::config::HttpConfig;

/// How long requests in progress may take to finish once shutdown starts.
/// Well under the 30 s `rapidbox run` gives the whole shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long to wait after `accept` fails for lack of resources (too many
/// open files, say) before trying again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections that may wait for a serving slot, as a multiple of
/// `max_connections`: enough to ride out a burst, bounded so that many
/// addresses together cannot pile up sockets without limit.
const WAITING_PER_SLOT: usize = 1;

/// The listening address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct ListenError {
    pub addr: SocketAddr,
    #[source]
    pub source: io::Error,
}

/// The client's address, in every request's extensions (the console
/// counts failed logins per address).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// A bound, not yet running, HTTP server.
pub struct HttpServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    service: Service,
    max_connections: usize,
    max_per_address: usize,
    http1: http1::Builder,
}

impl HttpServer {
    /// Binds `config.listen`, to serve what `role` says; fails if the
    /// address cannot be had. Serves nothing until [`HttpServer::run`].
    pub async fn bind(
        config: &HttpConfig,
        parts: Parts,
        role: Role,
    ) -> Result<HttpServer, ListenError> {
        let listen_error = |source| ListenError {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_timeout())
            // hyper refuses (panics on) a buffer below its minimum; the
            // configuration check says so, this keeps code-built configs
            // safe.
            .max_buf_size(config.max_header_bytes.max(HttpConfig::MIN_HEADER_BYTES))
            .keep_alive(true);
        Ok(HttpServer {
            listener,
            local_addr,
            service: Service {
                ctx: Context {
                    intake: parts.intake,
                    link_status: parts.link_status,
                    kannel_enabled: parts.kannel_enabled,
                    password: config.password.clone(),
                    silent: config.silent,
                    body: BodyLimits {
                        max_bytes: config.max_body_bytes,
                        timeout: config.body_timeout(),
                    },
                    throttle: Arc::new(AddressThrottle::new(config.max_auth_failures)),
                },
                api: parts.api,
                console: parts.console,
                role,
            },
            max_connections: config.max_connections.max(1),
            max_per_address: config.max_connections_per_address.max(1),
            http1,
        })
    }

    /// The address actually bound (the port chosen, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then stops as the module
    /// documentation says and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        info!(address = %self.local_addr, "HTTP server listening");
        let serving = Arc::new(Semaphore::new(self.max_connections));
        let admitted = Arc::new(Semaphore::new(
            self.max_connections * (1 + WAITING_PER_SLOT),
        ));
        let addresses = Arc::new(PerAddress::new(self.max_per_address));
        let service = Arc::new(self.service);
        let metrics = service.ctx.intake.metrics().clone();
        let mut connections = JoinSet::new();
        loop {
            // Finished connections leave the set as we go, so it holds at
            // most as many tasks as `admitted` has permits.
            while connections.try_join_next().is_some() {}
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    // Refused connections are dropped here, which closes
                    // them before a byte is read.
                    let Some(share) = addresses.take(peer.ip()) else {
                        debug!(%peer, "HTTP connection refused: too many from this address");
                        metrics.http.connection_refused("per_address");
                        continue;
                    };
                    let Ok(admission) = admitted.clone().try_acquire_owned() else {
                        debug!(%peer, "HTTP connection refused: every slot taken and queue full");
                        metrics.http.connection_refused("full");
                        continue;
                    };
                    debug!(%peer, "HTTP connection");
                    let serving = serving.clone();
                    let service = service.clone();
                    let http1 = self.http1.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        let permit = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            permit = serving.acquire_owned() => permit,
                        };
                        // The semaphore is never closed.
                        let Ok(permit) = permit else { return };
                        connection(stream, peer, service, http1, shutdown, permit).await;
                        drop((share, admission));
                    });
                }
                Err(e) if is_per_connection(&e) => debug!(error = %e, "HTTP accept"),
                Err(e) => {
                    warn!(error = %e, "HTTP accept failed; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
        drop(self.listener);
        let pending = connections.len();
        info!(connections = pending, "HTTP server stopping");
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                connections = connections.len(),
                "HTTP requests still running after {SHUTDOWN_GRACE:?}; dropping them"
            );
            connections.shutdown().await;
        }
        info!("HTTP server stopped");
    }
}

/// How many connections each client address holds, so that none holds
/// more than its share.
struct PerAddress {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's share; given back on drop.
struct Share {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn new(limit: usize) -> PerAddress {
        PerAddress {
            limit,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more connection from `ip`, or `None` when it
    /// already holds its share. IPv4 clients of an IPv6 listener count as
    /// their IPv4 address.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Share> {
        let ip = ip.to_canonical();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Share {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self
            .table
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Entries go when their last connection does: the map holds only
        // addresses with a live connection, at most `admitted` of them.
        if let Some(count) = held.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// Errors of `accept` that concern only the connection being accepted.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Serves one connection; holds its permit until the connection ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    service: Arc<Service>,
    http1: http1::Builder,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    // Answers are small and written whole; do not hold them back.
    let _ = stream.set_nodelay(true);
    let handler = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(PeerAddr(peer));
        service::serve(service.clone(), request)
    });
    let conn = http1.serve_connection(TokioIo::new(stream), handler);
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        _ = shutdown.cancelled() => {
            // Closes the connection if idle, else after the response in
            // progress.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        // Timeouts, oversized heads and clients that went away end here.
        debug!(error = %e, "HTTP connection ended");
    }
}
