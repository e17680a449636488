//! The HTTP server: rapidsms-httprouter's endpoints, for backends that are
//! not Kannel (Android relays, other gateways) and for monitoring.
//!
//! | endpoint | what it does |
//! | --- | --- |
//! | `GET/POST /router/receive` | routes a message through the same router as bearerbox MOs, stores it with its replies in one commit, answers them as JSON |
//! | `GET /router/outbox` | the queued (Q) messages of pull backends |
//! | `GET/POST /router/delivered` | marks an outgoing message delivered (D) |
//! | `GET /router/status` | how many messages have been queued for more than 15 minutes (text, JSON, or HTML for browsers) |
//! | `POST /router/alert`, `POST /router/relaylog` | forward a relay's alert or log to the administrators (webhook, mail) |
//! | `/router/console...` | the web console ([`crate::console`]) |
//! | `GET /router/stats` | message counts, the bearerbox link, queues, the store's writer |
//! | `GET/POST /cgi-bin/sendsms` | Kannel smsbox's sendsms: queues an MT per receiver, answers as smsbox |
//!
//! - [`server`]: the accept loop, its bounds (connections, head size,
//!   timeouts) and graceful shutdown;
//! - `service`: from method and path to an endpoint;
//! - `request`: a request's parameters, from its query string and form
//!   body (bounded in size and time);
//! - `auth`: `[http] password`, compared in constant time;
//! - `answer`: JSON bodies, errors, and messages as httprouter's `as_json`;
//! - `receive`, `outbox`, `delivered`, `monitor`, `sendsms`, `alert`: the
//!   endpoints;
//! - [`dispatch`]: the hook through which replies leave and which says
//!   which backends are pull.
//!
//! Like the bearerbox link, `/router/receive` answers only after the
//! message and its replies are durably committed, and offers the queued
//! replies for sending only after that commit.

pub mod alert;
pub(crate) mod answer;
mod auth;
mod delivered;
pub mod dispatch;
mod monitor;
mod outbox;
pub(crate) mod receive;
pub(crate) mod request;
mod sendsms;
pub mod server;
pub(crate) mod service;

use std::sync::Arc;

use crate::config::SendsmsUser;
use crate::link::LinkStatus;
use crate::model::{Connection, Direction, Message};
use crate::router::{Routed, Router};
use crate::store::{Store, StoreError};

pub use dispatch::{Dispatch, LeaveQueued};
pub use server::{HttpServer, ListenError};

/// The parts of rapidbox the endpoints use.
#[derive(Clone)]
pub struct Parts {
    pub store: Store,
    /// The same router bearerbox MOs go through.
    pub router: Router,
    /// Where replies go after their commit; which backends are pull.
    pub dispatch: Arc<dyn Dispatch>,
    /// The bearerbox link's state, for `/router/stats`.
    pub link_status: Arc<LinkStatus>,
    /// Whether the bearerbox link runs, for `/router/stats`; its queue
    /// depth comes from [`Dispatch::queue_depths`].
    pub kannel_enabled: bool,
    /// Who may use `/cgi-bin/sendsms` (`[[sendsms_users]]`).
    pub sendsms_users: Arc<[SendsmsUser]>,
}

impl Parts {
    /// What `/router/receive` and the console's test message do with a
    /// message received over HTTP: route it inline, store it with its
    /// replies in one commit, then hand the queued replies to their
    /// transports. Returns what the router made of it, once durable.
    ///
    /// There is no duplicate check (an HTTP message has no Kannel UUID): a
    /// relay that retries after a lost answer stores the message twice, as
    /// httprouter did.
    pub(crate) async fn receive(
        &self,
        connection: Connection,
        text: String,
    ) -> Result<Routed, StoreError> {
        let message = Message::new(
            self.store.allocate_id(),
            connection,
            Direction::Incoming,
            text,
        );
        let routed = self.router.route(message).await;
        // Without a UUID the outcome is Applied or an error.
        let _outcome = self.store.commit(routed.unit()).await?;
        for reply in routed.queued() {
            self.dispatch.offer(reply.clone());
        }
        Ok(routed)
    }
}
