//! What the running parts say about themselves, for monitoring.
//!
//! The bearerbox link writes [`LinkStatus`]; the HTTP server's
//! `/router/stats` reads it. It lives here, below both, so that neither
//! depends on the other.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize};

/// What the bearerbox link is doing. Updated by its sessions with relaxed
/// atomics: each counter is exact, but two counters read one after the
/// other may be from slightly different moments.
#[derive(Debug, Default)]
pub struct LinkStatus {
    pub connected: AtomicBool,
    /// When the current (or last) connection was made or lost, in µs
    /// since the epoch; 0 if never.
    pub since: AtomicI64,
    /// MTs sent and not yet answered by the bearerbox (or answered and not
    /// yet stored).
    pub in_flight: AtomicUsize,
    /// MOs and reports received, all sessions.
    pub received: AtomicU64,
    /// MTs the bearerbox answered, all sessions.
    pub answered: AtomicU64,
    /// Connections made to the bearerbox.
    pub connects: AtomicU64,
}
