//! Reloading a running rapidbox ([`rapidbox::Running::reload`], what
//! SIGHUP calls): the apps, the backends' transports and the console
//! users change for the next request; a configuration with errors changes
//! nothing. (`kannel_reload.rs` does the same through SIGHUP with a real
//! bearerbox and MOs flowing.)

mod support;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};

use support::in_process::{send, Reply, Rig, ECHO};

async fn get(rig: &Rig, path: &str) -> Reply {
    let request = Request::builder()
        .method(Method::GET)
        .uri(rig.url(path))
        .body(Full::<Bytes>::default())
        .expect("request");
    send(request).await
}

/// The text of the reply `/router/receive` stores for `message` from
/// backend `backend`, and that reply's status.
async fn reply_to(rig: &Rig, backend: &str, message: &str) -> (String, String) {
    let reply = get(
        rig,
        &format!("/router/receive?backend={backend}&sender=2567700001&message={message}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let id = reply.json()["message"]["id"].as_u64().expect("the MO's id");
    let replies: Vec<_> = rig
        .store()
        .recent_messages(None, 100)
        .await
        .expect("read")
        .into_iter()
        .filter(|m| m.in_response_to == Some(id))
        .collect();
    let [reply] = replies.as_slice() else {
        panic!("expected one reply to {id}, got {replies:?}");
    };
    (reply.text.clone(), format!("{:?}", reply.status))
}

const RELOADED_ECHO: &str =
    "[router]\napps = [\"echo\"]\n[apps.echo]\ntemplate = \"Reloaded: %a\"\n";

#[tokio::test]
async fn a_reload_changes_the_apps_for_the_next_message() {
    let rig = Rig::start("", "").await;
    assert_eq!(reply_to(&rig, "web", "hi").await.0, "You said: hi");
    let reloaded = rig.reload("", RELOADED_ECHO).expect("a good configuration");
    assert_eq!(reloaded.generation, 1);
    assert!(reloaded.needs_restart.is_empty(), "{reloaded:?}");
    assert_eq!(reply_to(&rig, "web", "hi").await.0, "Reloaded: hi");
    rig.stop().await;
}

#[tokio::test]
async fn a_configuration_with_errors_is_refused_whole() {
    let rig = Rig::start("", "").await;
    let bad = format!("{RELOADED_ECHO}[[sendsms_users]]\nusername = \"ops\"\n");
    let errors = rig.reload("", &bad).expect_err("a user without a password");
    assert!(errors.to_string().contains("sendsms_users[0]"), "{errors}");
    assert_eq!(rig.running().app_names(), ["echo"]);
    assert_eq!(reply_to(&rig, "web", "hi").await.0, "You said: hi");
    rig.stop().await;
}

#[tokio::test]
async fn a_reload_moves_a_backend_to_another_transport() {
    // A push URL that refuses: replies to push backends stay queued.
    let push = "[push]\nurl = \"http://127.0.0.1:9/push\"\n";
    let rig = Rig::start("", push).await;
    // With a push URL set, every backend pushes: nothing to pull.
    reply_to(&rig, "relay", "a").await;
    let outbox = get(&rig, "/router/outbox?backend=relay").await;
    assert!(!outbox.body.contains("You said: a"), "{outbox:?}");

    let to_pull = format!("{ECHO}{push}[backends.relay]\ntransport = \"pull\"\n");
    let reloaded = rig.reload("", &to_pull).expect("a good configuration");
    assert!(reloaded.needs_restart.is_empty(), "{reloaded:?}");
    reply_to(&rig, "relay", "b").await;
    let outbox = get(&rig, "/router/outbox?backend=relay").await;
    assert!(outbox.body.contains("You said: b"), "{outbox:?}");
    rig.stop().await;
}

#[tokio::test]
async fn console_users_come_and_go_with_reloads() {
    let rig = Rig::start("", "").await;
    let disabled = get(&rig, "/router/console").await;
    assert_eq!(disabled.status, StatusCode::NOT_FOUND, "{disabled:?}");

    let hash = rapidbox::hash_password("a long enough password").expect("hash");
    let with_user =
        format!("{ECHO}[[console_users]]\nusername = \"admin\"\npassword_hash = \"{hash}\"\n");
    rig.reload("", &with_user).expect("a good configuration");
    let login = get(&rig, "/router/console").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{login:?}");
    assert_eq!(login.location, "/router/console/login");

    rig.reload("", ECHO).expect("a good configuration");
    let disabled = get(&rig, "/router/console").await;
    assert_eq!(disabled.status, StatusCode::NOT_FOUND, "{disabled:?}");
    rig.stop().await;
}

#[tokio::test]
async fn a_changed_http_section_is_named_as_needing_a_restart_and_kept_as_it_runs() {
    let rig = Rig::start("", "").await;
    let before = rig.addr;
    let reloaded = rig
        .reload("max_connections = 7", ECHO)
        .expect("a good configuration");
    assert_eq!(reloaded.needs_restart, ["http"]);
    let answer = get(&rig, "/health").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(rig.running().http_addr(), before);
    rig.stop().await;
}
