//! Where outgoing messages go once they are durably queued (Q): each
//! backend sends through one transport (`[backends.NAME]`, see
//! [`crate::config::TransportKind`]).
//!
//! - **kannel**: the bearerbox link's outbox ([`crate::link::outbox`]);
//! - **push**: [`push::Pusher`], an HTTP request per message;
//! - **pull**: nothing to do; the message waits for `GET /router/outbox`.
//!
//! Every path into a transport starts from the store: [`Dispatch::offer`]
//! only speeds up what the transports' sweeps would find anyway, so a
//! message is never lost between being queued and being sent.

pub mod push;

use std::sync::Arc;

use crate::config::{Config, TransportKind};
use crate::link::outbox::Outbox;
use crate::model::{Message, Status};

/// Hands queued messages to their backend's transport. Cheap to clone.
#[derive(Clone)]
pub struct Dispatch {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    kannel: Option<Outbox>,
    push: Option<Outbox>,
}

impl Dispatch {
    /// A dispatcher for `config`'s transports, with the outboxes of the
    /// ones that run.
    pub fn new(config: Arc<Config>, kannel: Option<Outbox>, push: Option<Outbox>) -> Dispatch {
        Dispatch {
            inner: Arc::new(Inner {
                config,
                kannel,
                push,
            }),
        }
    }

    /// The transport `backend` sends through.
    pub fn transport(&self, backend: &str) -> TransportKind {
        self.inner.config.transport_for(backend)
    }

    /// True when `backend`'s messages wait to be pulled.
    pub fn is_pull(&self, backend: &str) -> bool {
        self.transport(backend) == TransportKind::Pull
    }

    /// Offers a freshly committed message to its transport. Messages that
    /// are not queued, and pull messages, stay where they are.
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
}

/// What the HTTP endpoints need of the transports.
impl crate::http::Dispatch for Dispatch {
    fn offer(&self, message: Message) {
        Dispatch::offer(self, message);
    }

    fn is_pull(&self, backend: &str) -> bool {
        Dispatch::is_pull(self, backend)
    }

    fn queue_depths(&self) -> Vec<(String, usize)> {
        let named = [("kannel", &self.inner.kannel), ("push", &self.inner.push)];
        named
            .into_iter()
            .filter_map(|(name, outbox)| Some((name.to_owned(), outbox.as_ref()?.len())))
            .collect()
    }
}
