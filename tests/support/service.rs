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
}

/// One request the service received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// A local HTTP/1.1 service that records every request and answers with
/// the current [`Answer`]. Stops accepting when dropped.
pub struct Service {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Answer>>,
    accept: JoinHandle<()>,
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
        let answer = Arc::new(Mutex::new(answer));
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
        *self.answer.lock().unwrap_or_else(|e| e.into_inner()) = answer;
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
    answer: Arc<Mutex<Answer>>,
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
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => Bytes::from(format!("(unreadable body: {e})")),
    };
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
        method,
        target,
        content_type,
        body,
    });
    let answer = answer.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (status, content_type, body) = match answer {
        Answer::Json(body) => (200, "application/json", body),
        Answer::Text(body) => (200, "text/plain; charset=utf-8", body),
        Answer::Status(status, body) => (status, "text/plain", body),
        Answer::Never => std::future::pending().await,
    };
    let response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from_static(body.as_bytes())));
    Ok(response.unwrap_or_else(|e| panic!("cannot build the response: {e}")))
}
