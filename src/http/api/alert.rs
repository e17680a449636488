//! httprouter's alert endpoints, for relays (Android phones, gateways)
//! to tell the administrators that something is wrong:
//!
//! - `POST /router/alert` with `subject`, `body`, `password`;
//! - `POST /router/relaylog` with `log`, `password` (the older form; its
//!   subject is "Relay log").
//!
//! httprouter mailed these to Django's ADMINS; rapidbox forwards them to
//! `[alerts] url` as a JSON POST (`{"subject": ..., "body": ...}`)
//! through the same bounded client the webhook app uses, and mails them to
//! `[alerts] to` through `smtp_host` (lettre, over STARTTLS or TLS with
//! rustls), either or both. The password is `[http] password`, when set.
//! Answers are plain text, as httprouter's: `Log Sent` once every
//! configured channel took the alert.

use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Serialize;
use tracing::{info, warn};

use crate::client::HttpClient;
use crate::config::{AlertsConfig, SmtpSecurity};
use crate::http::answer::{self, ApiError, HttpResponse, THROTTLED};
use crate::http::context::Context;
use crate::http::request::Params;

/// Where alerts go: a webhook, mail, or both.
#[derive(Clone)]
pub struct Alerts {
    webhook: Option<Webhook>,
    mail: Option<Mail>,
    timeout: Duration,
}

#[derive(Clone)]
struct Webhook {
    client: HttpClient,
    url: String,
}

#[derive(Clone)]
struct Mail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

/// `[alerts]` could not be turned into a way to send alerts.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("alerts.{key}: {problem}")]
    Config { key: &'static str, problem: String },
    #[error("alerts.smtp_host: cannot set up TLS for it: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
}

impl Alerts {
    /// The channels `config` sets up (`None` when it sets up none). The
    /// configuration check has refused what this would refuse; this still
    /// never panics on a configuration built in code.
    pub fn new(config: &AlertsConfig, client: &HttpClient) -> Result<Option<Alerts>, AlertsError> {
        let webhook = config.url.clone().map(|url| Webhook {
            client: client.clone(),
            url,
        });
        let mail = match &config.smtp_host {
            Some(host) => Some(mail(config, host)?),
            None => None,
        };
        if webhook.is_none() && mail.is_none() {
            return Ok(None);
        }
        Ok(Some(Alerts {
            webhook,
            mail,
            timeout: config.timeout(),
        }))
    }
}

fn mail(config: &AlertsConfig, host: &str) -> Result<Mail, AlertsError> {
    let bad = |key, problem: String| AlertsError::Config { key, problem };
    let from = config
        .from
        .as_deref()
        .ok_or_else(|| bad("from", "required to mail alerts".to_owned()))?
        .parse::<Mailbox>()
        .map_err(|e| bad("from", e.to_string()))?;
    let to = config
        .to
        .iter()
        .map(|t| {
            t.parse::<Mailbox>()
                .map_err(|e| bad("to", format!("{t:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if to.is_empty() {
        return Err(bad("to", "required to mail alerts".to_owned()));
    }
    let builder = match config.smtp_security {
        SmtpSecurity::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(AlertsError::Tls)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(AlertsError::Tls)?
        }
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
    };
    let mut builder = builder
        .port(config.smtp_port)
        .timeout(Some(config.timeout()));
    if let (Some(user), Some(password)) = (&config.smtp_username, &config.smtp_password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(Mail {
        transport: builder.build(),
        from,
        to,
    })
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
    ctx: &Context,
    alerts: Option<&Alerts>,
    kind: Kind,
    head: &hyper::http::request::Parts,
    params: &Params,
) -> HttpResponse {
    let fields: &[&'static str] = match kind {
        Kind::Alert => &["subject", "body", "password"],
        Kind::RelayLog => &["log", "password"],
    };
    if head.method != Method::POST {
        return answer::text(
            StatusCode::BAD_REQUEST,
            format!("Must be POST of [{}]", fields.join(", ")),
        );
    }
    let endpoint = match kind {
        Kind::Alert => "alert",
        Kind::RelayLog => "relaylog",
    };
    match ctx.check_password(endpoint, params, &head.headers, &head.extensions) {
        Ok(()) => {}
        Err(ApiError::Throttled(wait)) => {
            let mut response = answer::text(StatusCode::TOO_MANY_REQUESTS, THROTTLED.to_owned());
            answer::retry_after(&mut response, wait);
            return response;
        }
        Err(_) => return answer::text(StatusCode::FORBIDDEN, "Invalid password".to_owned()),
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
    let Some(alerts) = alerts else {
        return answer::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Alerts are not configured: set [alerts] url or smtp_host".to_owned(),
        );
    };
    let subject: String = subject.chars().take(MAX_SUBJECT_CHARS).collect();
    let source = match kind {
        Kind::Alert => "alert",
        Kind::RelayLog => "relaylog",
    };
    let mut failures = Vec::new();
    if let Some(webhook) = &alerts.webhook {
        if let Err(e) = post(webhook, alerts.timeout, &subject, body, source).await {
            warn!(source, error = %e, "alert webhook failed");
            failures.push(e);
        }
    }
    if let Some(mail) = &alerts.mail {
        if let Err(e) = send_mail(mail, alerts.timeout, &subject, body).await {
            warn!(source, error = %e, "alert mail failed");
            failures.push(e);
        }
    }
    if failures.is_empty() {
        info!(source, subject = %subject, "alert forwarded");
        answer::text(StatusCode::OK, "Log Sent".to_owned())
    } else {
        answer::text(
            StatusCode::BAD_GATEWAY,
            format!("Log not sent: {}", failures.join("; ")),
        )
    }
}

/// The alert as JSON to the webhook; what went wrong otherwise.
async fn post(
    webhook: &Webhook,
    timeout: Duration,
    subject: &str,
    body: &str,
    source: &'static str,
) -> Result<(), String> {
    let payload = Payload {
        subject,
        body,
        source,
    };
    // Serializing three strings cannot fail.
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let sent = webhook
        .client
        .send(
            Method::POST,
            &webhook.url,
            Some("application/json"),
            Bytes::from(json),
            timeout,
        )
        .await;
    match sent {
        Ok(r) if r.status.is_success() => Ok(()),
        Ok(r) => Err(format!("the alert URL answered {}", r.status.as_u16())),
        Err(e) => Err(format!("the alert URL: {e}")),
    }
}

/// The alert as a plain-text mail to the administrators.
async fn send_mail(
    mail: &Mail,
    timeout: Duration,
    subject: &str,
    body: &str,
) -> Result<(), String> {
    let mut message = lettre::Message::builder()
        .from(mail.from.clone())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &mail.to {
        message = message.to(to.clone());
    }
    let message = message
        .body(body.to_owned())
        .map_err(|e| format!("the alert mail could not be built: {e}"))?;
    // lettre bounds each SMTP command; this bounds the whole exchange.
    match tokio::time::timeout(timeout, mail.transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("the mail server: {e}")),
        Err(_) => Err(format!("the mail server: no answer within {timeout:?}")),
    }
}
