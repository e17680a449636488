//! One MO through its service: the action, its answer, the reply's
//! parts (`obey_request_thread`, `url_result_thread`, `send_message`).

use std::time::Duration;

use bytes::Bytes;

use super::action::{self, Action};
use super::answer::{self, AnswerRules, Body};
use super::fetch::{self, PostFields, Request, Retry};
use super::reply::{self, Splitting};
use super::select::is_c_space;
use super::{Service, SmsServices};
use crate::config::EscapeStyle;
use crate::escape::{Context, Style};
use crate::model::{now_micros, MtOptions};
use crate::router::{Incoming, MtReply};
use crate::text::coding;

/// What a service's work gave.
enum Outcome {
    /// A reply, sent with the service's rules.
    Reply(Body, Box<MtReply>),
    /// smsbox's "request failed": `reply-requestfailed`, without the
    /// service's rules.
    Failed(String),
    /// No good answer from the service's URL (down, timed out, not 200 or
    /// 202, an unreadable answer): `reply-couldnotfetch`, as smsbox, and
    /// the reason recorded on the message.
    CouldNotFetch(String),
}

impl SmsServices {
    fn styles(&self) -> (Style, Style) {
        match self.smsbox.escape_style {
            EscapeStyle::Smsbox => (Style::Smsbox, Style::Smsbox),
            EscapeStyle::Rapidbox => (Style::Text, Style::Url),
        }
    }

    /// Runs `service` for `msg` and answers.
    pub(super) async fn serve(&self, service: &Service, msg: &mut Incoming) {
        let mo = &msg.message;
        let kannel = mo.kannel.as_ref();
        let shortcode = kannel.and_then(|k| k.shortcode.as_deref()).unwrap_or("");
        // obey_request_thread: the reply's sender, which %P shows too.
        let reply_from = service
            .config
            .faked_sender
            .as_deref()
            .or(self.global_sender.as_deref())
            .unwrap_or(shortcode)
            .to_owned();
        let mut ctx = Context::from_incoming(mo);
        // obey_request_thread: a 7-bit MO's text converted to the
        // service's alt-charset before its escapes are filled.
        let alt = alt_charset_data(service, ctx.coding, ctx.data, &mo.text);
        if let Some(data) = &alt {
            ctx.data = Some(data);
        }
        ctx.receiver = &reply_from;
        // obey_request_thread names the MO after its service only when
        // it came without a service of its own (an HTTP SMSC's user, an
        // MT looped back as an MO): %n, X-Kannel-Service and the reply.
        let kannel_service = kannel
            .and_then(|k| k.service.clone())
            .unwrap_or_else(|| service.name.clone());
        ctx.service = Some(&kannel_service);
        let (text_style, url_style) = self.styles();
        let outcome = match &service.action {
            Action::Text(p) => {
                Outcome::Reply(Body::Text(p.render(&ctx, text_style)), Box::default())
            }
            Action::File(p) => {
                // The path's escapes are written as the service's text is
                // (smsbox URL-encodes them there too).
                let bytes = action::read_file(&p.render(&ctx, text_style)).await;
                let text = String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned();
                Outcome::Reply(Body::Text(text), Box::default())
            }
            Action::Exec(args) => {
                msg.waiting_outside();
                let _permit = self.pending.acquire().await;
                match action::run(args, &ctx, text_style, self.timeout()).await {
                    Ok(out) => Outcome::Reply(
                        Body::Text(String::from_utf8_lossy(&out).into_owned()),
                        Box::default(),
                    ),
                    Err(e) => Outcome::Failed(e),
                }
            }
            Action::GetUrl(p) => {
                msg.waiting_outside();
                let request = fetch::get(
                    p.render(&ctx, url_style),
                    service.config.send_sender,
                    &mo.connection.address,
                );
                self.ask(service, &request).await
            }
            Action::PostUrl(p) => {
                msg.waiting_outside();
                let request = fetch::post(
                    p.render(&ctx, url_style),
                    service.config.send_sender,
                    self.post_fields(service, msg, &reply_from),
                );
                self.ask(service, &request).await
            }
            Action::PostXml(p) => {
                msg.waiting_outside();
                let request = super::xml::post_xml(
                    p.render(&ctx, url_style),
                    service.config.send_sender,
                    self.post_fields(service, msg, &reply_from),
                );
                self.ask(service, &request).await
            }
        };
        let (body, mut mt) = match outcome {
            Outcome::Reply(body, mt) => (body, mt),
            Outcome::CouldNotFetch(error) => {
                msg.report_failure(format!("sms service {}: {error}", service.name));
                (
                    Body::Text(self.smsbox.reply_couldnotfetch.clone()),
                    Box::default(),
                )
            }
            Outcome::Failed(error) => {
                msg.report_failure(format!("sms service {}: {error}", service.name));
                self.request_failed(msg, &reply_from);
                return;
            }
        };
        // smsbox answers a URL's result with the MO itself, which
        // carries the service's name (to its report's %n); a text,
        // file or exec reply is a new message without one.
        let url = matches!(
            service.action,
            Action::GetUrl(_) | Action::PostUrl(_) | Action::PostXml(_)
        );
        if url {
            mt.service = Some(kannel_service.clone());
        }
        self.send(Some(service), msg, body, *mt, &reply_from)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.smsbox.http_timeout)
    }

    /// Fetches and reads the answer: `reply-couldnotfetch` when no good
    /// answer comes, `reply-couldnotrepresent` when it cannot be an SMS.
    async fn ask(&self, service: &Service, request: &Request) -> Outcome {
        let retry = Retry {
            timeout: self.timeout(),
            retries: self.smsbox.http_request_retry,
            delay: Duration::from_secs(self.smsbox.http_queue_delay),
        };
        let fetched = fetch::fetch(&self.http, request, retry, &self.pending).await;
        let response = match fetched {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(service = %service.name, %error, "sms service: could not fetch");
                return Outcome::CouldNotFetch(error.to_string());
            }
        };
        let c = &service.config;
        let rules = AnswerRules {
            prefix: c.prefix.as_deref(),
            suffix: c.suffix.as_deref(),
            alt_charset: c.alt_charset.as_deref(),
            accept_x_kannel_headers: c.accept_x_kannel_headers,
        };
        match answer::read(&response, &rules) {
            Ok((body, mt)) => Outcome::Reply(body, Box::new(mt)),
            Err(answer::Failure::CouldNotRepresent) => Outcome::Reply(
                Body::Text(self.smsbox.reply_couldnotrepresent.clone()),
                Box::default(),
            ),
        }
    }

    /// The MO as `post-url` sends it (after `mo-recode`, and with the
    /// keyword stripped when the service says so).
    fn post_fields<'m>(
        &self,
        service: &'m Service,
        msg: &'m Incoming,
        reply_from: &'m str,
    ) -> PostFields<'m> {
        let mo = &msg.message;
        let k = mo.kannel.as_ref();
        let strip = service.config.strip_keyword;
        let text = if strip {
            strip_keyword(&mo.text)
        } else {
            &mo.text
        };
        let mo_coding = k.map_or(-1, |k| k.coding);
        let (coding, charset, body) = match (mo_coding, k.and_then(|k| k.binary.as_deref())) {
            (coding::EIGHT_BIT, Some(data)) => {
                let data = if strip {
                    strip_keyword_bytes(data)
                } else {
                    data
                };
                (coding::EIGHT_BIT, None, Bytes::copy_from_slice(data))
            }
            (coding::UCS2, _) if !self.smsbox.mo_recode => {
                let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
                (
                    coding::UCS2,
                    k.and_then(|k| k.charset.as_deref()),
                    utf16.into(),
                )
            }
            (coding::UCS2, _) => (
                coding::SEVEN_BIT,
                Some("UTF-8"),
                Bytes::from(text.to_owned()),
            ),
            (c, _) => (
                c,
                k.and_then(|k| k.charset.as_deref()),
                Bytes::from(text.to_owned()),
            ),
        };
        // alt-charset: the text in the service's charset, the header's
        // charset left as the MO had it (smsbox converts msgdata only).
        let body = match alt_charset_data(service, coding, None, text) {
            Some(data) => Bytes::from(data),
            None => body,
        };
        PostFields {
            phone: &mo.connection.address,
            reply_from,
            coding,
            charset,
            body,
            udh: k.and_then(|k| k.udh.as_deref()),
            smsc_id: k.and_then(|k| k.smsc_id.as_deref()),
            service: k
                .and_then(|k| k.service.as_deref())
                .unwrap_or(&service.name),
            meta_data: k.and_then(|k| k.meta_data.as_deref()),
            fields: k.and_then(|k| k.mt_options.as_deref()),
            time: k.and_then(|k| k.time).unwrap_or(mo.date / 1_000_000),
            now: now_micros() / 1_000_000,
        }
    }

    /// `reply-requestfailed`, as smsbox sends it from `reply_from`: one
    /// SMS, none of the service's rules.
    pub(super) fn request_failed(&self, msg: &mut Incoming, reply_from: &str) {
        let text = self.smsbox.reply_requestfailed.clone();
        self.send(None, msg, Body::Text(text), MtReply::default(), reply_from);
    }

    /// `send_message`: the reply cut into parts and answered.
    fn send(
        &self,
        service: Option<&Service>,
        msg: &mut Incoming,
        body: Body,
        mut mt: MtReply,
        reply_from: &str,
    ) {
        let c = service.map(|s| &s.config);
        let empty = match &body {
            Body::Text(t) => t.is_empty(),
            Body::Binary(b) => b.is_empty(),
        };
        let body = if empty {
            if c.is_some_and(|c| c.omit_empty) {
                return;
            }
            Body::Text(self.smsbox.reply_emptymessage.clone())
        } else {
            body
        };
        if mt.sender.is_none() && !reply_from.is_empty() {
            mt.sender = Some(reply_from.to_owned());
        }
        if let Some(s) = service {
            // A service's dlr-url, unless the answer gave one.
            let has_url = mt.options.as_ref().is_some_and(|o| o.dlr_url.is_some());
            if let (Some(url), false) = (&s.config.dlr_url, has_url) {
                mt.options.get_or_insert_with(MtOptions::default).dlr_url = Some(url.clone());
                mt.dlr_mask = Some(s.config.dlr_mask.unwrap_or(-1));
            }
        }
        let splitting = Splitting {
            header: c.and_then(|c| c.header.as_deref()),
            footer: c.and_then(|c| c.footer.as_deref()),
            split_suffix: c.and_then(|c| c.split_suffix.as_deref()),
            split_chars: c.and_then(|c| c.split_chars.as_deref()),
            max_messages: c.map_or(1, |c| c.max_messages),
            concatenation: c.is_some_and(|c| c.concatenation),
            max_octets: self.smsbox.sms_length,
            udh_len: mt.udh.as_ref().map_or(0, Vec::len),
            ucs2: mt.coding == Some(coding::UCS2),
        };
        let parts = reply::split(&body, &splitting);
        for (i, part) in parts.into_iter().enumerate() {
            let mut mt = mt.clone();
            if i > 0 && mt.dlr_mask.is_some_and(|m| m > 0) {
                // sms_split: only the first part asks for reports.
                mt.dlr_mask = Some(0);
                if let Some(o) = mt.options.as_mut() {
                    o.dlr_url = None;
                }
            }
            let text = match part {
                Body::Text(t) => t,
                Body::Binary(b) => {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    mt.coding = Some(coding::EIGHT_BIT);
                    mt.binary = Some(b);
                    text
                }
            };
            msg.respond_mt(text, mt);
        }
    }
}

/// A 7-bit MO's text in the service's `alt-charset` (`charset_convert`
/// from UTF-8 in `obey_request_thread`), when it has one; `None` keeps the
/// text as it is (no alt-charset, not 7-bit, 8-bit data, or a charset
/// rapidbox does not know, which smsbox leaves as is too).
fn alt_charset_data(
    service: &Service,
    coding: i32,
    data: Option<&[u8]>,
    text: &str,
) -> Option<Vec<u8>> {
    let charset = service.config.alt_charset.as_deref()?;
    if coding != coding::SEVEN_BIT || data.is_some() {
        return None;
    }
    crate::text::encode_lenient(text, charset)
}

/// `strip_keyword`: the text without its first word and the blanks after.
fn strip_keyword(text: &str) -> &str {
    let rest = text.trim_start_matches(|c| !is_c_space(c));
    rest.trim_start_matches(is_c_space)
}

fn strip_keyword_bytes(data: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r');
    let word = data.iter().position(space).unwrap_or(data.len());
    let rest = &data[word..];
    let blanks = rest.iter().position(|b| !space(b)).unwrap_or(rest.len());
    &rest[blanks..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_keyword_takes_the_first_word_and_the_blanks_after_it() {
        assert_eq!(strip_keyword("vote \t blue  green"), "blue  green");
        assert_eq!(
            strip_keyword("  vote"),
            "vote",
            "leading blanks end the word"
        );
        assert_eq!(strip_keyword("vote"), "");
        assert_eq!(strip_keyword_bytes(b"vote \xff\x00"), b"\xff\x00");
        assert_eq!(strip_keyword_bytes(b"\xff"), b"");
    }
}
