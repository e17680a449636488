//! A local HTTP/1.1 service for tests: records every request and answers
//! as the test says (JSON, text, a status, or never), switchable while it
//! runs. Used as a webhook target and as a push relay.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the service answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with `Content-Type: application/json`.
    Json(&'static str),
    /// 200 with `Content-Type: text/plain`.
    Text(&'static str),
    /// This status, with a plain-text body.
    Status(u16, &'static str),
    /// Nothing, ever: the request is read and left hanging.
    Never,
    /// This status, Content-Type (none when empty), extra headers and
    /// body, as they are (an sms-service's answer).
    Raw {
        status: u16,
        content_type: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static [u8],
    },
    /// 200 with `Content-Type: text/plain`, after this pause (a slow
    /// application that does answer).
    After(std::time::Duration, &'static str),
}

/// One request the service received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    pub content_type: Option<String>,
    /// Every header, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// A local HTTP/1.1 service that records every request and answers with
/// the current [`Answer`]. Stops accepting when dropped.
pub struct Service {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Answers>>,
    accept: JoinHandle<()>,
}

/// The answer for requests whose path starts with a route's prefix (the
/// first that matches), else the default.
#[derive(Debug, Clone)]
struct Answers {
    default: Answer,
    routes: Vec<(String, Answer)>,
}

impl Service {
    pub async fn start(answer: Answer) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("the webhook service cannot bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the webhook service has no address: {e}"))
            .port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(Answers {
            default: answer,
            routes: Vec::new(),
        }));
        let (s, a) = (seen.clone(), answer.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (s, a) = (s.clone(), a.clone());
                let service = service_fn(move |request| respond(request, s.clone(), a.clone()));
                tokio::spawn(async move {
                    // A client that gives up (the timeout test) ends the
                    // connection; that is no concern of the service.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Service {
            port,
            seen,
            answer,
            accept,
        }
    }

    /// Changes what the service answers from now on.
    pub fn answer(&self, answer: Answer) {
        self.answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .default = answer;
    }

    /// Answers requests whose path starts with `prefix` with `answer`.
    #[allow(dead_code)]
    pub fn route(&self, prefix: &str, answer: Answer) {
        let mut answers = self.answer.lock().unwrap_or_else(|e| e.into_inner());
        answers.routes.push((prefix.to_owned(), answer));
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn respond(
    request: Request<Body>,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Answers>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().to_string();
    let target = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_default();
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => Bytes::from(format!("(unreadable body: {e})")),
    };
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
        method,
        target: target.clone(),
        content_type,
        headers,
        body,
    });
    let answer = {
        let answers = answer.lock().unwrap_or_else(|e| e.into_inner());
        let path = target.split('?').next().unwrap_or("");
        answers
            .routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(answers.default.clone(), |(_, answer)| answer.clone())
    };
    let (status, content_type, extra, body): (u16, &str, &[(&str, &str)], &[u8]) = match answer {
        Answer::Json(body) => (200, "application/json", &[], body.as_bytes()),
        Answer::Text(body) => (200, "text/plain; charset=utf-8", &[], body.as_bytes()),
        Answer::Status(status, body) => (status, "text/plain", &[], body.as_bytes()),
        Answer::Raw {
            status,
            content_type,
            headers,
            body,
        } => (status, content_type, headers, body),
        Answer::Never => std::future::pending().await,
        Answer::After(pause, body) => {
            tokio::time::sleep(pause).await;
            (200, "text/plain; charset=utf-8", &[], body.as_bytes())
        }
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if !content_type.is_empty() {
        response = response.header(hyper::header::CONTENT_TYPE, content_type);
    }
    for (name, value) in extra {
        response = response.header(*name, *value);
    }
    let response = response.body(Full::new(Bytes::from_static(body)));
    Ok(response.unwrap_or_else(|e| panic!("cannot build the response: {e}")))
}
