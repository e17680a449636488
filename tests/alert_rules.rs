//! `docs/alerts.yml`, the Prometheus alerting rules docs/operations.md
//! recommends: Prometheus' `promtool check rules` accepts the file, and
//! every `rapidbox_*` series its expressions name is one a running
//! rapidbox exposes (a renamed metric would leave an alert that never
//! fires).
//!
//! Without promtool the first check prints that it is skipped (and fails
//! under `CI=true`).

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};

use support::in_process::{send, Rig};
use support::promtool;

const RULES: &str = include_str!("../docs/alerts.yml");

#[test]
fn promtool_accepts_the_alert_rules() {
    if !promtool::require_promtool("alert_rules::promtool_accepts_the_alert_rules") {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/alerts.yml");
    if let Err(problem) = promtool::check_rules(&path) {
        panic!("promtool refuses docs/alerts.yml: {problem}");
    }
}

/// The metric names in `text` that start with `rapidbox_`, histogram
/// series (`_bucket`, `_sum`, `_count`) named by their histogram.
fn rapidbox_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("rapidbox_") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        names.insert(base.to_owned());
    }
    names
}

#[tokio::test]
async fn every_series_the_alerts_name_is_one_rapidbox_exposes() {
    let rig = Rig::start("", "").await;
    // One request, so that the HTTP families have a series.
    let get = |path: &str| {
        Request::builder()
            .method(Method::GET)
            .uri(rig.url(path))
            .body(Full::<Bytes>::default())
            .expect("request")
    };
    assert_eq!(send(get("/health")).await.status, StatusCode::OK);
    let scrape = send(get("/metrics")).await;
    assert_eq!(scrape.status, StatusCode::OK, "{}", scrape.body);
    let exposed: BTreeSet<String> = scrape
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    let sampled = rapidbox_names(&scrape.body);
    // The rules without their comments.
    let rules: Vec<&str> = RULES
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let named = rapidbox_names(&rules.join("\n"));
    assert!(
        named.len() >= 10,
        "too few series found in the rules: {named:?}"
    );
    for name in &named {
        assert!(
            exposed.contains(name) || sampled.contains(name),
            "docs/alerts.yml names {name}, which rapidbox does not expose; it exposes {exposed:?}"
        );
    }
    rig.stop().await;
}
