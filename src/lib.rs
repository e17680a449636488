//! rapidbox: an SMS router that attaches to Kannel's bearerbox as an SMS box.
//!
//! # Layout
//!
//! ```text
//!  bearerbox ──box protocol──▶ link ──▶ router (apps, inline) ──▶ store (redb, group commit)
//!      ▲                         │                                     │
//!      └──── MT / acks / DLRs ◀──┴──── outbox ◀── queued messages ◀────┘
//! ```
//!
//! - [`daemon`] — `rapidbox run`: builds the parts below from the
//!   configuration, runs them, shuts them down in order.
//! - [`config`] — the TOML configuration, its embedded defaults, and
//!   `check-config`, which reports every problem with its key path.
//! - [`model`] — the domain, after rapidsms-httprouter: connections,
//!   messages, statuses, delivery errors and reports.
//! - [`store`] — all state in one redb file, written by one thread that
//!   commits many callers' work per durable transaction.
//! - [`router`] — the [`router::App`] trait and the phases every incoming
//!   message goes through (filter, parse, handle, default, cleanup; outgoing
//!   in reverse).
//! - [`apps`] — the built-in apps: echo, keyword, webhook, optout.
//! - [`template`] — reply and URL templates with Kannel's sms-service
//!   escapes (`%k %s %r %a %p %P ...`).
//! - [`text`] — SMS text coding: MO decoding by coding and charset, GSM
//!   03.38 or UCS-2 for MTs.
//! - [`link`] — the bearerbox connection: sessions, reconnection, MOs and
//!   reports in, MTs out through a bounded window, acks.
//! - [`http`] — the HTTP server: rapidsms-httprouter's endpoints
//!   (`/router/receive`, `outbox`, `delivered`, `status`, `stats`,
//!   `alert`, `relaylog`), Kannel's `/cgi-bin/sendsms`, and the console.
//! - [`console`] — the web console at `/router/console`: the message log
//!   (paged, searched, live through server-sent events), test messages,
//!   replies, message details; logins with argon2 hashes, sessions in
//!   memory, CSRF tokens, a failed-login limit. Served by [`http`].
//! - [`sendsms`] — Kannel smsbox's sendsms requests (GET, POST with
//!   `X-Kannel-*` headers, XML POST) checked as smsbox checks them and
//!   turned into outgoing messages; [`http`] serves it.
//! - [`client`] — the outgoing HTTP client (webhooks), bounded in time and
//!   size.
//! - [`dlr_callback`] — calls a sendsms caller's `dlr-url` when its
//!   message's delivery report arrives, with Kannel's escapes.
//! - [`tap`] — a recording relay between any box and a bearerbox.
//!
//! The box protocol itself is the `boxproto` crate (`proto/`).
//!
//! # The rule everything follows
//!
//! An MO is acknowledged to the bearerbox only after it and the replies it
//! produced are durably committed; a storage problem acknowledges it
//! `failed_tmp`, so the bearerbox keeps it. Every queue, window and buffer
//! has a stated bound.

pub mod apps;
pub mod client;
pub mod config;
pub mod console;
pub mod daemon;
pub mod dispatch;
pub mod dlr_callback;
pub mod http;
pub mod link;
pub mod model;
pub mod router;
pub mod sendsms;
pub mod store;
pub mod tap;
pub mod template;
pub mod text;
