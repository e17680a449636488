//! Durable throughput of the store's group commit: how many MO-plus-reply
//! units per second 256 concurrent committers get through, each waiting
//! for its own fsync'd commit.
//!
//! MO UUIDs are random, as Kannel makes them. Two variants of the MO's
//! redelivery key ([`MoKey`](rapidbox::model::MoKey)): the MO carries
//! Kannel's `time` (`mo_time_set`, what a bearerbox sends), or leaves it
//! unset so that the key is the random UUID alone (`mo_time_unset`, what a
//! peer that sends `time` -1 costs).
//!
//! Run: `cargo bench --bench store`. The files live under Cargo's target
//! tmp directory, on the same disk as the build, not in a tmpfs, so the
//! fsyncs are real. The product target is 12,000 units/s with a few µs of
//! CPU per unit; after criterion's figures the bench prints, per variant,
//! one longer run's units/s, CPU per unit and batch sizes, and how long
//! reopening the store (with its integrity check) took.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rapidbox::model::{Connection, Direction, KannelInfo, Message, MoKey, Status};
use rapidbox::store::{time_ordered_uuid, Op, Outcome, Store, StoreOptions, Unit};

const COMMITTERS: u64 = 256;

#[derive(Clone, Copy)]
enum MoTime {
    Set,
    Unset,
}

/// What the router commits for one MO: the MO (Kannel UUID as the
/// redelivery guard) and one queued reply with the UUID rapidbox gives it.
fn typical_unit(store: &Store, n: u64, mo_time: MoTime) -> Unit {
    let mo_uuid = *uuid::Uuid::new_v4().as_bytes();
    let mt_uuid = time_ordered_uuid();
    let address = format!("+2567721{:05}", n % 100_000);
    let kannel = |uuid| KannelInfo {
        uuid: Some(uuid),
        shortcode: Some("8500".to_owned()),
        smsc_id: Some("mtn-ug".to_owned()),
        coding: 0,
        charset: Some("UTF-8".to_owned()),
        dlr_mask: -1,
        ..KannelInfo::default()
    };
    let connection = Connection::new("mtn-ug", &address);
    let text = "JOIN kampala central please register me";
    let mut mo = Message::new(store.allocate_id(), connection, Direction::Incoming, text);
    mo.status = Status::Handled;
    mo.kannel = Some(KannelInfo {
        time: match mo_time {
            MoTime::Set => Some(rapidbox::model::now_micros() / 1_000_000),
            MoTime::Unset => None,
        },
        ..kannel(mo_uuid)
    });
    let reply = Message {
        id: store.allocate_id(),
        text: "Welcome! You are registered for Kampala Central.".to_owned(),
        direction: Direction::Outgoing,
        status: Status::Queued,
        in_response_to: Some(mo.id),
        kannel: Some(kannel(mt_uuid)),
        ..mo.clone()
    };
    let key = MoKey::of(&mo).expect("an MO with a UUID has a key");
    Unit::new()
        .unless_mo_known(key)
        .with(Op::put(mo))
        .with(Op::put(reply))
}

/// Commits `units` units from [`COMMITTERS`] tasks; returns the wall time.
async fn run(store: &Store, units: u64, mo_time: MoTime) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..COMMITTERS {
        let store = store.clone();
        let next = next.clone();
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= units {
                    break;
                }
                let outcome = store.commit(typical_unit(&store, n, mo_time)).await;
                assert_eq!(outcome.ok(), Some(Outcome::Applied));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("committer panicked");
    }
    started.elapsed()
}

/// User plus system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary directory");
    let variants = [
        ("mo_time_set", MoTime::Set),
        ("mo_time_unset", MoTime::Unset),
    ];
    let mut stores = Vec::new();
    let mut group = c.benchmark_group("store_commit_mo_and_reply_256_committers");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (name, mo_time) in variants {
        let path = dir.path().join(format!("{name}.redb"));
        let store = Store::open(&path, StoreOptions::default()).expect("the store opens");
        group.bench_function(name, |b| {
            b.iter_custom(|units| runtime.block_on(run(&store, units, mo_time)));
        });
        stores.push((name, mo_time, path, store));
    }
    group.finish();

    // One longer run each, for the figures criterion does not give.
    for (name, mo_time, path, store) in stores {
        let units = 100_000;
        let before = store.stats();
        let cpu = cpu_time();
        let wall = runtime.block_on(run(&store, units, mo_time));
        let cpu = cpu_time() - cpu;
        let after = store.stats();
        let transactions = after.transactions - before.transactions;
        let apply = (after.apply_time - before.apply_time).as_secs_f64() * 1e6 / units as f64;
        let commit = (after.commit_time - before.commit_time).as_secs_f64() * 1e3
            / transactions.max(1) as f64;
        let messages = store.allocate_id() - 1;
        runtime.block_on(store.close());
        let reopening = Instant::now();
        let store = Store::open(&path, StoreOptions::default()).expect("the store reopens");
        let reopened = reopening.elapsed();
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        println!(
            "{name}: {units} units in {wall:.2?}: {:.0} units/s, {:.1} µs CPU per unit, \
             {transactions} transactions ({:.0} units each, largest {}); writer: \
             applying {apply:.1} µs per unit, committing {commit:.2} ms per transaction; \
             {messages} messages, {} MB, reopened in {reopened:.2?}",
            units as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / units as f64,
            units as f64 / transactions.max(1) as f64,
            after.largest_batch,
            size >> 20,
        );
        runtime.block_on(store.close());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
