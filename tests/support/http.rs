//! Just enough HTTP for Kannel tests: a GET or any request with headers
//! and a body (smsbox's sendsms interface) and a stub server (sms-service `get-url`, `dlr-url` callbacks, wapbox
//! fetches). HTTP/1.0 with `Connection: close` keeps both sides trivial.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest a request or response may take, end to end.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request head the stub reads; Kannel's requests are a few
/// hundred bytes.
const MAX_REQUEST: usize = 64 * 1024;

/// A response: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code from the status line.
    pub status: u16,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

/// `GET path_and_query` from 127.0.0.1:`port` over HTTP/1.0. Panics on any
/// failure: in a test, an unreachable server is a failed test.
pub async fn get(port: u16, path_and_query: &str) -> Response {
    request(port, "GET", path_and_query, &[], None).await
}

/// `GET path_and_query` like [`get`], but `None` when there is no answer
/// (nothing listening, a timeout, a garbled answer): for polling a daemon
/// that may be starting.
pub async fn try_get(port: u16, path_and_query: &str) -> Option<Response> {
    try_request(port, "GET", path_and_query, &[], None)
        .await
        .ok()
}

/// `method path_and_query` to 127.0.0.1:`port` over HTTP/1.0 with
/// `headers` and, when given, `body` (and its `Content-Length`). Panics
/// on any failure, as [`get`].
pub async fn request(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    try_request(port, method, path_and_query, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`request`], with what went wrong as an error instead of a panic.
pub async fn try_request(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let what = format!("{method} 127.0.0.1:{port}{path_and_query}");
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut head = format!(
            "{method} {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body.unwrap_or_default());
        stream.write_all(&request).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match tokio::time::timeout(HTTP_TIMEOUT, exchange).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => return Err(format!("{what} failed: {e}")),
        Err(_) => return Err(format!("{what} took over {HTTP_TIMEOUT:?}")),
    };
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(format!("{what}: no end of headers in {text:?}"));
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{what}: bad status line in {head:?}"))?;
    Ok(Response {
        status,
        body: body.to_owned(),
    })
}

/// A stub HTTP server on 127.0.0.1 that answers every request with the
/// same bytes and remembers each request line. Stopped when dropped.
#[derive(Debug)]
pub struct StubServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl StubServer {
    /// Starts the server on a free port. `response` is the whole response,
    /// status line, headers and body, e.g.
    /// `b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello"`.
    pub async fn start(response: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("stub HTTP server cannot bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("stub HTTP server has no address: {e}"))
            .port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(HTTP_TIMEOUT, answer(stream, response, seen)).await;
                });
            }
        });
        StubServer {
            port,
            requests,
            task,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request lines (`GET /path HTTP/1.1`) received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head, records its first line and sends `response`.
async fn answer(mut stream: TcpStream, response: &[u8], seen: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    // A request body (none of Kannel's GETs has one) is left unread.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or("").to_owned();
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    let _ = stream.write_all(response).await;
    let _ = stream.shutdown().await;
}

/// The value of `series` (its name with labels, exactly as exposed) in a
/// Prometheus text scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes `/metrics` on 127.0.0.1:`port` until `series` is at least
/// `want`, and returns that scrape; panics with the last scrape after
/// `timeout`.
pub async fn wait_for_sample(
    port: u16,
    series: &str,
    want: f64,
    timeout: std::time::Duration,
) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let scrape = get(port, "/metrics").await;
        assert_eq!(scrape.status, 200, "/metrics: {}", scrape.body);
        if sample(&scrape.body, series).is_some_and(|v| v >= want) {
            return scrape.body;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{series} did not reach {want} within {timeout:?}; the last scrape:\n{}",
                scrape.body
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
