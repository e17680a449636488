//! What every request's handling shares, whichever part of the server
//! answers it: the parts of rapidbox behind the endpoints, and the
//! `[http]` settings they obey. The API and the console both read it; it
//! knows neither.

use std::sync::Arc;

use hyper::HeaderMap;

use super::answer::ApiError;
use super::auth;
use super::request::{BodyLimits, Params};
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
    /// Wrong sendsms credentials, per client address.
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
    /// set).
    pub fn check_password(&self, params: &Params, headers: &HeaderMap) -> Result<(), ApiError> {
        if auth::authorized(self.password.as_deref(), params, headers) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}
