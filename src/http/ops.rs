//! The endpoints for operations: `GET /metrics` (Prometheus' text
//! format), `GET /health` and `GET /ready`, for monitoring, load balancers
//! and supervisors.
//!
//! - `/health`: 200 while the process serves HTTP at all.
//! - `/ready`: 200 when rapidbox can take messages — the store is writable
//!   (open, its writer not recovering from a storage failure) and, when
//!   `[kannel] enabled`, the bearerbox link is connected; otherwise 503.
//!   Both answer with a JSON body naming each check's state.
//! - `/metrics`: on the main listener it needs `[http] password` when one
//!   is set, as the API does; when `[metrics] listen` is set it is served
//!   there instead (a listener serving only these three paths, protected
//!   by the address it is bound to) and not on the main listener.
//!
//! `/health` and `/ready` never need the password: load balancers and
//! supervisors probe them without credentials, and they say nothing a
//! probe could not learn by sending a message.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Serialize;

use super::answer::{self, ApiError, HttpResponse};
use super::context::Context;
use super::request::Params;
use crate::metrics;

/// Which of the endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The main listener: everything, with `/metrics` unless it is served
    /// on a listener of its own.
    Main { metrics: bool },
    /// The `[metrics] listen` listener: `/metrics`, `/health`, `/ready`.
    OpsOnly,
}

/// One of the operations endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Metrics,
    Health,
    Ready,
}

/// The operations endpoint at `path` that `role` serves, if any.
pub fn endpoint(path: &str, role: Role) -> Option<Endpoint> {
    let path = path.strip_suffix('/').unwrap_or(path);
    match path {
        "/metrics" if role != (Role::Main { metrics: false }) => Some(Endpoint::Metrics),
        "/health" => Some(Endpoint::Health),
        "/ready" => Some(Endpoint::Ready),
        _ => None,
    }
}

/// Answers a request for `endpoint` (the body, if any, is not read).
pub fn respond(
    ctx: &Context,
    role: Role,
    endpoint: Endpoint,
    request: &Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    const GET: &[Method] = &[Method::GET, Method::HEAD];
    if !GET.contains(request.method()) {
        return Err(ApiError::MethodNotAllowed(GET));
    }
    match endpoint {
        Endpoint::Health => Ok(answer::json(StatusCode::OK, &Health { status: "ok" })),
        Endpoint::Ready => Ok(ready(ctx)),
        Endpoint::Metrics => {
            if let Role::Main { .. } = role {
                let params = Params::from_query(request.uri().query().unwrap_or(""));
                ctx.check_password("metrics", &params, request.headers(), request.extensions())?;
            }
            let text = ctx.intake.metrics().encode();
            Ok(answer::with_type(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                text.into_bytes(),
            ))
        }
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

#[derive(Serialize)]
struct Ready {
    ready: bool,
    checks: Checks,
}

#[derive(Serialize)]
struct Checks {
    /// `writable`, or `not writable` (closed, or recovering from a storage
    /// failure).
    store: &'static str,
    /// `connected`, `not connected`, or `disabled` (`[kannel] enabled =
    /// false`).
    kannel: &'static str,
}

/// The readiness checks, cheap enough for a probe every second: two
/// atomic reads for the store, one for the link.
fn ready(ctx: &Context) -> HttpResponse {
    let store_ok = ctx.store().is_writable();
    let link_ok = !ctx.kannel_enabled
        || ctx
            .link_status
            .connected
            .load(std::sync::atomic::Ordering::Relaxed);
    let checks = Checks {
        store: if store_ok { "writable" } else { "not writable" },
        kannel: match (ctx.kannel_enabled, link_ok) {
            (false, _) => "disabled",
            (true, true) => "connected",
            (true, false) => "not connected",
        },
    };
    let ready = store_ok && link_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    answer::json(status, &Ready { ready, checks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_is_served_where_its_role_says() {
        let main = Role::Main { metrics: true };
        let without = Role::Main { metrics: false };
        assert_eq!(endpoint("/metrics", main), Some(Endpoint::Metrics));
        assert_eq!(endpoint("/metrics", without), None);
        assert_eq!(
            endpoint("/metrics/", Role::OpsOnly),
            Some(Endpoint::Metrics)
        );
        assert_eq!(endpoint("/ready", without), Some(Endpoint::Ready));
        assert_eq!(endpoint("/health", Role::OpsOnly), Some(Endpoint::Health));
        assert_eq!(endpoint("/router/receive", Role::OpsOnly), None);
    }
}
