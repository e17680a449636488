//! Hostile input, endpoint by endpoint: a generated table of bad requests
//! (missing, repeated and oversized parameters, bytes that are not UTF-8,
//! broken percent-encoding, wrong numbers, huge bodies, wrong methods),
//! each sent raw to a real rapidbox, each expected to get an answer that
//! names the problem; afterwards nothing is stored and the server still
//! serves. Wrong sendsms and console passwords are rate limited per
//! address.

mod support;

use std::net::IpAddr;
use std::sync::OnceLock;

use rapidbox::model::{MAX_BACKEND_CHARS, MAX_SENDER_CHARS};
use rapidbox::store::Store;
use support::in_process::Rig;
use support::raw::{exchange, RawReply};

const PASSWORD: &str = "pw";
const CONSOLE_USER: &str = "admin";
const CONSOLE_PASSWORD: &str = "correct horse battery";
/// `[http] max_body_bytes` of the rig.
const MAX_BODY: usize = 65536;

fn console_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| rapidbox::hash_password(CONSOLE_PASSWORD).expect("hash"))
}

/// rapidbox with every endpoint on: `[http] password`, a sendsms user
/// and a console user. No alert channel, so that no valid alert can
/// leave the test.
async fn rig() -> Rig {
    rig_with("").await
}

/// [`rig`] with more lines for its `[http]` section.
async fn rig_with(http: &str) -> Rig {
    Rig::start(
        &format!("password = \"{PASSWORD}\"\nmax_body_bytes = {MAX_BODY}\n{http}"),
        &format!(
            "[[sendsms_users]]\nusername = \"shop\"\npassword = \"s3cret\"\n\
             [[console_users]]\nusername = \"{CONSOLE_USER}\"\npassword_hash = \"{}\"\n",
            console_hash()
        ),
    )
    .await
}

async fn total(store: &Store) -> u64 {
    store
        .counts()
        .await
        .expect("counts")
        .iter()
        .map(|(_, _, n)| n)
        .sum()
}

/// One bad request and what its answer must show.
struct Case {
    what: String,
    request: Vec<u8>,
    /// Acceptable statuses (hyper answers a few head errors itself).
    status: &'static [u16],
    /// Text the answer's body must contain: the field, or smsbox's words.
    says: String,
}

/// A raw HTTP/1.1 request: `target` as bytes (they need not be UTF-8),
/// extra header lines, and a body with its length.
fn request(method: &str, target: &[u8], headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} ").into_bytes();
    out.extend_from_slice(target);
    out.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: rapidbox\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

fn case(what: impl Into<String>, request: Vec<u8>, status: &'static [u16], says: &str) -> Case {
    Case {
        what: what.into(),
        request,
        status,
        says: says.to_owned(),
    }
}

/// A GET of `path?query` and the same parameters as a POSTed form, both
/// expected to get `status` and `says`.
fn both_ways(
    cases: &mut Vec<Case>,
    what: &str,
    path: &str,
    query: &[u8],
    status: &'static [u16],
    says: &str,
) {
    let mut target = path.as_bytes().to_vec();
    target.push(b'?');
    target.extend_from_slice(query);
    cases.push(case(
        format!("GET {path}: {what}"),
        request("GET", &target, "", b""),
        status,
        says,
    ));
    cases.push(case(
        format!("POST {path}: {what}"),
        request("POST", path.as_bytes(), FORM, query),
        status,
        says,
    ));
}

/// Wrong methods for `path`, each expected to get 405 (the `Allow`
/// header is checked where the table is run).
fn wrong_methods(cases: &mut Vec<Case>, path: &str, methods: &[&str]) {
    for method in methods {
        cases.push(case(
            format!("{method} {path}"),
            request(method, path.as_bytes(), "", b""),
            &[405],
            "",
        ));
    }
}

/// A body declared over `max_body_bytes` (only its start is sent: the
/// server must refuse it from the declared length).
fn huge_body(cases: &mut Vec<Case>, path: &str, content_type: &str, says: &str) {
    let mut bytes = format!(
        "POST {path} HTTP/1.1\r\nHost: rapidbox\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: 1073741824\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(&[b'a'; 1024]);
    cases.push(case(
        format!("POST {path}: a 1 GiB body declared"),
        bytes,
        &[413],
        says,
    ));
    // One that does not say how long it is: chunked, beyond the bound.
    let mut chunked = format!(
        "POST {path} HTTP/1.1\r\nHost: rapidbox\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..(MAX_BODY / chunk.len() + 2) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    cases.push(case(
        format!("POST {path}: a chunked body over the bound"),
        chunked,
        &[413],
        says,
    ));
}

/// The same malformed parameter in every endpoint that reads parameters
/// through the common reader.
fn encoding_cases(cases: &mut Vec<Case>, path: &str, name: &str) {
    let pw = format!("password={PASSWORD}&");
    for (what, value, says) in [
        (
            "invalid percent-encoding",
            &b"%zz"[..],
            "invalid percent-encoding",
        ),
        ("a truncated escape", b"abc%4", "invalid percent-encoding"),
        ("an escape that is not UTF-8", b"%FF%FE", "not valid UTF-8"),
        ("a lone continuation byte", b"%80", "not valid UTF-8"),
    ] {
        let mut query = pw.clone().into_bytes();
        query.extend_from_slice(name.as_bytes());
        query.push(b'=');
        query.extend_from_slice(value);
        let says = format!("\"{name}\":\"{says}\"");
        both_ways(
            cases,
            &format!("{name}: {what}"),
            path,
            &query,
            &[400],
            &says,
        );
    }
    // Raw bytes that are not UTF-8 in a form body (a request line refuses
    // them before rapidbox sees it: checked below).
    let mut body = pw.into_bytes();
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(b"=\xff\xfe");
    cases.push(case(
        format!("POST {path}: {name}: raw bytes that are not UTF-8"),
        request("POST", path.as_bytes(), FORM, &body),
        &[400],
        &format!("\"{name}\":\"not valid UTF-8\""),
    ));
    let mut target = path.as_bytes().to_vec();
    target.extend_from_slice(b"?");
    target.extend_from_slice(name.as_bytes());
    target.extend_from_slice(b"=\xff\xfe");
    cases.push(case(
        format!("GET {path}: raw bytes that are not UTF-8 in the request line"),
        request("GET", &target, "", b""),
        &[400],
        "",
    ));
}

fn table() -> Vec<Case> {
    let mut cases = Vec::new();
    let pw = format!("password={PASSWORD}");
    let long_backend = "b".repeat(MAX_BACKEND_CHARS + 1);
    let long_sender = "1".repeat(MAX_SENDER_CHARS + 1);

    // /router/receive
    let receive = "/router/receive";
    for (what, query, says) in [
        (
            "no backend",
            format!("{pw}&sender=1&message=hi"),
            r#""backend":"required""#,
        ),
        (
            "no sender",
            format!("{pw}&backend=b&message=hi"),
            r#""sender":"required""#,
        ),
        (
            "no message",
            format!("{pw}&backend=b&sender=1"),
            r#""message":"required""#,
        ),
        (
            "a blank message",
            format!("{pw}&backend=b&sender=1&message=+++"),
            r#""message":"required""#,
        ),
        (
            "an oversized backend",
            format!("{pw}&backend={long_backend}&sender=1&message=hi"),
            r#""backend":"at most 32 characters""#,
        ),
        (
            "an oversized sender",
            format!("{pw}&backend=b&sender={long_sender}&message=hi"),
            r#""sender":"at most 20 characters""#,
        ),
        (
            "a sender without digits",
            format!("{pw}&backend=b&sender=%2B%2B&message=hi"),
            r#""sender":"has no letters or digits""#,
        ),
        (
            "a repeated sender, the last empty",
            format!("{pw}&backend=b&sender=1&sender=&message=hi"),
            r#""sender":"required""#,
        ),
        (
            "no password",
            "backend=b&sender=1&message=hi".to_owned(),
            "password",
        ),
        (
            "a wrong password",
            "password=x&backend=b&sender=1&message=hi".to_owned(),
            "password",
        ),
        (
            "a repeated password, none right",
            "password=x&password=y&backend=b&sender=1&message=hi".to_owned(),
            "password",
        ),
    ] {
        let status: &'static [u16] = if says == "password" { &[403] } else { &[400] };
        both_ways(&mut cases, what, receive, query.as_bytes(), status, says);
    }
    encoding_cases(&mut cases, receive, "message");
    encoding_cases(&mut cases, receive, "sender");
    wrong_methods(&mut cases, receive, &["PUT", "DELETE", "PATCH"]);
    huge_body(
        &mut cases,
        receive,
        "application/x-www-form-urlencoded",
        "larger than",
    );
    cases.push(case(
        "POST /router/receive: a JSON body",
        request(
            "POST",
            receive.as_bytes(),
            "Content-Type: application/json\r\n",
            br#"{"backend":"b"}"#,
        ),
        &[415],
        "application/x-www-form-urlencoded",
    ));
    let mut long = format!("{receive}?{pw}&backend=b&sender=1&message=").into_bytes();
    long.extend(std::iter::repeat_n(b'a', 64 * 1024));
    cases.push(case(
        "GET /router/receive: a 64 KiB request line",
        request("GET", &long, "", b""),
        &[414, 431],
        "",
    ));

    // /router/outbox
    let outbox = "/router/outbox";
    both_ways(
        &mut cases,
        "an oversized backend",
        outbox,
        format!("{pw}&backend={long_backend}").as_bytes(),
        &[400, 405],
        "backend",
    );
    cases.retain(|c| !(c.what.starts_with("POST /router/outbox")));
    cases.push(case(
        "GET /router/outbox: a wrong password",
        request("GET", format!("{outbox}?password=x").as_bytes(), "", b""),
        &[403],
        "password",
    ));
    cases.push(case(
        "GET /router/outbox: backend not UTF-8",
        request(
            "GET",
            format!("{outbox}?{pw}&backend=%C3").as_bytes(),
            "",
            b"",
        ),
        &[400],
        r#""backend":"not valid UTF-8""#,
    ));
    wrong_methods(&mut cases, outbox, &["POST", "PUT", "DELETE"]);

    // /router/delivered
    let delivered = "/router/delivered";
    for (what, query, status, says) in [
        (
            "no message_id",
            pw.clone(),
            &[400][..],
            r#""message_id":"required""#,
        ),
        (
            "a message_id that is a word",
            format!("{pw}&message_id=abc"),
            &[400],
            "whole number",
        ),
        (
            "a negative message_id",
            format!("{pw}&message_id=-1"),
            &[400],
            "whole number",
        ),
        (
            "a message_id beyond 64 bits",
            format!("{pw}&message_id=99999999999999999999999"),
            &[400],
            "whole number",
        ),
        (
            "a fractional message_id",
            format!("{pw}&message_id=1.5"),
            &[400],
            "whole number",
        ),
        (
            "a message_id that does not exist",
            format!("{pw}&message_id=424242"),
            &[404],
            "no message 424242",
        ),
        (
            "a repeated message_id, the last a word",
            format!("{pw}&message_id=1&message_id=x"),
            &[400],
            "whole number",
        ),
        (
            "a wrong password",
            "password=x&message_id=1".to_owned(),
            &[403],
            "password",
        ),
    ] {
        let status: &'static [u16] = match status {
            [404] => &[404],
            [403] => &[403],
            _ => &[400],
        };
        both_ways(&mut cases, what, delivered, query.as_bytes(), status, says);
    }
    encoding_cases(&mut cases, delivered, "message_id");
    wrong_methods(&mut cases, delivered, &["PUT", "DELETE"]);
    huge_body(
        &mut cases,
        delivered,
        "application/x-www-form-urlencoded",
        "larger than",
    );

    // /router/status and /router/stats
    for path in ["/router/status", "/router/stats"] {
        wrong_methods(&mut cases, path, &["POST", "PUT", "DELETE"]);
    }
    cases.push(case(
        "GET /router/status: format not UTF-8",
        request("GET", b"/router/status?format=%FF", "", b""),
        &[400],
        r#""format":"not valid UTF-8""#,
    ));

    // /cgi-bin/sendsms: smsbox's statuses and words.
    let sendsms = "/cgi-bin/sendsms";
    let user = "username=shop&password=s3cret";
    for (what, query, status, says) in [
        (
            "no receiver",
            format!("{user}&text=hi"),
            &[400][..],
            "Missing receiver number, rejected",
        ),
        (
            "an empty receiver",
            format!("{user}&to=&text=hi"),
            &[400],
            "Empty receiver number not allowed, rejected",
        ),
        (
            "a receiver of letters",
            format!("{user}&to=abc&text=hi"),
            &[400],
            "Number(s) has/have been denied by white- and/or black-lists.",
        ),
        (
            "no sender and no global one",
            format!("{user}&to=123&text=hi"),
            &[400],
            "Sender missing and no global set, rejected",
        ),
        (
            "a DLR mask out of range",
            format!("{user}&to=123&from=1&text=hi&dlr-mask=999"),
            &[400],
            "DLR-Mask field misformed, rejected",
        ),
        (
            "a coding out of range",
            format!("{user}&to=123&from=1&text=hi&coding=7"),
            &[400],
            "Coding field misformed, rejected",
        ),
        (
            "an mclass out of range",
            format!("{user}&to=123&from=1&text=hi&mclass=9"),
            &[400],
            "MClass field misformed, rejected",
        ),
        (
            "a validity beyond i32",
            format!("{user}&to=123&from=1&text=hi&validity=-99999999999"),
            &[400],
            "Validity field misformed, rejected",
        ),
        (
            "a priority out of range",
            format!("{user}&to=123&from=1&text=hi&priority=9"),
            &[400],
            "Priority field misformed, rejected",
        ),
        (
            "a UDH whose length byte lies",
            format!("{user}&to=123&from=1&text=hi&udh=%05%00%03"),
            &[400],
            "UDH field misformed, rejected",
        ),
        (
            "a UDH over 140 octets",
            format!("{user}&to=123&from=1&text=hi&udh=%FF{}", "%00".repeat(255)),
            &[400],
            "UDH field is too long, rejected",
        ),
        (
            "an account over 64 octets",
            format!("{user}&to=123&from=1&text=hi&account={}", "a".repeat(65)),
            &[400],
            "Account field misformed or too long, rejected",
        ),
        (
            "a dlr-url that is not http",
            format!("{user}&to=123&from=1&text=hi&dlr-url=ftp://x/"),
            &[400],
            "DLR-URL field misformed, rejected",
        ),
        (
            "a charset that does not exist",
            format!("{user}&to=123&from=1&text=hi&charset=NOPE-99"),
            &[400],
            "Charset or body misformed, rejected",
        ),
        (
            "text not in its charset",
            format!("{user}&to=123&from=1&text=%FF%FE&charset=UTF-8"),
            &[400],
            "Charset or body misformed, rejected",
        ),
        (
            "a wrong password",
            "username=shop&password=x&to=123&text=hi".to_owned(),
            &[403],
            "Authorization failed for sendsms",
        ),
        (
            "no credentials",
            "to=123&text=hi".to_owned(),
            &[403],
            "Authorization failed for sendsms",
        ),
    ] {
        let status: &'static [u16] = if status == [403] { &[403] } else { &[400] };
        cases.push(case(
            format!("GET {sendsms}: {what}"),
            request("GET", format!("{sendsms}?{query}").as_bytes(), "", b""),
            status,
            says,
        ));
    }
    // POST forms, with the receivers' POST words.
    cases.push(case(
        "POST /cgi-bin/sendsms (form): no receiver",
        request(
            "POST",
            sendsms.as_bytes(),
            FORM,
            format!("{user}&text=hi").as_bytes(),
        ),
        &[400],
        // A form is read as a GET's query (rapidbox takes forms; smsbox
        // refuses them), with a GET's words.
        "Missing receiver number, rejected",
    ));
    cases.push(case(
        "POST /cgi-bin/sendsms (text/plain): X-Kannel headers without a receiver",
        request(
            "POST",
            sendsms.as_bytes(),
            "Content-Type: text/plain\r\nX-Kannel-Username: shop\r\nX-Kannel-Password: s3cret\r\n",
            b"hello",
        ),
        &[400],
        "Missing receiver(s) number(s), rejected",
    ));
    cases.push(case(
        "POST /cgi-bin/sendsms (text/plain): X-Kannel-Coding out of range",
        request(
            "POST",
            sendsms.as_bytes(),
            "Content-Type: text/plain\r\nX-Kannel-Username: shop\r\nX-Kannel-Password: s3cret\r\n\
             X-Kannel-To: 123\r\nX-Kannel-From: 1\r\nX-Kannel-Coding: 42\r\n",
            b"hello",
        ),
        &[400],
        "Coding field misformed, rejected",
    ));
    cases.push(case(
        "POST /cgi-bin/sendsms: a JSON body",
        request(
            "POST",
            sendsms.as_bytes(),
            "Content-Type: application/json\r\n",
            b"{}",
        ),
        &[400],
        "Invalid content-type",
    ));
    cases.push(case(
        "POST /cgi-bin/sendsms: text/html",
        request(
            "POST",
            sendsms.as_bytes(),
            "Content-Type: text/html\r\nX-Kannel-Username: shop\r\nX-Kannel-Password: s3cret\r\nX-Kannel-To: 123\r\n",
            b"<p>hi</p>",
        ),
        &[415],
        "Unsupported content-type, rejected",
    ));
    // XML: one without a receiver, one with a broken document (smsbox
    // reads no credentials from it), one with a field out of range, one
    // nested without end.
    let xml = |submit: &str| {
        format!(
            "<?xml version=\"1.0\"?><message><submit>\
             <from><user>shop</user><pass>s3cret</pass></from>{submit}</submit></message>"
        )
    };
    for (what, body, status, says) in [
        ("no <da>", xml("<oa><number>1</number></oa><ud>hi</ud>"), &[400][..], "Missing receiver(s) number(s), rejected"),
        ("a dlr-mask out of range", xml("<da><number>123</number></da><oa><number>1</number></oa><ud>hi</ud><statusrequest><dlr-mask>4096</dlr-mask></statusrequest>"), &[400], "DLR-Mask field misformed, rejected"),
        ("a document cut short", xml("<da><number>123")[..60].to_owned(), &[403], "Authorization failed for sendsms"),
        ("a DTD with entities", format!("<!DOCTYPE m [<!ENTITY a \"aaaa\">]>{}", xml("<da><number>&a;</number></da>")), &[403], "Authorization failed for sendsms"),
        ("deep nesting", format!("<?xml version=\"1.0\"?>{}", "<a>".repeat(20_000)), &[403], "Authorization failed for sendsms"),
    ] {
        let status: &'static [u16] = if status == [403] { &[403] } else { &[400] };
        cases.push(case(
            format!("POST /cgi-bin/sendsms (XML): {what}"),
            request("POST", sendsms.as_bytes(), "Content-Type: text/xml\r\n", body.as_bytes()),
            status,
            says,
        ));
    }
    wrong_methods(&mut cases, sendsms, &["PUT", "DELETE", "PATCH"]);
    huge_body(&mut cases, sendsms, "text/plain", "larger than");

    // /router/alert and /router/relaylog: httprouter's words.
    for (path, missing) in [
        ("/router/alert", "Missing subject, body"),
        ("/router/relaylog", "Missing log"),
    ] {
        cases.push(case(
            format!("GET {path}"),
            request("GET", path.as_bytes(), "", b""),
            &[400],
            "Must be POST",
        ));
        cases.push(case(
            format!("POST {path}: no password"),
            request("POST", path.as_bytes(), FORM, b"subject=a&body=b&log=c"),
            &[403],
            "Invalid password",
        ));
        cases.push(case(
            format!("POST {path}: nothing to send"),
            request("POST", path.as_bytes(), FORM, pw.as_bytes()),
            &[400],
            missing,
        ));
        encoding_cases(&mut cases, path, "subject");
        wrong_methods(&mut cases, path, &["PUT", "DELETE"]);
        huge_body(
            &mut cases,
            path,
            "application/x-www-form-urlencoded",
            "larger than",
        );
    }

    // /admin/backup
    let backup = "/admin/backup";
    for (what, body, status, says) in [
        (
            "no destination",
            pw.clone(),
            &[400][..],
            r#""to":"give the backup's absolute path""#,
        ),
        (
            "a relative destination",
            format!("{pw}&to=backup.redb"),
            &[400],
            r#""to":"give the backup's absolute path""#,
        ),
        (
            "a destination that exists",
            format!("{pw}&to=/etc/hostname"),
            &[409],
            "exists",
        ),
        (
            "a wrong password",
            "password=x&to=/tmp/b.redb".to_owned(),
            &[403],
            "password",
        ),
        (
            "a destination not UTF-8",
            format!("{pw}&to=/tmp/%FF"),
            &[400],
            r#""to":"not valid UTF-8""#,
        ),
    ] {
        let status: &'static [u16] = match status {
            [409] => &[409],
            [403] => &[403],
            _ => &[400],
        };
        cases.push(case(
            format!("POST {backup}: {what}"),
            request("POST", backup.as_bytes(), FORM, body.as_bytes()),
            status,
            says,
        ));
    }
    wrong_methods(&mut cases, backup, &["GET", "PUT", "DELETE"]);
    huge_body(
        &mut cases,
        backup,
        "application/x-www-form-urlencoded",
        "larger than",
    );

    // /metrics
    cases.push(case(
        "GET /metrics: no password",
        request("GET", b"/metrics", "", b""),
        &[403],
        "password",
    ));
    cases.push(case(
        "GET /metrics: a wrong password",
        request("GET", b"/metrics?password=x", "", b""),
        &[403],
        "password",
    ));
    wrong_methods(&mut cases, "/metrics", &["POST", "PUT", "DELETE"]);

    // The console.
    let login = "/router/console/login";
    cases.push(case(
        "POST console login: no login token",
        request("POST", login.as_bytes(), FORM, b"username=admin&password=x"),
        &[400, 403],
        "login",
    ));
    cases.push(case(
        "GET console login: username not UTF-8",
        request("GET", format!("{login}?username=%FF").as_bytes(), "", b""),
        &[400],
        "not valid UTF-8",
    ));
    cases.push(case(
        "POST console login: a broken escape",
        request("POST", login.as_bytes(), FORM, b"username=%zz"),
        &[400],
        "invalid percent-encoding",
    ));
    wrong_methods(&mut cases, login, &["PUT", "DELETE"]);
    wrong_methods(&mut cases, "/router/console/send", &["GET", "PUT"]);
    wrong_methods(&mut cases, "/router/console", &["POST", "DELETE"]);
    huge_body(&mut cases, login, "application/x-www-form-urlencoded", "");
    cases.push(case(
        "GET console: a page number that is a word",
        request("GET", b"/router/console/fragment?page=abc", "", b""),
        &[303, 400, 401],
        "",
    ));

    // Any path: a head over the bound, a broken request line.
    let mut head = b"GET /router/stats HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 64 * 1024));
    head.extend_from_slice(b"\r\n\r\n");
    cases.push(case("a 64 KiB header", head, &[431], ""));
    cases.push(case(
        "a request line that is not HTTP",
        b"HELLO\r\n\r\n".to_vec(),
        &[400],
        "",
    ));
    cases.push(case(
        "a negative Content-Length",
        request("POST", receive.as_bytes(), "Content-Length: -1\r\n", b""),
        &[400],
        "",
    ));
    cases.push(case("two different Content-Lengths", b"POST /router/receive HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde".to_vec(), &[400], ""));
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_names_what_is_wrong_with_bad_input_and_stores_nothing() {
    // The table sends dozens of wrong passwords from one address: without
    // the limit on them (its own tests are below), each gets its own answer.
    let rig = rig_with("max_auth_failures = 0").await;
    let cases = table();
    assert!(cases.len() > 150, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let reply = exchange(rig.addr, &case.request).await;
        let ok_status = case.status.contains(&reply.status);
        let ok_text = reply.body.contains(&case.says);
        let ok_allow = reply.status != 405 || reply.header("allow").is_some_and(|a| !a.is_empty());
        if !(ok_status && ok_text && ok_allow) {
            failures.push(format!(
                "{}: wanted {:?} saying {:?}, got {} {:?}{}",
                case.what,
                case.status,
                case.says,
                reply.status,
                reply.body.chars().take(300).collect::<String>(),
                if ok_allow { "" } else { " without Allow" }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(total(rig.store()).await, 0, "bad input stored messages");
    // Still serving, and the counts agree with the store.
    let stats = exchange(rig.addr, &request("GET", b"/router/stats", "", b"")).await;
    assert_eq!(stats.status, 200, "{stats:?}");
    let good = exchange(
        rig.addr,
        &request(
            "GET",
            format!("/router/receive?password={PASSWORD}&backend=b&sender=1&message=hi").as_bytes(),
            "",
            b"",
        ),
    )
    .await;
    assert_eq!(good.status, 200, "{good:?}");
    assert_eq!(total(rig.store()).await, 2, "a good message and its echo");
    rig.stop().await;
}

/// `GET /cgi-bin/sendsms` with the credentials given, from `from`.
async fn sendsms_from(rig: &Rig, from: IpAddr, password: &str) -> RawReply {
    let target =
        format!("/cgi-bin/sendsms?username=shop&password={password}&to=123&from=1&text=hi");
    from_address(rig, from, &request("GET", target.as_bytes(), "", b"")).await
}

/// Sends `bytes` from `from` and reads the answer.
async fn from_address(rig: &Rig, from: IpAddr, bytes: &[u8]) -> RawReply {
    let mut stream = support::raw::connect_from(from, rig.addr)
        .await
        .unwrap_or_else(|e| panic!("connect from {from}: {e}"));
    tokio::io::AsyncWriteExt::write_all(&mut stream, bytes)
        .await
        .expect("write");
    support::raw::read_answer(&mut stream).await
}

/// `GET /router/receive` with `password`, from `from`.
async fn receive_from(rig: &Rig, from: IpAddr, password: &str) -> RawReply {
    let target = format!("/router/receive?password={password}&backend=b&sender=1&message=hi");
    from_address(rig, from, &request("GET", target.as_bytes(), "", b"")).await
}

/// The `Retry-After` of a 429, checked to be within the 5-minute window.
fn assert_throttled(reply: &RawReply, what: &str) {
    assert_eq!(reply.status, 429, "{what}: {reply:?}");
    assert!(
        reply.body.contains("Too many failed authorizations"),
        "{what}: {reply:?}"
    );
    let retry: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=300).contains(&retry), "{what}: Retry-After {retry}");
}

/// The value of the sample whose line contains `series`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| !l.starts_with('#') && l.contains(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sendsms_passwords_are_rate_limited_per_address() {
    let rig = rig().await;
    let guesser: IpAddr = [127, 0, 0, 2].into();
    let other: IpAddr = [127, 0, 0, 3].into();
    let limit = 10;
    for n in 0..limit {
        let reply = sendsms_from(&rig, guesser, &format!("guess{n}")).await;
        assert_eq!(reply.status, 403, "guess {n}: {reply:?}");
        assert!(reply.body.contains("Authorization failed for sendsms"));
    }
    // The next one, even with the right password, is refused with 429.
    for password in ["guess", "s3cret"] {
        let reply = sendsms_from(&rig, guesser, password).await;
        assert_eq!(reply.status, 429, "{reply:?}");
        assert!(
            reply.body.contains("Too many failed authorizations"),
            "{reply:?}"
        );
        let retry: u64 = reply
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!((1..=300).contains(&retry), "Retry-After {retry}");
    }
    assert_eq!(total(rig.store()).await, 0);
    // Another address is not affected, and sends.
    let reply = sendsms_from(&rig, other, "s3cret").await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(total(rig.store()).await, 1);
    let metrics = exchange(
        rig.addr,
        &request(
            "GET",
            format!("/metrics?password={PASSWORD}").as_bytes(),
            "",
            b"",
        ),
    )
    .await;
    assert_eq!(
        metric(
            &metrics.body,
            "http_auth_failures_total{endpoint=\"sendsms\",outcome=\"wrong\"}"
        ),
        limit as f64,
        "{}",
        metrics.body
    );
    assert_eq!(
        metric(
            &metrics.body,
            "http_auth_failures_total{endpoint=\"sendsms\",outcome=\"throttled\"}"
        ),
        2.0
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_router_passwords_are_rate_limited_per_address_with_sendsms() {
    let rig = rig().await;
    let guesser: IpAddr = [127, 0, 0, 4].into();
    let other: IpAddr = [127, 0, 0, 5].into();
    let limit = 10;
    // Wrong passwords on /router/* and wrong sendsms credentials share one
    // budget: taking turns does not double the guesses.
    for n in 0..limit / 2 {
        let reply = receive_from(&rig, guesser, &format!("guess{n}")).await;
        assert_eq!(reply.status, 403, "router guess {n}: {reply:?}");
        let reply = sendsms_from(&rig, guesser, &format!("guess{n}")).await;
        assert_eq!(reply.status, 403, "sendsms guess {n}: {reply:?}");
    }
    // Now every protected endpoint refuses the address, right password or
    // not: /router/receive, /outbox, /delivered (JSON), /alert (text),
    // /admin/backup, /metrics, and sendsms.
    assert_throttled(&receive_from(&rig, guesser, PASSWORD).await, "receive");
    let pw = format!("password={PASSWORD}");
    for (what, bytes) in [
        (
            "outbox",
            request("GET", format!("/router/outbox?{pw}").as_bytes(), "", b""),
        ),
        (
            "delivered",
            request(
                "GET",
                format!("/router/delivered?{pw}&message_id=1").as_bytes(),
                "",
                b"",
            ),
        ),
        (
            "alert",
            request(
                "POST",
                b"/router/alert",
                FORM,
                format!("{pw}&subject=s&body=b").as_bytes(),
            ),
        ),
        (
            "backup",
            request(
                "POST",
                b"/admin/backup",
                FORM,
                format!("{pw}&to=/tmp/x").as_bytes(),
            ),
        ),
        (
            "metrics",
            request("GET", format!("/metrics?{pw}").as_bytes(), "", b""),
        ),
    ] {
        assert_throttled(&from_address(&rig, guesser, &bytes).await, what);
    }
    assert_throttled(&sendsms_from(&rig, guesser, "s3cret").await, "sendsms");
    // Endpoints without a password still answer the address.
    let stats = from_address(&rig, guesser, &request("GET", b"/router/stats", "", b"")).await;
    assert_eq!(stats.status, 200, "{stats:?}");
    assert_eq!(total(rig.store()).await, 0);
    // Another address is not affected.
    let reply = receive_from(&rig, other, PASSWORD).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(total(rig.store()).await, 2, "the message and its echo");
    let metrics = from_address(
        &rig,
        other,
        &request("GET", format!("/metrics?{pw}").as_bytes(), "", b""),
    )
    .await;
    for (series, want) in [
        ("{endpoint=\"receive\",outcome=\"wrong\"}", 5.0),
        ("{endpoint=\"sendsms\",outcome=\"wrong\"}", 5.0),
        ("{endpoint=\"receive\",outcome=\"throttled\"}", 1.0),
        ("{endpoint=\"alert\",outcome=\"throttled\"}", 1.0),
        ("{endpoint=\"metrics\",outcome=\"throttled\"}", 1.0),
    ] {
        let series = format!("http_auth_failures_total{series}");
        assert_eq!(metric(&metrics.body, &series), want, "{series}");
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_password_set_nothing_is_counted_or_throttled() {
    // No [http] password: /router/* is open (httprouter's default), so a
    // `password` parameter is no guess and must never lead to a 429.
    let rig = Rig::start("", "").await;
    let client: IpAddr = [127, 0, 0, 6].into();
    for n in 0..15 {
        let reply = receive_from(&rig, client, &format!("anything{n}")).await;
        assert_eq!(reply.status, 200, "request {n}: {reply:?}");
    }
    rig.stop().await;
}
