//! `webhook`: hands each message to an HTTP service and sends back the
//! replies it answers with.
//!
//! The message is POSTed as JSON (`id`, `backend`, `sender`, `identity`,
//! `receiver`, `text`, `smsc_id`, `kannel_uuid`, `date`). A 2xx answer
//! handles the message; its replies are the strings in a JSON
//! `{"responses": [...]}` (or `{"reply": "..."}`, or a bare JSON array),
//! each a string or an object with a `text`; a body that is not JSON is one
//! plain-text reply, an empty body none. Anything else — a timeout, a
//! refused connection, a non-2xx status, JSON of another shape — is a
//! failure: it is recorded on the message. With `on_failure = "reply"` the
//! sender gets `failure_reply` and the message counts as handled; with
//! `"none"` nothing is sent and the apps after this one get their turn.
//!
//! Like the sms-services that fetch a URL, it says it waits outside
//! rapidbox ([`Incoming::waiting_outside`]) before each call: an MO from
//! the bearerbox is stored and acknowledged if the service does not answer
//! within a few milliseconds, and answered when it does, even after a
//! restart in between.

use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use serde_json::Value;

use crate::client::{HttpClient, HttpResponse};
use crate::config::{OnFailure, WebhookConfig};
use crate::router::{App, AppError, AppFuture, Incoming};
use crate::template::{Mode, TemplateContext};

/// Most replies taken from one answer; a runaway service cannot make a
/// message fan out without bound.
const MAX_REPLIES: usize = 10;

pub struct Webhook {
    name: String,
    config: WebhookConfig,
    http: HttpClient,
}

#[derive(Serialize)]
struct Payload<'a> {
    id: u64,
    backend: &'a str,
    sender: &'a str,
    identity: &'a str,
    receiver: Option<&'a str>,
    text: &'a str,
    smsc_id: Option<&'a str>,
    kannel_uuid: Option<String>,
    date: i64,
}

impl Webhook {
    pub fn new(name: &str, config: WebhookConfig, http: HttpClient) -> Webhook {
        Webhook {
            name: name.to_owned(),
            config,
            http,
        }
    }

    async fn call(&self, msg: &Incoming) -> Result<Vec<String>, String> {
        let m = &msg.message;
        let kannel = m.kannel.as_ref();
        let payload = Payload {
            id: m.id,
            backend: &m.connection.backend,
            sender: &m.connection.address,
            identity: &m.connection.identity,
            receiver: kannel.and_then(|k| k.shortcode.as_deref()),
            text: &m.text,
            smsc_id: kannel.and_then(|k| k.smsc_id.as_deref()),
            kannel_uuid: kannel
                .and_then(|k| k.uuid)
                .map(|u| uuid::Uuid::from_bytes(u).to_string()),
            date: m.date / 1_000_000,
        };
        let body = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
        let url = self
            .config
            .url
            .render(&TemplateContext::from_incoming(m), Mode::Url);
        // The service may take its time: the MO is stored and acknowledged
        // meanwhile rather than holding the bearerbox's window.
        msg.waiting_outside();
        let response = self
            .http
            .send(
                Method::POST,
                &url,
                Some("application/json"),
                Bytes::from(body),
                self.config.timeout(),
            )
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status.is_success() {
            let excerpt = String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
                .into_owned();
            return Err(format!(
                "{url}: HTTP {}: {excerpt}",
                response.status.as_u16()
            ));
        }
        replies_of(&response).map_err(|e| format!("{url}: {e}"))
    }
}

/// The replies an answer lists.
fn replies_of(response: &HttpResponse) -> Result<Vec<String>, String> {
    let is_json = response.content_type.as_deref().is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim().ends_with("json"))
    });
    if !is_json {
        let text = String::from_utf8_lossy(&response.body).trim().to_owned();
        return Ok(if text.is_empty() {
            Vec::new()
        } else {
            vec![text]
        });
    }
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_slice(&response.body).map_err(|e| format!("bad JSON answer: {e}"))?;
    let list = match &value {
        Value::Array(items) => items.as_slice(),
        Value::Object(map) => match (map.get("responses"), map.get("reply")) {
            (Some(Value::Array(items)), _) => items.as_slice(),
            (Some(Value::Null) | None, Some(reply)) => std::slice::from_ref(reply),
            (Some(Value::Null) | None, None) => &[],
            (Some(_), _) => return Err("`responses` is not a list".into()),
        },
        _ => return Err("the JSON answer is neither an object nor a list".into()),
    };
    let mut replies = Vec::new();
    for item in list.iter().take(MAX_REPLIES) {
        let text = match item {
            Value::String(s) => s.clone(),
            Value::Object(o) => match o.get("text") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err("a response object has no `text` string".into()),
            },
            Value::Null => continue,
            _ => return Err("a response is neither a string nor an object".into()),
        };
        if !text.is_empty() {
            replies.push(text);
        }
    }
    Ok(replies)
}

impl App for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        Box::pin(async move {
            match self.call(msg).await {
                Ok(replies) => {
                    for text in replies {
                        msg.respond(text);
                    }
                    Ok(true)
                }
                Err(error) => match (self.config.on_failure, &self.config.failure_reply) {
                    // The failure reply answers the message: the failure is
                    // recorded, and no app after this one answers as well.
                    (OnFailure::Reply, Some(template)) => {
                        msg.report_failure(error);
                        let text = super::reply(template, msg);
                        msg.respond(text);
                        Ok(true)
                    }
                    // Nothing sent: recorded, and the apps after this one
                    // get their turn.
                    _ => Err(AppError::new(error)),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;

    fn answer(ct: Option<&str>, body: &'static str) -> HttpResponse {
        HttpResponse {
            status: StatusCode::OK,
            content_type: ct.map(str::to_owned),
            body: Bytes::from_static(body.as_bytes()),
            headers: Default::default(),
        }
    }

    #[test]
    fn replies_come_from_every_documented_shape() {
        let json = Some("application/json; charset=utf-8");
        assert_eq!(
            replies_of(&answer(json, r#"{"responses":["a",{"text":"b"}]}"#)).unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            replies_of(&answer(json, r#"{"reply":"one"}"#)).unwrap(),
            ["one"]
        );
        assert_eq!(
            replies_of(&answer(json, r#"["x","y"]"#)).unwrap(),
            ["x", "y"]
        );
        assert_eq!(
            replies_of(&answer(json, "{}")).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            replies_of(&answer(Some("text/plain"), " hi there \n")).unwrap(),
            ["hi there"]
        );
        assert_eq!(replies_of(&answer(None, "")).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn malformed_answers_are_errors() {
        let json = Some("application/json");
        assert!(replies_of(&answer(json, "{nope")).is_err());
        assert!(replies_of(&answer(json, r#"{"responses":"x"}"#)).is_err());
        assert!(replies_of(&answer(json, r#"{"responses":[3]}"#)).is_err());
        assert!(replies_of(&answer(json, "42")).is_err());
    }
}
