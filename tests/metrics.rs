//! `/metrics`, `/health` and `/ready` of a rapidbox started in process:
//! counters move after real traffic (`/router/receive`, sendsms),
//! Prometheus' own `promtool check metrics` accepts the output, `/ready`
//! says which check fails, and `[http] password` or `[metrics] listen`
//! protects `/metrics` while the probes stay open.
//!
//! The bearerbox end of it (link state, MO acks, MT outcomes through a
//! real bearerbox and fakesmsc) is in `kannel_metrics.rs`.

mod support;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::AUTHORIZATION;
use hyper::{Request, StatusCode};

use support::http::sample;
use support::in_process::{send, Reply, Rig};
use support::ports::free_port;
use support::promtool;

const USERS: &str = "[[sendsms_users]]\nusername = \"shop\"\npassword = \"s3cret\"\n";

async fn get(url: String, bearer: Option<&str>) -> Reply {
    let mut request = Request::get(url);
    if let Some(token) = bearer {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    send(request.body(Full::new(Bytes::new())).unwrap()).await
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in the scrape:\n{text}"))
}

#[tokio::test]
async fn counters_move_after_real_traffic_and_promtool_accepts_the_output() {
    let rig = Rig::start("", USERS).await;
    let before = get(rig.url("/metrics"), None).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(
        before.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        before.content_type
    );
    let stored = "rapidbox_mo_total{transport=\"http\",result=\"stored\"}";
    assert_eq!(value(&before.body, stored), 0.0);

    for i in 0..3 {
        let reply = get(
            rig.url(&format!(
                "/router/receive?backend=test&sender=%2B4912{i}&message=hi"
            )),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let sendsms = get(
        rig.url("/cgi-bin/sendsms?username=shop&password=s3cret&from=5555&to=%2B4912&text=x"),
        None,
    )
    .await;
    assert!(sendsms.status.is_success(), "{sendsms:?}");
    let refused = get(
        rig.url("/cgi-bin/sendsms?username=shop&password=wrong&to=1&text=x"),
        None,
    )
    .await;

    let after = get(rig.url("/metrics"), None).await.body;
    assert_eq!(value(&after, stored), 3.0);
    let receive_ok = "rapidbox_http_requests_total{endpoint=\"/router/receive\",status=\"200\"}";
    assert_eq!(value(&after, receive_ok), 3.0);
    let sendsms_ok = format!(
        "rapidbox_http_requests_total{{endpoint=\"/cgi-bin/sendsms\",status=\"{}\"}}",
        sendsms.status.as_u16()
    );
    assert_eq!(value(&after, &sendsms_ok), 1.0);
    let sendsms_refused = format!(
        "rapidbox_http_requests_total{{endpoint=\"/cgi-bin/sendsms\",status=\"{}\"}}",
        refused.status.as_u16()
    );
    assert_eq!(value(&after, &sendsms_refused), 1.0);
    assert_eq!(
        value(
            &after,
            "rapidbox_http_request_duration_seconds_count{endpoint=\"/router/receive\"}"
        ),
        3.0
    );
    // Three MOs with their replies and one sendsms: four units, each in
    // a committed transaction.
    assert!(
        value(&after, "rapidbox_store_units_total") >= 4.0,
        "{after}"
    );
    assert!(
        value(&after, "rapidbox_store_commit_seconds_count") >= 1.0,
        "{after}"
    );
    assert!(
        value(&after, "rapidbox_store_batch_units_sum") >= 4.0,
        "{after}"
    );
    assert_eq!(value(&after, "rapidbox_store_writable"), 1.0);
    assert_eq!(
        value(&after, "rapidbox_app_errors_total{app=\"echo\"}"),
        0.0
    );

    if promtool::require_promtool("metrics::counters_move_after_real_traffic") {
        if let Err(problem) = promtool::check_metrics(&after) {
            panic!("{problem}\nthe scrape:\n{after}");
        }
    }
    rig.stop().await;
}

#[tokio::test]
async fn health_and_ready_answer_without_the_password() {
    let rig = Rig::start("password = \"pw\"", "").await;
    let health = get(rig.url("/health"), None).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = get(rig.url("/ready"), None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let json = ready.json();
    assert_eq!(json["ready"], true);
    assert_eq!(json["checks"]["store"], "writable");
    assert_eq!(json["checks"]["kannel"], "disabled");
    rig.stop().await;
}

#[tokio::test]
async fn ready_is_503_naming_the_link_while_the_bearerbox_is_unreachable() {
    // Nothing listens on this port: the link keeps trying and stays down.
    let kannel = format!(
        "host = \"127.0.0.1\"\nport = {}\nreconnect_max_secs = 1",
        free_port()
    );
    let rig = Rig::start_with_kannel(&kannel, "", "").await;
    let ready = get(rig.url("/ready"), None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.body
    );
    let json = ready.json();
    assert_eq!(json["ready"], false);
    assert_eq!(json["checks"]["kannel"], "not connected");
    assert_eq!(json["checks"]["store"], "writable");
    assert_eq!(get(rig.url("/health"), None).await.status, StatusCode::OK);
    let scrape = get(rig.url("/metrics"), None).await.body;
    assert_eq!(value(&scrape, "rapidbox_link_connected"), 0.0);
    rig.stop().await;
}

#[tokio::test]
async fn the_http_password_protects_metrics_on_the_main_listener() {
    let rig = Rig::start("password = \"pw\"", "").await;
    assert_eq!(
        get(rig.url("/metrics"), None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(rig.url("/metrics"), Some("wrong")).await.status,
        StatusCode::FORBIDDEN
    );
    let scrape = get(rig.url("/metrics"), Some("pw")).await;
    assert_eq!(scrape.status, StatusCode::OK);
    assert!(scrape.body.contains("rapidbox_mo_total"), "{}", scrape.body);
    // The refusals were counted too.
    assert_eq!(
        value(
            &scrape.body,
            "rapidbox_http_requests_total{endpoint=\"/metrics\",status=\"403\"}"
        ),
        2.0
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_metrics_listener_serves_only_the_operations_endpoints() {
    let rig = Rig::start("password = \"pw\"", "[metrics]\nlisten = \"127.0.0.1:0\"\n").await;
    let ops = rig.metrics_addr.expect("[metrics] listen is set");
    assert_ne!(ops, rig.addr);
    let at = |path: &str| format!("http://{ops}{path}");
    // No password there: the address is the protection.
    let scrape = get(at("/metrics"), None).await;
    assert_eq!(scrape.status, StatusCode::OK);
    assert!(
        scrape.body.contains("rapidbox_store_writable 1"),
        "{}",
        scrape.body
    );
    assert_eq!(get(at("/health"), None).await.status, StatusCode::OK);
    assert_eq!(get(at("/ready"), None).await.status, StatusCode::OK);
    assert_eq!(
        get(
            at("/router/receive?backend=t&sender=1&message=x"),
            Some("pw")
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // And the main listener no longer serves /metrics, even with the
    // password.
    assert_eq!(
        get(rig.url("/metrics"), Some("pw")).await.status,
        StatusCode::NOT_FOUND
    );
    rig.stop().await;
}
