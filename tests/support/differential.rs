//! What the differential tests compare: one run's requests at the
//! recording application and MTs at the SMSC side, keyed by phone, so that
//! smsbox's run and rapidbox's on the same input can be told apart field
//! by field.
//!
//! Each case of a differential test has a phone number of its own, and
//! every service URL carries it as `p=%p`: that is how a request is filed
//! under its case.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::service::Seen;

/// One run's view: the requests by phone, and the MTs by phone, each list
/// sorted (the order in which two services answer is not compared).
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Observed {
    pub requests: BTreeMap<String, Vec<String>>,
    pub mts: BTreeMap<String, Vec<String>>,
}

impl Observed {
    /// Files `requests` (by [`request_key`]) and `mts` (receiver, shown)
    /// under their phones.
    pub fn gather<'a>(
        requests: impl IntoIterator<Item = &'a Seen>,
        mts: impl IntoIterator<Item = (String, String)>,
    ) -> Observed {
        let mut seen = Observed::default();
        for request in requests {
            let (phone, shown) = request_key(request);
            seen.requests.entry(phone).or_default().push(shown);
        }
        for (receiver, shown) in mts {
            seen.mts.entry(receiver).or_default().push(shown);
        }
        for list in seen.requests.values_mut().chain(seen.mts.values_mut()) {
            list.sort();
        }
        seen
    }
}

/// A request as compared: method, target, X-Kannel-* headers and
/// Content-Type (X-Kannel-Time blanked: the runs differ by nature), the
/// body as bytes (escaped; post-xml's `<at>` blanked); filed under the
/// phone of its `p=` parameter.
pub fn request_key(seen: &Seen) -> (String, String) {
    let mut headers: Vec<String> = seen
        .headers
        .iter()
        .filter(|(name, _)| name.starts_with("x-kannel-") || name == "content-type")
        .map(|(name, value)| match name.as_str() {
            "x-kannel-time" => format!("{name}: (time)"),
            _ => format!("{name}: {value}"),
        })
        .collect();
    headers.sort();
    let mut body = seen.body.escape_ascii().to_string();
    if let (Some(a), Some(b)) = (body.find("<at>"), body.find("</at>")) {
        body.replace_range(a..b, "<at>(time)");
    }
    let phone = seen
        .target
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("p="))
        .map_or_else(|| "(no phone)".to_owned(), |p| p.replace("%2B", "+"));
    let shown = format!(
        "{} {}\n  {}\n  body: {body}",
        seen.method,
        seen.target,
        headers.join("\n  ")
    );
    (phone, shown)
}

/// Waits until `count()` has not changed for `quiet` and is at least
/// `at_least`, or `limit` has passed: the MTs of a run have all come
/// (a retried request's reply included, when `quiet` is longer than
/// `http-queue-delay`).
pub async fn settle(count: impl Fn() -> usize, at_least: usize, quiet: Duration, limit: Duration) {
    let started = Instant::now();
    let mut last = (count(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = count();
        if n != last.0 {
            last = (n, Instant::now());
        } else if n >= at_least && last.1.elapsed() > quiet {
            return;
        }
        if started.elapsed() > limit {
            return;
        }
    }
}
