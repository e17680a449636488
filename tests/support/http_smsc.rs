//! Kannel's HTTP SMSC of type `kannel` (`smsc = http`, `system-type =
//! kannel`, gw/smsc/smsc_http.c) as the test's phone network: MOs of any
//! coding, charset and UDH go into a real bearerbox, and its MTs come back
//! to a recording HTTP server.
//!
//! fakesmsc can only send 7-bit text, 8-bit data and a UDH; this SMSC
//! takes what an SMPP or AT SMSC would deliver. How 1.4.5 does it
//! (`kannel_receive_sms`, `kannel_send_sms`):
//!
//! - **MOs**: the bearerbox listens on the group's `port` for `GET
//!   /sms?username=&password=&from=&to=&text=` with optional `coding`,
//!   `udh`, `mclass`, `mwi`, `validity`, `deferred`, `account` and
//!   `binfo`; each value is URL-decoded to bytes and put in the MO as it
//!   is: `text` is the `msgdata` (UTF-16BE bytes for `coding=2`; there is
//!   no `charset` parameter, so the MO's charset is unset), `udh` must
//!   start with its own length. The MO's `service` is the username and its
//!   `smsc_id` the group's. The answer is `202` with `Sent.`, or a reason
//!   (`Authorization failed for sendsms`, `Insufficient args, rejected`,
//!   `UDH field misformed, rejected`) with the same 202.
//! - **MTs**: `GET send-url?username=&password=&to=&text=` with `udh`,
//!   `from`, `mclass`, `coding` (when set) and `charset` (`UTF-8` for
//!   coding 0, `UTF-16BE` for coding 2; none for an unset coding), `mwi`,
//!   `account`, `binfo`, `smsc`, `dlr-url`, `dlr-mask`, `validity` and
//!   `deferred`; `text` is the `msgdata` exactly (UTF-8, UTF-16BE or
//!   bytes). The answer must be 200 or 202 with `Sent.` (or `0: Accepted
//!   for delivery`, `Ok.`, `Result: OK`), else the MT failed.
//!
//! [`group`] is the bearerbox's `group = smsc` for it; [`HttpSmsc`] is
//! the recording server for its MTs and the client that sends its MOs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::conf::Group;
use super::http;
use super::service::{Answer, Seen, Service};

/// The HTTP SMSC's `smsc-id`: every MO it delivers carries it, and an MT
/// with it goes back through it.
pub const SMSC_ID: &str = "http";
/// `smsc-username`: what MOs must send, what MTs carry, and (as Kannel
/// puts it there) the `service` of every MO it delivers.
pub const USERNAME: &str = "injector";
/// `smsc-password`.
pub const PASSWORD: &str = "inject-pw";
/// The path of `send-url` on the recording server.
const MT_PATH: &str = "/mt";

/// The bearerbox's `group = smsc` for an HTTP SMSC of type `kannel`
/// listening for MOs on 127.0.0.1:`port` and sending MTs to `send_url`.
pub fn group(port: u16, send_url: &str) -> Group {
    Group::new("smsc")
        .set("smsc", "http")
        .set("system-type", "kannel")
        .set("smsc-id", SMSC_ID)
        .set("port", port)
        .set("connect-allow-ip", "127.0.0.1")
        .set("smsc-username", USERNAME)
        .set("smsc-password", PASSWORD)
        .set("send-url", send_url)
}

/// One MO, as the HTTP SMSC takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mo {
    pub from: String,
    pub to: String,
    /// `msgdata`, exactly.
    pub text: Vec<u8>,
    /// `coding`: 0 7-bit, 1 8-bit, 2 UCS-2; `None` leaves it unset (-1).
    pub coding: Option<i32>,
    /// `udh`, starting with its own length.
    pub udh: Option<Vec<u8>>,
}

impl Mo {
    /// 7-bit text (UTF-8, as Kannel carries it), coding 0.
    pub fn text(from: &str, to: &str, text: &str) -> Mo {
        Mo {
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.as_bytes().to_vec(),
            coding: Some(0),
            udh: None,
        }
    }

    /// UCS-2 text (UTF-16BE bytes), coding 2.
    pub fn ucs2(from: &str, to: &str, text: &str) -> Mo {
        Mo {
            text: utf16be(text),
            coding: Some(2),
            ..Mo::text(from, to, "")
        }
    }

    /// 8-bit data, coding 1.
    pub fn binary(from: &str, to: &str, data: &[u8]) -> Mo {
        Mo {
            text: data.to_vec(),
            coding: Some(1),
            ..Mo::text(from, to, "")
        }
    }

    /// The same MO with a user data header.
    pub fn with_udh(mut self, udh: &[u8]) -> Mo {
        self.udh = Some(udh.to_vec());
        self
    }

    /// The request's path and query.
    pub fn target(&self) -> String {
        let mut target = format!(
            "/sms?username={}&password={}&from={}&to={}&text={}",
            encode(USERNAME.as_bytes()),
            encode(PASSWORD.as_bytes()),
            encode(self.from.as_bytes()),
            encode(self.to.as_bytes()),
            encode(&self.text)
        );
        if let Some(coding) = self.coding {
            let _ = write!(target, "&coding={coding}");
        }
        if let Some(udh) = &self.udh {
            let _ = write!(target, "&udh={}", encode(udh));
        }
        target
    }
}

/// `text` as UTF-16BE bytes: what Kannel carries a UCS-2 message as.
pub fn utf16be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Every byte but unreserved ASCII as `%XX`, so any byte goes through
/// Kannel's decoder unchanged (it turns `+` into a space).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `%XX` decoded to bytes and `+` to a space, as Kannel's decoder does.
pub fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                // Two hex digits exactly (from_str_radix would take "+5").
                let hex = text
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// One MT as the bearerbox sent it to `send-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpMt {
    pub to: String,
    pub from: String,
    /// `msgdata`, exactly.
    pub text: Vec<u8>,
    pub udh: Option<Vec<u8>>,
    pub coding: Option<i32>,
    pub charset: Option<String>,
    /// Every parameter, decoded (lossily as UTF-8), in order, for what
    /// the fields above leave out.
    pub params: Vec<(String, String)>,
}

impl HttpMt {
    /// The MT a recorded request to `send-url` carried; `None` for a
    /// request that is not one (another path, no `to`).
    pub fn parse(seen: &Seen) -> Option<HttpMt> {
        let (path, query) = seen.target.split_once('?')?;
        if path != MT_PATH {
            return None;
        }
        let mut raw: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut params = Vec::new();
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = String::from_utf8_lossy(&decode(name)).into_owned();
            let value = decode(value);
            params.push((name.clone(), String::from_utf8_lossy(&value).into_owned()));
            raw.insert(name, value);
        }
        let text_of = |name: &str| {
            raw.get(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        Some(HttpMt {
            to: text_of("to")?,
            from: text_of("from").unwrap_or_default(),
            text: raw.get("text").cloned().unwrap_or_default(),
            udh: raw.get("udh").cloned(),
            coding: text_of("coding").and_then(|c| c.parse().ok()),
            charset: text_of("charset"),
            params,
        })
    }

    /// The text read by its coding and charset: UTF-16BE for coding 2,
    /// else UTF-8 (lossily).
    pub fn decoded(&self) -> String {
        if self.coding == Some(2) {
            let units: Vec<u16> = self
                .text
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        } else {
            String::from_utf8_lossy(&self.text).into_owned()
        }
    }
}

/// The phone network behind an HTTP SMSC: sends MOs to the bearerbox's
/// port and records the MTs the bearerbox sends to its `send-url`.
pub struct HttpSmsc {
    /// Where the bearerbox takes MOs.
    port: u16,
    mts: Service,
}

impl HttpSmsc {
    /// A recording server for MTs, for a bearerbox whose HTTP SMSC will
    /// listen on `port` (give the bearerbox [`HttpSmsc::group`]).
    pub async fn start(port: u16) -> HttpSmsc {
        let mts = Service::start(Answer::Status(404, "not send-url")).await;
        mts.route(
            MT_PATH,
            Answer::Raw {
                status: 202,
                content_type: "text/plain",
                headers: &[],
                body: b"Sent.",
            },
        );
        HttpSmsc { port, mts }
    }

    /// The bearerbox's `group = smsc` for this network.
    pub fn group(&self) -> Group {
        group(self.port, &self.mts.url(MT_PATH))
    }

    /// The port the bearerbox listens on for MOs.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Delivers `mo` to the bearerbox. `Err` with the answer when the
    /// bearerbox did not take it (`Sent.`).
    pub async fn send(&self, mo: &Mo) -> Result<(), String> {
        let target = mo.target();
        let response = http::try_get(self.port, &target)
            .await
            .ok_or_else(|| format!("GET {target}: no answer from the bearerbox"))?;
        if response.status == 202 && response.body.trim() == "Sent." {
            Ok(())
        } else {
            Err(format!(
                "GET {target}: the bearerbox answered {} {:?}",
                response.status, response.body
            ))
        }
    }

    /// Every MT received so far, in order.
    pub fn mts(&self) -> Vec<HttpMt> {
        self.mts.seen().iter().filter_map(HttpMt::parse).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_survive_encoding() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)), all);
        assert_eq!(decode("a+b%2Bc%zz%+5"), b"a b+c%zz% 5");
    }

    #[test]
    fn a_ucs2_mo_carries_utf16be_and_its_coding() {
        let mo = Mo::ucs2("+1", "55", "Жx").with_udh(&[2, 0x70, 0]);
        assert_eq!(
            mo.target(),
            "/sms?username=injector&password=inject-pw&from=%2B1&to=55\
             &text=%04%16%00x&coding=2&udh=%02p%00"
        );
    }
}
