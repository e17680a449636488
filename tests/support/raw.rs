//! Raw HTTP/1.1 over TCP, for requests no well-behaved client would send
//! (bytes that are not UTF-8 in the request line, lying lengths, heads
//! that never end), and for connections from a chosen loopback address
//! (127.0.0.2, ...: Linux routes all of 127/8 to `lo`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Longest one exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Most of an answer read; the server's answers are a few KiB.
const MAX_ANSWER: usize = 1024 * 1024;

/// An answer as it came.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// The status code, 0 when the server closed without answering.
    pub status: u16,
    /// The head, status line and headers, lossily decoded.
    pub head: String,
    /// The body, lossily decoded (chunked bodies are left as they came).
    pub body: String,
}

impl RawReply {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A connection to `to` from `from` (any port).
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Sends `request` as it is on a new connection to `addr` and reads until
/// the server closes (or has sent a whole answer to a request it will not
/// read further). Panics if that takes over [`EXCHANGE_TIMEOUT`].
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        // A server that answers before reading everything (413) may reset
        // the connection under a large write: the answer still counts.
        let _ = stream.write_all(request).await;
        read_answer(&mut stream).await
    })
    .await
    .unwrap_or_else(|_| panic!("no answer within {EXCHANGE_TIMEOUT:?}"))
}

/// Reads one answer from `stream`: until the server closes, or its
/// `Content-Length` is in.
pub async fn read_answer(stream: &mut TcpStream) -> RawReply {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(reply) = whole(&got) {
            return reply;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) if got.len() + n > MAX_ANSWER => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    RawReply {
        status: status_of(head),
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// The answer in `got`, once its head and whole `Content-Length` body
/// are in.
fn whole(got: &[u8]) -> Option<RawReply> {
    let end = got.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let length: usize = head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    let body = got.get(end + 4..end + 4 + length)?;
    Some(RawReply {
        status: status_of(&head),
        body: String::from_utf8_lossy(body).into_owned(),
        head,
    })
}

fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
