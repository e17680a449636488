//! What the endpoints answer: JSON bodies, the error shapes, and messages
//! as httprouter's `Message.as_json`.
//!
//! Every error is JSON, `{"error": "..."}`, with `"fields"` naming each
//! bad parameter of an invalid request, so a relay can log something
//! useful whatever went wrong.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Response, StatusCode};
use serde::Serialize;
use tracing::error;

use crate::model::{Message, MessageId, Micros};
use crate::store::StoreError;

/// A response with its whole body in hand.
pub type HttpResponse = Response<Full<Bytes>>;

/// Bad parameters, by name, with what is wrong with each.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Why a request was not served; each maps to one status and JSON body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    Invalid(FieldErrors),
    #[error("a valid password is required")]
    Forbidden,
    /// The client's address gave wrong credentials too often; it may try
    /// again after this long.
    #[error("{}", THROTTLED)]
    Throttled(std::time::Duration),
    #[error("no such endpoint")]
    NoSuchPath,
    #[error("no message {0}")]
    NoSuchMessage(MessageId),
    #[error("message {0} is incoming; only outgoing messages are delivered")]
    NotOutgoing(MessageId),
    #[error("parameter `{name}`: {why}")]
    Malformed {
        name: String,
        why: super::request::Malformed,
    },
    #[error("method not allowed")]
    MethodNotAllowed(&'static [Method]),
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("the request body could not be read")]
    BodyUnreadable,
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("a body must be application/x-www-form-urlencoded")]
    UnsupportedBody,
    #[error("internal error: {0}")]
    Internal(&'static str),
    #[error("storage unavailable, try again later")]
    StorageUnavailable(#[source] StoreError),
    #[error("storage error")]
    Storage(#[source] StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_transient() {
            ApiError::StorageUnavailable(e)
        } else {
            ApiError::Storage(e)
        }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::Malformed { .. } | ApiError::BodyUnreadable => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NoSuchPath | ApiError::NoSuchMessage(_) => StatusCode::NOT_FOUND,
            ApiError::NotOutgoing(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedBody => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            // A relay retries on 503; a refused unit would be refused again.
            ApiError::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Storage(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response for this error.
    pub fn into_response(self) -> HttpResponse {
        #[derive(Serialize)]
        struct Body<'a> {
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            fields: Option<&'a BTreeMap<&'a str, String>>,
        }
        match &self {
            ApiError::StorageUnavailable(e) | ApiError::Storage(e) => {
                error!(error = %e, "HTTP request failed on the store");
            }
            ApiError::Internal(what) => error!("HTTP request failed: {what}"),
            _ => {}
        }
        let named: BTreeMap<&str, String>;
        let fields = match &self {
            ApiError::Invalid(fields) => {
                named = fields.iter().map(|(k, v)| (*k, v.clone())).collect();
                Some(&named)
            }
            ApiError::Malformed { name, why } => {
                named = BTreeMap::from([(name.as_str(), why.to_string())]);
                Some(&named)
            }
            _ => None,
        };
        let body = Body {
            error: self.to_string(),
            fields,
        };
        let mut response = json(self.status(), &body);
        if let ApiError::MethodNotAllowed(allowed) = &self {
            let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            if let Ok(value) = HeaderValue::from_str(&list.join(", ")) {
                response.headers_mut().insert(ALLOW, value);
            }
        }
        if let ApiError::Throttled(wait) = &self {
            retry_after(&mut response, *wait);
        }
        response
    }
}

/// What an address that gave wrong credentials too often is told, with
/// status 429 and `Retry-After` (smsbox and httprouter have no such limit,
/// so no words of their own for it).
pub const THROTTLED: &str = "Too many failed authorizations from this address, try again later.";

/// Sets `Retry-After` to `wait`, in whole seconds (at least 1).
pub fn retry_after(response: &mut HttpResponse, wait: std::time::Duration) {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
}

/// `value` as a JSON response.
pub fn json(status: StatusCode, value: &impl Serialize) -> HttpResponse {
    // Serializing these plain structs cannot fail; if it ever did, an empty
    // object is still JSON.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    with_type(status, "application/json", body)
}

/// `text` as a plain-text response.
pub fn text(status: StatusCode, text: String) -> HttpResponse {
    with_type(status, "text/plain; charset=utf-8", text.into_bytes())
}

/// `html` as an HTML response.
pub fn html(status: StatusCode, html: String) -> HttpResponse {
    with_type(status, "text/html; charset=utf-8", html.into_bytes())
}

/// A 200 with an empty body (httprouter's silent mode).
pub fn empty() -> HttpResponse {
    Response::new(Full::new(Bytes::new()))
}

/// `body` as a response of `content_type`.
pub fn with_type(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A message as httprouter's `as_json` has it.
#[derive(Debug, Serialize)]
pub struct MessageJson<'a> {
    pub id: MessageId,
    /// The connection's identity (the normalized address), as httprouter.
    pub contact: &'a str,
    pub backend: &'a str,
    pub direction: char,
    pub status: char,
    pub text: &'a str,
    pub date: String,
}

impl<'a> From<&'a Message> for MessageJson<'a> {
    fn from(m: &'a Message) -> MessageJson<'a> {
        MessageJson {
            id: m.id,
            contact: &m.connection.identity,
            backend: &m.connection.backend,
            direction: m.direction.code(),
            status: m.status.code(),
            text: &m.text,
            date: iso8601(m.date),
        }
    }
}

/// `micros` as ISO 8601 in UTC to the second, `2026-11-26T13:08:34`, as
/// httprouter's `date.isoformat()` wrote its (UTC, naive) dates.
///
/// Written by hand for years 0 to 9999 (every `/router/receive` answer
/// has two of these dates, and `time`'s general formatter cost more than
/// the rest of the JSON); `time` formats the others.
pub fn iso8601(micros: Micros) -> String {
    let secs = micros.div_euclid(1_000_000);
    let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return iso8601_by_time(micros);
    }
    let (hour, minute, second) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    let mut out = *b"0000-00-00T00:00:00";
    for (at, value, digits) in [
        (0, year, 4),
        (5, month, 2),
        (8, day, 2),
        (11, hour, 2),
        (14, minute, 2),
        (17, second, 2),
    ] {
        let mut value = value;
        for i in (at..at + digits).rev() {
            // Each value fits its digits: year 0-9999, the rest below 100.
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The proleptic Gregorian date (year, month 1-12, day 1-31) of `days`
/// since 1970-01-01, by Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// [`iso8601`] by `time`'s formatter; empty outside its range.
fn iso8601_by_time(micros: Micros) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_8601_utc_to_the_second() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00");
        assert_eq!(iso8601(1_795_698_514_999_999), "2026-11-26T13:08:34");
    }

    #[test]
    fn the_hand_written_dates_are_times() {
        // Leap days, century years, the epoch's edges, the range's ends.
        let mut samples = vec![
            -1,
            -62_167_219_200_000_000,
            -62_167_219_200_000_001,
            253_402_300_799_999_999,
            253_402_300_800_000_000,
            951_782_400_000_000,
            4_107_542_400_000_000,
            i64::MIN,
            i64::MAX,
        ];
        // And a spread of instants over years 0 to 9999.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push((x % 315_569_520_000_000_000) as i64 - 62_167_219_200_000_000);
        }
        for micros in samples {
            assert_eq!(iso8601(micros), iso8601_by_time(micros), "{micros}");
        }
    }
}
