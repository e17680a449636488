//! `/router/receive?backend=&sender=&message=[&echo=]`: a message from an
//! HTTP backend. It goes through the same router as a bearerbox MO, is
//! stored with its replies in one durable commit, and only then answered
//! and its queued replies offered for sending: a relay that got a 200 can
//! forget the message.

use hyper::StatusCode;
use serde::Serialize;
use tracing::info;

use crate::http::answer::{self, ApiError, FieldErrors, HttpResponse, MessageJson};
use crate::http::context::Context;
use crate::http::request::Params;
use crate::model::{normalize_identity, Connection, MAX_BACKEND_CHARS, MAX_SENDER_CHARS};

/// A valid receive request.
#[derive(Debug)]
struct Receive<'a> {
    backend: &'a str,
    sender: &'a str,
    text: &'a str,
    /// Answer with the JSON even in silent mode.
    echo: bool,
}

/// `name`, trimmed, present and at most `max` characters; otherwise the
/// problem is noted in `bad`.
pub fn required<'a>(
    params: &'a Params,
    name: &'static str,
    max: usize,
    bad: &mut FieldErrors,
) -> Option<&'a str> {
    let value = params.get(name).map(str::trim).unwrap_or_default();
    if value.is_empty() {
        bad.insert(name, "required".to_owned());
        None
    } else if value.chars().count() > max {
        bad.insert(name, format!("at most {max} characters"));
        None
    } else {
        Some(value)
    }
}

/// Django's `BooleanField`: absent, empty, `false`, `0`, `no` and `off`
/// are false.
fn truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty()
            || ["false", "0", "no", "off"]
                .iter()
                .any(|f| v.eq_ignore_ascii_case(f)))
    })
}

fn parse(params: &Params) -> Result<Receive<'_>, ApiError> {
    let mut bad = FieldErrors::new();
    let backend = required(params, "backend", MAX_BACKEND_CHARS, &mut bad);
    let sender = required(params, "sender", MAX_SENDER_CHARS, &mut bad);
    if sender.is_some_and(|s| normalize_identity(s).is_empty()) {
        bad.insert("sender", "has no letters or digits".to_owned());
    }
    // The text is kept exactly as sent, spaces and all.
    let text = params.get("message").filter(|t| !t.trim().is_empty());
    if text.is_none() {
        bad.insert("message", "required".to_owned());
    }
    match (backend, sender, text) {
        (Some(backend), Some(sender), Some(text)) if bad.is_empty() => Ok(Receive {
            backend,
            sender,
            text,
            echo: truthy(params.get("echo")),
        }),
        _ => Err(ApiError::Invalid(bad)),
    }
}

#[derive(Serialize)]
struct Answer<'a> {
    message: MessageJson<'a>,
    responses: Vec<MessageJson<'a>>,
    status: &'static str,
}

/// Routes, stores and answers one received message.
pub async fn handle(ctx: &Context, params: &Params) -> Result<HttpResponse, ApiError> {
    let request = parse(params)?;
    let connection = Connection::new(request.backend, request.sender);
    let routed = ctx
        .intake
        .receive(connection, request.text.to_owned())
        .await?;
    info!(
        message_id = routed.incoming.id,
        backend = request.backend,
        replies = routed.queued().count(),
        "HTTP message stored"
    );
    if ctx.silent && !request.echo {
        return Ok(answer::empty());
    }
    let body = Answer {
        message: MessageJson::from(&routed.incoming),
        responses: routed.outgoing.iter().map(MessageJson::from).collect(),
        status: "Message handled.",
    };
    Ok(answer::json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::from_pairs(form_urlencoded::parse(query.as_bytes()).into_owned())
    }

    fn fields(query: &str) -> Vec<(&'static str, String)> {
        match parse(&params(query)) {
            Err(ApiError::Invalid(bad)) => bad.into_iter().collect(),
            other => panic!("{query}: expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(
            fields(""),
            [
                ("backend", "required".to_owned()),
                ("message", "required".to_owned()),
                ("sender", "required".to_owned()),
            ]
        );
        let long = "b".repeat(33);
        assert_eq!(
            fields(&format!("backend={long}&sender=%2B-&message=+")),
            [
                ("backend", "at most 32 characters".to_owned()),
                ("message", "required".to_owned()),
                ("sender", "has no letters or digits".to_owned()),
            ]
        );
        assert_eq!(
            fields("backend=b&sender=123456789012345678901&message=x"),
            [("sender", "at most 20 characters".to_owned())]
        );
    }

    #[test]
    fn a_valid_request_keeps_the_text_as_sent() {
        let p = params("backend=%C3%A9%C3%A9&sender=%2B256+77&message=+hi++there&echo=1");
        let r = parse(&p).unwrap();
        assert_eq!(
            (r.backend, r.sender, r.text, r.echo),
            ("éé", "+256 77", " hi  there", true)
        );
        for (echo, expected) in [("", false), ("0", false), ("False", false), ("on", true)] {
            let p = params(&format!("backend=b&sender=1&message=x&echo={echo}"));
            assert_eq!(parse(&p).unwrap().echo, expected, "echo={echo}");
        }
    }
}
