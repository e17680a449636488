//! The outgoing HTTP client: one pooled hyper client (http and https) with
//! the bounds every call needs — a deadline for the whole exchange and a cap
//! on how much of a response body is read. Redirects are not followed,
//! except by [`HttpClient::send_following`] (Kannel's services and
//! dlr-urls, see `redirect`).

pub mod redirect;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Most of a response body that is ever read; the rest is not waited for.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Idle pooled connections kept per host.
const POOL_IDLE_PER_HOST: usize = 32;

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// A cheap-to-clone HTTP client.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<Connector, Full<Bytes>>,
}

/// A response, read within the limits.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Bytes,
    /// Every header of the response (Kannel's services read X-Kannel-*).
    pub headers: hyper::HeaderMap,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad URL `{0}`")]
    BadUrl(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
    #[error("response body over {MAX_RESPONSE_BODY} bytes or unreadable: {0}")]
    Body(String),
}

impl HttpClient {
    /// A client trusting Mozilla's root certificates for https.
    pub fn new() -> Result<HttpClient, HttpError> {
        HttpClient::with_idle_per_host(POOL_IDLE_PER_HOST)
    }

    /// [`HttpClient::new`] keeping up to `idle` connections per host open
    /// between requests. A caller that makes `n` requests to one host at
    /// once needs `n`: with fewer, every request beyond them opens a
    /// connection and closes it after, which costs a TCP handshake each
    /// and, at a few thousand a second, runs out of local ports (each
    /// closed one waits in TIME_WAIT for a minute).
    pub fn with_idle_per_host(idle: usize) -> Result<HttpClient, HttpError> {
        let provider = tokio_rustls::rustls::crypto::ring::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| HttpError::Request(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let inner = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(idle)
            .build(https);
        Ok(HttpClient { inner })
    }

    /// Sends a request and reads the response, all within `timeout`.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let headers: Vec<(&str, String)> = content_type
            .map(|ct| vec![(CONTENT_TYPE.as_str(), ct.to_owned())])
            .unwrap_or_default();
        self.send_with_headers(method, url, &headers, body, timeout)
            .await
    }

    /// [`HttpClient::send_with_headers`], following up to `max_follow`
    /// redirects as Kannel's HTTP client does (see [`redirect`]), each
    /// within `timeout`. Returns the URL the last answer (or failure) came
    /// from, with it.
    pub async fn send_following(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
        timeout: Duration,
        max_follow: u32,
    ) -> (String, Result<HttpResponse, HttpError>) {
        let mut url = url.to_owned();
        let mut follow = max_follow;
        loop {
            let outcome = self
                .send_with_headers(method.clone(), &url, headers, body.clone(), timeout)
                .await;
            let next = match &outcome {
                Ok(r) if follow > 0 => redirect::location(r.status, &r.headers, &url),
                _ => None,
            };
            match next {
                Some(next) => {
                    tracing::debug!(from = %url, to = %next, "redirected");
                    url = next;
                    follow -= 1;
                }
                None => return (url, outcome),
            }
        }
    }

    /// [`HttpClient::send`] with request headers of the caller's: a
    /// `User-Agent` among them replaces rapidbox's. A header that is not
    /// valid HTTP is an error, not sent half.
    pub async fn send_with_headers(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let uri: hyper::Uri = url.parse().map_err(|_| HttpError::BadUrl(url.to_owned()))?;
        let mut request = Request::builder().method(method).uri(uri);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(USER_AGENT.as_str()))
        {
            request = request.header(
                USER_AGENT,
                HeaderValue::from_static(concat!("rapidbox/", env!("CARGO_PKG_VERSION"))),
            );
        }
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| HttpError::Request(e.to_string()))?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let headers = response.headers().clone();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BODY)
                .collect()
                .await
                .map_err(|e| HttpError::Body(e.to_string()))?
                .to_bytes();
            Ok(HttpResponse {
                status,
                content_type,
                body,
                headers,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }
}
