//! The hook between the HTTP endpoints and the outgoing transports.
//!
//! The endpoints do not know how a backend's messages leave rapidbox
//! (through the bearerbox, pushed to a URL, or pulled by a relay); the
//! daemon hands them a [`Dispatch`] that does.

use crate::model::Message;

/// How outgoing messages leave rapidbox, as far as the HTTP endpoints
/// need to know.
pub trait Dispatch: Send + Sync + 'static {
    /// Takes a reply that was just durably committed as queued (Q). Must
    /// not block: queue it and return. A message it drops stays queued in
    /// the store, so a store sweep must be able to find it again.
    fn offer(&self, message: Message);

    /// Whether `backend` is pulled by a relay through `/router/outbox`
    /// (rather than sent by rapidbox). `backend` is spelled as stored.
    fn is_pull(&self, backend: &str) -> bool;

    /// Messages waiting in memory per queue, for `/router/stats`.
    fn queue_depths(&self) -> Vec<(String, usize)> {
        Vec::new()
    }
}

/// A [`Dispatch`] that sends nothing: every reply stays queued in the
/// store, which is all a pull backend needs (httprouter without a
/// `ROUTER_URL`). `is_pull` decides which backends `/router/outbox` shows.
pub struct LeaveQueued<F>(pub F);

impl<F> Dispatch for LeaveQueued<F>
where
    F: Fn(&str) -> bool + Send + Sync + 'static,
{
    fn offer(&self, _message: Message) {}

    fn is_pull(&self, backend: &str) -> bool {
        (self.0)(backend)
    }
}
