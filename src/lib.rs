//! rapidbox: an SMS router that attaches to Kannel's bearerbox as an SMS box.
//!
//! # Layout
//!
//! ```text
//!  bearerbox ──box protocol──▶ link ─┐
//!  HTTP (receive, sendsms, console) ─┴─▶ intake ──▶ router (apps, inline)
//!                                          │
//!                                          ├──▶ store (redb, group commit)
//!                                          └──▶ dispatch ──▶ kannel outbox ──▶ link ──▶ bearerbox
//!                                                       ├──▶ push (HTTP)
//!                                                       └──▶ pull (/router/outbox)
//! ```
//!
//! Every message comes in through one [`Intake`]: routed (or screened),
//! committed with everything it produced in one durable unit, and only
//! then offered to its transport.
//!
//! Modules, from the bottom up (a module uses only those above it in this
//! list, never one below):
//!
//! - `text` — SMS text coding: MO decoding by coding and charset, GSM
//!   03.38 or UCS-2 for MTs.
//! - `kannel_xml` — Kannel's `<message><submit>` XML documents read as
//!   smsbox reads them (declared encoding, bounded parse, first element at
//!   a path, XPath string and number values, hex or URL-encoded bytes):
//!   sendsms's XML POST and a service's `text/xml` answer share it.
//! - [`model`] — the domain, after rapidsms-httprouter: connections,
//!   messages, statuses, delivery errors and reports.
//! - [`config`] — the TOML configuration, its embedded defaults, and
//!   `check-config`, which reports every problem with its key path.
//! - [`store`] — all state behind one handle ([`store::Store`]) whose
//!   backend `[store] backend` chooses: one redb file (the default),
//!   written by one thread that commits many callers' work per durable
//!   transaction, or a PostgreSQL database (`store/pg/`), written by one
//!   task that does the same.
//! - [`escape`] — every Kannel 1.4.5 `%x` escape, declared once: compiled
//!   patterns rendered for a message as text, for a URL or exactly as
//!   smsbox does (public: apps of your own can answer with them too).
//! - `template` — reply and URL templates in the configuration, built on
//!   [`escape`].
//! - `metrics` — what the running parts report about themselves: one
//!   registry every part counts into (MOs, MTs, reports, HTTP, callbacks,
//!   app failures, the link's state, the store's writer), exposed at
//!   `/metrics` in Prometheus' text format.
//! - `client` — the outgoing HTTP client (webhooks, push, dlr-urls,
//!   sms-services), bounded in time and size; it follows redirects only
//!   where Kannel's does (sms-services and dlr-urls).
//! - [`router`] — the [`router::App`] trait and the phases every incoming
//!   message goes through (filter, parse, handle, default, cleanup;
//!   outgoing in reverse).
//! - `apps` — the built-in apps: echo, keyword, webhook, optout, and
//!   sms_services (Kannel's sms-service groups, as smsbox runs them).
//! - `reload` — what SIGHUP changes while rapidbox runs (apps, backends,
//!   sendsms and console users): one snapshot behind one handle, taken
//!   once per message, so a message finishes on the apps it started with.
//! - `dispatch` — the outgoing transports: the outboxes (bounded windows
//!   onto the store's queue) and push.
//! - `intake` — the one way in: route, commit, offer ([`Intake`]); MOs
//!   whose apps are slow are acknowledged once stored and routed to the
//!   end in the background.
//! - `sendsms` — Kannel smsbox's sendsms requests (GET, POST with
//!   `X-Kannel-*` headers, octet-stream, XML POST) checked as smsbox
//!   checks them and turned into outgoing messages; `http` serves it.
//! - `dlr_callback` — calls a sendsms caller's `dlr-url` when its
//!   message's delivery report arrives, with Kannel's escapes.
//! - `link` — the bearerbox connection: sessions, reconnection, MOs and
//!   reports in through the intake, MTs out through a bounded window,
//!   acks.
//! - `http` — the HTTP server; its leaves are the API
//!   (rapidsms-httprouter's endpoints, Kannel's `/cgi-bin/sendsms`) and
//!   the web console.
//! - [`kannel_conf`] — Kannel's kannel.conf read as Kannel 1.4.5 reads it
//!   (includes, quoting, its key table), and converted to rapidbox's
//!   configuration (`rapidbox import-kannel-conf`).
//! - `notify` — systemd's `sd_notify` (READY, STOPPING, WATCHDOG) for a
//!   `Type=notify` unit.
//! - `daemon` — `rapidbox run`: builds every part from the configuration
//!   ([`Daemon::builder`], which also takes apps of your own), runs them,
//!   shuts them down in order.
//!
//! The box protocol itself is the `boxproto` crate (`proto/`); the
//! recording relay used to study it is `boxtap` (`tap/`).
//!
//! # What an embedder uses
//!
//! [`Daemon::builder`] with a [`config::Config`] and your own
//! [`router::App`]s; [`Running`] to reach the [`store::Store`] and the
//! [`Intake`] while it runs; [`model`] for the messages themselves.
//!
//! # The rule everything follows
//!
//! An MO is acknowledged to the bearerbox only after it and the replies it
//! produced are durably committed; a storage problem acknowledges it
//! `failed_tmp`, so the bearerbox keeps it. Every queue, window and buffer
//! has a stated bound.

mod apps;
mod client;
pub mod config;
mod daemon;
mod dispatch;
mod dlr_callback;
pub mod escape;
/// For the cargo-fuzz targets in `fuzz/` only.
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod intake;
pub mod kannel_conf;
mod kannel_xml;
mod link;
mod metrics;
pub mod model;
mod notify;
mod reload;
pub mod router;
mod sendsms;
pub mod store;
mod template;
mod text;

pub use daemon::{run, Daemon, DaemonBuilder, Reloaded, Running, StartError};
pub use http::console::hash_password;
pub use intake::{Intake, Received};

/// The README's Rust examples compile (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
