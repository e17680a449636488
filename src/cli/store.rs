//! The store's commands: `purge`, `backup`, `verify`, `compact`.
//!
//! `backup`, `verify` and `compact` work on redb's file and so apply to
//! `[store] backend = "redb"` only; with another backend they say so (a
//! database is backed up and checked with its own tools). `purge` goes
//! through the store's interface and works on either.
//!
//! `purge` and `compact` need the store stopped (redb locks the file
//! against a second process). `backup` works either way: on a stopped
//! store it opens the file itself; while rapidbox runs it asks the daemon
//! (`POST /admin/backup`, with `[http] password`) to write the copy, then
//! verifies it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rapidbox::config::{Config, StoreBackend};
use rapidbox::store::{self, PurgeRule, Store, StoreError, StoreOptions};

/// The configuration at `path`, or the embedded defaults.
pub fn config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    })
}

/// Refuses a command on redb's file when the configuration uses another
/// backend.
fn redb_only(config: &Config, command: &str) -> anyhow::Result<()> {
    match config.store.backend {
        StoreBackend::Redb => Ok(()),
        other => bail!(
            "rapidbox {command} works on the redb store's file; store.backend is {:?} \
             (back up and check a PostgreSQL database with its own tools, such as pg_dump \
             and pg_amcheck)",
            other.name()
        ),
    }
}

/// Opens the configured store: for redb an existing file only (never a
/// new one), explaining a held lock.
async fn open_configured(config: &Config) -> anyhow::Result<Store> {
    match config.store.backend {
        StoreBackend::Redb => open_existing(&config.store.path),
        _ => Ok(Store::open_configured(&config.store).await?),
    }
}

/// Opens an existing redb store (never creates one), explaining a held
/// lock.
fn open_existing(path: &Path) -> anyhow::Result<Store> {
    if !path.exists() {
        bail!("no store at {}", path.display());
    }
    match Store::open(path, StoreOptions::default()) {
        Err(StoreError::AlreadyOpen { .. }) => bail!(
            "{} is open in a running rapidbox: stop it first (retention purges while it runs)",
            path.display()
        ),
        other => Ok(other?),
    }
}

/// `rapidbox purge --before DATE`.
pub async fn purge(config: &Config, before: &str, including_owed: bool) -> anyhow::Result<()> {
    let before = parse_date(before)?;
    let store = open_configured(config).await?;
    let retention = store::Retention::from_config(&config.store);
    let rule = PurgeRule {
        before: Some(before),
        excess: 0,
        now: rapidbox::model::now_micros(),
        report_window: i64::try_from(retention.report_window.as_micros()).unwrap_or(i64::MAX),
        including_owed,
        after: None,
        max_purged: retention.batch.max(1),
        max_scanned: retention.batch.max(1).saturating_mul(4),
    };
    let done = store::purge_all(&store, rule, std::time::Duration::ZERO).await;
    store.close().await;
    let done = done?;
    println!(
        "purged {} message(s); kept {} still owed work",
        done.purged, done.kept
    );
    Ok(())
}

/// A date as `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]` (UTC), in
/// microseconds since the Unix epoch.
pub fn parse_date(text: &str) -> anyhow::Result<rapidbox::model::Micros> {
    let bad = || format!("{text:?} is not a date: give YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (UTC)");
    let text = text.trim().trim_end_matches('Z');
    let (date, clock) = text.split_once(['T', ' ']).unwrap_or((text, "00:00"));
    let numbers =
        |s: &str, sep: char| -> Option<Vec<u32>> { s.split(sep).map(|n| n.parse().ok()).collect() };
    let d = numbers(date, '-').with_context(bad)?;
    let c = numbers(clock, ':').with_context(bad)?;
    let ([y, m, day], [h, min, ..]) = (d.as_slice(), c.as_slice()) else {
        bail!(bad());
    };
    let sec = c.get(2).copied().unwrap_or(0);
    if c.len() > 3 {
        bail!(bad());
    }
    let month = u8::try_from(*m)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .with_context(bad)?;
    let year = i32::try_from(*y).with_context(bad)?;
    let small = |n: u32| u8::try_from(n).with_context(bad);
    let date = time::Date::from_calendar_date(year, month, small(*day)?).with_context(bad)?;
    let clock = time::Time::from_hms(small(*h)?, small(*min)?, small(sec)?).with_context(bad)?;
    let at = time::PrimitiveDateTime::new(date, clock).assume_utc();
    Ok(at.unix_timestamp().saturating_mul(1_000_000))
}

/// `rapidbox backup DEST`.
pub async fn backup(config: &Config, dest: &Path) -> anyhow::Result<()> {
    redb_only(config, "backup")?;
    let dest =
        std::path::absolute(dest).with_context(|| format!("cannot resolve {}", dest.display()))?;
    if dest.exists() {
        bail!("{} exists: give a new file", dest.display());
    }
    let path = &config.store.path;
    if !path.exists() {
        bail!("no store at {}", path.display());
    }
    match Store::open(path, StoreOptions::default()) {
        Ok(store) => {
            let (s, d) = (store.clone(), dest.clone());
            let copied = tokio::task::spawn_blocking(move || s.backup(&d)).await;
            store.close().await;
            let report = copied.context("the backup task failed")??;
            println!(
                "backup of the stopped store: {} message(s), {} bytes",
                report.messages, report.bytes
            );
        }
        Err(StoreError::AlreadyOpen { .. }) => through_daemon(config, &dest).await?,
        Err(e) => return Err(e.into()),
    }
    verify(&dest)
}

/// Asks the running daemon to write the backup (see `/admin/backup`).
async fn through_daemon(config: &Config, dest: &Path) -> anyhow::Result<()> {
    let Some(password) = &config.http.password else {
        bail!(
            "rapidbox is running on {}: a backup then goes through its HTTP server, \
             which needs [http] password set",
            config.store.path.display()
        );
    };
    let mut addr = config.http.listen;
    if addr.port() == 0 {
        bail!("[http] listen has port 0: cannot find the running rapidbox");
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("to", &dest.to_string_lossy())
        .append_pair("password", password)
        .finish();
    let request = hyper::Request::post(format!("http://{addr}/admin/backup"))
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(form)))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    eprintln!("rapidbox is running: asking it at {addr} to write the backup");
    let response = client
        .request(request)
        .await
        .with_context(|| format!("cannot reach rapidbox at {addr}"))?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body);
    if !status.is_success() {
        bail!("rapidbox refused the backup ({status}): {body}");
    }
    println!("backup of the running store: {body}");
    Ok(())
}

/// `rapidbox verify FILE`: opens the copy and checks its tables.
pub fn verify(path: &Path) -> anyhow::Result<()> {
    let report = store::verify(path)?;
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if !report.is_ok() {
        bail!(
            "{}: {} problem(s) in {} message(s)",
            path.display(),
            report.problem_count,
            report.messages
        );
    }
    println!(
        "{}: ok, schema {}, {} message(s), {} entries",
        path.display(),
        store::schema::SCHEMA_VERSION,
        report.messages,
        report.entries
    );
    Ok(())
}

/// `rapidbox compact`, on the configured store.
pub fn compact(config: &Config) -> anyhow::Result<()> {
    redb_only(config, "compact")?;
    let path = &config.store.path;
    if !path.exists() {
        bail!("no store at {}", path.display());
    }
    let done = match store::compact(path) {
        Err(StoreError::AlreadyOpen { .. }) => {
            bail!(
                "{} is open in a running rapidbox: stop it first",
                path.display()
            )
        }
        other => other?,
    };
    println!(
        "{}: {} bytes before, {} after",
        path.display(),
        done.before,
        done.after
    );
    Ok(())
}

/// The store file a command works on: `FILE` if given, else the
/// configured one (which only the redb backend has).
pub fn store_path(file: Option<PathBuf>, config: &Config) -> anyhow::Result<PathBuf> {
    match file {
        Some(file) => Ok(file),
        None => {
            redb_only(config, "verify")?;
            Ok(config.store.path.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_date;

    #[test]
    fn dates_parse_as_utc_and_nonsense_is_refused() {
        assert_eq!(parse_date("1970-01-02").unwrap(), 86_400_000_000);
        assert_eq!(
            parse_date("2026-12-01T10:30").unwrap(),
            parse_date("2026-12-01").unwrap() + (10 * 3600 + 30 * 60) * 1_000_000
        );
        assert_eq!(
            parse_date("2026-12-01T10:30:15Z").unwrap(),
            parse_date("2026-12-01T10:30").unwrap() + 15_000_000
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-1-1T25:00",
            "1-2",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
