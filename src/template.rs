//! Reply and URL templates with Kannel's sms-service escapes.
//!
//! People coming from Kannel's smsbox write `text = "You said %r"` or
//! `get-url = "http://app/sms?from=%p&text=%a"`; rapidbox takes the same
//! escapes. A template is compiled once, when the configuration is loaded,
//! into literal runs and fields, so rendering a message is a single pass
//! with no parsing.
//!
//! | escape | renders |
//! |---|---|
//! | `%k` | the keyword: the first word of the message, as the sender typed it |
//! | `%s` | the next word after the keyword not yet used by a `%s` or `%S` (each takes one) |
//! | `%S` | like `%s`, with `*` turned into `~` |
//! | `%r` | the words not yet used by `%s`/`%S`, single-spaced (does not use them up) |
//! | `%a` | all the words, keyword included, single-spaced |
//! | `%b` | the message exactly as it came |
//! | `%p` / `%P` | the sender / the receiver |
//! | `%q` / `%Q` | the same, with a leading `00` shown as `+` |
//! | `%i` | the smsc-id (the backend) the message came through |
//! | `%I` | the message's UUID, 36 lowercase characters with hyphens |
//! | `%t` | the message's time, `YYYY-MM-DD HH:MM`, UTC |
//! | `%T` | the message's time in Unix seconds |
//! | `%%` | a percent sign |
//!
//! Words are separated by whitespace. A field with nothing to show (no
//! words left, no UUID) renders as nothing. Any other escape is an error
//! when the template is compiled: Kannel passes unknown escapes through,
//! but a typo in a reply is better caught by `rapidbox check-config` than
//! by a customer.
//!
//! In [`Mode::Url`] every substituted value is percent-encoded (RFC 3986:
//! everything but `A-Z a-z 0-9 - . _ ~`), including `%S`, which Kannel
//! leaves unencoded: text from a phone never gets to shape a URL. The
//! template's own text is taken as written.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::model::{Message, Micros};

/// How substituted values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As they are: for message text.
    Text,
    /// Percent-encoded: for URLs.
    Url,
}

/// What a template is rendered from: one message.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateContext<'a> {
    /// The message text; its words feed `%k`, `%s`, `%S`, `%r` and `%a`.
    pub text: &'a str,
    /// `%p`: who sent the message.
    pub sender: &'a str,
    /// `%P`: who it was sent to (for an MO, the shortcode).
    pub receiver: &'a str,
    /// `%i`: the SMSC (backend) it came through.
    pub smsc_id: Option<&'a str>,
    /// `%I`: the message's UUID (for Kannel messages, the box protocol id).
    pub uuid: Option<Uuid>,
    /// `%t` and `%T`: when the message was sent or received.
    pub time: Micros,
}

impl<'a> TemplateContext<'a> {
    /// The context for replying to an incoming message: the sender is the
    /// phone, the receiver the shortcode it wrote to, the smsc-id Kannel's
    /// (or else the backend's name), the time the message's date.
    pub fn from_incoming(message: &'a Message) -> TemplateContext<'a> {
        let kannel = message.kannel.as_ref();
        TemplateContext {
            text: &message.text,
            sender: &message.connection.address,
            receiver: kannel.and_then(|k| k.shortcode.as_deref()).unwrap_or(""),
            smsc_id: Some(
                kannel
                    .and_then(|k| k.smsc_id.as_deref())
                    .unwrap_or(&message.connection.backend),
            ),
            uuid: kannel.and_then(|k| k.uuid).map(Uuid::from_bytes),
            time: message.date,
        }
    }
}

/// Why a template does not compile. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown escape `%{escape}` at character {position}; the escapes are {}, and %% for a percent sign",
        escape_list()
    )]
    UnknownEscape { escape: char, position: usize },
    #[error("a lone `%` ends the template (character {position}); write %% for a percent sign")]
    TrailingPercent { position: usize },
}

/// A compiled template.
///
/// Serialized as its source text; deserializing compiles it, so a
/// configuration with a bad template does not load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Keyword,
    NextWord,
    NextWordTilde,
    Rest,
    AllWords,
    Body,
    Sender,
    Receiver,
    SenderPlus,
    ReceiverPlus,
    SmscId,
    Uuid,
    Time,
    UnixTime,
}

/// Every escape letter and its field: the one list the compiler and the
/// error message follow.
const ESCAPES: [(char, Field); 14] = [
    ('k', Field::Keyword),
    ('s', Field::NextWord),
    ('S', Field::NextWordTilde),
    ('r', Field::Rest),
    ('a', Field::AllWords),
    ('b', Field::Body),
    ('p', Field::Sender),
    ('P', Field::Receiver),
    ('q', Field::SenderPlus),
    ('Q', Field::ReceiverPlus),
    ('i', Field::SmscId),
    ('I', Field::Uuid),
    ('t', Field::Time),
    ('T', Field::UnixTime),
];

fn escape_list() -> String {
    let names: Vec<String> = ESCAPES.iter().map(|(c, _)| format!("%{c}")).collect();
    names.join(" ")
}

impl Template {
    /// Compiles `source`, failing on the first unknown escape.
    pub fn compile(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.chars().zip(1..);
        while let Some((c, position)) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let escape = match chars.next() {
                None => return Err(TemplateError::TrailingPercent { position }),
                Some(('%', _)) => {
                    literal.push('%');
                    continue;
                }
                Some((escape, _)) => escape,
            };
            let Some(&(_, field)) = ESCAPES.iter().find(|(letter, _)| *letter == escape) else {
                return Err(TemplateError::UnknownEscape { escape, position });
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Field(field));
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template is the empty string.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    /// Renders the template for one message.
    pub fn render(&self, ctx: &TemplateContext<'_>, mode: Mode) -> String {
        let mut out = String::with_capacity(self.source.len() + ctx.text.len());
        self.render_into(ctx, mode, &mut out);
        out
    }

    /// Renders the template for one message, appending to `out`.
    pub fn render_into(&self, ctx: &TemplateContext<'_>, mode: Mode, out: &mut String) {
        let words = || ctx.text.split_whitespace();
        // Word 0 is the keyword; `%s` starts after it.
        let mut next_word = 1;
        let put = |out: &mut String, value: &str| match mode {
            Mode::Text => out.push_str(value),
            Mode::Url => percent_encode(value, out),
        };
        for part in &self.parts {
            let field = match part {
                Part::Literal(text) => {
                    out.push_str(text);
                    continue;
                }
                Part::Field(field) => *field,
            };
            match field {
                Field::Keyword => {
                    if let Some(word) = words().next() {
                        put(out, word);
                    }
                }
                Field::NextWord => {
                    if let Some(word) = words().nth(next_word) {
                        put(out, word);
                        next_word += 1;
                    }
                }
                Field::NextWordTilde => {
                    if let Some(word) = words().nth(next_word) {
                        put(out, &word.replace('*', "~"));
                        next_word += 1;
                    }
                }
                Field::Rest => put_words(out, mode, words().skip(next_word)),
                Field::AllWords => put_words(out, mode, words()),
                Field::Body => put(out, ctx.text),
                Field::Sender => put(out, ctx.sender),
                Field::Receiver => put(out, ctx.receiver),
                Field::SenderPlus => put_plus(out, mode, ctx.sender),
                Field::ReceiverPlus => put_plus(out, mode, ctx.receiver),
                Field::SmscId => put(out, ctx.smsc_id.unwrap_or("")),
                Field::Uuid => {
                    if let Some(uuid) = ctx.uuid {
                        put(
                            out,
                            uuid.hyphenated().encode_lower(&mut Uuid::encode_buffer()),
                        );
                    }
                }
                Field::Time => {
                    if let Some(time) = minutes_utc(ctx.time) {
                        put(out, &time);
                    }
                }
                Field::UnixTime => {
                    // Digits and a minus sign need no encoding.
                    out.push_str(&ctx.time.div_euclid(1_000_000).to_string());
                }
            }
        }
    }
}

/// Appends `value` percent-encoded as RFC 3986 says for data in a URL: the
/// unreserved characters `A-Z a-z 0-9 - . _ ~` as they are, every other
/// byte of the UTF-8 as `%XX`. Safe in a path and in a query.
pub fn percent_encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in value.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
}

/// Words joined by single spaces (encoded as `%20` in URL mode).
fn put_words<'w>(out: &mut String, mode: Mode, words: impl Iterator<Item = &'w str>) {
    for (i, word) in words.enumerate() {
        if i > 0 {
            match mode {
                Mode::Text => out.push(' '),
                Mode::Url => out.push_str("%20"),
            }
        }
        match mode {
            Mode::Text => out.push_str(word),
            Mode::Url => percent_encode(word, out),
        }
    }
}

/// An address with a leading international `00` shown as `+`.
fn put_plus(out: &mut String, mode: Mode, address: &str) {
    let (plus, rest) = match address.strip_prefix("00") {
        Some(rest) => ("+", rest),
        None => ("", address),
    };
    match mode {
        Mode::Text => {
            out.push_str(plus);
            out.push_str(rest);
        }
        Mode::Url => {
            percent_encode(plus, out);
            percent_encode(rest, out);
        }
    }
}

/// `YYYY-MM-DD HH:MM` in UTC, or `None` for a time outside years
/// -9999..=9999.
fn minutes_utc(time: Micros) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp(time.div_euclid(1_000_000)).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    ))
}

impl FromStr for Template {
    type Err = TemplateError;

    fn from_str(source: &str) -> Result<Template, TemplateError> {
        Template::compile(source)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Template, D::Error> {
        let source = String::deserialize(deserializer)?;
        Template::compile(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, Direction, KannelInfo, Status};

    const UUID: &str = "e5f0c9a2-1b3c-4d5e-8f60-718293a4b5c6";

    fn ctx(text: &str) -> TemplateContext<'_> {
        TemplateContext {
            text,
            sender: "0025078838",
            receiver: "5555",
            smsc_id: Some("fake smsc"),
            uuid: Some(Uuid::parse_str(UUID).unwrap()),
            // 2024-02-29 13:07:42 UTC
            time: 1_709_212_062_123_456,
        }
    }

    fn text(template: &str, message: &str) -> String {
        Template::compile(template)
            .unwrap()
            .render(&ctx(message), Mode::Text)
    }

    fn url(template: &str, message: &str) -> String {
        Template::compile(template)
            .unwrap()
            .render(&ctx(message), Mode::Url)
    }

    #[test]
    fn the_keyword_is_the_first_word_as_typed() {
        assert_eq!(text("[%k]", "  Help  me "), "[Help]");
        assert_eq!(text("[%k]", "   "), "[]");
    }

    #[test]
    fn each_s_takes_the_next_word_after_the_keyword() {
        assert_eq!(text("%s/%s/%s", "join  team  blue"), "team/blue/");
        assert_eq!(text("%s", "join"), "");
    }

    #[test]
    fn big_s_turns_stars_into_tildes() {
        assert_eq!(text("%S", "go a*b*c"), "a~b~c");
        assert_eq!(text("%S %s", "go x* y*"), "x~ y*");
    }

    #[test]
    fn r_is_what_s_left_and_does_not_use_it_up() {
        // Kannel's example: one %s, then %r.
        assert_eq!(text("%s|%r", "FOO BAR FOOBAR BAZ"), "BAR|FOOBAR BAZ");
        assert_eq!(text("%r", "FOO  BAR\tFOOBAR\nBAZ"), "BAR FOOBAR BAZ");
        assert_eq!(text("%r|%s", "FOO BAR BAZ"), "BAR BAZ|BAR");
        assert_eq!(text("%s%s%s|%r|", "FOO BAR"), "BAR||");
    }

    #[test]
    fn a_is_every_word_single_spaced_and_b_the_message_as_is() {
        assert_eq!(text("%a", "  Hello \t  big\nworld  "), "Hello big world");
        assert_eq!(
            text("%b", "  Hello \t  big\nworld  "),
            "  Hello \t  big\nworld  "
        );
        assert_eq!(text("%a", ""), "");
    }

    #[test]
    fn addresses_and_the_smsc() {
        assert_eq!(
            text("%p %P %q %Q %i", "x"),
            "0025078838 5555 +25078838 5555 fake smsc"
        );
        let mut c = ctx("x");
        c.sender = "+2507";
        c.receiver = "0044";
        c.smsc_id = None;
        let t = Template::compile("%q|%Q|%i|").unwrap();
        assert_eq!(t.render(&c, Mode::Text), "+2507|+44||");
    }

    #[test]
    fn uuid_and_times() {
        assert_eq!(text("%I", "x"), UUID);
        assert_eq!(text("%t", "x"), "2024-02-29 13:07");
        assert_eq!(text("%T", "x"), "1709212062");
        let mut c = ctx("x");
        c.uuid = None;
        c.time = -1;
        let t = Template::compile("<%I|%t|%T>").unwrap();
        assert_eq!(t.render(&c, Mode::Text), "<|1969-12-31 23:59|-1>");
        c.time = i64::MAX;
        assert_eq!(t.render(&c, Mode::Text), "<||9223372036854>");
    }

    #[test]
    fn percent_percent_is_a_percent_sign() {
        assert_eq!(text("100%% %k%%", "sure"), "100% sure%");
        assert_eq!(url("a%%20b", "x"), "a%20b");
    }

    #[test]
    fn literal_text_stays_as_written() {
        assert_eq!(text("Thanks, ça marche 😀", "x"), "Thanks, ça marche 😀");
        assert_eq!(text("", "x"), "");
    }

    #[test]
    fn url_mode_encodes_substituted_values_only() {
        assert_eq!(
            url(
                "http://app/sms?from=%p&to=%Q&text=%a&kw=%k",
                "Hi  there&you=1 ça"
            ),
            "http://app/sms?from=0025078838&to=5555&text=Hi%20there%26you%3D1%20%C3%A7a&kw=Hi"
        );
        assert_eq!(url("%q", "x"), "%2B25078838");
        assert_eq!(url("%s;%S;%r", "k a+b c*d/e f"), "a%2Bb;c~d%2Fe;f");
        assert_eq!(url("%b", " a b"), "%20a%20b");
        assert_eq!(
            url("%i|%t|%I", "x"),
            format!("fake%20smsc|2024-02-29%2013%3A07|{UUID}")
        );
        assert_eq!(url("%a", "-._~AZaz09"), "-._~AZaz09");
    }

    #[test]
    fn unknown_escapes_are_errors_with_their_position() {
        assert_eq!(
            Template::compile("Hi %n!"),
            Err(TemplateError::UnknownEscape {
                escape: 'n',
                position: 4
            })
        );
        // Positions count characters, not bytes.
        assert_eq!(
            Template::compile("ça %a %é"),
            Err(TemplateError::UnknownEscape {
                escape: 'é',
                position: 7
            })
        );
        assert_eq!(
            Template::compile("50%"),
            Err(TemplateError::TrailingPercent { position: 3 })
        );
        assert_eq!(
            Template::compile("%%%"),
            Err(TemplateError::TrailingPercent { position: 3 })
        );
        let message = Template::compile("%x").unwrap_err().to_string();
        assert!(message.contains("`%x` at character 1"), "{message}");
        assert!(message.contains("%k %s %S %r %a %b"), "{message}");
    }

    #[test]
    fn templates_compile_into_literals_and_fields() {
        let t = Template::compile("a%%b %k c").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Literal("a%b ".into()),
                Part::Field(Field::Keyword),
                Part::Literal(" c".into()),
            ]
        );
        assert_eq!(t.source(), "a%%b %k c");
        assert_eq!(t.to_string(), "a%%b %k c");
        assert_eq!("x%k".parse::<Template>().unwrap().source(), "x%k");
    }

    #[test]
    fn render_into_appends() {
        let t = Template::compile("%k!").unwrap();
        let mut out = String::from(">");
        t.render_into(&ctx("yo there"), Mode::Text, &mut out);
        assert_eq!(out, ">yo!");
    }

    #[test]
    fn templates_serialize_as_their_source() {
        #[derive(Serialize, Deserialize)]
        struct Holder {
            reply: Template,
        }
        let holder: Holder = toml::from_str("reply = \"You said %r\"").unwrap();
        assert_eq!(
            holder.reply.render(&ctx("echo hi there"), Mode::Text),
            "You said hi there"
        );
        assert_eq!(
            toml::to_string(&holder).unwrap().trim(),
            "reply = \"You said %r\""
        );
        let err = toml::from_str::<Holder>("reply = \"%z\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown escape `%z`"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn compiling_any_text_never_panics(source in ".*") {
            let _ = Template::compile(&source);
        }

        #[test]
        fn url_mode_lets_no_message_text_through_unencoded(message in proptest::prelude::any::<String>()) {
            let t = Template::compile("%k%s%S%r%a%b").unwrap();
            let rendered = t.render(&ctx(&message), Mode::Url);
            let safe = |c: char| c.is_ascii_alphanumeric() || "-._~%".contains(c);
            proptest::prop_assert!(rendered.chars().all(safe), "{}", rendered);
        }

        #[test]
        fn a_is_the_words_of_b(message in proptest::prelude::any::<String>()) {
            let words: Vec<&str> = message.split_whitespace().collect();
            proptest::prop_assert_eq!(text("%a", &message), words.join(" "));
            proptest::prop_assert_eq!(text("%b", &message), message.clone());
            let keyword_and_rest = text("%k %r", &message);
            proptest::prop_assert_eq!(keyword_and_rest.trim(), words.join(" "));
        }
    }

    #[test]
    fn a_context_from_an_incoming_message() {
        let message = Message {
            id: 7,
            connection: Connection::new("fake", "+4912"),
            text: "hello world".into(),
            direction: Direction::Incoming,
            status: Status::Received,
            date: 1_000_000,
            updated: 1_000_000,
            sent: None,
            delivered: None,
            in_response_to: None,
            external_id: None,
            kannel: Some(KannelInfo {
                uuid: Some(*Uuid::parse_str(UUID).unwrap().as_bytes()),
                shortcode: Some("5555".into()),
                smsc_id: Some("fake".into()),
                ..KannelInfo::default()
            }),
            attempts: 0,
            retry_after: None,
        };
        let t = Template::compile("%p>%P via %i at %T: %s (%I)").unwrap();
        assert_eq!(
            t.render(&TemplateContext::from_incoming(&message), Mode::Text),
            format!("+4912>5555 via fake at 1: world ({UUID})")
        );
        let http = Message {
            kannel: None,
            ..message
        };
        let ctx = TemplateContext::from_incoming(&http);
        assert_eq!(ctx.smsc_id, Some("fake"));
        assert_eq!(ctx.receiver, "");
        assert_eq!(ctx.uuid, None);
    }
}
