//! The requests smsbox 1.4.5 makes for `get-url` and `post-url` services
//! (`obey_request`), and their retries (`url_result_thread` with
//! `http-request-retry` and `http-queue-delay`).

use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use tokio::sync::Semaphore;

use crate::client::{redirect, HttpClient, HttpResponse};
use crate::model::MtOptions;
use crate::text::coding;

/// One request, ready to send (and send again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

/// The MO as a POST shows it.
#[derive(Debug, Clone, Default)]
pub struct PostFields<'a> {
    /// The phone (X-Kannel-From, with `send-sender`).
    pub phone: &'a str,
    /// The number the reply comes from (X-Kannel-To): the MO's receiver,
    /// or the service's faked sender, or the global sender.
    pub reply_from: &'a str,
    /// The MO's coding as smsbox holds it after `mo-recode`.
    pub coding: i32,
    pub charset: Option<&'a str>,
    /// The body: the text (as `charset`), UTF-16BE, or 8-bit bytes.
    pub body: Bytes,
    pub udh: Option<&'a [u8]>,
    pub smsc_id: Option<&'a str>,
    /// The service's name (smsbox sets the MO's service to it).
    pub service: &'a str,
    pub meta_data: Option<&'a str>,
    /// What the SMSC set beyond the fields above (message class, PID,
    /// validity...), if anything.
    pub fields: Option<&'a MtOptions>,
    /// The MO's time and now, Unix seconds.
    pub time: i64,
    pub now: i64,
}

impl PostFields<'_> {
    /// A field of [`PostFields::fields`], -1 (Kannel's unset) without any.
    pub fn field(&self, get: impl Fn(&MtOptions) -> i32) -> i32 {
        self.fields.map_or(-1, get)
    }

    /// An absolute time field as smsbox shows it: minutes from now
    /// (`(t - time(NULL)) / 60`, C's division, which truncates).
    pub fn minutes_from_now(&self, get: impl Fn(&MtOptions) -> i32) -> Option<i64> {
        let t = self.field(get);
        (t != -1).then(|| (i64::from(t) - self.now) / 60)
    }
}

/// A GET of `url`, with X-Kannel-From when the service sends the sender.
pub fn get(url: String, send_sender: bool, phone: &str) -> Request {
    let mut headers = Vec::new();
    if send_sender {
        headers.push(("X-Kannel-From", phone.to_owned()));
    }
    Request {
        method: Method::GET,
        url,
        headers,
        body: Bytes::new(),
    }
}

/// A POST of the message to `url`, with smsbox's headers in its order.
pub fn post(url: String, send_sender: bool, mo: PostFields<'_>) -> Request {
    let content_type = match mo.coding {
        coding::EIGHT_BIT => "application/octet-stream".to_owned(),
        coding::UCS2 => "text/plain; charset=\"UTF-16BE\"".to_owned(),
        _ => format!("text/plain; charset=\"{}\"", mo.charset.unwrap_or("UTF-8")),
    };
    let mut headers = vec![("Content-Type", content_type)];
    if send_sender {
        headers.push(("X-Kannel-From", mo.phone.to_owned()));
    }
    headers.push(("X-Kannel-To", mo.reply_from.to_owned()));
    headers.push(("X-Kannel-Time", timestamp(mo.time)));
    headers.push(("Date", timestamp(mo.now)));
    if let Some(udh) = mo.udh.filter(|u| !u.is_empty()) {
        let mut encoded = String::new();
        // smsbox: octstr_url_encode.
        crate::escape::kannel_url_encode(udh, &mut encoded);
        headers.push(("X-Kannel-UDH", encoded));
    }
    if let Some(smsc) = mo.smsc_id.filter(|s| !s.is_empty()) {
        headers.push(("X-Kannel-SMSC", smsc.to_owned()));
    }
    // obey_request: each only when set, in this order.
    let set = |value: i32| (value != -1).then(|| value.to_string());
    let numbers = [
        ("X-Kannel-MClass", set(mo.field(|f| f.mclass))),
        ("X-Kannel-PID", set(mo.field(|f| f.pid))),
        ("X-Kannel-RPI", set(mo.field(|f| f.rpi))),
        ("X-Kannel-Alt-DCS", set(mo.field(|f| f.alt_dcs))),
        ("X-Kannel-MWI", set(mo.field(|f| f.mwi))),
        ("X-Kannel-Coding", set(mo.coding)),
        ("X-Kannel-Compress", set(mo.field(|f| f.compress))),
        (
            "X-Kannel-Validity",
            mo.minutes_from_now(|f| f.validity).map(|m| m.to_string()),
        ),
        (
            "X-Kannel-Deferred",
            mo.minutes_from_now(|f| f.deferred).map(|m| m.to_string()),
        ),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            headers.push((name, value));
        }
    }
    if !mo.service.is_empty() {
        headers.push(("X-Kannel-Service", mo.service.to_owned()));
    }
    if let Some(binfo) = mo.fields.and_then(|f| f.binfo.as_deref()) {
        headers.push(("X-Kannel-BInfo", binfo.to_owned()));
    }
    if let Some(meta) = mo.meta_data.filter(|m| !m.is_empty()) {
        headers.push(("X-Kannel-Meta-Data", meta.to_owned()));
    }
    Request {
        method: Method::POST,
        url,
        headers,
        body: mo.body,
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, as smsbox writes X-Kannel-Time and Date.
pub(super) fn timestamp(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "1970-01-01 00:00:00".to_owned(),
    }
}

/// How to retry.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub timeout: Duration,
    /// Tries after the first.
    pub retries: u32,
    pub delay: Duration,
}

/// Sends `request` until an answer with status 200 or 202 comes (the only
/// ones smsbox takes), at most `1 + retries` times, `delay` apart: any
/// other status, no answer, a broken connection or a timeout is tried
/// again, as smsbox's `url_result_thread` requeues every request not
/// answered 200 or 202. Each try holds one of `pending`'s permits
/// (`max-pending-requests`) while it is in progress, not during the delay
/// before the next (smsbox's waiting requests sit in its timer list, not
/// in its pending count). Each try follows up to
/// [`MAX_FOLLOW`](redirect::MAX_FOLLOW) redirects, as smsbox's
/// HTTP client does. `Err` carries the last failure, for the log.
pub async fn fetch(
    http: &HttpClient,
    request: &Request,
    retry: Retry,
    pending: &Semaphore,
) -> Result<HttpResponse, String> {
    let mut tries = 0;
    loop {
        // Closed only if the app is gone; the request is then made anyway.
        let permit = pending.acquire().await.ok();
        let headers: Vec<(&str, String)> = request
            .headers
            .iter()
            .map(|(n, v)| (*n, v.clone()))
            .collect();
        // One try follows redirects (each within the timeout) under the
        // same permit, as smsbox's request stays pending while it does.
        let (url, outcome) = http
            .send_following(
                request.method.clone(),
                &request.url,
                &headers,
                request.body.clone(),
                retry.timeout,
                redirect::MAX_FOLLOW,
            )
            .await;
        drop(permit);
        let failure = match outcome {
            Ok(r) if r.status.as_u16() == 200 || r.status.as_u16() == 202 => return Ok(r),
            Ok(r) => format!("{url}: HTTP {}", r.status.as_u16()),
            Err(e) => format!("{url}: {e}"),
        };
        if tries >= retry.retries {
            return Err(failure);
        }
        tries += 1;
        tokio::time::sleep(retry.delay).await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn fields() -> PostFields<'static> {
        PostFields {
            phone: "+256772123456",
            reply_from: "8500",
            coding: 0,
            charset: Some("UTF-8"),
            body: Bytes::from_static(b"hello"),
            udh: None,
            smsc_id: Some("fake"),
            service: "hello",
            meta_data: None,
            fields: None,
            time: 1_764_000_000,
            now: 1_764_000_001,
        }
    }

    #[test]
    fn a_get_carries_the_sender_only_with_send_sender() {
        assert!(get("http://h/".into(), false, "+1").headers.is_empty());
        assert_eq!(
            get("http://h/".into(), true, "+1").headers,
            [("X-Kannel-From", "+1".to_owned())]
        );
    }

    #[test]
    fn a_post_has_smsbox_headers_in_its_order() {
        let r = post("http://h/p".into(), true, fields());
        let names: Vec<_> = r.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "X-Kannel-From",
                "X-Kannel-To",
                "X-Kannel-Time",
                "Date",
                "X-Kannel-SMSC",
                "X-Kannel-Coding",
                "X-Kannel-Service"
            ]
        );
        assert_eq!(r.headers[0].1, "text/plain; charset=\"UTF-8\"");
        assert_eq!(r.headers[3].1, "2025-11-24 16:00:00");
        assert_eq!(r.body, Bytes::from_static(b"hello"));
    }

    /// Every field an SMSC may set, as the loop-back differential case
    /// sets them.
    pub(crate) fn smsc_fields(now: i64) -> MtOptions {
        MtOptions {
            mclass: 1,
            mwi: 0,
            pid: 65,
            alt_dcs: 1,
            rpi: 1,
            compress: 0,
            validity: (now + 3630) as i32,
            deferred: (now + 1830) as i32,
            binfo: Some("bill me".to_owned()),
            ..MtOptions::default()
        }
    }

    #[test]
    fn a_post_shows_what_the_smsc_set_as_smsbox_does_in_its_order() {
        let mut f = fields();
        let extra = smsc_fields(f.now);
        f.fields = Some(&extra);
        let r = post("http://h/p".into(), false, f);
        let shown: Vec<String> = r.headers[4..]
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        assert_eq!(
            shown,
            [
                "X-Kannel-SMSC: fake",
                "X-Kannel-MClass: 1",
                "X-Kannel-PID: 65",
                "X-Kannel-RPI: 1",
                "X-Kannel-Alt-DCS: 1",
                "X-Kannel-MWI: 0",
                "X-Kannel-Coding: 0",
                "X-Kannel-Compress: 0",
                "X-Kannel-Validity: 60",
                "X-Kannel-Deferred: 30",
                "X-Kannel-Service: hello",
                "X-Kannel-BInfo: bill me",
            ]
        );
    }

    #[test]
    fn minutes_from_now_truncate_as_c_division() {
        let mut f = fields();
        let extra = MtOptions {
            validity: (f.now + 119) as i32,
            deferred: (f.now - 119) as i32,
            ..MtOptions::default()
        };
        f.fields = Some(&extra);
        assert_eq!(f.minutes_from_now(|o| o.validity), Some(1));
        assert_eq!(f.minutes_from_now(|o| o.deferred), Some(-1));
        assert_eq!(f.minutes_from_now(|o| o.pid), None);
    }

    #[test]
    fn a_post_names_binary_and_ucs2_bodies_and_encodes_the_udh() {
        let udh = [6u8, 5, 4];
        let mut f = fields();
        f.coding = 1;
        f.udh = Some(&udh);
        let r = post("http://h/".into(), false, f);
        assert_eq!(r.headers[0].1, "application/octet-stream");
        assert!(r
            .headers
            .contains(&("X-Kannel-UDH", "%06%05%04".to_owned())));
        let mut f = fields();
        f.coding = 2;
        let r = post("http://h/".into(), false, f);
        assert_eq!(r.headers[0].1, "text/plain; charset=\"UTF-16BE\"");
    }
}
