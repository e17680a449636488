//! httprouter's alert endpoints, for relays (Android phones, gateways)
//! to tell the administrators that something is wrong:
//!
//! - `POST /router/alert` with `subject`, `body`, `password`;
//! - `POST /router/relaylog` with `log`, `password` (the older form; its
//!   subject is "Relay log").
//!
//! httprouter mailed these to Django's ADMINS; rapidbox forwards them to
//! `[alerts] url` as a JSON POST (`{"subject": ..., "body": ...}`)
//! through the same bounded client the webhook app uses. The password is
//! `[http] password`, when set. Answers are plain text, as httprouter's:
//! `Log Sent` once the webhook answered 2xx.

use std::time::Duration;

use bytes::Bytes;
use hyper::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use tracing::{info, warn};

use super::answer::{self, HttpResponse};
use super::request::Params;
use super::service::Shared;
use crate::client::HttpClient;

/// Where alerts go.
#[derive(Clone)]
pub struct Alerts {
    pub client: HttpClient,
    pub url: String,
    pub timeout: Duration,
}

/// The longest subject and body forwarded; the rest is cut, so a chatty
/// relay cannot make rapidbox post megabytes (the request body is already
/// bounded by `[http] max_body_bytes`).
pub const MAX_SUBJECT_CHARS: usize = 200;

/// Which endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Alert,
    RelayLog,
}

#[derive(Serialize)]
struct Payload<'a> {
    subject: &'a str,
    body: &'a str,
    /// `alert` or `relaylog`.
    source: &'static str,
}

/// Answers an alert or relay log request.
pub async fn handle(
    shared: &Shared,
    kind: Kind,
    method: &Method,
    params: &Params,
    headers: &HeaderMap,
) -> HttpResponse {
    let fields: &[&'static str] = match kind {
        Kind::Alert => &["subject", "body", "password"],
        Kind::RelayLog => &["log", "password"],
    };
    if method != Method::POST {
        return answer::text(
            StatusCode::BAD_REQUEST,
            format!("Must be POST of [{}]", fields.join(", ")),
        );
    }
    if shared.check_password(params, headers).is_err() {
        return answer::text(StatusCode::FORBIDDEN, "Invalid password".to_owned());
    }
    let value = |name| params.get(name).map(str::trim).filter(|v| !v.is_empty());
    let (subject, body) = match kind {
        Kind::Alert => (value("subject"), value("body")),
        Kind::RelayLog => (Some("Relay log"), value("log")),
    };
    let missing: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| *f != "password")
        .filter(|f| value(f).is_none())
        .collect();
    let (Some(subject), Some(body)) = (subject, body) else {
        return answer::text(
            StatusCode::BAD_REQUEST,
            format!("Missing {}", missing.join(", ")),
        );
    };
    let Some(alerts) = &shared.alerts else {
        return answer::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Alerts are not configured: set [alerts] url".to_owned(),
        );
    };
    let subject: String = subject.chars().take(MAX_SUBJECT_CHARS).collect();
    let source = match kind {
        Kind::Alert => "alert",
        Kind::RelayLog => "relaylog",
    };
    let payload = Payload {
        subject: &subject,
        body,
        source,
    };
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let sent = alerts
        .client
        .send(
            Method::POST,
            &alerts.url,
            Some("application/json"),
            Bytes::from(json),
            alerts.timeout,
        )
        .await;
    match sent {
        Ok(r) if r.status.is_success() => {
            info!(source, subject = %subject, "alert forwarded");
            answer::text(StatusCode::OK, "Log Sent".to_owned())
        }
        Ok(r) => {
            warn!(
                source,
                status = r.status.as_u16(),
                "alert webhook refused the alert"
            );
            answer::text(
                StatusCode::BAD_GATEWAY,
                format!("Log not sent: the alert URL answered {}", r.status.as_u16()),
            )
        }
        Err(e) => {
            warn!(source, error = %e, "alert webhook failed");
            answer::text(StatusCode::BAD_GATEWAY, format!("Log not sent: {e}"))
        }
    }
}
