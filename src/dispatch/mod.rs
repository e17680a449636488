//! Where outgoing messages go once they are durably queued (Q): each
//! backend sends through one transport (`[backends.NAME]`, see
//! [`crate::config::TransportKind`]).
//!
//! - **kannel**: MTs through the bearerbox link, which takes them from an
//!   [`outbox::Outbox`];
//! - **push**: [`push::Pusher`], an HTTP request per message, taking them
//!   from an outbox of its own;
//! - **pull**: nothing to do; the message waits for `GET /router/outbox`.
//!
//! - [`outbox`]: a bounded in-memory window onto the store's queue, fed by
//!   fresh offers and by sweeps of the store;
//! - [`push`]: the push transport.
//!
//! Every path into a transport starts from the store: [`Dispatch::offer`]
//! only speeds up what the transports' sweeps would find anyway, so a
//! message is never lost between being queued and being sent.

pub mod outbox;
pub mod push;

use std::sync::Arc;

use crate::config::TransportKind;
use crate::model::{Message, Status};
use crate::reload::Reloadable;
use outbox::Outbox;

/// Hands queued messages to their backend's transport. Cheap to clone.
#[derive(Clone)]
pub struct Dispatch {
    inner: Arc<Inner>,
}

struct Inner {
    /// Whose transports say where each backend's messages go (a reload
    /// may move a backend between the transports that run).
    settings: Reloadable,
    kannel: Option<Outbox>,
    push: Option<Outbox>,
}

impl Dispatch {
    /// A dispatcher for `settings`' transports, with the outboxes of the
    /// transports that run (`None` for one that does not: its messages
    /// stay queued in the store).
    pub fn new(settings: Reloadable, kannel: Option<Outbox>, push: Option<Outbox>) -> Dispatch {
        Dispatch {
            inner: Arc::new(Inner {
                settings,
                kannel,
                push,
            }),
        }
    }

    /// The transport `backend` sends through.
    pub fn transport(&self, backend: &str) -> TransportKind {
        self.inner.settings.load().transports.transport_for(backend)
    }

    /// True when `backend`'s messages wait to be pulled through
    /// `/router/outbox`. `backend` is spelled as stored.
    pub fn is_pull(&self, backend: &str) -> bool {
        self.transport(backend) == TransportKind::Pull
    }

    /// Offers a freshly committed message to its transport. Never blocks:
    /// a message that is not queued, a pull message, or one its outbox has
    /// no room for stays where it is, in the store, for a sweep to find.
    pub fn offer(&self, msg: Message) {
        if msg.status != Status::Queued {
            return;
        }
        let outbox = match self.transport(&msg.connection.backend) {
            TransportKind::Kannel => &self.inner.kannel,
            TransportKind::Push => &self.inner.push,
            TransportKind::Pull => return,
        };
        if let Some(outbox) = outbox {
            outbox.offer(msg);
        }
    }

    /// Messages waiting in memory, per transport that runs, for
    /// `/router/stats`.
    pub fn queue_depths(&self) -> Vec<(&'static str, usize)> {
        let named = [("kannel", &self.inner.kannel), ("push", &self.inner.push)];
        named
            .into_iter()
            .filter_map(|(name, outbox)| Some((name, outbox.as_ref()?.len())))
            .collect()
    }
}
