//! Kannel smsbox's sendsms interface, apart from HTTP: a request's method,
//! headers, query and body in ([`Incoming`]), smsbox's answer or the
//! outgoing messages out ([`parse`], [`Request::messages`]). The HTTP
//! endpoint (`crate::http`) only reads the request and commits what this
//! gives it.
//!
//! Everything follows smsbox 1.4.5 (gw/smsbox.c: `sendsms_thread`,
//! `smsbox_req_sendsms`, `smsbox_sendsms_post`, `get_x_kannel_from_headers`,
//! `get_x_kannel_from_xml`, `smsbox_req_handle`, `send_message`; gw/sms.c:
//! `sms_split`), checked against the real binary by
//! `tests/sendsms_vs_smsbox.rs`:
//!
//! - `body`: GET, POST form, `text/plain` and `application/octet-stream`
//!   with `X-Kannel-*` headers, XML POST (`xml`), and the content types
//!   smsbox refuses;
//! - `params`: the fields, read as smsbox reads them (the first of a
//!   repeated parameter counts, integers as `sscanf` reads them);
//! - `checks`: smsbox's checks, in its order, with its words;
//! - `split`: `max-messages`, `concatenation`, `header`, `footer`,
//!   `split-chars`, `split-suffix`;
//! - `message`: the outgoing messages, one per receiver and part.
//!
//! | answer | status | when |
//! | --- | --- | --- |
//! | `Invalid content-type` | 400 | a POST of a type smsbox does not read (JSON, ...; a form when the user has `form_post = false`) |
//! | `Authorization failed for sendsms` | 403 | unknown user, wrong password, or an address the user's `user_deny_ip` refuses |
//! | `Missing receiver number, rejected` | 400 | a GET without `to` (a POST: `Missing receiver(s) number(s), rejected`) |
//! | `Empty receiver number not allowed, rejected` | 400 | `to=` |
//! | `Unsupported content-type, rejected` | 415 | a POST of `text/html` or `text/vnd.wap.wml` |
//! | `UDH field misformed, rejected` | 400 | the UDH's first byte is not its length |
//! | `UDH field is too long, rejected` | 400 | a UDH over 140 octets |
//! | `Number(s) has/have been denied by white- and/or black-lists.` | 400 | no receiver made only of `0-9 +-` and allowed by the user's `white_list_regex`/`black_list_regex` |
//! | `Sender missing and no global set, rejected` | 400 | no `from` (nor the user's default, nor `[kannel] global_sender`) |
//! | `Account field misformed or too long, rejected` | 400 | an `account` over 64 octets, or with `[ ] CR LF` |
//! | `DLR-URL field misformed, rejected` | 400 | a `dlr-url` that is not `http://` or `https://` |
//! | `DLR-Mask field misformed, rejected` (also MClass, PID, RPI, Alt-DCS, MWI, Coding, Compress, Validity, Deferred, Priority) | 400 | out of Kannel's range |
//! | `Charset or body misformed, rejected` | 400 | an unknown charset, or text that is not in it |
//! | `0: Accepted for delivery` | 202 | every message durably queued |
//!
//! A `coding` left out is 8-bit for a GET with a `udh` and for an
//! `application/octet-stream` POST, 7-bit otherwise; an explicit `coding=0`
//! is 7-bit, and as in smsbox what the GSM alphabet cannot say becomes
//! `?`.
//!
//! Where rapidbox differs from smsbox on purpose (each undone per user
//! by the keys in [`crate::config::SendsmsUser`], all at once by
//! `smsbox_compat = true`): text without a `coding` that does not fit GSM
//! goes as UCS-2 instead of with `?`; text that does not decode in its
//! charset is refused instead of sent garbled; a user without `max_messages`
//! gets the whole text sent instead of one SMS; POST forms are taken. And
//! always: each receiver's MT (and each part's) has its own UUID (smsbox
//! reuses one for all receivers), and a UCS-2 text's `header`/`footer`
//! are UCS-2 too (smsbox inserts their bytes).

mod body;
mod checks;
mod message;
mod params;
mod split;
mod xml;

use crate::config::{Behaviour, SendsmsUser};
use crate::model::MtOptions;
use crate::text;

use body::Kind;
use params::{Fields, UNSET};
use split::{Payload, Shape};

pub use message::Part;

/// The backend of a message whose request names no SMSC (nor the user a
/// default): the bearerbox then picks the SMSC, as for smsbox's MTs
/// without an smsc-id.
pub const DEFAULT_BACKEND: &str = "kannel";

/// smsbox's answer when it has queued the messages.
pub const ACCEPTED: &str = "0: Accepted for delivery";

/// Why a request was refused: smsbox's words ([`Refusal::status`] its
/// status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Invalid content-type")]
    InvalidContentType,
    #[error("Authorization failed for sendsms")]
    Unauthorized,
    #[error("Missing receiver number, rejected")]
    NoReceiver,
    /// A POST's words for [`Refusal::NoReceiver`].
    #[error("Missing receiver(s) number(s), rejected")]
    NoReceivers,
    #[error("Empty receiver number not allowed, rejected")]
    EmptyReceiver,
    #[error("Unsupported content-type, rejected")]
    UnsupportedContentType,
    #[error("UDH field is too long, rejected")]
    UdhTooLong,
    #[error("Number(s) has/have been denied by white- and/or black-lists.")]
    Denied,
    #[error("Sender missing and no global set, rejected")]
    NoSender,
    #[error("Account field misformed or too long, rejected")]
    Account,
    /// A field out of range: smsbox's name for it.
    #[error("{0} field misformed, rejected")]
    Misformed(&'static str),
    #[error("Charset or body misformed, rejected")]
    Charset,
    #[error("Not routable. Do not try again.")]
    AllCancelled,
    #[error("Temporal failure, try again later.")]
    StorageUnavailable,
    #[error("Internal error, try again later.")]
    Storage,
}

impl Refusal {
    /// The HTTP status smsbox answers with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Unauthorized | Refusal::AllCancelled => 403,
            Refusal::UnsupportedContentType => 415,
            Refusal::StorageUnavailable => 503,
            Refusal::Storage => 500,
            _ => 400,
        }
    }
}

/// A sendsms HTTP request, as the HTTP layer read it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// A POST (the body counts); anything else is read as a GET.
    pub post: bool,
    /// The raw query string, without the `?`.
    pub query: &'a [u8],
    /// Every header, in order (only a POST's `Content-Type` and
    /// `X-Kannel-*` are read: a GET's may be left out).
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
    /// Who sent it, for the user's `user_deny_ip`/`user_allow_ip`.
    pub client_ip: Option<std::net::IpAddr>,
}

impl Incoming<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A valid request, ready to become messages ([`Request::messages`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub username: String,
    /// The MTs' `service`: the user's `name`, else its username.
    pub service: String,
    pub sender: String,
    pub receivers: Vec<String>,
    pub backend: String,
    /// `smsc_id` on the wire: the backend when the request or the user
    /// named one, else NULL.
    pub smsc_id: Option<String>,
    /// The parts of the text, one MT each (one unless the user's
    /// `max_messages` without `concatenation` cut it).
    pub parts: Vec<Part>,
    /// The box protocol coding: 0, 1 or 2.
    pub coding: i32,
    pub charset: Option<String>,
    pub udh: Option<Vec<u8>>,
    pub dlr_mask: i32,
    pub options: MtOptions,
}

/// The user the credentials name, if the password matches and the user
/// may send from `ip` (smsbox's `authorise_username`). Every user is
/// compared, in constant time, so the answer's timing tells nothing.
fn authorize<'u>(
    users: &'u [SendsmsUser],
    fields: &Fields,
    ip: Option<std::net::IpAddr>,
) -> Option<&'u SendsmsUser> {
    use subtle::ConstantTimeEq;
    let username = fields.username.as_deref()?;
    let password = fields.password.as_deref()?;
    let mut found = None;
    for user in users {
        let name: bool = user.username.as_bytes().ct_eq(username).into();
        let pass: bool = user.password.as_bytes().ct_eq(password).into();
        if name && pass {
            found = Some(user);
        }
    }
    found.filter(|user| {
        let allowed = user.allows_ip(ip);
        if !allowed {
            tracing::warn!(user = %user.username, ?ip, "sendsms: user not allowed from this address");
        }
        allowed
    })
}

fn string(value: Option<&[u8]>) -> Option<String> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Where a request's sender comes from when it has no `from` and its user
/// no default: smsbox's `global-sender` (`[kannel] global_sender`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Defaults<'a> {
    pub global_sender: Option<&'a str>,
}

/// Checks `incoming` as smsbox does, in smsbox's order, and makes it a
/// [`Request`]; `now_secs` turns `validity` and `deferred` minutes into
/// the absolute times the bearerbox expects.
pub fn parse(
    users: &[SendsmsUser],
    defaults: Defaults<'_>,
    incoming: &Incoming<'_>,
    now_secs: i64,
) -> Result<Request, Refusal> {
    let (kind, charset) = if incoming.post {
        let (essence, charset) = body::content_type(incoming.header("content-type"));
        let kind = body::kind_of_post(&essence).map_err(|_| Refusal::InvalidContentType)?;
        (kind, charset)
    } else {
        (Kind::Get, None)
    };
    let mut fields = body::fields(
        kind,
        incoming.query,
        incoming.headers.iter().copied(),
        charset,
        incoming.body,
    );
    let user = authorize(users, &fields, incoming.client_ip).ok_or(Refusal::Unauthorized)?;
    let behaviour = user.behaviour();
    if kind == Kind::Form && !behaviour.form_post {
        return Err(Refusal::InvalidContentType);
    }
    match (&fields.to, &fields.receivers) {
        (None, None) if kind.is_post() => return Err(Refusal::NoReceivers),
        (None, None) => return Err(Refusal::NoReceiver),
        (Some(to), _) if to.is_empty() => return Err(Refusal::EmptyReceiver),
        _ => {}
    }
    if kind == Kind::Markup {
        return Err(Refusal::UnsupportedContentType);
    }
    // smsbox_sendsms_post's defaults, before the common checks.
    let explicit_coding = fields.coding != UNSET;
    match kind {
        Kind::OctetStream if !explicit_coding => fields.coding = text::coding::EIGHT_BIT,
        Kind::Plain | Kind::Xml if !explicit_coding => fields.coding = text::coding::SEVEN_BIT,
        _ => {}
    }
    request(
        user,
        defaults,
        &behaviour,
        &fields,
        explicit_coding,
        now_secs,
    )
}

/// smsbox_req_handle: the checks every kind of request shares, and the
/// request they leave.
fn request(
    user: &SendsmsUser,
    defaults: Defaults<'_>,
    behaviour: &Behaviour,
    fields: &Fields,
    explicit_coding: bool,
    now_secs: i64,
) -> Result<Request, Refusal> {
    let udh = checks::udh(fields.udh.as_deref())?;
    let receivers = checks::receivers(fields, user)?;
    let sender = user
        .forced_sender
        .clone()
        .or_else(|| string(fields.from.as_deref()))
        .or_else(|| user.default_sender.clone())
        .or_else(|| defaults.global_sender.map(str::to_owned))
        .ok_or(Refusal::NoSender)?;
    let account = checks::account(fields.account.as_deref())?;
    let dlr_url = checks::dlr_url(fields.dlr_url.as_deref())?;
    checks::ranges(fields)?;
    // Kannel's "compatibility mode": no coding is 8-bit with a UDH.
    let coding = match fields.coding {
        UNSET if udh.is_some() => text::coding::EIGHT_BIT,
        UNSET => text::coding::SEVEN_BIT,
        given => given,
    };
    let smsc = user
        .forced_smsc
        .clone()
        .or_else(|| string(fields.smsc.as_deref()))
        .or_else(|| user.default_smsc.clone());
    let charset = string(fields.charset.as_deref());
    let raw = fields.text.as_deref().unwrap_or_default();
    let payload = payload(raw, coding, explicit_coding, charset.as_deref(), behaviour)?;
    let shape = Shape {
        max_messages: behaviour.max_messages,
        concatenation: user.concatenation,
        header: user.header.as_deref().unwrap_or_default(),
        footer: user.footer.as_deref().unwrap_or_default(),
        split_suffix: user.split_suffix.as_deref().unwrap_or_default(),
        split_chars: user.split_chars.as_deref().unwrap_or_default(),
    };
    let udh_len = udh.as_ref().map_or(0, Vec::len);
    let coding = match payload {
        Payload::Gsm(_) => text::coding::SEVEN_BIT,
        Payload::Octets(_) => text::coding::EIGHT_BIT,
        Payload::Ucs2(_) => text::coding::UCS2,
    };
    let parts = split::split(&payload, udh_len, &shape)
        .into_iter()
        .map(|bytes| Part::new(&payload, bytes, charset.as_deref()))
        .collect();
    // smsbox turns minutes into the absolute time the bearerbox expects.
    let absolute = |minutes: i32| {
        if minutes < 0 {
            UNSET
        } else {
            i32::try_from(now_secs + i64::from(minutes) * 60).unwrap_or(i32::MAX)
        }
    };
    let options = MtOptions {
        dlr_url,
        mclass: fields.mclass,
        mwi: fields.mwi,
        pid: fields.pid,
        alt_dcs: fields.alt_dcs,
        rpi: fields.rpi,
        validity: absolute(fields.validity),
        deferred: absolute(fields.deferred),
        priority: fields.priority,
        account,
        binfo: string(fields.binfo.as_deref()),
        meta_data: string(fields.meta_data.as_deref()),
        compress: fields.compress,
    };
    Ok(Request {
        username: user.username.clone(),
        service: user.name.clone().unwrap_or_else(|| user.username.clone()),
        sender,
        receivers,
        backend: smsc.clone().unwrap_or_else(|| DEFAULT_BACKEND.to_owned()),
        smsc_id: smsc,
        parts,
        coding,
        charset,
        udh,
        dlr_mask: fields.dlr_mask,
        options,
    })
}

/// The text's payload for its `coding`, as smsbox's `charset_processing`
/// and `sms_split` leave it.
fn payload(
    raw: &[u8],
    coding: i32,
    explicit_coding: bool,
    charset: Option<&str>,
    behaviour: &Behaviour,
) -> Result<Payload, Refusal> {
    let utf16 =
        |text: &str| -> Vec<u8> { text.encode_utf16().flat_map(u16::to_be_bytes).collect() };
    // Kannel's charset_convert does nothing to an empty text (whatever the
    // charset, even one it does not know) nor from a charset to itself:
    // those are read as if no charset were given.
    let target = if coding == text::coding::UCS2 {
        "UTF-16BE"
    } else {
        "UTF-8"
    };
    let charset = charset.filter(|c| !raw.is_empty() && !c.eq_ignore_ascii_case(target));
    match coding {
        // smsbox leaves 8-bit data alone, whatever the charset says.
        text::coding::EIGHT_BIT => Ok(Payload::Octets(raw.to_vec())),
        text::coding::UCS2 => match charset {
            Some(charset) => text::decode_strict(raw, charset)
                .map(|t| Payload::Ucs2(utf16(&t)))
                .ok_or(Refusal::Charset),
            // UTF-16BE already, or sent as it is.
            None if !behaviour.refuse_undecodable
                || text::decode_strict(raw, "UTF-16BE").is_some() =>
            {
                Ok(Payload::Ucs2(raw.to_vec()))
            }
            None => Err(Refusal::Charset),
        },
        _ => {
            // The text as UTF-8 bytes: converted from its charset, or as
            // given (and then perhaps not UTF-8 at all).
            let utf8 = match charset {
                Some(charset) => text::decode_strict(raw, charset)
                    .ok_or(Refusal::Charset)?
                    .into_bytes(),
                None => raw.to_vec(),
            };
            let valid = std::str::from_utf8(&utf8).ok();
            if valid.is_none() && behaviour.refuse_undecodable {
                return Err(Refusal::Charset);
            }
            match valid {
                Some(text) if !explicit_coding && behaviour.auto_ucs2 && !text::fits_gsm7(text) => {
                    Ok(Payload::Ucs2(utf16(text)))
                }
                _ => Ok(Payload::Gsm(text::as_gsm(&utf8))),
            }
        }
    }
}

#[cfg(test)]
mod tests;
