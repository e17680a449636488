//! From a request to the part of the server that answers it: the
//! operations endpoints (`/metrics`, `/health`, `/ready`), the web console
//! for its paths, the API for the rest. Every request is counted and timed
//! here, by endpoint and status.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};
use tracing::debug;

use super::answer::ApiError;
use super::api::Api;
use super::body::{self, ResponseBody};
use super::console::{self, Console};
use super::context::Context;
use super::ops::{self, Role};

/// Everything a request may need: the shared context and the parts.
pub struct Service {
    pub ctx: Context,
    pub api: Api,
    /// The web console; `None` when no console users are configured.
    pub console: Option<Arc<Console>>,
    /// Which endpoints this listener serves.
    pub role: Role,
}

/// Answers one request; every failure becomes an error response.
pub async fn serve(
    service: Arc<Service>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let method = request.method().clone();
    // The URI's parts are shared, not copied: it is kept for the logs.
    let uri = request.uri().clone();
    let path = uri.path();
    let is_console = console::is_console_path(path);
    let metrics = &service.ctx.intake.metrics().http;
    let timer = metrics.start(path, is_console);
    let refused = |e: ApiError| {
        debug!(%method, %path, error = %e, "HTTP request refused");
        e.into_response()
    };
    let response = if let Some(endpoint) = ops::endpoint(path, service.role) {
        body::whole(
            ops::respond(&service.ctx, service.role, endpoint, &request).unwrap_or_else(refused),
        )
    } else if service.role == Role::OpsOnly {
        body::whole(refused(ApiError::NoSuchPath))
    } else if is_console {
        console::serve(&service.ctx, service.console.as_deref(), request).await
    } else {
        body::whole(
            service
                .api
                .respond(&service.ctx, request)
                .await
                .unwrap_or_else(refused),
        )
    };
    let status = response.status().as_u16();
    metrics.finish(timer, status);
    debug!(%method, %path, status, "HTTP request answered");
    Ok(response)
}
