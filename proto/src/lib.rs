//! Kannel's box protocol, the binary protocol between Kannel's `bearerbox`
//! and its boxes (`smsbox`, `wapbox`, `sqlbox`, ... and rapidbox), exactly as
//! Kannel 1.4.5 speaks it.
//!
//! # Layout
//!
//! - [`msg`] — the messages. One declaration lists every message type and
//!   every field in wire order (as Kannel's `gw/msg-decl.h` does); decoding,
//!   encoding, `Default`, `Debug` and the field walker all follow from it.
//!   [`Msg`] is one message of any of the five kinds.
//! - [`types`] — typed views of the integer fields that mean something
//!   ([`SmsType`], [`AdminCommand`], [`AckStatus`], [`Coding`], [`DlrMask`]),
//!   each keeping values it does not know.
//! - [`wire`] — the field kinds: INTEGER (`i32`), OCTSTR ([`OctStr`], where
//!   NULL is `None` and distinct from empty) and UUID, parsed with nom.
//! - [`codec`] — [`BoxCodec`], the `tokio_util` codec for the 4-byte
//!   length-prefixed frames, with a bound on frame size.
//! - [`error`] — what can go wrong, split by what the reader must do next.
//!
//! # Fidelity
//!
//! Decoding then encoding any frame Kannel 1.4.5 sends gives back the same
//! bytes: NULL strings stay NULL, -1 stays -1, unknown enum values and bytes
//! after the last known field are kept. The test suite checks this against
//! frames recorded from a real bearerbox, smsbox and wapbox
//! (`tests/recordings/`).
//!
//! # Errors and recovery
//!
//! | error | meaning | do |
//! |---|---|---|
//! | [`BodyError`] (an item of the decoder's stream) | one frame was bad, or its length prefix was; it has been consumed | read on only if the stream can be trusted to be in step; a box that must not strand messages drops the connection (rapidbox does, as Kannel's smsbox does) |
//! | [`FrameError`] (the decoder's error) | the byte stream broke | drop the connection |
//! | [`EncodeError`] | a message could not be written; nothing was | handle the message; the connection is fine unless it is `Io` |
//!
//! # Example
//!
//! ```no_run
//! use boxproto::{Admin, AdminCommand, BoxCodec, Msg};
//! use futures_util::{SinkExt, StreamExt};
//! use tokio_util::codec::Framed;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let socket = tokio::net::TcpStream::connect("127.0.0.1:13001").await?;
//! let mut bearerbox = Framed::new(socket, BoxCodec::new());
//! let identify = Admin { command: AdminCommand::Identify, ..Default::default() };
//! bearerbox.send(Msg::from(identify)).await?;
//! while let Some(item) = bearerbox.next().await {
//!     match item? {
//!         Ok(msg) => println!("{msg}"),
//!         Err(bad) => eprintln!("skipped: {bad}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod codec;
mod declare;
pub mod error;
pub mod msg;
pub mod types;
pub mod wire;

pub use codec::{BoxCodec, DEFAULT_MAX_FRAME_LEN};
pub use error::{BodyError, BodyErrorKind, EncodeError, FrameError};
pub use msg::{Ack, Admin, Heartbeat, Msg, Sms, WdpDatagram};
pub use types::{AckStatus, AdminCommand, Coding, DlrMask, SmsType};
pub use wire::{FieldValue, OctStr};

// Re-exported so users name the same `Uuid` and `Bytes` the messages hold.
pub use bytes::Bytes;
pub use uuid::Uuid;
