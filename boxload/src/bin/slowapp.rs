//! `slowapp`: an HTTP application that takes its time, for benchmarks of
//! Kannel `get-url` services (bench/services.sh).
//!
//! It answers every request after `--delay-ms`, as an application that
//! looks something up would, with `text/plain` "You said: QUERY", QUERY
//! being the request's query string as sent (so the MO's number, which
//! boxload matches replies by, comes back). Thousands of requests wait at
//! once without a thread each: one tokio task per connection, HTTP/1.1
//! keep-alive, requests on a connection answered in order.
//!
//! Bounds: a request head is at most [`MAX_HEAD`] bytes and a body at most
//! [`MAX_BODY`] (read and dropped); a connection that breaks them, or
//! speaks something else than HTTP/1.x, is closed. At most
//! `--max-connections` connections are served at once; more wait in the
//! kernel's backlog.
//!
//!     slowapp --listen 127.0.0.1:8080 --delay-ms 200

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Most bytes of one request's line and headers.
const MAX_HEAD: usize = 16 * 1024;
/// Most bytes of one request's body.
const MAX_BODY: u64 = 1024 * 1024;

/// An HTTP application that answers every request after a delay.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Where to listen, IP:PORT.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How long every answer takes, in milliseconds.
    #[arg(long, default_value_t = 200)]
    delay_ms: u64,
    /// Connections served at once, at most.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    let delay = Duration::from_millis(cli.delay_ms);
    let slots = Arc::new(Semaphore::new(cli.max_connections.max(1)));
    eprintln!(
        "slowapp: answering on {} after {} ms",
        cli.listen, cli.delay_ms
    );
    loop {
        let slot = slots.clone().acquire_owned().await?;
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: wait a little rather than spin.
                eprintln!("slowapp: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = serve(stream, delay).await;
            drop(slot);
        });
    }
}

/// Why a connection is closed.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("request head over {MAX_HEAD} bytes")]
    HeadTooLong,
    #[error("not an HTTP/1.x request")]
    NotHttp,
    #[error("bad Content-Length")]
    BadLength,
}

/// Answers the requests of one connection until it closes.
async fn serve(stream: TcpStream, delay: Duration) -> Result<(), ConnError> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        // The request line; a clean end between requests is the end.
        line.clear();
        let n = (&mut read)
            .take(MAX_HEAD as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let request_line = String::from_utf8_lossy(&line).trim_end().to_owned();
        let mut parts = request_line.split(' ');
        let (Some(_method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(ConnError::NotHttp);
        };
        if !version.starts_with("HTTP/1.") {
            return Err(ConnError::NotHttp);
        }
        let mut keep_alive = version == "HTTP/1.1";
        let query = target.split_once('?').map_or("", |(_, q)| q).to_owned();
        // The headers: Content-Length and Connection matter.
        let mut head = line.len();
        let mut length = 0u64;
        loop {
            line.clear();
            let n = (&mut read)
                .take((MAX_HEAD - head.min(MAX_HEAD)) as u64)
                .read_until(b'\n', &mut line)
                .await?;
            head += n;
            if n == 0 || !line.ends_with(b"\n") {
                return Err(ConnError::HeadTooLong);
            }
            let header = String::from_utf8_lossy(&line);
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                return Err(ConnError::NotHttp);
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().map_err(|_| ConnError::BadLength)?;
                if length > MAX_BODY {
                    return Err(ConnError::BadLength);
                }
            } else if name.eq_ignore_ascii_case("connection") {
                if value.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if value.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
        let skipped =
            tokio::io::copy(&mut (&mut read).take(length), &mut tokio::io::sink()).await?;
        if skipped != length {
            return Ok(());
        }
        tokio::time::sleep(delay).await;
        let body = format!("You said: {query}");
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{}",
            body.len(),
            if keep_alive {
                ""
            } else {
                "Connection: close\r\n"
            },
            body
        );
        write.write_all(response.as_bytes()).await?;
        if !keep_alive {
            return Ok(());
        }
    }
}
