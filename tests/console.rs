//! The web console (`/router/console`), against a real rapidbox (echo app,
//! a redb file in a temporary directory, no bearerbox):
//!
//! - in headless Chromium over WebDriver (`support::browser`; skipped
//!   without Chromium, failing under CI): logging in, a test message and
//!   its echo in the log, search, replies (and the unknown-number error),
//!   paging through 45 messages, live updates without a reload, message
//!   text that tries to inject HTML shown as text, the failed-login limit,
//!   logging out;
//! - with a plain HTTP client: CSRF refusals, login required, a disabled
//!   console, bad parameters, the message page, `/router/status` as HTML,
//!   `rapidbox hash-password`.
//!
//! `CONSOLE_SCREENSHOT=docs/console.png cargo test --test console
//! screenshot` writes the README's screenshot.

mod support;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use fantoccini::{Client, Locator};
use http_body_util::Full;
use hyper::header::{ACCEPT, CONTENT_TYPE, COOKIE};
use hyper::{Method, Request, StatusCode};

use rapidbox::model::{Connection, Direction, Message, Status};
use rapidbox::store::{Op, Store, Unit};
use support::browser::{require_browser, Browser};
use support::in_process::{send, Reply, Rig};

/// Bound on anything a test waits for that has no timer of its own.
const WAIT: Duration = Duration::from_secs(20);

/// Clicks tried on an element a live refresh replaced under the test's
/// hands; more than a few means the log never stops refreshing.
const CLICK_TRIES: usize = 3;

const USER: &str = "admin";
const PASSWORD: &str = "correct horse battery";

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took over {WAIT:?}"))
}

/// The console user's hash, made once per test binary (argon2 is slow
/// on purpose).
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| rapidbox::hash_password(PASSWORD).expect("hash"))
}

// --- rapidbox in-process ----------------------------------------------------

/// rapidbox with the echo app and one console user; `extra` is added to
/// the configuration.
async fn console_rig(extra: &str) -> Rig {
    Rig::start(
        "",
        &format!(
            "[[console_users]]\nusername = \"{USER}\"\npassword_hash = \"{}\"\n{extra}",
            password_hash()
        ),
    )
    .await
}

/// Stores `n` incoming messages `message 1` .. `message n` directly, as
/// handled (H): a received (R) one would be routed by rapidbox's resume,
/// which finishes the routing of MOs left unrouted.
async fn fill(rig: &Rig, n: usize) {
    let store = rig.store();
    let mut unit = Unit::new();
    for i in 1..=n {
        let mut m = Message::new(
            store.allocate_id(),
            Connection::new("tigo", &format!("+2567000{i:05}")),
            Direction::Incoming,
            format!("message {i}"),
        );
        m.status = Status::Handled;
        unit.push(Op::put(m));
    }
    let _outcome = bounded("fill", store.commit(unit)).await.expect("commit");
}

async fn all_messages(store: &Store) -> Vec<Message> {
    store.recent_messages(None, 10_000).await.expect("read")
}

// --- a plain HTTP client ------------------------------------------------------

async fn get(url: &str, cookie: &str, accept: Option<&str>) -> Reply {
    let mut r = Request::builder().method(Method::GET).uri(url);
    if !cookie.is_empty() {
        r = r.header(COOKIE, cookie);
    }
    if let Some(accept) = accept {
        r = r.header(ACCEPT, accept);
    }
    send(r.body(Full::default()).expect("request")).await
}

async fn post(url: &str, cookie: &str, pairs: &[(&str, &str)]) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut r = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if !cookie.is_empty() {
        r = r.header(COOKIE, cookie);
    }
    send(r.body(Full::new(Bytes::from(body))).expect("request")).await
}

/// `name=value` of the first `Set-Cookie` for `name`.
fn cookie_pair(reply: &Reply, name: &str) -> String {
    reply
        .cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", reply.cookies))
        .to_owned()
}

/// The value of the first hidden `csrf` field in `html`.
fn csrf_field(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field in {html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("closing quote")].to_owned()
}

/// Logs in over plain HTTP; returns the session cookie and the page's
/// CSRF token.
async fn http_login(rig: &Rig) -> (String, String) {
    let page = get(&rig.url("/router/console/login"), "", None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let login_cookie = cookie_pair(&page, "rapidbox_login");
    let token = csrf_field(&page.body);
    let done = post(
        &rig.url("/router/console/login"),
        &login_cookie,
        &[("csrf", &token), ("username", USER), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location, "/router/console");
    let set = done
        .cookies
        .iter()
        .find(|c| c.starts_with("rapidbox_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/router"] {
        assert!(set.contains(attribute), "{attribute} missing from {set}");
    }
    assert!(
        !set.contains("Secure"),
        "Secure without secure_cookie: {set}"
    );
    let session = cookie_pair(&done, "rapidbox_session");
    // 32 random bytes, hex.
    assert_eq!(session.len(), "rapidbox_session=".len() + 64, "{session}");
    let console = get(&rig.url("/router/console"), &session, None).await;
    assert_eq!(console.status, StatusCode::OK, "{}", console.body);
    (session, csrf_field(&console.body))
}

// --- in the browser -----------------------------------------------------------

async fn start_browser(rig: &Rig) -> Browser {
    bounded("browser start", Browser::start(rig.dir.path())).await
}

async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    bounded(css, client.wait().for_element(Locator::Css(css)))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

async fn fill_in(client: &Client, css: &str, text: &str) {
    let field = find(client, css).await;
    field.clear().await.unwrap_or_else(|e| panic!("{css}: {e}"));
    field
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
}

/// Waits until the live log is not being refreshed: a refresh replaces
/// every element of `#log`, so an element found during one (or just
/// before one) goes stale before it can be clicked. Pages without a live
/// log are settled at once.
async fn wait_for_settled_log(client: &Client) {
    const SETTLED: &str = "var log = document.getElementById('log'); \
        return !log || !window.EventSource || log.getAttribute('data-refresh') === 'idle';";
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(serde_json::Value::Bool(true)) = client.execute(SETTLED, Vec::new()).await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("the live log never settled");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Clicks what `css` names (every click here submits a form or follows a
/// link) and waits until the browser has left the page: until then,
/// `find` could return an element of the old page that goes stale under
/// the test's hands. Before clicking it waits for the live log to settle
/// (a refresh would replace a link in the log between finding and
/// clicking it: the stale element this test once failed on); a refresh
/// that starts between the two anyway (a commit the test did not make)
/// is waited out and the click tried again.
async fn click(client: &Client, css: &str) {
    let old_page = find(client, "html").await;
    let mut tries = 0;
    loop {
        wait_for_settled_log(client).await;
        match find(client, css).await.click().await {
            Ok(()) => break,
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference
                    && tries + 1 < CLICK_TRIES =>
            {
                tries += 1;
            }
            Err(e) => panic!("{css}: {e}"),
        }
    }
    bounded(&format!("leaving the page after clicking {css}"), async {
        // A stale (or otherwise unreadable) root element: the page is gone.
        while old_page.tag_name().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

async fn body_text(client: &Client) -> String {
    find(client, "body")
        .await
        .text()
        .await
        .unwrap_or_else(|e| panic!("body text: {e}"))
}

async fn run_js(client: &Client, script: &str) -> serde_json::Value {
    bounded(script, client.execute(script, Vec::new()))
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Waits until the page's text contains `text`. A page being replaced
/// (a form's answer loading) makes reads fail for a moment; they are
/// tried again.
async fn wait_for_text(client: &Client, text: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = match client
            .execute(
                "return document.body ? document.body.innerText : '';",
                Vec::new(),
            )
            .await
        {
            Ok(serde_json::Value::String(now)) => now,
            _ => String::new(),
        };
        if now.contains(text) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{text:?} never appeared; the page says:\n{now}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The texts of the log's rows, in page order.
async fn row_texts(client: &Client) -> Vec<String> {
    let value = run_js(
        client,
        "return Array.from(document.querySelectorAll('tr.message td.text')).map(td => td.textContent);",
    )
    .await;
    serde_json::from_value(value).expect("a list of texts")
}

async fn browser_login(client: &Client, rig: &Rig, password: &str) {
    bounded("goto", client.goto(&rig.url("/router/console")))
        .await
        .expect("goto");
    // Not logged in: the console sends the browser to the login page.
    find(client, "form#login").await;
    fill_in(client, "input[name=username]", USER).await;
    fill_in(client, "input[name=password]", password).await;
    click(client, "form#login button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_logs_in_sends_searches_replies_and_logs_out() {
    if !require_browser("browser_logs_in_sends_searches_replies_and_logs_out") {
        return;
    }
    let rig = console_rig("").await;
    let browser = start_browser(&rig).await;
    let c = &browser.client;

    browser_login(c, &rig, PASSWORD).await;
    find(c, "form#send").await;
    wait_for_text(c, "Logged in as admin").await;
    assert_eq!(
        find(c, "form#send input[name=sender]")
            .await
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("12065551212"),
        "httprouter's default sender"
    );

    // A test message through the echo app: it and its echo in the log.
    fill_in(c, "form#send input[name=text]", "hello rapidbox").await;
    click(c, "form#send button[type=submit]").await;
    wait_for_text(c, "Test message sent").await;
    wait_for_text(c, "You said: hello rapidbox").await;
    let rows = row_texts(c).await;
    assert_eq!(rows[..2], ["You said: hello rapidbox", "hello rapidbox"]);
    let text = body_text(c).await;
    assert!(text.contains("H — handled"), "{text}");
    assert!(text.contains("console"), "{text}");
    assert!(text.contains("12065551212"), "{text}");
    let stored = all_messages(rig.store()).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].connection.backend, "console");
    assert_eq!(stored[0].in_response_to, Some(stored[1].id));

    // A second conversation, then a search that only it matches: all
    // keywords must match, in any of text, answered text and identity.
    fill_in(c, "form#send input[name=sender]", "+256 700 111222").await;
    fill_in(c, "form#send input[name=text]", "Goodbye Moon").await;
    click(c, "form#send button[type=submit]").await;
    wait_for_text(c, "You said: Goodbye Moon").await;
    fill_in(c, "form#search input[name=q]", "moon 256700").await;
    click(c, "form#search button[type=submit]").await;
    wait_for_text(c, "2 matches").await;
    let rows = row_texts(c).await;
    assert_eq!(rows, ["You said: Goodbye Moon", "Goodbye Moon"]);
    // The reply matches by the text it answers.
    fill_in(c, "form#search input[name=q]", "hello 12065551212").await;
    click(c, "form#search button[type=submit]").await;
    wait_for_text(c, "2 matches").await;
    fill_in(c, "form#search input[name=q]", "hello moon").await;
    click(c, "form#search button[type=submit]").await;
    wait_for_text(c, "No message matches.").await;

    // A reply to a number the system knows, then to one it does not.
    bounded("goto", c.goto(&rig.url("/router/console")))
        .await
        .expect("goto");
    fill_in(c, "form#reply input[name=recipient]", "256700111222").await;
    fill_in(
        c,
        "form#reply input[name=reply_text]",
        "a word from the operator",
    )
    .await;
    click(c, "form#reply button[type=submit]").await;
    wait_for_text(c, "Reply queued.").await;
    wait_for_text(c, "a word from the operator").await;
    let reply = all_messages(rig.store())
        .await
        .into_iter()
        .find(|m| m.text == "a word from the operator")
        .expect("the reply is stored");
    assert_eq!(reply.direction, Direction::Outgoing);
    assert_eq!(reply.connection.backend, "console");
    assert_eq!(reply.connection.address, "+256 700 111222");
    assert_eq!(reply.status, Status::Queued);

    fill_in(c, "form#reply input[name=recipient]", "999").await;
    fill_in(c, "form#reply input[name=reply_text]", "to nobody").await;
    click(c, "form#reply button[type=submit]").await;
    wait_for_text(c, "This number isn't in the system").await;
    assert!(all_messages(rig.store())
        .await
        .iter()
        .all(|m| m.text != "to nobody"));

    // A message's page.
    click(c, "tr.message td a").await;
    find(c, "#kannel").await;
    wait_for_text(c, "Delivery errors").await;

    // Logging out ends the session: the console asks for a login again.
    click(c, "header form button[type=submit]").await;
    wait_for_text(c, "Logged out.").await;
    bounded("goto", c.goto(&rig.url("/router/console")))
        .await
        .expect("goto");
    find(c, "form#login").await;

    browser.close().await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pages_through_45_messages_and_updates_live() {
    if !require_browser("browser_pages_through_45_messages_and_updates_live") {
        return;
    }
    let rig = console_rig("").await;
    fill(&rig, 45).await;
    let browser = start_browser(&rig).await;
    let c = &browser.client;
    browser_login(c, &rig, PASSWORD).await;
    wait_for_text(c, "Page 1 of 3").await;
    let first: Vec<String> = (26..=45).rev().map(|i| format!("message {i}")).collect();
    assert_eq!(row_texts(c).await, first, "newest first, 20 a page");
    click(c, "a[rel=next]").await;
    wait_for_text(c, "Page 2 of 3").await;
    let second: Vec<String> = (6..=25).rev().map(|i| format!("message {i}")).collect();
    assert_eq!(row_texts(c).await, second);
    click(c, "a[rel=next]").await;
    wait_for_text(c, "Page 3 of 3").await;
    let third: Vec<String> = (1..=5).rev().map(|i| format!("message {i}")).collect();
    assert_eq!(row_texts(c).await, third);
    assert!(
        c.find(Locator::Css("a[rel=next]")).await.is_err(),
        "no page 4"
    );
    click(c, "a[rel=prev]").await;
    wait_for_text(c, "Page 2 of 3").await;

    // Live: a message received over HTTP appears on page 1 without a
    // reload (the marker set in this page survives).
    bounded("goto", c.goto(&rig.url("/router/console")))
        .await
        .expect("goto");
    wait_for_text(c, "Page 1 of 3").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while run_js(
        c,
        "return document.documentElement.getAttribute('data-live');",
    )
    .await
        != serde_json::json!("on")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the event stream never opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run_js(c, "window.rapidboxMarker = 42; return null;").await;
    let received = get(
        &rig.url("/router/receive?backend=tigo&sender=%2B256777&message=live+one"),
        "",
        None,
    )
    .await;
    assert_eq!(received.status, StatusCode::OK, "{}", received.body);
    wait_for_text(c, "You said: live one").await;
    assert_eq!(
        run_js(c, "return window.rapidboxMarker;").await,
        serde_json::json!(42),
        "the page was reloaded instead of updated"
    );
    assert_eq!(row_texts(c).await[..2], ["You said: live one", "live one"]);

    browser.close().await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_shows_injected_html_as_text() {
    if !require_browser("browser_shows_injected_html_as_text") {
        return;
    }
    let rig = console_rig("").await;
    let attacks = [
        "<script>window.rapidboxXss = 1; alert(1)</script>",
        "\"><img src=x onerror=\"window.rapidboxXss = 2; alert(2)\">",
    ];
    for attack in attacks {
        let url = format!(
            "/router/receive?{}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("backend", "tigo"),
                    ("sender", "+256 700 666"),
                    ("message", attack)
                ])
                .finish()
        );
        let r = get(&rig.url(&url), "", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let browser = start_browser(&rig).await;
    let c = &browser.client;
    browser_login(c, &rig, PASSWORD).await;
    wait_for_text(c, "Page 1 of 1").await;
    let text = body_text(c).await;
    for attack in attacks {
        assert!(
            text.contains(attack),
            "{attack:?} not shown as text in:\n{text}"
        );
    }
    // Nothing was injected: no element from the texts, no script ran, no
    // alert is open.
    let injected = run_js(
        c,
        "return document.querySelectorAll('td script, td img, dd script, dd img').length;",
    )
    .await;
    assert_eq!(injected, serde_json::json!(0));
    assert_eq!(
        run_js(c, "return typeof window.rapidboxXss;").await,
        serde_json::json!("undefined")
    );
    assert!(c.get_alert_text().await.is_err(), "an alert is open");
    // The same on a message's page, and in search results.
    click(c, "tr.message td a").await;
    find(c, "#text").await;
    let text = body_text(c).await;
    assert!(text.contains("alert("), "{text}");
    assert_eq!(
        run_js(
            c,
            "return document.querySelectorAll('dd img, dd script').length;"
        )
        .await,
        serde_json::json!(0)
    );
    bounded("goto", c.goto(&rig.url("/router/console?q=onerror")))
        .await
        .expect("goto");
    wait_for_text(c, "matches").await;
    assert!(body_text(c).await.contains(attacks[1]));
    assert_eq!(
        run_js(c, "return typeof window.rapidboxXss;").await,
        serde_json::json!("undefined")
    );

    browser.close().await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_failed_logins_are_limited() {
    if !require_browser("browser_failed_logins_are_limited") {
        return;
    }
    let rig = console_rig("").await;
    let browser = start_browser(&rig).await;
    let c = &browser.client;
    for attempt in 1..=5 {
        browser_login(c, &rig, "wrong").await;
        wait_for_text(c, "Wrong username or password.").await;
        assert!(
            !body_text(c).await.contains("Too many"),
            "refused already at attempt {attempt}"
        );
    }
    // The sixth, even with the right password, is refused for a while.
    browser_login(c, &rig, PASSWORD).await;
    wait_for_text(c, "Too many failed logins").await;
    wait_for_text(c, "Try again in 15 minutes").await;
    find(c, "form#login").await;

    browser.close().await;
    rig.stop().await;
}

/// Writes the README's screenshot when `CONSOLE_SCREENSHOT` names a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot() {
    let Some(path) = std::env::var_os("CONSOLE_SCREENSHOT") else {
        eprintln!("screenshot: skipped: set CONSOLE_SCREENSHOT=docs/console.png to write it");
        return;
    };
    if !require_browser("screenshot") {
        return;
    }
    let rig = console_rig("").await;
    for (backend, sender, text) in [
        (
            "tigo",
            "+256 772 123456",
            "Hello, is the clinic open on Saturday?",
        ),
        ("mtn", "+256 701 987654", "STOP"),
        (
            "tigo",
            "+256 772 555000",
            "REPORT malaria 3 cases village B",
        ),
        ("console", "12065551212", "test from the console"),
    ] {
        let url = format!(
            "/router/receive?{}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("backend", backend), ("sender", sender), ("message", text)])
                .finish()
        );
        get(&rig.url(&url), "", None).await;
    }
    let browser = start_browser(&rig).await;
    let c = &browser.client;
    browser_login(c, &rig, PASSWORD).await;
    wait_for_text(c, "Page 1 of 1").await;
    let png = bounded("screenshot", c.screenshot())
        .await
        .expect("screenshot");
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!(
        "screenshot: wrote {}",
        std::path::Path::new(&path).display()
    );
    browser.close().await;
    rig.stop().await;
}

// --- over plain HTTP ------------------------------------------------------------

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    let rig = console_rig("").await;
    let (session, token) = http_login(&rig).await;
    for (path, pairs) in [
        ("/router/console/send", vec![("text", "no token")]),
        (
            "/router/console/reply",
            vec![("recipient", "12065551212"), ("reply_text", "no")],
        ),
        ("/router/console/logout", vec![]),
    ] {
        let r = post(&rig.url(path), &session, &pairs).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
        assert!(r.body.contains("security token"), "{}", r.body);
        let mut wrong = pairs.clone();
        // The same token with its last digit changed.
        let last = if token.ends_with('0') { '1' } else { '0' };
        let bad = format!("{}{last}", &token[..63]);
        wrong.push(("csrf", &bad));
        let r = post(&rig.url(path), &session, &wrong).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} with a wrong token");
    }
    assert!(
        all_messages(rig.store()).await.is_empty(),
        "nothing was sent"
    );
    // The session still works, and with its token the same POST goes.
    let r = post(
        &rig.url("/router/console/send"),
        &session,
        &[("csrf", &token), ("text", "with token")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        all_messages(rig.store()).await.len(),
        2,
        "the message and its echo"
    );
    // A login form without its token is refused too.
    let r = post(
        &rig.url("/router/console/login"),
        "",
        &[("username", USER), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    rig.stop().await;
}

#[tokio::test]
async fn every_console_page_needs_a_login() {
    let rig = console_rig("").await;
    fill(&rig, 1).await;
    for path in [
        "/router/console",
        "/router/console/",
        "/router/console/message/1",
    ] {
        let r = get(&rig.url(path), "", None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.location, "/router/console/login", "{path}");
    }
    let forged = "rapidbox_session=".to_owned() + &"ab".repeat(32);
    let r = get(&rig.url("/router/console"), &forged, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "a made-up session");
    for path in ["/router/console/fragment", "/router/console/events"] {
        let r = get(&rig.url(path), "", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = post(&rig.url("/router/console/send"), "", &[("text", "x")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(all_messages(rig.store()).await.len(), 1, "nothing sent");
    rig.stop().await;
}

/// A username longer than any user may have is refused as a bad field:
/// nothing of it is counted, kept or shown back, and the real user's
/// budget of failed logins is untouched.
#[tokio::test]
async fn a_huge_username_is_refused_and_not_echoed() {
    let rig = console_rig("").await;
    let page = get(&rig.url("/router/console/login"), "", None).await;
    let login_cookie = cookie_pair(&page, "rapidbox_login");
    let token = csrf_field(&page.body);
    let huge = format!("{USER}{}", "x".repeat(40_000));
    for _ in 0..6 {
        let r = post(
            &rig.url("/router/console/login"),
            &login_cookie,
            &[("csrf", &token), ("username", &huge), ("password", "guess")],
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains("at most 64 characters"), "{}", r.body);
        assert!(!r.body.contains("xxxxxxxxxx"), "the username is shown back");
    }
    // Six refusals, none counted: the real user still logs in.
    let (session, _) = http_login(&rig).await;
    assert!(!session.is_empty());
    rig.stop().await;
}

#[tokio::test]
async fn secure_cookie_marks_the_cookies_secure() {
    let rig = console_rig("[console]\nsecure_cookie = true\n").await;
    let page = get(&rig.url("/router/console/login"), "", None).await;
    let login_cookie = cookie_pair(&page, "rapidbox_login");
    assert!(page.cookies[0].ends_with("; Secure"), "{:?}", page.cookies);
    let done = post(
        &rig.url("/router/console/login"),
        &login_cookie,
        &[
            ("csrf", &csrf_field(&page.body)),
            ("username", USER),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let session = done
        .cookies
        .iter()
        .find(|c| c.starts_with("rapidbox_session="))
        .expect("a session cookie");
    assert!(session.ends_with("; Secure"), "{session}");
    rig.stop().await;
}

#[tokio::test]
async fn without_console_users_the_console_is_disabled() {
    let rig = Rig::start("", "").await;
    for path in ["/router/console", "/router/console/login"] {
        let r = get(&rig.url(path), "", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.body.contains("console is disabled"), "{}", r.body);
    }
    let r = post(
        &rig.url("/router/console/login"),
        "",
        &[("username", "admin"), ("password", "x")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    rig.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let rig = console_rig("").await;
    let (session, token) = http_login(&rig).await;
    let r = get(&rig.url("/router/console?page=zero"), &session, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("page: must be a page number"), "{}", r.body);
    let r = get(&rig.url("/router/console?page=0"), &session, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Past the last page: the last page, as httprouter's paginator.
    let r = get(&rig.url("/router/console?page=99"), &session, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Page 1 of 1"));

    let r = post(
        &rig.url("/router/console/send"),
        &session,
        &[("csrf", &token), ("text", "  ")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("text: required"), "{}", r.body);
    let long = "x".repeat(1601);
    let r = post(
        &rig.url("/router/console/send"),
        &session,
        &[("csrf", &token), ("sender", "+-+"), ("text", &long)],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("sender: has no letters or digits"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("text: at most 1600 characters"),
        "{}",
        r.body
    );
    let r = post(
        &rig.url("/router/console/reply"),
        &session,
        &[("csrf", &token), ("recipient", ""), ("reply_text", "")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("recipient: required"), "{}", r.body);
    assert!(r.body.contains("reply_text: required"), "{}", r.body);
    for path in [
        "/router/console/message/abc",
        "/router/console/message/999",
        "/router/console/nope",
    ] {
        let r = get(&rig.url(path), &session, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = get(&rig.url("/router/console/send"), &session, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.allow, "POST");
    assert!(all_messages(rig.store()).await.is_empty());
    rig.stop().await;
}

#[tokio::test]
async fn a_reply_goes_through_the_numbers_backend_and_its_transport() {
    // tigo is a pull backend: the reply waits in /router/outbox.
    let rig = console_rig("[backends.tigo]\ntransport = \"pull\"\n").await;
    let r = get(
        &rig.url("/router/receive?backend=tigo&sender=%2B250-788+383383&message=hi"),
        "",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (session, token) = http_login(&rig).await;
    let r = post(
        &rig.url("/router/console/reply"),
        &session,
        &[
            ("csrf", &token),
            ("recipient", "+250 788 383383"),
            ("reply_text", "from the console"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location, "/router/console?notice=replied");
    let outbox = get(&rig.url("/router/outbox?backend=tigo"), "", None).await;
    assert!(outbox.body.contains("from the console"), "{}", outbox.body);
    let reply = all_messages(rig.store())
        .await
        .into_iter()
        .find(|m| m.text == "from the console")
        .expect("stored");
    assert_eq!(
        reply.connection.address, "+250-788 383383",
        "the address as it came"
    );
    assert_eq!(reply.in_response_to, None);

    // The message page shows the Kannel fields when there are some, and
    // its reply form names the backend.
    let mo = all_messages(rig.store())
        .await
        .into_iter()
        .find(|m| m.text == "hi")
        .expect("stored");
    let page = get(
        &rig.url(&format!("/router/console/message/{}", mo.id)),
        &session,
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("name=\"backend\" value=\"tigo\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("Not a Kannel message"), "{}", page.body);
    rig.stop().await;
}

#[tokio::test]
async fn the_message_page_shows_kannel_fields_errors_and_reports() {
    let rig = console_rig("").await;
    let store = rig.store();
    let mut m = Message::new(
        store.allocate_id(),
        Connection::new("smsc1", "+4912345"),
        Direction::Outgoing,
        "an MT",
    );
    m.status = Status::Errored;
    m.kannel = Some(rapidbox::model::KannelInfo {
        uuid: Some([0x11; 16]),
        smsc_id: Some("smsc1".into()),
        coding: 2,
        dlr_mask: 27,
        ..Default::default()
    });
    let id = m.id;
    let unit =
        Unit::new()
            .with(Op::put(m))
            .with(Op::AddDeliveryError(rapidbox::model::DeliveryError {
                message_id: id,
                time: rapidbox::model::now_micros(),
                log: "HTTP 500 <b>from relay</b>".into(),
            }));
    let _outcome = bounded("commit", store.commit(unit)).await.expect("commit");
    let (session, _) = http_login(&rig).await;
    let page = get(
        &rig.url(&format!("/router/console/message/{id}")),
        &session,
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    for expected in [
        "11111111-1111-1111-1111-111111111111",
        "smsc1",
        "2 (UCS-2)",
        "E — errored (will retry)",
        "HTTP 500 &lt;b&gt;from relay&lt;/b&gt;",
    ] {
        assert!(
            page.body.contains(expected),
            "{expected} not in {}",
            page.body
        );
    }
    rig.stop().await;
}

#[tokio::test]
async fn status_answers_browsers_in_html_and_monitors_as_before() {
    let rig = Rig::start("", "").await;
    let browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let html = get(&rig.url("/router/status"), "", Some(browser_accept)).await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(
        html.content_type.starts_with("text/html"),
        "{}",
        html.content_type
    );
    assert!(
        html.body
            .contains("<span id=\"verdict\" class=\"ok\">OK</span>"),
        "{}",
        html.body
    );
    let text = get(&rig.url("/router/status"), "", None).await;
    assert_eq!(
        text.body,
        "STATUS: OK\nPENDING: 0 messages queued for more than 15 minutes\n"
    );
    let json = get(
        &rig.url("/router/status?format=json"),
        "",
        Some(browser_accept),
    )
    .await;
    assert!(json.content_type.starts_with("application/json"));
    rig.stop().await;
}

#[test]
fn hash_password_prints_a_hash_of_stdin() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapidbox"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rapidbox runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"s3cret pass\n")
        .expect("write");
    let out = child.wait_with_output().expect("finishes");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).expect("UTF-8");
    let hash = hash.trim_end();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("s3cret"));
    // Checked by argon2 itself, as the console checks a login.
    use argon2::{PasswordHash, PasswordVerifier};
    let parsed = PasswordHash::new(hash).expect("a PHC string");
    let verify = |password: &str| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    };
    assert!(verify("s3cret pass"));
    assert!(!verify("s3cret pass\n"));

    let empty = Command::new(env!("CARGO_BIN_EXE_rapidbox"))
        .arg("hash-password")
        .stdin(Stdio::null())
        .output()
        .expect("rapidbox runs");
    assert!(!empty.status.success(), "an empty password is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_logins_get_no_more_than_five_tries() {
    let rig = console_rig("").await;
    let page = get(&rig.url("/router/console/login"), "", None).await;
    let cookie = cookie_pair(&page, "rapidbox_login");
    let token = csrf_field(&page.body);
    let url = rig.url("/router/console/login");
    let tries = (0..10).map(|i| {
        let (url, cookie, token) = (url.clone(), cookie.clone(), token.clone());
        tokio::spawn(async move {
            let password = format!("guess {i}");
            post(
                &url,
                &cookie,
                &[
                    ("csrf", &token),
                    ("username", USER),
                    ("password", &password),
                ],
            )
            .await
            .status
        })
    });
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.expect("task"));
    }
    let wrong = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((wrong, refused), (5, 5), "{statuses:?}");
    rig.stop().await;
}

#[tokio::test]
async fn a_number_on_several_backends_is_replied_to_on_the_one_asked() {
    let rig = console_rig("[backends.default]\ntransport = \"pull\"\n").await;
    for backend in ["airtel", "mtn"] {
        let url = format!("/router/receive?backend={backend}&sender=256700000001&message=hi");
        assert_eq!(get(&rig.url(&url), "", None).await.status, StatusCode::OK);
    }
    let (session, token) = http_login(&rig).await;
    let reply = |backend: &'static str, text: &'static str| {
        let (session, token, url) = (
            session.clone(),
            token.clone(),
            rig.url("/router/console/reply"),
        );
        async move {
            let mut pairs = vec![
                ("csrf", token.as_str()),
                ("recipient", "256700000001"),
                ("reply_text", text),
            ];
            if !backend.is_empty() {
                pairs.push(("backend", backend));
            }
            post(&url, &session, &pairs).await
        }
    };
    assert_eq!(
        reply("airtel", "on airtel").await.status,
        StatusCode::SEE_OTHER
    );
    // Without a backend: the one the number was seen on most recently.
    assert_eq!(
        reply("", "on the newest").await.status,
        StatusCode::SEE_OTHER
    );
    let r = reply("orange", "nowhere").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body
            .contains("recipient: This number isn't in the system"),
        "{}",
        r.body
    );
    let backend_of = async |text: &str| {
        all_messages(rig.store())
            .await
            .into_iter()
            .find(|m| m.text == text)
            .map(|m| m.connection.backend)
    };
    assert_eq!(backend_of("on airtel").await.as_deref(), Some("airtel"));
    assert_eq!(backend_of("on the newest").await.as_deref(), Some("mtn"));
    assert_eq!(backend_of("nowhere").await, None);
    rig.stop().await;
}
