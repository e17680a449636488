//! The control socket: scripts switch the relay's faults with one line of
//! text per command, e.g. `printf 'stall 30\n' | nc -q1 127.0.0.1 13012`.
//!
//! Commands are those [`Fault`]'s `FromStr` reads, plus `clear` (end every
//! fault) and `status`. Each gets one line back: `ok` and the faults in
//! force, or `error` and why. Lines are at most [`MAX_LINE`] bytes.

use std::future::Future;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{debug, info};

use crate::fault::{Fault, Faults};

/// Longest command line; a longer one is refused and the client dropped.
pub const MAX_LINE: usize = 256;

/// Control clients served at once; more wait in the listen backlog.
pub const MAX_CLIENTS: usize = 8;

/// Answers one command line: what to write back.
pub fn command(faults: &Faults, line: &str) -> String {
    match line.trim() {
        "clear" => {
            faults.clear();
            info!("faults cleared");
            format!("ok {}", faults.describe())
        }
        "status" => format!("ok {}", faults.describe()),
        other => match other.parse::<Fault>() {
            Ok(fault) => {
                info!(?fault, "fault injected");
                faults.inject(fault);
                format!("ok {}", faults.describe())
            }
            Err(e) => format!("error {e}"),
        },
    }
}

/// Serves the control socket on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, faults: Faults, shutdown: impl Future) {
    tokio::pin!(shutdown);
    let mut clients = JoinSet::new();
    loop {
        while clients.len() >= MAX_CLIENTS {
            tokio::select! {
                _ = clients.join_next() => {}
                _ = &mut shutdown => return,
            }
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => return,
        };
        match accepted {
            Ok((socket, _)) => {
                clients.spawn(client(socket, faults.clone()));
            }
            Err(e) => debug!(error = %e, "control accept failed"),
        }
        while clients.try_join_next().is_some() {}
    }
}

async fn client(socket: TcpStream, faults: Faults) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).take(u64::MAX);
    let mut line = String::new();
    loop {
        line.clear();
        // Bound each line: `take` is reset before every read.
        lines.set_limit(MAX_LINE as u64 + 1);
        match lines.read_line(&mut line).await {
            Ok(0) => return,
            Ok(_) if line.len() > MAX_LINE => {
                let _ = write.write_all(b"error line too long\n").await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                debug!(error = %e, "control client gone");
                return;
            }
        }
        if line.trim().is_empty() {
            continue;
        }
        let mut answer = command(&faults, &line);
        answer.push('\n');
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_over_the_socket_switch_the_faults() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let faults = Faults::new();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, faults.clone(), stopped));
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"cut bb>box\nstatus\nnonsense\nclear\n")
            .await
            .unwrap();
        c.shutdown().await.unwrap();
        let mut answers = String::new();
        c.read_to_string(&mut answers).await.unwrap();
        let lines: Vec<&str> = answers.lines().collect();
        assert_eq!(lines[0], "ok cut bb>box armed");
        assert_eq!(lines[1], "ok cut bb>box armed");
        assert!(
            lines[2].starts_with("error unknown fault `nonsense`"),
            "{answers}"
        );
        assert_eq!(lines[3], "ok none");
        assert!(!faults.armed());
        stop.send(()).unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_overlong_line_is_refused_and_the_client_dropped() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Faults::new(), stopped));
        let mut c = TcpStream::connect(addr).await.unwrap();
        let long = format!("stall {}\n", "1".repeat(MAX_LINE));
        c.write_all(long.as_bytes()).await.unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "error line too long\n");
        stop.send(()).unwrap();
        server.await.unwrap();
    }
}
