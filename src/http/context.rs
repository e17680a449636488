//! What every request's handling shares, whichever part of the server
//! answers it: the parts of rapidbox behind the endpoints, and the
//! `[http]` settings they obey. The API and the console both read it; it
//! knows neither.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::http::Extensions;
use hyper::HeaderMap;
use tracing::warn;

use super::answer::ApiError;
use super::auth;
use super::request::{BodyLimits, Params};
use super::server::PeerAddr;
use super::throttle::AddressThrottle;
use crate::dispatch::Dispatch;
use crate::intake::Intake;
use crate::metrics::LinkStatus;
use crate::store::Store;

/// The parts and settings behind every endpoint.
pub struct Context {
    /// Where received and sent messages go in.
    pub intake: Intake,
    /// The bearerbox link's state, for `/router/stats`.
    pub link_status: Arc<LinkStatus>,
    /// Whether the bearerbox link runs, for `/router/stats`.
    pub kannel_enabled: bool,
    /// `[http] password`.
    pub password: Option<String>,
    /// `[http] silent`.
    pub silent: bool,
    /// `[http] max_body_bytes` and `body_timeout_ms`.
    pub body: BodyLimits,
    /// Wrong credentials (sendsms users, `[http] password`), per client
    /// address.
    pub throttle: Arc<AddressThrottle>,
}

impl Context {
    /// The store behind every endpoint.
    pub fn store(&self) -> &Store {
        self.intake.store()
    }

    /// Where queued messages go; which backends are pull.
    pub fn dispatch(&self) -> &Dispatch {
        self.intake.dispatch()
    }

    /// Refuses the request unless it carries the password (when one is
    /// set). A wrong one counts against the client's address in the same
    /// limit as wrong sendsms credentials ([`AddressThrottle`]), and an
    /// address over that limit is refused whatever it sends
    /// ([`ApiError::Throttled`]). `endpoint` names the endpoint in logs
    /// and in `rapidbox_http_auth_failures_total`; `extensions` are the
    /// request's (its client's address).
    pub fn check_password(
        &self,
        endpoint: &'static str,
        params: &Params,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<(), ApiError> {
        if self.password.is_none() {
            return Ok(());
        }
        let ip: Option<IpAddr> = extensions.get::<PeerAddr>().map(|peer| peer.0.ip());
        let metrics = self.intake.metrics();
        if let Err(wait) = self.throttle.check(ip, Instant::now()) {
            warn!(endpoint, ?ip, "refused: too many failed authorizations");
            metrics.http.auth_failure(endpoint, true);
            return Err(ApiError::Throttled(wait));
        }
        if auth::authorized(self.password.as_deref(), params, headers) {
            return Ok(());
        }
        warn!(endpoint, ?ip, "wrong or missing [http] password");
        self.throttle.failed(ip, Instant::now());
        metrics.http.auth_failure(endpoint, false);
        Err(ApiError::Forbidden)
    }
}
