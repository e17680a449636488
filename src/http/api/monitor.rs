//! Monitoring: `/router/status`, httprouter's check for messages stuck in
//! the queue, and `/router/stats`, the numbers behind it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::header::ACCEPT;
use hyper::{HeaderMap, StatusCode};
use maud::{html, Markup};
use serde::Serialize;

use crate::http::answer::{self, iso8601, ApiError, HttpResponse};
use crate::http::context::Context;
use crate::http::page;
use crate::http::request::Params;
use crate::model::{now_micros, Micros, Status};
use crate::store::{Store, MAX_SCAN};

/// A message queued (Q) for longer than this is stuck (httprouter's
/// threshold).
pub const STUCK_AFTER: Duration = Duration::from_secs(15 * 60);

/// The most queued messages one status check reads. A backlog larger than
/// this is already an alarm; the answer then says "at least".
pub const MAX_CHECKED: usize = 100_000;

#[derive(Debug, Serialize)]
struct Pending {
    /// "OK" when no message is stuck, else "ERROR".
    status: &'static str,
    /// Messages queued for more than `minutes`.
    pending: u64,
    minutes: u64,
    /// False when the check stopped at [`MAX_CHECKED`]: `pending` is then
    /// a lower bound.
    complete: bool,
}

/// `/router/status`: plain text by default, in httprouter's words
/// (`STATUS: OK` / `PENDING: 0`) so existing checks keep working; JSON
/// with `?format=json` or `Accept: application/json`; an HTML page for
/// people when the client asks for `text/html` (a browser). Always 200: the
/// verdict is in the body, as in httprouter.
pub async fn status(
    ctx: &Context,
    params: &Params,
    headers: &HeaderMap,
) -> Result<HttpResponse, ApiError> {
    let store = ctx.store().clone();
    let cutoff = now_micros() - STUCK_AFTER.as_micros() as Micros;
    let (pending, complete) = store
        .long_read(move |store| async move { stuck(&store, cutoff).await })
        .await
        .map_err(|_| ApiError::Internal("the status scan failed"))??;
    let report = Pending {
        status: if pending == 0 { "OK" } else { "ERROR" },
        pending,
        minutes: STUCK_AFTER.as_secs() / 60,
        complete,
    };
    if wants_json(params, headers) {
        return Ok(answer::json(StatusCode::OK, &report));
    }
    if params.get("format").is_none() && accepts(headers, "text/html") {
        let page = status_page(pending == 0, pending, report.minutes, complete);
        return Ok(answer::html(StatusCode::OK, page::render(page)));
    }
    let at_least = if complete { "" } else { "at least " };
    Ok(answer::text(
        StatusCode::OK,
        format!(
            "STATUS: {}\nPENDING: {at_least}{} messages queued for more than {} minutes\n",
            report.status, report.pending, report.minutes
        ),
    ))
}

fn wants_json(params: &Params, headers: &HeaderMap) -> bool {
    if let Some(format) = params.get("format") {
        return format.eq_ignore_ascii_case("json");
    }
    accepts(headers, "application/json")
}

/// rapidbox's status for people: `/router/status` in a browser.
fn status_page(ok: bool, pending: u64, minutes: u64, complete: bool) -> Markup {
    let at_least = if complete { "" } else { "at least " };
    page::layout(
        "Status",
        html! {},
        html! {},
        html! {
            h1 { "Status: " span #verdict class=(if ok { "ok" } else { "error" }) { (if ok { "OK" } else { "ERROR" }) } }
            p #pending { (at_least) (pending) " messages queued for more than " (minutes) " minutes." }
            p.hint { "Monitors: the same check as text (the default) or JSON (" code { "?format=json" } ")." }
        },
    )
}

/// Whether an `Accept` header names `kind` (ignoring `q` values).
fn accepts(headers: &HeaderMap, kind: &str) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(kind))
        })
}

/// How many Q messages are dated before `cutoff`, and whether every Q
/// message was looked at.
async fn stuck(store: &Store, cutoff: Micros) -> Result<(u64, bool), ApiError> {
    let mut count = 0;
    let mut checked = 0;
    let mut after = None;
    while checked < MAX_CHECKED {
        let page = store
            .messages_by_status(Status::Queued, None, after, MAX_SCAN)
            .await?;
        checked += page.len();
        count += page.iter().filter(|m| m.date < cutoff).count() as u64;
        match page.last() {
            Some(last) if page.len() == MAX_SCAN => after = Some(last.id),
            _ => return Ok((count, true)),
        }
    }
    Ok((count, false))
}

#[derive(Serialize)]
struct Stats {
    /// Messages per direction code (`I`, `O`) and status code.
    messages: BTreeMap<char, BTreeMap<char, u64>>,
    total: u64,
    link: Link,
    /// Messages waiting in memory, per queue.
    queues: BTreeMap<String, usize>,
    store: StoreNumbers,
}

#[derive(Serialize)]
struct Link {
    enabled: bool,
    connected: bool,
    /// When the link last connected (if connected) or disconnected.
    since: Option<String>,
    in_flight: usize,
    /// No MT goes out: the store cannot record the answers to those sent.
    mts_held: bool,
    received: u64,
    answered: u64,
    connects: u64,
}

#[derive(Serialize)]
struct StoreNumbers {
    transactions: u64,
    units: u64,
    refused: u64,
    failed_batches: u64,
    largest_batch: u64,
    /// Retention's progress: messages purged since the start.
    purged: u64,
}

/// `/router/stats`.
pub async fn stats(ctx: &Context) -> Result<HttpResponse, ApiError> {
    let mut messages: BTreeMap<char, BTreeMap<char, u64>> = BTreeMap::new();
    let mut total = 0;
    for (direction, status, n) in ctx.store().counts().await? {
        messages
            .entry(direction.code())
            .or_default()
            .insert(status.code(), n);
        total += n;
    }
    let link = &ctx.link_status;
    let since = link.since.load(Ordering::Relaxed);
    let queues: BTreeMap<String, usize> = ctx
        .dispatch()
        .queue_depths()
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .collect();
    let s = ctx.store().stats();
    let body = Stats {
        messages,
        total,
        link: Link {
            enabled: ctx.kannel_enabled,
            connected: link.connected.load(Ordering::Relaxed),
            since: (since != 0).then(|| iso8601(since)),
            in_flight: link.in_flight.load(Ordering::Relaxed),
            mts_held: link.mts_held.load(Ordering::Relaxed),
            received: link.received.load(Ordering::Relaxed),
            answered: link.answered.load(Ordering::Relaxed),
            connects: link.connects.load(Ordering::Relaxed),
        },
        queues,
        store: StoreNumbers {
            transactions: s.transactions,
            units: s.units,
            refused: s.refused,
            failed_batches: s.failed_batches,
            largest_batch: s.largest_batch,
            purged: s.purged,
        },
    };
    Ok(answer::json(StatusCode::OK, &body))
}
