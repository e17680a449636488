//! Free ports for test daemons.

use std::collections::BTreeSet;
use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;

/// Ports already handed out in this process. The kernel may give the same
/// ephemeral port to two `bind(0)` calls once the first socket is closed,
/// and tests bind their ports only later, in a child process: remembering
/// them keeps two daemons of one test (or of parallel tests) apart.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How many times to ask the kernel before giving up. Collisions with the
/// set above are rare; a hundred in a row means something is wrong.
const ATTEMPTS: usize = 100;

/// A TCP port on 127.0.0.1 that is free now and has not been handed out
/// before in this process.
///
/// The port is released before it is returned, so another program could
/// take it before the daemon binds it; on a test machine that race is
/// accepted rather than worked around.
pub fn free_port() -> u16 {
    // A poisoned lock only means another test panicked while holding it;
    // the set is still valid.
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..ATTEMPTS {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the address of a bound socket: {e}"))
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("no new free port after {ATTEMPTS} attempts");
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
