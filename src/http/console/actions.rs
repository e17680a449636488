//! The console's two actions, each the same path as its API counterpart:
//!
//! - a test message goes through the router as an MO of backend
//!   `console`, and is stored with its replies in one durable commit
//!   before the replies are offered to their transport (as
//!   `/router/receive`);
//! - a reply is an outgoing message to a number rapidbox knows, through
//!   that number's backend: it passes the outgoing phase, is committed,
//!   then offered to the backend's transport (as `/cgi-bin/sendsms`).
//!
//! Bad input re-shows the log page with the problem next to its field
//! (400); success redirects to the log (303), so reloading does not send
//! again.

use hyper::{Response, StatusCode};
use tracing::info;

use super::pages::{Forms, BASE, DEFAULT_SENDER};
use super::session::Session;
use super::{log_page, redirect, Failure, ResponseBody};
use crate::http::answer::FieldErrors;
use crate::http::context::Context;
use crate::http::request::Params;
use crate::model::{normalize_identity, Connection, Direction, Message, MAX_SENDER_CHARS};

/// The backend of console test messages (httprouter's).
pub const CONSOLE_BACKEND: &str = "console";

/// The longest text the forms take: ten concatenated SMS of 160
/// characters, well past what anyone types as a test.
pub const MAX_TEXT_CHARS: usize = 1600;

/// The text field `name`: present, not only spaces, at most
/// [`MAX_TEXT_CHARS`]; kept exactly as typed.
fn text<'a>(params: &'a Params, name: &'static str, bad: &mut FieldErrors) -> &'a str {
    let value = params.get(name).unwrap_or_default();
    if value.trim().is_empty() {
        bad.insert(name, "required".to_owned());
    } else if value.chars().count() > MAX_TEXT_CHARS {
        bad.insert(name, format!("at most {MAX_TEXT_CHARS} characters"));
    }
    value
}

/// The log page again, 400, with the form as it was sent and what is
/// wrong with it.
async fn refused(
    ctx: &Context,
    session: &Session,
    forms: Forms<'_>,
) -> Result<Response<ResponseBody>, Failure> {
    log_page(
        ctx,
        session,
        &Params::default(),
        forms,
        StatusCode::BAD_REQUEST,
    )
    .await
}

/// `POST /router/console/send`: `sender` (default 12065551212), `text`.
pub async fn send(
    ctx: &Context,
    session: &Session,
    params: &Params,
) -> Result<Response<ResponseBody>, Failure> {
    let mut bad = FieldErrors::new();
    let sender = params
        .get("sender")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SENDER);
    if sender.chars().count() > MAX_SENDER_CHARS {
        bad.insert("sender", format!("at most {MAX_SENDER_CHARS} characters"));
    } else if normalize_identity(sender).is_empty() {
        bad.insert("sender", "has no letters or digits".to_owned());
    }
    let body = text(params, "text", &mut bad);
    if !bad.is_empty() {
        let forms = Forms {
            errors: bad,
            sender,
            text: body,
            ..Forms::default()
        };
        return refused(ctx, session, forms).await;
    }
    let connection = Connection::new(CONSOLE_BACKEND, sender);
    let routed = ctx.intake.receive(connection, body.to_owned()).await?;
    info!(
        message_id = routed.incoming.id,
        user = %session.username,
        replies = routed.queued().count(),
        "console test message stored"
    );
    Ok(redirect(&format!("{BASE}?notice=sent")))
}

/// `POST /router/console/reply`: `recipient`, `reply_text`, and
/// optionally `backend` (the detail page's reply names it).
pub async fn reply(
    ctx: &Context,
    session: &Session,
    params: &Params,
) -> Result<Response<ResponseBody>, Failure> {
    let mut bad = FieldErrors::new();
    let recipient = params.get("recipient").map(str::trim).unwrap_or_default();
    let body = text(params, "reply_text", &mut bad);
    let backend = params
        .get("backend")
        .map(str::trim)
        .filter(|b| !b.is_empty());
    let identity = normalize_identity(recipient);
    let store = ctx.store();
    let mut connection = None;
    if recipient.is_empty() {
        bad.insert("recipient", "required".to_owned());
    } else {
        let mut known = store.connections_with_identity(&identity).await?;
        if let Some(backend) = backend {
            known.retain(|c| c.connection.backend == backend);
        }
        // The backend the number was first seen on last: the newest.
        known.sort_by_key(|c| c.first_seen);
        match known.pop() {
            None => {
                bad.insert("recipient", "This number isn't in the system".to_owned());
            }
            Some(c) => connection = Some(c.connection),
        }
    }
    let Some(connection) = connection.filter(|_| bad.is_empty()) else {
        let forms = Forms {
            errors: bad,
            recipient,
            reply_text: body,
            ..Forms::default()
        };
        return refused(ctx, session, forms).await;
    };
    let msg = Message::new(store.allocate_id(), connection, Direction::Outgoing, body);
    let sent = ctx.intake.send(vec![msg]).await?;
    for msg in &sent {
        info!(
            message_id = msg.id,
            user = %session.username,
            backend = %msg.connection.backend,
            status = %msg.status.code(),
            "console reply stored"
        );
    }
    Ok(redirect(&format!("{BASE}?notice=replied")))
}
