//! `GET`/`POST /cgi-bin/sendsms`: Kannel smsbox's sendsms interface, for
//! the applications that send through smsbox today.
//!
//! The request is read and checked, and its messages made, by
//! [`crate::sendsms`] (which documents every answer); this endpoint hands
//! it the request, sends the messages through the intake and answers as
//! smsbox does.
//!
//! Where the endpoint differs from smsbox, on purpose:
//! - the answer comes once the messages are durably committed as queued
//!   (smsbox answers after the bearerbox's ack); a store that cannot commit
//!   answers 503 `Temporal failure, try again later.` (smsbox's words for a
//!   full bearerbox queue), so the caller retries;
//! - a message the router's outgoing phase cancels is stored cancelled
//!   (C); when every message of a request was cancelled the answer is 403
//!   `Not routable. Do not try again.` (smsbox's words for an MT the
//!   bearerbox refuses), because the caller should not retry it;
//! - an address that gave wrong credentials (`Authorization failed for
//!   sendsms`, or a wrong `[http] password` elsewhere: one limit)
//!   `[http] max_auth_failures` times within `throttle::WINDOW` gets 429
//!   [`THROTTLED`] with `Retry-After`, whatever it sends, until the window
//!   has passed (smsbox lets it guess on).

use bytes::Bytes;
use http_body_util::Full;
use std::time::Instant;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tracing::{info, warn};

pub use crate::http::answer::THROTTLED;
use crate::http::answer::{retry_after, HttpResponse};
use crate::http::context::Context;
use crate::http::server::PeerAddr;
use crate::model::now_micros;
use crate::reload::Reloadable;
use crate::sendsms::{self, Incoming, Refusal, ACCEPTED};

/// smsbox answers `text/html` whatever it says.
fn answer(status: u16, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

/// Who may send, and what a request that names no sender gets.
pub struct Sendsms {
    /// Whose `[[sendsms_users]]` may send (read per request: a reload
    /// changes them).
    pub settings: Reloadable,
    /// `[kannel] global_sender`, as smsbox's `global-sender`.
    pub global_sender: Option<String>,
}

impl Sendsms {
    /// Answers one sendsms request: its head and (for a POST) its body.
    pub async fn handle(
        &self,
        ctx: &Context,
        head: &hyper::http::request::Parts,
        body: &[u8],
    ) -> HttpResponse {
        let post = head.method == hyper::Method::POST;
        // Only a POST's headers are read (its content type, X-Kannel-*).
        let headers: Vec<(&str, &[u8])> = if post {
            head.headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()))
                .collect()
        } else {
            Vec::new()
        };
        let incoming = Incoming {
            post,
            query: head.uri.query().unwrap_or_default().as_bytes(),
            headers: &headers,
            body,
            client_ip: head.extensions.get::<PeerAddr>().map(|peer| peer.0.ip()),
        };
        let metrics = ctx.intake.metrics();
        if let Err(wait) = ctx.throttle.check(incoming.client_ip, Instant::now()) {
            warn!(ip = ?incoming.client_ip, "sendsms: refused, too many failed authorizations");
            metrics.http.auth_failure("sendsms", true);
            let mut response = answer(429, THROTTLED);
            retry_after(&mut response, wait);
            return response;
        }
        let sent = self.send(ctx, &incoming).await;
        if let Err(Refusal::Unauthorized) = sent {
            ctx.throttle.failed(incoming.client_ip, Instant::now());
            metrics.http.auth_failure("sendsms", false);
        }
        match sent {
            Ok(()) => answer(202, ACCEPTED),
            Err(refusal) => answer(refusal.status(), refusal.to_string()),
        }
    }

    async fn send(&self, ctx: &Context, incoming: &Incoming<'_>) -> Result<(), Refusal> {
        let defaults = sendsms::Defaults {
            global_sender: self.global_sender.as_deref(),
        };
        let now = now_micros() / 1_000_000;
        let settings = self.settings.load();
        let request = sendsms::parse(&settings.sendsms_users, defaults, incoming, now)?;
        let store = ctx.store();
        let messages = request.messages(|| store.allocate_id());
        let queued = ctx
            .intake
            .send_counting_queued(messages)
            .await
            .map_err(|e| {
                warn!(error = %e, "sendsms: could not store the messages");
                if e.is_transient() {
                    Refusal::StorageUnavailable
                } else {
                    Refusal::Storage
                }
            })?;
        info!(
            user = %request.username,
            backend = %request.backend,
            receivers = request.receivers.len(),
            parts = request.parts.len(),
            queued,
            "sendsms stored"
        );
        if queued == 0 {
            return Err(Refusal::AllCancelled);
        }
        Ok(())
    }
}
