//! Reply and URL templates with Kannel's sms-service escapes.
//!
//! People coming from Kannel's smsbox write `text = "You said %r"` or
//! `get-url = "http://app/sms?from=%p&text=%a"`; rapidbox takes the same
//! escapes, every one smsbox 1.4.5 has (the table and the ways rapidbox
//! differs from smsbox are in [`crate::escape`]). A template is compiled
//! once, when the configuration is loaded, so rendering a message is a
//! single pass with no parsing; an unknown escape is an error then, caught
//! by `rapidbox check-config`.
//!
//! [`Mode::Text`] writes values as they are, [`Mode::Url`] percent-encodes
//! them (RFC 3986), and [`Mode::Smsbox`] writes them exactly as smsbox
//! does. The template's own text is taken as written.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::escape::Pattern;
pub use crate::escape::{
    percent_encode, Context as TemplateContext, EscapeError as TemplateError, Style as Mode,
};

/// A compiled template.
///
/// Serialized as its source text; deserializing compiles it, so a
/// configuration with a bad template does not load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    source: String,
    pattern: Pattern,
}

impl Template {
    /// Compiles `source`, failing on the first unknown escape.
    pub fn compile(source: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            source: source.to_owned(),
            pattern: Pattern::compile(source)?,
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
        self.pattern.render(ctx, mode)
    }

    /// Renders the template for one message, appending to `out`.
    pub fn render_into(&self, ctx: &TemplateContext<'_>, mode: Mode, out: &mut String) {
        self.pattern.render_into(ctx, mode, out);
    }
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
    use crate::model::{Connection, Direction, KannelInfo, Message, Status};
    use uuid::Uuid;

    const UUID: &str = "e5f0c9a2-1b3c-4d5e-8f60-718293a4b5c6";

    fn ctx(text: &str) -> TemplateContext<'_> {
        TemplateContext {
            text,
            sender: "0025078838",
            receiver: "5555",
            smsc_id: Some("fake smsc"),
            uuid: Some(Uuid::parse_str(UUID).unwrap()),
            // 2024-02-29 13:07:42 UTC
            time: Some(1_709_212_062_123_456),
            ..TemplateContext::default()
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
        c.time = Some(-1);
        let t = Template::compile("<%I|%t|%T>").unwrap();
        assert_eq!(t.render(&c, Mode::Text), "<|1969-12-31 23:59|-1>");
        c.time = Some(i64::MAX);
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
            Template::compile("Hi %x!"),
            Err(TemplateError::UnknownEscape {
                escape: 'x',
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
    fn templates_keep_their_source() {
        let t = Template::compile("a%%b %k c").unwrap();
        assert_eq!(t.render(&ctx("yo"), Mode::Text), "a%b yo c");
        assert_eq!(t.source(), "a%%b %k c");
        assert_eq!(t.to_string(), "a%%b %k c");
        assert_eq!("x%k".parse::<Template>().unwrap().source(), "x%k");
    }

    #[test]
    fn every_smsbox_escape_compiles_and_smsbox_mode_renders_as_smsbox() {
        let t = Template::compile("%a|%q|%t|%n|%O").unwrap();
        assert_eq!(
            t.render(&ctx("Hi  there"), Mode::Smsbox),
            "Hi+there|%2B25078838|2024-02-29+13:07:42||00"
        );
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
