//! The HTTP API: rapidsms-httprouter's endpoints and Kannel's sendsms.
//!
//! | endpoint | what it does |
//! | --- | --- |
//! | `GET/POST /router/receive` | routes a message through the same router as bearerbox MOs, stores it with its replies in one commit, answers them as JSON |
//! | `GET /router/outbox` | the queued (Q) messages of pull backends |
//! | `GET/POST /router/delivered` | marks an outgoing message delivered (D) |
//! | `GET /router/status` | how many messages have been queued for more than 15 minutes (text, JSON, or HTML for browsers) |
//! | `GET /router/stats` | message counts, the bearerbox link, queues, the store's writer |
//! | `POST /router/alert`, `POST /router/relaylog` | forward a relay's alert or log to the administrators (webhook, mail) |
//! | `GET/POST /cgi-bin/sendsms` | Kannel smsbox's sendsms: queues an MT per receiver, answers as smsbox |
//! | `POST /admin/backup` | writes a consistent copy of the store to `to` (needs `[http] password` set) |
//!
//! Paths are httprouter's; a trailing slash is accepted, as Django's
//! patterns there matched it too. Like the bearerbox link,
//! `/router/receive` and sendsms answer only after the messages are
//! durably committed, through the same [`crate::intake::Intake`].

pub mod alert;
pub mod backup;
mod delivered;
mod monitor;
mod outbox;
pub(crate) mod receive;
mod sendsms;

use hyper::body::Incoming;
use hyper::{Method, Request};

use super::answer::{ApiError, HttpResponse};
use super::context::Context;
use super::request;
use alert::Alerts;
pub use sendsms::Sendsms;

/// What the API holds beyond the shared [`Context`].
pub struct Api {
    /// Who may use `/cgi-bin/sendsms`, and its defaults.
    pub sendsms: Sendsms,
    /// Where `/router/alert` forwards to; `None` when not configured.
    pub alerts: Option<Alerts>,
    /// Whether `/admin/backup` is busy.
    pub backup: backup::BackupSlot,
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
    Backup,
}

const GET: &[Method] = &[Method::GET];
const GET_POST: &[Method] = &[Method::GET, Method::POST];
const POST: &[Method] = &[Method::POST];

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
        "/admin/backup" => (Endpoint::Backup, POST),
        _ => return None,
    })
}

impl Api {
    /// Answers one API request; every failure is an [`ApiError`].
    pub async fn respond(
        &self,
        ctx: &Context,
        request: Request<Incoming>,
    ) -> Result<HttpResponse, ApiError> {
        let (endpoint, allowed) = endpoint(request.uri().path()).ok_or(ApiError::NoSuchPath)?;
        if !allowed.contains(request.method()) {
            return Err(ApiError::MethodNotAllowed(allowed));
        }
        if let Endpoint::Sendsms = endpoint {
            // Its own users (`[[sendsms_users]]`), not `[http] password`,
            // and its own reading of the body (crate::sendsms).
            let (head, body) = request::raw(request, ctx.body).await?;
            return Ok(self.sendsms.handle(ctx, &head, &body).await);
        }
        let (head, params) = request::params(request, ctx.body).await?;
        match endpoint {
            Endpoint::Receive => {
                ctx.check_password("receive", &params, &head.headers, &head.extensions)?;
                receive::handle(ctx, &params).await
            }
            Endpoint::Outbox => {
                ctx.check_password("outbox", &params, &head.headers, &head.extensions)?;
                outbox::handle(ctx, &params).await
            }
            Endpoint::Delivered => {
                ctx.check_password("delivered", &params, &head.headers, &head.extensions)?;
                delivered::handle(ctx, &params).await
            }
            Endpoint::Backup => {
                ctx.check_password("backup", &params, &head.headers, &head.extensions)?;
                backup::handle(ctx, &self.backup, &params).await
            }
            Endpoint::Status => monitor::status(ctx, &params, &head.headers).await,
            Endpoint::Stats => monitor::stats(ctx).await,
            // Answered above, before any parameter was read.
            Endpoint::Sendsms => Err(ApiError::NoSuchPath),
            Endpoint::Alert | Endpoint::RelayLog => {
                let kind = match endpoint {
                    Endpoint::Alert => alert::Kind::Alert,
                    _ => alert::Kind::RelayLog,
                };
                let alerts = self.alerts.as_ref();
                Ok(alert::handle(ctx, alerts, kind, &head, &params).await)
            }
        }
    }
}
