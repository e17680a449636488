//! Free ports for test daemons.

use std::collections::BTreeSet;
use std::net::{TcpListener, UdpSocket};
use std::ops::Range;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Ports already handed out in this process: tests bind their ports only
/// later, in a child process, so a port that is free now may be handed
/// out again before its daemon binds it. Remembering them keeps two
/// daemons of one test (or of parallel tests) apart.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Where test ports come from: below Linux's ephemeral range (32768–60999
/// by default), which `bind(0)` and every outgoing connection's source
/// port draw from. A port taken from that range could become the source
/// port of some HTTP client's connection (Kannel's open and close many)
/// between this check and the daemon's bind, which then fails with
/// "Address already in use"; seen in CI before the ports moved here.
const RANGE: Range<u16> = 20_000..32_768;

/// The stride through [`RANGE`]: a prime that does not divide its length,
/// so that every port is visited once before any twice.
const STRIDE: u16 = 7_919;

/// How many ports to try before giving up. Most are free; a hundred taken
/// in a row means something is wrong.
const ATTEMPTS: usize = 100;

/// A TCP port on 127.0.0.1 that is free now, outside the ephemeral range,
/// and has not been handed out before in this process.
///
/// The port is released before it is returned, so another program could
/// take it before the daemon binds it; starting each process at its own
/// place in [`RANGE`] makes that unlikely for test processes that run
/// side by side.
pub fn free_port() -> u16 {
    // A poisoned lock only means another test panicked while holding it;
    // the set is still valid.
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let span = RANGE.end - RANGE.start;
    let mut offset = start(span, handed_out.len());
    for _ in 0..ATTEMPTS {
        let port = RANGE.start + offset;
        offset = ((u32::from(offset) + u32::from(STRIDE)) % u32::from(span)) as u16;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no free port in {RANGE:?} after {ATTEMPTS} attempts");
}

/// Where this process starts in [`RANGE`]: from its pid and the clock, so
/// that two test binaries running at once do not walk the same ports.
fn start(span: u16, handed: usize) -> u16 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = u64::from(std::process::id())
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(nanos))
        .wrapping_add(handed as u64);
    (mixed % u64::from(span)) as u16
}

/// Kannel's bearerbox binds the WAP ports 9200 (connectionless WSP) and
/// 9201 (WTP) on `wdp-interface-name`; they are fixed in Kannel 1.4.5.
pub const WAP_UDP_PORTS: [u16; 2] = [9200, 9201];

/// True when every UDP port in `ports` can be bound on 127.0.0.1 now.
/// Bearerbox 1.4.5 panics at startup when it cannot bind its WAP ports, so
/// a test checks this before it configures WDP.
pub fn udp_ports_free(ports: &[u16]) -> bool {
    ports
        .iter()
        .all(|port| UdpSocket::bind(("127.0.0.1", *port)).is_ok())
}
