//! `/router/outbox[?backend=]`: the queued (Q) messages of pull backends,
//! which a relay fetches, sends, and reports with `/router/delivered`.
//!
//! The backend is matched ignoring case, as httprouter's `iexact`. Only
//! backends the [`Dispatch`](crate::dispatch::Dispatch) calls pull are listed:
//! rapidbox sends the others itself, and a relay must not send them too.

use hyper::StatusCode;
use serde::Serialize;

use crate::http::answer::{self, ApiError, FieldErrors, HttpResponse, MessageJson};
use crate::http::context::Context;
use crate::http::request::Params;
use crate::model::{Message, Status, MAX_BACKEND_CHARS};
use crate::store::Store;

/// The most messages one answer lists, oldest first. A relay sends them,
/// reports them delivered, and asks again for the next ones; the bound
/// keeps one answer's size and the time spent building it small.
pub const MAX_LISTED: usize = 1000;

#[derive(Serialize)]
struct Answer<'a> {
    outbox: Vec<MessageJson<'a>>,
    status: &'static str,
}

pub async fn handle(ctx: &Context, params: &Params) -> Result<HttpResponse, ApiError> {
    let wanted = match params.get("backend").map(str::trim) {
        None | Some("") => None,
        Some(b) if b.chars().count() > MAX_BACKEND_CHARS => {
            let mut bad = FieldErrors::new();
            bad.insert("backend", format!("at most {MAX_BACKEND_CHARS} characters"));
            return Err(ApiError::Invalid(bad));
        }
        Some(b) => Some(b.to_lowercase()),
    };
    let store = ctx.store().clone();
    let dispatch = ctx.dispatch().clone();
    let pull = move |backend: &str| {
        dispatch.is_pull(backend)
            && wanted
                .as_deref()
                .is_none_or(|w| backend.to_lowercase() == w)
    };
    // A scan of up to MAX_LISTED messages per backend may touch cold pages.
    let messages = store
        .long_read(move |store| async move { queued(&store, pull).await })
        .await
        .map_err(|_| ApiError::Internal("the outbox scan failed"))??;
    let body = Answer {
        outbox: messages.iter().map(MessageJson::from).collect(),
        status: "Outbox follows.",
    };
    Ok(answer::json(StatusCode::OK, &body))
}

/// The oldest [`MAX_LISTED`] Q messages of the backends `include` accepts.
/// Holds at most twice that many messages at a time, however many
/// backends there are.
async fn queued(store: &Store, include: impl Fn(&str) -> bool) -> Result<Vec<Message>, ApiError> {
    let mut found = Vec::new();
    for backend in store.backends_with_status(Status::Queued).await? {
        if include(&backend) {
            found.extend(
                store
                    .messages_by_status(Status::Queued, Some(&backend), None, MAX_LISTED)
                    .await?,
            );
            found.sort_by_key(|m| m.id);
            found.truncate(MAX_LISTED);
        }
    }
    Ok(found)
}
