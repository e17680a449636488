//! Kannel's `%x` escapes, all of them, in one place: reply texts and
//! service URLs ([`crate::template`]), `dlr-url` callbacks
//! ([`crate::dlr_callback`]) and the arguments of programs run for a
//! message ([`ExecArgs`]).
//!
//! smsbox expands them in `urltrans_fill_escape_codes` (gw/urltrans.c).
//! Here a text is compiled once into a [`Pattern`] (strictly for the
//! configuration, or by smsbox's lenient rules for a `dlr-url` given at run
//! time), then rendered for a message's [`Context`] in a [`Style`]: as text
//! ([`Style::Text`]), for a URL ([`Style::Url`]), or exactly as smsbox 1.4.5
//! does ([`Style::Smsbox`], for `kannel_compat`).
//!
//! # The escapes
//!
//! Generated from the declaration in `table.rs` (a test keeps the two the
//! same). "smsbox encodes" says whether smsbox passes the value through
//! its URL-encoder, which it does wherever the pattern is used.
//!
//! | escape | Kannel field | renders | smsbox encodes |
//! |---|---|---|---|
//! | `%k` | msgdata | the keyword: the first word | yes |
//! | `%s` | msgdata | the next word after the keyword not yet taken by a `%s` or `%S` (each takes one) | yes |
//! | `%S` | msgdata | like `%s`, with `*` turned into `~` | no |
//! | `%r` | msgdata | the words not yet taken by `%s`/`%S` (does not take them) | yes |
//! | `%a` | msgdata | all the words, keyword included | yes |
//! | `%b` | msgdata | the message data exactly as it came (text or binary) | yes |
//! | `%A` | msgdata | the same as `%b`; named for a report's text (the SMSC's answer) | yes |
//! | `%p` | receiver | the phone: an MO's sender, or the receiver of the MT a report is about | yes |
//! | `%P` | sender | the other end: the number an MO was sent to, or the sender of the reported MT | yes |
//! | `%q` | receiver | `%p` with a leading `00` shown as `+` | yes |
//! | `%Q` | sender | `%P` with a leading `00` shown as `+` | yes |
//! | `%i` | smsc_id | the smsc-id the message came through | yes |
//! | `%f` | smsc_number | the number of the SMSC that delivered it (AT modems only) | yes |
//! | `%I` | id | the message's UUID, 36 lowercase characters with hyphens | no |
//! | `%t` | time | the message's time, UTC (format: see differences) | no |
//! | `%T` | time | the message's time in Unix seconds | no |
//! | `%c` | coding | the coding: -1 unset, 0 7-bit, 1 8-bit, 2 UCS-2 | no |
//! | `%C` | charset | the charset, or by coding `UTF-8` (unset, 7-bit), `8-BIT`, `UTF-16BE` | no |
//! | `%m` | mclass | the message class, -1 when unset | no |
//! | `%M` | mwi | the message waiting indicator, -1 when unset | no |
//! | `%O` | (DCS) | the data coding scheme made from coding, mclass, mwi, compress, alt_dcs; two digits at least | no |
//! | `%u` | udhdata | the user data header | yes |
//! | `%d` | dlr_mask | the dlr_mask: on a report, its event (1, 2, 4, 8, 16); -1 when unset | yes |
//! | `%D` | meta_data | the meta-data, as Kannel packs it (`?smpp?key=value&`) | yes |
//! | `%F` | foreign_id | the SMSC's own id for the message | yes |
//! | `%R` | dlr_url | the message's dlr-url | yes |
//! | `%n` | service | the service: the sendsms user or sms-service name | yes |
//! | `%o` | account | the account (an aggregator's operator id) | yes |
//! | `%B` | binfo | the billing information | yes |
//! | `%v` | validity | the validity left, in minutes; nothing when unset | no |
//! | `%V` | deferred | the delay left before delivery, in minutes; nothing when unset | no |
//!
//! `%%` is a percent sign, and `%#group#key#` is the value of `key` in the
//! meta-data group `group` (`%#smpp#my_param#`), URL-decoded from the
//! meta-data and written like the other values. A word, a value or a
//! meta-data entry that is not there renders as nothing.
//!
//! # Where rapidbox differs from smsbox, and [`Style::Smsbox`] does not
//!
//! - **Encoding.** smsbox URL-encodes its values (space as `+`, `! * ' (
//!   )` as they are) even in a `text` reply and an `exec` command: a reply
//!   `You said %a` says `You said hello+world`, `%q` says `%2B4917...`.
//!   [`Style::Text`] writes values as they are; [`Style::Url`] encodes
//!   every value by RFC 3986 (space `%20`, `! * ' ( )` too), `%S`, `%C`
//!   and `%t` included, which smsbox writes unencoded: text from a phone
//!   never shapes a URL. `%a`/`%r` join words with a space (`%20`), smsbox
//!   with `+`; `%q`/`%Q` show `+` in text.
//! - **`%t`** is `YYYY-MM-DD HH:MM` as Kannel's user guide documents it;
//!   smsbox 1.4.5 writes `YYYY-MM-DD+HH:MM:SS`. With no time, `%t` and `%T`
//!   show nothing; smsbox shows nothing for `%T` and `1969-12-31+23:59:59`
//!   for `%t`.
//! - **Words** are split on Unicode whitespace; smsbox splits the bytes on
//!   C's `isspace` (space, tab, LF, VT, FF, CR).
//! - **`%b`/`%A` in text** are the text as rapidbox shows it (for an 8-bit
//!   payload, its rendering for people); URLs and smsbox get the bytes.
//!   **`%u` in text** is hex (`0605040B8423F0`); URLs and smsbox get the
//!   bytes, encoded.
//! - **`%O`** does not change anything; in smsbox it sets an unset coding
//!   for good (`fields_to_dcs`), so a later `%c` shows 0 or 1 instead of -1
//!   and `%C` follows. [`Style::Smsbox`] does the same.
//! - **Unknown escapes**, a `%` at the end and an unclosed `%#` are errors
//!   when a configuration is compiled ([`Pattern::compile`]), so
//!   `check-config` catches a typo; smsbox leaves `%x` and a final `%` as
//!   written, which [`Pattern::lenient`] does for a caller's `dlr-url`. An
//!   unclosed `%#group#key` at the very end makes smsbox 1.4.5 loop forever;
//!   [`Pattern::lenient`] stops there.
//!
//! What a context holds differs too, where rapidbox does not keep a field:
//! [`Context::from_incoming`] documents it.

mod context;
mod dlr_url;
mod encode;
mod exec;
mod meta;
mod pattern;
mod render;
mod table;
#[cfg(test)]
mod tests;

pub use context::{Context, SmsFields};
pub use dlr_url::expand_dlr_url;
pub(crate) use encode::kannel_url_encode;
pub use encode::percent_encode;
pub use exec::{ExecArgError, ExecArgs};
pub use pattern::{EscapeError, Pattern};

/// How values are written into the text around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// As they are: for message text and program arguments.
    Text,
    /// RFC 3986 percent-encoded: for URLs.
    Url,
    /// Exactly as Kannel 1.4.5's smsbox writes them, wherever they go
    /// (its URL-encoding for most values, even in text).
    Smsbox,
}
