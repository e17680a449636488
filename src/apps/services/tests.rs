//! The app end to end, against a one-shot HTTP service on 127.0.0.1.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::apps::tests::incoming;

/// What the service was asked: the request head and body.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Serves `answer` (a whole HTTP response) to every connection, recording
/// each request. Returns the base URL.
async fn service(answer: &'static str) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = socket.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    log.lock()
                        .unwrap()
                        .push((head, buf[end + 4..end + 4 + length].to_vec()));
                    break;
                }
            }
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), seen)
}

fn make(services: Vec<SmsService>, smsbox: SmsboxConfig) -> SmsServices {
    SmsServices::new(
        "sms_services",
        &services,
        &smsbox,
        None,
        HttpClient::new().unwrap(),
    )
}

fn svc(keyword: &str) -> SmsService {
    SmsService {
        keyword: Some(keyword.into()),
        ..SmsService::new()
    }
}

async fn replies(app: &SmsServices, text: &str) -> Vec<(String, Option<MtReplyView>)> {
    let mut msg = incoming(text);
    assert!(app.handle(&mut msg).await.unwrap());
    msg.responses
        .into_iter()
        .map(|r| (r.text, r.mt.map(|m| MtReplyView::of(&m))))
        .collect()
}

/// The fields of an MtReply the tests look at.
#[derive(Debug, PartialEq, Eq)]
struct MtReplyView {
    sender: Option<String>,
    coding: Option<i32>,
    dlr_url: Option<String>,
}

impl MtReplyView {
    fn of(m: &crate::router::MtReply) -> MtReplyView {
        MtReplyView {
            sender: m.sender.clone(),
            coding: m.coding,
            dlr_url: m.options.as_ref().and_then(|o| o.dlr_url.clone()),
        }
    }
}

fn texts(r: Vec<(String, Option<MtReplyView>)>) -> Vec<String> {
    r.into_iter().map(|(t, _)| t).collect()
}

#[tokio::test]
async fn a_text_service_answers_with_header_footer_and_smsbox_escapes() {
    let mut s = svc("hi");
    s.text = Some("You said %a".into());
    s.header = Some("[".into());
    s.footer = Some("]".into());
    let app = make(vec![s], SmsboxConfig::default());
    let r = replies(&app, "hi there").await;
    assert_eq!(r[0].0, "[You said hi+there]");
    assert_eq!(r[0].1.as_ref().unwrap().sender.as_deref(), Some("8500"));
}

#[tokio::test]
async fn no_service_answers_request_failed_and_rapidbox_style_writes_text_plainly() {
    let mut s = svc("hi");
    s.text = Some("You said %a".into());
    let smsbox = SmsboxConfig {
        escape_style: crate::config::EscapeStyle::Rapidbox,
        reply_requestfailed: "no".into(),
        ..SmsboxConfig::default()
    };
    let app = make(vec![s], smsbox);
    assert_eq!(
        texts(replies(&app, "hi there").await),
        ["You said hi there"]
    );
    assert_eq!(texts(replies(&app, "other").await), ["no"]);
}

#[tokio::test]
async fn a_get_url_service_asks_with_the_mo_and_answers_with_the_body() {
    let (base, seen) =
        service("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nthanks")
            .await;
    let mut s = svc("default");
    s.get_url = Some(format!("{base}/mo?from=%p&to=%P&text=%a&kw=%k"));
    s.send_sender = true;
    let app = make(vec![s], SmsboxConfig::default());
    assert_eq!(texts(replies(&app, "Buy 2 apples").await), ["thanks"]);
    let seen = seen.lock().unwrap();
    let head = &seen[0].0;
    assert!(
        head.starts_with("GET /mo?from=%2B256772123456&to=8500&text=Buy+2+apples&kw=Buy HTTP/1.1"),
        "{head}"
    );
    assert!(head.contains("x-kannel-from: +256772123456"), "{head}");
}

#[tokio::test]
async fn a_post_url_service_posts_the_stripped_text_with_kannel_headers() {
    let (base, seen) = service(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Kannel-From: 999\r\nContent-Length: 2\r\n\r\nok",
    )
    .await;
    let mut s = svc("vote");
    s.post_url = Some(format!("{base}/post"));
    s.strip_keyword = true;
    s.accept_x_kannel_headers = true;
    let app = make(vec![s], SmsboxConfig::default());
    let r = replies(&app, "vote  blue").await;
    assert_eq!(r[0].0, "ok");
    assert_eq!(r[0].1.as_ref().unwrap().sender.as_deref(), Some("999"));
    let seen = seen.lock().unwrap();
    let (head, body) = &seen[0];
    assert!(head.starts_with("POST /post HTTP/1.1"));
    assert!(head.contains("x-kannel-to: 8500"), "{head}");
    assert!(head.contains("x-kannel-service: ^[ ]*(vote)[ ]*"), "{head}");
    assert_eq!(body, b"blue");
}

#[tokio::test]
async fn a_failing_service_gets_couldnotfetch_and_an_empty_answer_emptymessage() {
    let (base, _) = service("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n").await;
    let mut s = svc("a");
    s.get_url = Some(format!("{base}/"));
    let app = make(vec![s], SmsboxConfig::default());
    assert_eq!(
        texts(replies(&app, "a").await),
        ["Could not fetch content, sorry."]
    );

    let (base, _) =
        service("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n").await;
    let mut s = svc("b");
    s.get_url = Some(format!("{base}/"));
    let mut omit = s.clone();
    omit.keyword = Some("c".into());
    omit.omit_empty = true;
    let app = make(vec![s, omit], SmsboxConfig::default());
    assert_eq!(
        texts(replies(&app, "b").await),
        ["<Empty reply from service provider>"]
    );
    assert!(replies(&app, "c").await.is_empty());
}

#[tokio::test]
async fn max_messages_and_a_services_dlr_url_shape_the_parts() {
    let mut s = svc("long");
    s.text = Some("x".repeat(200));
    s.max_messages = 2;
    s.dlr_url = Some("http://127.0.0.1:9/dlr?%d".into());
    s.dlr_mask = Some(3);
    let app = make(vec![s], SmsboxConfig::default());
    let r = replies(&app, "long").await;
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].0.len(), 160);
    let first = r[0].1.as_ref().unwrap();
    assert_eq!(first.dlr_url.as_deref(), Some("http://127.0.0.1:9/dlr?%d"));
    assert_eq!(
        r[1].1.as_ref().unwrap().dlr_url,
        None,
        "only the first part"
    );
}

#[tokio::test]
async fn an_exec_service_answers_with_what_the_program_prints() {
    let mut s = svc("date");
    s.exec = Some(vec!["/bin/echo".into(), "-n".into(), "at %k".into()]);
    let mut broken = svc("broken");
    broken.exec = Some(vec!["/nonexistent".into()]);
    let app = make(vec![s, broken], SmsboxConfig::default());
    assert_eq!(texts(replies(&app, "date").await), ["at date"]);
    assert_eq!(texts(replies(&app, "broken").await), ["Request Failed"]);
}

/// A UCS-2 MO, as the link makes it (decoded to text, coding 2), and
/// what the app answers it with.
async fn ucs2_replies(
    app: &SmsServices,
    text: &str,
    service: Option<&str>,
) -> Vec<(String, Option<MtReplyView>)> {
    let mut msg = incoming(text);
    let k = msg.message.kannel.as_mut().unwrap();
    k.coding = 2;
    k.service = service.map(str::to_owned);
    assert!(app.handle(&mut msg).await.unwrap());
    msg.responses
        .into_iter()
        .map(|r| (r.text, r.mt.map(|m| MtReplyView::of(&m))))
        .collect()
}

#[tokio::test]
async fn without_mo_recode_a_ucs2_mo_is_its_utf16be_bytes_as_in_smsbox() {
    let mut s = svc("esc");
    s.text = Some("%k|%a|%c|%C".into());
    let mut cyr = svc("ж");
    cyr.text = Some("cyrillic".into());
    let mut default = svc("default");
    default.text = Some("default".into());
    let raw = make(
        vec![s.clone(), cyr.clone(), default.clone()],
        SmsboxConfig::default(),
    );
    // Words split on the 0x20 byte of "\0 ", the keyword matched on the
    // bytes less their NULs.
    assert_eq!(
        texts(ucs2_replies(&raw, "esc hi", None).await),
        ["%00e%00s%00c%00|%00e%00s%00c%00+%00h%00i|2|UTF-16BE"]
    );
    assert_eq!(texts(ucs2_replies(&raw, "ж", None).await), ["default"]);
    let recode = make(
        vec![s, cyr, default],
        SmsboxConfig {
            mo_recode: true,
            ..SmsboxConfig::default()
        },
    );
    assert_eq!(
        texts(ucs2_replies(&recode, "esc hi", None).await),
        ["esc|esc+hi|0|UTF-8"]
    );
    assert_eq!(texts(ucs2_replies(&recode, "ж", None).await), ["cyrillic"]);
}

#[tokio::test]
async fn the_mos_own_service_is_its_n_and_a_text_reply_leaves_the_coding_unset() {
    let mut s = svc("who");
    s.text = Some("%n".into());
    let app = make(vec![s], SmsboxConfig::default());
    let r = ucs2_replies(&app, "who", Some("injector")).await;
    assert_eq!(r[0].0, "injector");
    assert_eq!(r[0].1.as_ref().unwrap().coding, Some(-1));
    // Without one, the service's name: its keyword's regex, URL-encoded
    // as smsbox encodes it.
    let r = ucs2_replies(&app, "who", None).await;
    assert_eq!(texts(r), ["%5E%5B+%5D*(who)%5B+%5D*"]);
}

#[tokio::test]
async fn non_gsm_replies_go_as_ucs2_or_with_smsbox_question_marks() {
    let mut s = svc("uni");
    s.text = Some("Привет ça".into());
    let app = make(vec![s.clone()], SmsboxConfig::default());
    assert_eq!(texts(replies(&app, "uni").await), ["Привет ça"]);
    let smsbox = make(
        vec![s],
        SmsboxConfig {
            non_gsm_replies: crate::config::NonGsmReplies::QuestionMarks,
            ..SmsboxConfig::default()
        },
    );
    assert_eq!(texts(replies(&smsbox, "uni").await), ["?????? Ça"]);
}

#[tokio::test]
async fn a_url_service_s_reply_carries_the_mo_s_own_service_else_the_service_s_name() {
    let answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
    for (own, expected) in [(Some("acct"), "acct"), (None, "^[ ]*(get)[ ]*")] {
        let (base, _) = service(answer).await;
        let mut s = svc("get");
        s.get_url = Some(format!("{base}/x"));
        let app = make(vec![s], SmsboxConfig::default());
        let mut msg = incoming("get");
        msg.message.kannel.as_mut().unwrap().service = own.map(str::to_owned);
        assert!(app.handle(&mut msg).await.unwrap());
        let mt = msg.responses[0].mt.as_ref().unwrap();
        // smsbox answers with the MO itself, named as it was.
        assert_eq!(mt.service.as_deref(), Some(expected), "{own:?}");
    }
}
