//! boxload: a fake bearerbox that load-tests a Kannel box (rapidbox,
//! Kannel's smsbox, ...).
//!
//! The box connects to boxload's port as it would to a bearerbox's
//! smsbox-port. boxload waits for it to identify, offers it numbered MOs
//! through a window of unacknowledged ones (as bearerbox's
//! `smsbox-max-pending` does), acknowledges the MTs the box sends back,
//! matches each MT to the MO it answers, and measures how long acks and
//! replies take.
//!
//! # Layout
//!
//! - [`options`] — what one load is: how many MOs, their text, senders,
//!   window, rate and the time limits.
//! - [`offer`] — the MO source: renders MO number `n`, keeps the state of
//!   every MO offered and the window of unacknowledged ones.
//! - [`matcher`] — which MO an MT answers (by the number `{n}` rendered in
//!   the MO's text and echoed in the reply, and by sender).
//! - [`report`] — counts, throughput, latency percentiles; the readable
//!   text and the JSON line.
//! - [`session`] — the connection: accept one box, run the load, shut the
//!   box down.
//!
//! # Memory
//!
//! The state kept per MO (its id, when it was written, its ack, how many
//! replies) is O(N) by design: N is given on the command line and every MO
//! must be remembered to tell a late reply from a lost or duplicated one.
//! Everything else is bounded: the channel from the reader task holds
//! [`session::READ_AHEAD`] frames, frames are at most
//! [`boxproto::DEFAULT_MAX_FRAME_LEN`] bytes, histograms have a fixed size.
//!
//! # Example
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:13001").await?;
//! let options = boxload::Options { messages: 1000, ..Default::default() };
//! let report = boxload::run(listener, &options).await?;
//! println!("{}", report.to_text());
//! # Ok(())
//! # }
//! ```

pub mod matcher;
pub mod offer;
pub mod options;
pub mod report;
pub mod session;

pub use options::{Options, OptionsError, TextCoding};
pub use report::{Counts, Latency, Report};
pub use session::{run, LoadError};
