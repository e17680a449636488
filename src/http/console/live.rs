//! Live updates: `GET /router/console/events`, a server-sent events
//! stream that says "changed" after each durable commit of the store, so
//! the page's script can fetch the log fragment again.
//!
//! Bounds: at most `max_clients` streams at once (a semaphore permit is
//! held by each; beyond it, 503 and the page falls back to reloading);
//! at most one event per [`MIN_INTERVAL`] however fast the store commits;
//! each stream ends after [`MAX_LIFETIME`] (the browser reconnects, and
//! the session is checked again), and at shutdown.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Fewest time between two events of one stream.
pub const MIN_INTERVAL: Duration = Duration::from_millis(300);

/// A comment sent when nothing happened, so proxies keep the stream open.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// How long one stream lasts before the browser is asked to reconnect.
pub const MAX_LIFETIME: Duration = Duration::from_secs(300);

/// The live streams' bound and the signals they follow.
#[derive(Debug)]
pub struct Live {
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl Live {
    pub fn new(max_clients: usize, shutdown: CancellationToken) -> Live {
        Live {
            permits: Arc::new(Semaphore::new(max_clients.max(1))),
            shutdown,
        }
    }

    /// A stream of change events from `changes`, or `None` when
    /// `max_clients` streams are already open.
    pub fn events(&self, mut changes: tokio::sync::watch::Receiver<u64>) -> Option<Events> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        // One frame in hand is enough: the body is read as fast as the
        // socket drains, and an event is only ever "look again".
        let (tx, rx) = mpsc::channel(1);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let _permit: OwnedSemaphorePermit = permit;
            // The browser waits this long before reconnecting.
            if tx
                .send(Bytes::from_static(b"retry: 2000\n\n"))
                .await
                .is_err()
            {
                return;
            }
            changes.mark_unchanged();
            let end = tokio::time::sleep(MAX_LIFETIME);
            tokio::pin!(end);
            loop {
                let frame = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = &mut end => return,
                    _ = tx.closed() => return,
                    changed = changes.changed() => match changed {
                        // The store closed.
                        Err(_) => return,
                        Ok(()) => {
                            let n = *changes.borrow_and_update();
                            Bytes::from(format!("event: changed\ndata: {n}\n\n"))
                        }
                    },
                    _ = tokio::time::sleep(KEEPALIVE) => Bytes::from_static(b": keep-alive\n\n"),
                };
                if tx.send(frame).await.is_err() {
                    return;
                }
                tokio::time::sleep(MIN_INTERVAL).await;
            }
        });
        Some(Events { rx })
    }
}

/// The body of an events response: frames until the stream ends.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_change_makes_an_event_and_clients_are_bounded() {
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let live = Live::new(1, CancellationToken::new());
        let mut events = live.events(rx.clone()).unwrap();
        assert!(live.events(rx.clone()).is_none(), "over the bound");
        let first = events.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"retry: 2000\n\n");
        tx.send_replace(7);
        let next = events.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&next[..], b"event: changed\ndata: 7\n\n");
        drop(events);
        // The permit comes back once the task sees the body gone.
        tokio::time::timeout(Duration::from_secs(5), async {
            while live.events(rx.clone()).is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
    }
}
