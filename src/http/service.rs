//! From a request's method and path to the endpoint that answers it.
//!
//! Paths are httprouter's; a trailing slash is accepted, as Django's
//! patterns there matched it too.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request};
use tracing::debug;

use hyper::Response;

use super::alert::{self, Alerts};
use super::answer::{ApiError, HttpResponse};
use super::request::{self, BodyLimits, Params};
use super::{auth, delivered, monitor, outbox, receive, sendsms, Parts};
use crate::console::{self, Console, ResponseBody};

/// What every request's handling shares.
pub struct Shared {
    pub parts: Parts,
    /// `[http] password`.
    pub password: Option<String>,
    /// `[http] silent`.
    pub silent: bool,
    pub body: BodyLimits,
    /// The web console; `None` when no console users are configured.
    pub console: Option<Arc<Console>>,
    /// Where `/router/alert` forwards to; `None` when not configured.
    pub alerts: Option<Alerts>,
}

impl Shared {
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

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Receive,
    Outbox,
    Delivered,
    Status,
    Stats,
    Sendsms,
    Alert,
    RelayLog,
}

const GET: &[Method] = &[Method::GET];
const GET_POST: &[Method] = &[Method::GET, Method::POST];

fn endpoint(path: &str) -> Option<(Endpoint, &'static [Method])> {
    let path = path.strip_suffix('/').unwrap_or(path);
    Some(match path {
        "/router/receive" => (Endpoint::Receive, GET_POST),
        "/router/outbox" => (Endpoint::Outbox, GET),
        "/router/delivered" => (Endpoint::Delivered, GET_POST),
        "/router/status" => (Endpoint::Status, GET),
        "/router/stats" => (Endpoint::Stats, GET),
        "/cgi-bin/sendsms" => (Endpoint::Sendsms, GET_POST),
        // GET too, to answer it with httprouter's "Must be POST".
        "/router/alert" => (Endpoint::Alert, GET_POST),
        "/router/relaylog" => (Endpoint::RelayLog, GET_POST),
        _ => return None,
    })
}

/// Answers one request; every failure becomes an error response.
pub async fn serve(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = if console::is_console_path(&path) {
        console::serve(&shared, request).await
    } else {
        match respond(&shared, request).await {
            Ok(response) => response,
            Err(e) => {
                debug!(%method, %path, error = %e, "HTTP request refused");
                e.into_response()
            }
        }
        .map(http_body_util::Either::Left)
    };
    debug!(%method, %path, status = response.status().as_u16(), "HTTP request answered");
    Ok(response)
}

async fn respond(shared: &Shared, request: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let (endpoint, allowed) = endpoint(request.uri().path()).ok_or(ApiError::NoSuchPath)?;
    if !allowed.contains(request.method()) {
        return Err(ApiError::MethodNotAllowed(allowed));
    }
    if let Endpoint::Sendsms = endpoint {
        // Its own users (`[[sendsms_users]]`), not `[http] password`, and
        // its own reading of the body (crate::sendsms).
        let (head, body) = request::raw(request, shared.body).await?;
        return Ok(sendsms::handle(shared, &head, &body).await);
    }
    let (head, params) = request::params(request, shared.body).await?;
    match endpoint {
        Endpoint::Receive => {
            shared.check_password(&params, &head.headers)?;
            receive::handle(shared, &params).await
        }
        Endpoint::Outbox => {
            shared.check_password(&params, &head.headers)?;
            outbox::handle(shared, &params).await
        }
        Endpoint::Delivered => {
            shared.check_password(&params, &head.headers)?;
            delivered::handle(shared, &params).await
        }
        Endpoint::Status => monitor::status(shared, &params, &head.headers).await,
        Endpoint::Stats => monitor::stats(shared),
        // Answered above, before any parameter was read.
        Endpoint::Sendsms => Err(ApiError::NoSuchPath),
        Endpoint::Alert | Endpoint::RelayLog => {
            let kind = match endpoint {
                Endpoint::Alert => alert::Kind::Alert,
                _ => alert::Kind::RelayLog,
            };
            Ok(alert::handle(shared, kind, &head.method, &params, &head.headers).await)
        }
    }
}
