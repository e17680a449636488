//! Measures, per transaction, the CPU (user and system, getrusage) of a
//! small redb transaction committed durably, committed non-durably, and an
//! append + fdatasync of the same bytes to a log file.
//!
//!     cargo run --release --example commit_cost [TXNS] [UNITS_PER_TXN]
use std::io::Write;
use std::time::Duration;

use redb::{Database, Durability, TableDefinition};

const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
const INDEX: TableDefinition<(u8, u64), ()> = TableDefinition::new("by_status");
const KEYS: TableDefinition<(i64, &[u8; 16]), u64> = TableDefinition::new("mo_keys");

fn cpu() -> (Duration, Duration) {
    let mut u = std::mem::MaybeUninit::<libc_rusage>::zeroed();
    unsafe { getrusage(0, u.as_mut_ptr()) };
    let u = unsafe { u.assume_init() };
    let d = |t: [i64; 2]| Duration::from_secs(t[0] as u64) + Duration::from_micros(t[1] as u64);
    (d(u.utime), d(u.stime))
}
#[repr(C)]
struct libc_rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    rest: [i64; 14],
}
extern "C" {
    fn getrusage(who: i32, usage: *mut libc_rusage) -> i32;
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let txns = args.first().copied().unwrap_or(2000);
    let per = args.get(1).copied().unwrap_or(2);
    let dir = tempfile::tempdir_in("/work").unwrap();
    let value = vec![7u8; 300];
    for mode in ["durable", "none", "none+ckpt", "log"] {
        let db = Database::create(dir.path().join(format!("{mode}.redb"))).unwrap();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join(format!("{mode}.log")))
            .unwrap();
        let mut id = 0u64;
        // Warm: 20,000 messages in.
        let txn = db.begin_write().unwrap();
        {
            let mut m = txn.open_table(MESSAGES).unwrap();
            let mut i = txn.open_table(INDEX).unwrap();
            let mut k = txn.open_table(KEYS).unwrap();
            for _ in 0..20_000 {
                id += 1;
                m.insert(id, value.as_slice()).unwrap();
                i.insert((1, id), ()).unwrap();
                k.insert((id as i64 / 1000, &[id as u8; 16]), id).unwrap();
            }
        }
        txn.commit().unwrap();
        let (u0, s0) = cpu();
        let t0 = std::time::Instant::now();
        for n in 0..txns {
            if mode == "log" {
                let rec = vec![1u8; 400 * per as usize];
                log.write_all(&rec).unwrap();
                log.sync_data().unwrap();
                continue;
            }
            let mut txn = db.begin_write().unwrap();
            let durable = mode == "durable" || (mode == "none+ckpt" && n % 1000 == 999);
            txn.set_durability(if durable {
                Durability::Immediate
            } else {
                Durability::None
            })
            .unwrap();
            {
                let mut m = txn.open_table(MESSAGES).unwrap();
                let mut i = txn.open_table(INDEX).unwrap();
                let mut k = txn.open_table(KEYS).unwrap();
                for _ in 0..per {
                    id += 1;
                    m.insert(id, value.as_slice()).unwrap();
                    i.insert((1, id), ()).unwrap();
                    let mut u = [0u8; 16];
                    u[..8].copy_from_slice(&(id.wrapping_mul(0x9E3779B97F4A7C15)).to_le_bytes());
                    k.insert((id as i64 / 1000, &u), id).unwrap();
                    // the reply's status change
                    i.remove((1, id - 1)).unwrap();
                    i.insert((2, id - 1), ()).unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let (u1, s1) = cpu();
        let n = txns as f64;
        println!(
            "{mode:10} {per} units/txn: user {:6.1} µs  sys {:6.1} µs  wall {:6.1} µs per txn",
            (u1 - u0).as_secs_f64() * 1e6 / n,
            (s1 - s0).as_secs_f64() * 1e6 / n,
            t0.elapsed().as_secs_f64() * 1e6 / n
        );
    }
}
