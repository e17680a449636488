//! The registry's output: every family present, counters moving where
//! they are reported, label sets pre-registered.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::*;
use crate::store::StoreOptions;

/// The value of the sample `series` (name with labels, as written) in
/// `text`, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn reported_numbers_appear_in_the_exposition() {
    let link = Arc::new(LinkStatus::default());
    let metrics = Metrics::new(link.clone(), &["echo".to_owned()], None);
    metrics.messages.mo_ack(MoAck::Success);
    metrics.messages.mo_ack(MoAck::FailedTmp);
    metrics.messages.mo(true, MoResult::Stored);
    metrics
        .messages
        .mt(MtTransport::Push, MtKind::Reply, MtOutcome::Retry);
    metrics.messages.dlr(DlrKind::of_event(1));
    metrics
        .callbacks
        .report(CallbackKind::DlrUrl, CallbackOutcome::Failed);
    metrics.apps.failed("echo");
    // An app a reload added after the start gets a series of its own.
    metrics.apps.failed("added_by_reload");
    metrics.reloads.applied(3);
    metrics.reloads.refused();
    let timer = metrics.http.start("/router/receive", false);
    metrics.http.finish(timer, 200);
    link.connected.store(true, Ordering::Relaxed);
    link.in_flight.store(7, Ordering::Relaxed);

    let text = metrics.encode();
    let expect = [
        ("rapidbox_link_mo_acks_total{ack=\"success\"}", 1.0),
        ("rapidbox_link_mo_acks_total{ack=\"failed_tmp\"}", 1.0),
        ("rapidbox_link_mo_acks_total{ack=\"failed\"}", 0.0),
        (
            "rapidbox_mo_total{transport=\"kannel\",result=\"stored\"}",
            1.0,
        ),
        (
            "rapidbox_mo_total{transport=\"http\",result=\"refused\"}",
            0.0,
        ),
        (
            "rapidbox_mt_outcomes_total{transport=\"push\",kind=\"reply\",outcome=\"retry\"}",
            1.0,
        ),
        ("rapidbox_dlr_total{kind=\"delivered\"}", 1.0),
        (
            "rapidbox_callbacks_total{kind=\"dlr_url\",outcome=\"failed\"}",
            1.0,
        ),
        ("rapidbox_app_errors_total{app=\"echo\"}", 1.0),
        ("rapidbox_app_errors_total{app=\"added_by_reload\"}", 1.0),
        (
            "rapidbox_http_requests_total{endpoint=\"/router/receive\",status=\"200\"}",
            1.0,
        ),
        (
            "rapidbox_http_request_duration_seconds_count{endpoint=\"/router/receive\"}",
            1.0,
        ),
        ("rapidbox_config_reloads_total{result=\"applied\"}", 1.0),
        ("rapidbox_config_reloads_total{result=\"refused\"}", 1.0),
        ("rapidbox_config_generation", 3.0),
        ("rapidbox_link_connected", 1.0),
        ("rapidbox_link_mt_in_flight", 7.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
}

#[test]
fn the_store_is_read_when_scraped() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        crate::store::Store::open(&dir.path().join("s.redb"), StoreOptions::default()).unwrap();
    let metrics = Metrics::new(Arc::default(), &[], Some(&store));
    let text = metrics.encode();
    assert_eq!(sample(&text, "rapidbox_store_writable"), Some(1.0));
    assert_eq!(sample(&text, "rapidbox_store_queue_depth"), Some(0.0));
    assert_eq!(
        sample(&text, "rapidbox_store_commit_seconds_count"),
        Some(0.0)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(store.close());
    let text = metrics.encode();
    assert_eq!(
        sample(&text, "rapidbox_store_writable"),
        Some(0.0),
        "{text}"
    );
}
