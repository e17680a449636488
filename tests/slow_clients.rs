//! Slow clients: one address holding 2,000 connections that trickle their
//! headers (slowloris) must not keep a normal client from another address
//! waiting. Loopback addresses stand in for the two hosts (Linux routes
//! all of 127/8 to `lo`).

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use support::in_process::Rig;
use support::raw::{connect_from, exchange, read_answer};
use tokio::io::AsyncWriteExt;

/// Connections the attacker opens.
const ATTACKERS: usize = 2000;

/// The promise is 1 s on a quiet machine (bench/slow_clients.sh measures
/// it); tests share a busy machine, so this bound is generous. Before the
/// per-address share, the normal client waited for the header timeout
/// (10 s).
const GENEROUS: Duration = Duration::from_secs(5);

/// Raises the soft limit on open files to the hard one: the attacker's
/// sockets and the server's are in this one process.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_address_does_not_starve_another_address() {
    raise_fd_limit();
    let rig = Rig::start("", "").await;
    let attacker: IpAddr = [127, 0, 0, 2].into();
    let normal: IpAddr = [127, 0, 0, 3].into();
    let addr = rig.addr;
    // Each attacking connection sends a request line, then a header byte
    // every 200 ms, never finishing its head.
    let mut trickles = Vec::new();
    for _ in 0..ATTACKERS {
        let Ok(mut stream) = connect_from(attacker, addr).await else {
            continue;
        };
        trickles.push(tokio::spawn(async move {
            if stream
                .write_all(b"GET /router/stats HTTP/1.1\r\nX-Slow: ")
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(b"a").await.is_err() {
                    return;
                }
            }
        }));
    }
    // Let the server take in what it will of the attack.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let mut stream = connect_from(normal, addr).await.expect("connect");
        stream
            .write_all(b"GET /router/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let reply = tokio::time::timeout(GENEROUS * 4, read_answer(&mut stream))
            .await
            .expect("the normal client was never answered");
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "{reply:?}");
        worst = worst.max(took);
    }
    eprintln!("normal client's slowest answer under {ATTACKERS} trickling connections: {worst:?}");
    assert!(worst < GENEROUS, "the normal client waited {worst:?}");
    // The attack was refused beyond the address's share, and counted.
    let metrics = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let refused: f64 = metrics
        .body
        .lines()
        .find(|l| l.contains("http_connections_refused_total{reason=\"per_address\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        refused >= (ATTACKERS - 64) as f64,
        "refused {refused}: {}",
        metrics.body
    );
    for t in trickles {
        t.abort();
    }
    rig.stop().await;
}
