//! From a request to the part of the server that answers it: the web
//! console for its paths, the API for the rest.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};
use tracing::debug;

use super::api::Api;
use super::body::{self, ResponseBody};
use super::console::{self, Console};
use super::context::Context;

/// Everything a request may need: the shared context and the two parts.
pub struct Service {
    pub ctx: Context,
    pub api: Api,
    /// The web console; `None` when no console users are configured.
    pub console: Option<Arc<Console>>,
}

/// Answers one request; every failure becomes an error response.
pub async fn serve(
    service: Arc<Service>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = if console::is_console_path(&path) {
        console::serve(&service.ctx, service.console.as_deref(), request).await
    } else {
        body::whole(match service.api.respond(&service.ctx, request).await {
            Ok(response) => response,
            Err(e) => {
                debug!(%method, %path, error = %e, "HTTP request refused");
                e.into_response()
            }
        })
    };
    debug!(%method, %path, status = response.status().as_u16(), "HTTP request answered");
    Ok(response)
}
