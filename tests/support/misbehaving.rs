//! HTTP peers that misbehave, for the webhook, push, service and dlr-url
//! tests: each reads a request head and then does one wrong thing. Raw TCP
//! rather than hyper, so that the wrong thing can be as wrong as needed
//! (bytes that are not HTTP, a body that never ends). Counts the requests
//! it got; stops accepting when dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the peer does once it has a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Nothing listens: the port was free and stays closed.
    Down,
    /// Reads the request and never answers.
    Slow,
    /// 200 with a `Content-Length` of 10 GiB, sent as fast as the client
    /// reads, until it goes away.
    Gigabytes,
    /// 302 to the very URL requested, every time.
    RedirectLoop,
    /// Bytes that are not HTTP, then close.
    Garbage,
}

impl Misbehaviour {
    pub const ALL: [Misbehaviour; 5] = [
        Misbehaviour::Down,
        Misbehaviour::Slow,
        Misbehaviour::Gigabytes,
        Misbehaviour::RedirectLoop,
        Misbehaviour::Garbage,
    ];
}

/// A misbehaving peer on 127.0.0.1.
pub struct Misbehaving {
    port: u16,
    requests: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

impl Misbehaving {
    pub async fn start(how: Misbehaviour) -> Misbehaving {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("the misbehaving peer cannot bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no address: {e}"))
            .port();
        let requests = Arc::new(AtomicUsize::new(0));
        if how == Misbehaviour::Down {
            // Closing the listener leaves the port refusing connections.
            drop(listener);
            return Misbehaving {
                port,
                requests,
                accept: None,
            };
        }
        let counted = requests.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counted = counted.clone();
                tokio::spawn(async move {
                    let _ = misbehave(stream, how, &counted).await;
                });
            }
        });
        Misbehaving {
            port,
            requests,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Request heads received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Misbehaving {
    fn drop(&mut self) {
        if let Some(accept) = &self.accept {
            accept.abort();
        }
    }
}

/// Reads up to the end of the head; returns the request target.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.split(' ').nth(1).unwrap_or("/").to_owned())
}

async fn misbehave(
    mut stream: TcpStream,
    how: Misbehaviour,
    requests: &AtomicUsize,
) -> std::io::Result<()> {
    loop {
        let target = read_head(&mut stream).await?;
        requests.fetch_add(1, Ordering::SeqCst);
        match how {
            Misbehaviour::Down => return Ok(()),
            Misbehaviour::Slow => {
                // Hold the connection open, answering nothing.
                let mut sink = [0u8; 1024];
                while stream.read(&mut sink).await? > 0 {}
                return Ok(());
            }
            Misbehaviour::Gigabytes => {
                stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
                          Content-Length: 10737418240\r\n\r\n",
                    )
                    .await?;
                let chunk = vec![b'x'; 64 * 1024];
                loop {
                    stream.write_all(&chunk).await?;
                }
            }
            Misbehaviour::RedirectLoop => {
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n"
                );
                stream.write_all(answer.as_bytes()).await?;
                // Keep-alive: the next request may come on this connection.
            }
            Misbehaviour::Garbage => {
                stream
                    .write_all(b"\x00\xffSMTP READY\r\n\x1b[31m\r\n\r\n")
                    .await?;
                return Ok(());
            }
        }
    }
}
