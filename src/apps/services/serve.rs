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
use crate::config::{EscapeStyle, NonGsmReplies};
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
        // Without mo-recode, smsbox keeps a UCS-2 MO as it came: its
        // escapes see coding 2 and the UTF-16BE bytes (%b, and the words
        // of %k %s %a... split on those bytes in smsbox's style).
        let ucs2 = self.ucs2_as_received(mo);
        if let Some(data) = &ucs2 {
            ctx.data = Some(data);
            ctx.coding = coding::UCS2;
            ctx.charset = kannel.and_then(|k| k.charset.as_deref());
        }
        // obey_request_thread: a 7-bit MO's text converted to the
        // service's alt-charset before its escapes are filled.
        let alt = alt_charset_data(service, ctx.coding, ctx.data, &mo.text);
        if let Some(data) = &alt {
            ctx.data = Some(data);
        }
        ctx.receiver = &reply_from;
        // smsbox names the MO after its service only when the SMSC gave
        // it no service of its own (an HTTP SMSC gives its username, a
        // loopback SMSC the MT's): %n, X-Kannel-Service and the reply.
        ctx.service = Some(mo_service(service, msg));
        let (text_style, url_style) = self.styles();
        let url = matches!(
            service.action,
            Action::GetUrl(_) | Action::PostUrl(_) | Action::PostXml(_)
        );
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
            Outcome::Reply(body, mut mt) => {
                // smsbox makes a text, file or exec reply a new message
                // whose coding it leaves unset; a URL's answer gets one.
                if !url {
                    mt.coding = Some(coding::UNSET);
                }
                (body, mt)
            }
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
        // smsbox answers a URL's result with the MO itself, named after
        // the service or its own (to its report's %n); a text, file or
        // exec reply is a new message without a name.
        if url {
            mt.service = Some(mo_service(service, msg).to_owned());
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
        let strip_bytes = |data: &[u8]| {
            let data = if strip {
                strip_keyword_bytes(data)
            } else {
                data
            };
            Bytes::copy_from_slice(data)
        };
        let (coding, charset, body) = match (mo_coding, k.and_then(|k| k.binary.as_deref())) {
            (coding::EIGHT_BIT, Some(data)) => (coding::EIGHT_BIT, None, strip_bytes(data)),
            // smsbox strips the keyword from the UTF-16BE bytes, on C's
            // isspace bytes, as it does any msgdata.
            (coding::UCS2, _) if !self.smsbox.mo_recode => (
                coding::UCS2,
                k.and_then(|k| k.charset.as_deref()),
                strip_bytes(&utf16be(&mo.text)),
            ),
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
            service: mo_service(service, msg),
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
        // A new message, its coding unset, as smsbox's.
        let mt = MtReply {
            coding: Some(coding::UNSET),
            ..MtReply::default()
        };
        self.send(None, msg, Body::Text(text), mt, reply_from);
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
        // sms_split's round trip through GSM, for those who want
        // smsbox's `?` rather than UCS-2 (header and footer are added
        // after it there, and left as they are here too).
        let seven_bit = !matches!(mt.coding, Some(coding::EIGHT_BIT | coding::UCS2));
        let body = match body {
            Body::Text(t)
                if seven_bit && self.smsbox.non_gsm_replies == NonGsmReplies::QuestionMarks =>
            {
                Body::Text(crate::text::as_gsm(t.as_bytes()))
            }
            other => other,
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

impl SmsServices {
    /// A UCS-2 MO's bytes as smsbox without `mo-recode` keeps them
    /// (UTF-16BE), or `None` when services see it as text (any other
    /// MO, or `mo_recode = true`). rapidbox keeps the MO as text, so the
    /// bytes are made again from it: the same unless the SMSC sent
    /// malformed UTF-16 (an odd byte, a lone surrogate), which reads back
    /// as U+FFFD.
    pub(super) fn ucs2_as_received(&self, mo: &crate::model::Message) -> Option<Vec<u8>> {
        let ucs2 = mo.kannel.as_ref().is_some_and(|k| k.coding == coding::UCS2);
        (ucs2 && !self.smsbox.mo_recode).then(|| utf16be(&mo.text))
    }
}

/// The MO's Kannel `service`: the one its SMSC gave it, else the
/// service's name (`obey_request_thread` sets it only when unset).
fn mo_service<'m>(service: &'m Service, msg: &'m Incoming) -> &'m str {
    msg.message
        .kannel
        .as_ref()
        .and_then(|k| k.service.as_deref())
        .unwrap_or(&service.name)
}

fn utf16be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
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
