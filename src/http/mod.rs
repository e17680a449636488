//! The HTTP server, for backends that are not Kannel (Android relays,
//! other gateways), for applications that send through Kannel's sendsms,
//! for monitoring, and for people (the console).
//!
//! ```text
//! server (accept loop, bounds, shutdown)
//!   └─ service (by path) ─┬─ ops      (/metrics, /health, /ready)
//!                         ├─ api      (httprouter's endpoints, sendsms)
//!                         └─ console  (the web console)
//!                both over: context, request, answer, body, page, auth
//! ```
//!
//! - [`server`]: the accept loop, its bounds (connections, head size,
//!   timeouts) and graceful shutdown;
//! - `service`: from a request's path to the operations endpoints, the
//!   API or the console; counts and times every request;
//! - `ops`: `/metrics`, `/health`, `/ready`, and which listener serves
//!   which ([`Role`]: the main one, or `[metrics] listen`'s);
//! - [`api`]: rapidsms-httprouter's endpoints and `/cgi-bin/sendsms`;
//! - [`console`]: the web console at `/router/console`;
//! - `context`: what both share (the intake, the link's status, the
//!   `[http]` settings);
//! - `request`: a request's parameters, from its query string and form
//!   body (bounded in size and time);
//! - `answer`: JSON bodies, errors, and messages as httprouter's `as_json`;
//! - `body`: the response body type, whole or streamed;
//! - `page`: the HTML chrome the console's pages and the status page share;
//! - `auth`: `[http] password`, compared in constant time;
//! - `throttle`: the limit on wrong credentials (sendsms, `[http] password`)
//!   per address.
//!
//! The API and the console are leaves: they use the modules below them
//! and nothing else of the server uses them but `service`.

pub(crate) mod answer;
pub mod api;
mod auth;
mod body;
pub mod console;
mod context;
mod ops;
mod page;
pub(crate) mod request;
pub mod server;
mod service;
mod throttle;

use std::sync::Arc;

use crate::intake::Intake;
use crate::metrics::LinkStatus;
use api::Api;
use console::Console;

pub use ops::Role;
pub use server::{HttpServer, ListenError};

/// The parts of rapidbox the server serves.
pub struct Parts {
    /// Where received and sent messages go in.
    pub intake: Intake,
    /// The bearerbox link's state, for `/router/stats`.
    pub link_status: Arc<LinkStatus>,
    /// Whether the bearerbox link runs, for `/router/stats`.
    pub kannel_enabled: bool,
    /// The API's own parts (sendsms users, alert channels).
    pub api: Api,
    /// The web console; `None` when no console users are configured.
    pub console: Option<Arc<Console>>,
}
