//! Rendering a compiled [`Pattern`] for one [`Context`] in one [`Style`].

use uuid::Uuid;

use super::encode::{hex, kannel_url_encode, lossy, percent_encode_bytes};
use super::meta;
use super::pattern::{Part, Pattern};
use super::table::{Field, Smsbox};
use super::{Context, Style};
use crate::model::Micros;

impl Pattern {
    /// Renders the pattern for one message.
    pub fn render(&self, ctx: &Context<'_>, style: Style) -> String {
        let mut out = String::with_capacity(64 + ctx.text.len());
        self.render_into(ctx, style, &mut out);
        out
    }

    /// Renders the pattern for one message, appending to `out`.
    pub fn render_into(&self, ctx: &Context<'_>, style: Style, out: &mut String) {
        let mut r = Renderer {
            ctx,
            style,
            next_word: 1,
            coding: ctx.coding,
            words: None,
        };
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(escape) => r.field(escape.field, escape.smsbox, out),
                Part::Meta { group, key } => {
                    // smsbox looks only when there is meta-data at all.
                    if let Some(data) = ctx.meta_data {
                        let value = meta::value(data.as_bytes(), group.as_bytes(), key.as_bytes());
                        r.put(value.as_deref().unwrap_or_default(), Smsbox::Encoded, out);
                    }
                }
            }
        }
    }
}

struct Renderer<'r, 'a> {
    ctx: &'r Context<'a>,
    style: Style,
    /// The word the next `%s`/`%S` takes; word 0 is the keyword.
    next_word: usize,
    /// `%c` as smsbox sees it: its `%O` sets an unset coding for good.
    coding: i32,
    words: Option<Vec<&'r [u8]>>,
}

impl<'r> Renderer<'r, '_> {
    /// The message's words: split on Unicode whitespace in rapidbox's
    /// styles, on C's `isspace` bytes in smsbox's (`octstr_split_words`).
    fn words(&mut self) -> &[&'r [u8]] {
        let ctx = self.ctx;
        let style = self.style;
        self.words.get_or_insert_with(|| match style {
            Style::Smsbox => msgdata(ctx)
                .split(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
                .filter(|w| !w.is_empty())
                .collect(),
            Style::Text | Style::Url => ctx.text.split_whitespace().map(str::as_bytes).collect(),
        })
    }

    /// Writes a value: as it is, RFC 3986-encoded, or as smsbox does.
    fn put(&self, value: &[u8], smsbox: Smsbox, out: &mut String) {
        match (self.style, smsbox) {
            (Style::Text, _) | (Style::Smsbox, Smsbox::Raw) => lossy(value, out),
            (Style::Url, _) => percent_encode_bytes(value, out),
            (Style::Smsbox, Smsbox::Encoded) => kannel_url_encode(value, out),
        }
    }

    /// Writes `field`, which smsbox writes as `smsbox` says.
    fn field(&mut self, field: Field, smsbox: Smsbox, out: &mut String) {
        let ctx = self.ctx;
        let put = |this: &Self, value: &[u8], out: &mut String| this.put(value, smsbox, out);
        let opt = |this: &Self, value: Option<&str>, out: &mut String| {
            this.put(value.unwrap_or_default().as_bytes(), smsbox, out)
        };
        match field {
            Field::Keyword => {
                if let Some(word) = self.words().first().copied() {
                    put(self, word, out);
                }
            }
            Field::NextWord | Field::NextWordTilde => {
                let next = self.next_word;
                if let Some(word) = self.words().get(next).copied() {
                    self.next_word += 1;
                    if field == Field::NextWord {
                        put(self, word, out);
                    } else {
                        let tilde: Vec<u8> = word
                            .iter()
                            .map(|&b| if b == b'*' { b'~' } else { b })
                            .collect();
                        put(self, &tilde, out);
                    }
                }
            }
            Field::Rest | Field::AllWords => {
                let from = if field == Field::Rest {
                    self.next_word
                } else {
                    0
                };
                let words: Vec<&[u8]> = self.words().iter().skip(from).copied().collect();
                let separator = match self.style {
                    Style::Text => " ",
                    Style::Url => "%20",
                    Style::Smsbox => "+",
                };
                for (i, word) in words.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(separator);
                    }
                    put(self, word, out);
                }
            }
            Field::Body | Field::ReportText => match self.style {
                // For people: an 8-bit payload as rapidbox shows its text.
                Style::Text => out.push_str(ctx.text),
                Style::Url | Style::Smsbox => put(self, msgdata(ctx), out),
            },
            Field::Sender => put(self, ctx.sender.as_bytes(), out),
            Field::Receiver => put(self, ctx.receiver.as_bytes(), out),
            Field::SenderPlus | Field::ReceiverPlus => {
                let number = if field == Field::SenderPlus {
                    ctx.sender
                } else {
                    ctx.receiver
                };
                match number.strip_prefix("00") {
                    Some(rest) => {
                        out.push_str(if self.style == Style::Text {
                            "+"
                        } else {
                            "%2B"
                        });
                        put(self, rest.as_bytes(), out);
                    }
                    None => put(self, number.as_bytes(), out),
                }
            }
            Field::SmscId => opt(self, ctx.smsc_id, out),
            Field::SmscNumber => opt(self, ctx.smsc_number, out),
            Field::ForeignId => opt(self, ctx.foreign_id, out),
            Field::Service => opt(self, ctx.service, out),
            Field::Account => opt(self, ctx.account, out),
            Field::Binfo => opt(self, ctx.binfo, out),
            Field::MetaData => opt(self, ctx.meta_data, out),
            Field::DlrUrl => opt(self, ctx.dlr_url, out),
            Field::Uuid => {
                if let Some(uuid) = ctx.uuid.filter(|u| !u.is_nil()) {
                    let mut buf = Uuid::encode_buffer();
                    put(
                        self,
                        uuid.hyphenated().encode_lower(&mut buf).as_bytes(),
                        out,
                    );
                }
            }
            Field::Time => {
                let text = match self.style {
                    // gw_gmtime of -1 when Kannel has no time.
                    Style::Smsbox => kannel_time(ctx.time.map_or(-1, seconds)),
                    Style::Text | Style::Url => ctx.time.and_then(|t| minutes_utc(seconds(t))),
                };
                put(self, text.unwrap_or_default().as_bytes(), out);
            }
            Field::UnixTime => {
                // Kannel shows nothing for its unset time, -1.
                let unset = self.style == Style::Smsbox && ctx.time.map(seconds) == Some(-1);
                if let Some(t) = ctx.time.filter(|_| !unset) {
                    out.push_str(&seconds(t).to_string());
                }
            }
            Field::Coding => out.push_str(&self.coding.to_string()),
            Field::Charset => {
                let charset = ctx.charset.filter(|c| !c.is_empty()).or(match self.coding {
                    -1 | 0 => Some("UTF-8"),
                    1 => Some("8-BIT"),
                    2 => Some("UTF-16BE"),
                    _ => None,
                });
                opt(self, charset, out);
            }
            Field::Mclass => out.push_str(&ctx.mclass.to_string()),
            Field::Mwi => out.push_str(&ctx.mwi.to_string()),
            Field::DlrMask => out.push_str(&ctx.dlr_mask.to_string()),
            Field::Dcs => {
                let (dcs, coding) = dcs(ctx, self.coding);
                if self.style == Style::Smsbox {
                    // fields_to_dcs writes the coding it assumed back into
                    // the message, so a later %c or %C shows it.
                    self.coding = coding;
                }
                out.push_str(&format!("{dcs:02}"));
            }
            Field::Udh => {
                let udh = ctx.udh.unwrap_or_default();
                match self.style {
                    Style::Text => hex(udh, out),
                    Style::Url | Style::Smsbox => put(self, udh, out),
                }
            }
            Field::Validity | Field::Deferred => {
                let at = if field == Field::Validity {
                    ctx.validity
                } else {
                    ctx.deferred
                };
                if at != -1 {
                    let now = ctx
                        .now
                        .unwrap_or_else(|| seconds(crate::model::now_micros()));
                    // C's division: towards zero, as Rust's.
                    out.push_str(&(at.saturating_sub(now) / 60).to_string());
                }
            }
        }
    }
}

/// The message data as Kannel has it.
fn msgdata<'a>(ctx: &Context<'a>) -> &'a [u8] {
    ctx.data.unwrap_or(ctx.text.as_bytes())
}

fn seconds(time: Micros) -> i64 {
    time.div_euclid(1_000_000)
}

/// `YYYY-MM-DD HH:MM` in UTC, or `None` for a year outside -9999..=9999.
fn minutes_utc(unix: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    ))
}

/// `YYYY-MM-DD+HH:MM:SS` in UTC, as smsbox's `%t` (`gw_gmtime`).
fn kannel_time(unix: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}+{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    ))
}

/// The data coding scheme, after Kannel's `fields_to_dcs` (gw/sms.c) with
/// the message's `alt_dcs` as the mode, and the coding it assumed (an unset
/// one becomes 8-bit with a UDH, else 7-bit). C's `int` arithmetic, which
/// wraps here where C's would be undefined.
pub(crate) fn dcs(ctx: &Context<'_>, coding: i32) -> (i32, i32) {
    let udh = ctx.udh.is_some_and(|u| !u.is_empty());
    let coding = match coding {
        -1 if udh => 1,
        -1 => 0,
        other => other,
    };
    let mut dcs: i32;
    if ctx.mwi != -1 {
        dcs = ctx.mwi;
        if dcs & 0x04 != 0 {
            dcs = (dcs & 0x03) | 0xC0;
        } else {
            dcs = (dcs & 0x03) | 0x08;
            dcs |= if msgdata(ctx).is_empty() {
                0xC0
            } else if coding == 0 {
                0xD0
            } else {
                0xE0
            };
        }
    } else if matches!(ctx.alt_dcs, 0 | -1) || coding == 2 || ctx.compress == 1 {
        dcs = 0;
        if ctx.compress == 1 {
            dcs |= 0x20;
        }
        if ctx.mclass != -1 {
            dcs |= 0x10 | ctx.mclass;
        }
        dcs |= coding.wrapping_shl(2);
    } else {
        dcs = 0xF0 | coding.wrapping_shl(2);
        dcs |= if ctx.mclass == -1 { 1 } else { ctx.mclass };
    }
    (dcs, coding)
}
