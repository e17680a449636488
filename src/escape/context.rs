//! What escapes are rendered from: one message's Kannel fields.

use boxproto::{Sms, SmsType};
use bytes::Bytes;
use uuid::Uuid;

use crate::model::{Message, Micros};

/// One message as Kannel's escapes see it: an MO, or the delivery report
/// on an MT (whose own fields, `%d` the event and `%A` the report's text,
/// are then the report's). Every field is borrowed; integers are Kannel's,
/// -1 when unset, which is what [`Default`] gives.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The message text: its words feed `%k %s %S %r %a`, and it is
    /// `%b`/`%A` unless [`Context::data`] says otherwise.
    pub text: &'a str,
    /// `msgdata` exactly as it came, when that is not `text`'s UTF-8 (an
    /// 8-bit payload).
    pub data: Option<&'a [u8]>,
    /// `%p`: the phone. An MO's sender; on a report, the MT's receiver.
    pub sender: &'a str,
    /// `%P`: the other end. The number an MO was sent to; on a report, the
    /// MT's sender.
    pub receiver: &'a str,
    /// `%i`.
    pub smsc_id: Option<&'a str>,
    /// `%f`.
    pub smsc_number: Option<&'a str>,
    /// `%F`.
    pub foreign_id: Option<&'a str>,
    /// `%n`.
    pub service: Option<&'a str>,
    /// `%o`.
    pub account: Option<&'a str>,
    /// `%B`.
    pub binfo: Option<&'a str>,
    /// `%D`, and `%#group#key#` reads it.
    pub meta_data: Option<&'a str>,
    /// `%R`.
    pub dlr_url: Option<&'a str>,
    /// `%C`.
    pub charset: Option<&'a str>,
    /// `%u`.
    pub udh: Option<&'a [u8]>,
    /// `%I`; the nil UUID shows nothing, as Kannel's unset id.
    pub uuid: Option<Uuid>,
    /// `%t %T`: when the message was sent or received.
    pub time: Option<Micros>,
    /// `%c`, and `%C %O` follow it.
    pub coding: i32,
    /// `%m`.
    pub mclass: i32,
    /// `%M`.
    pub mwi: i32,
    /// For `%O`.
    pub compress: i32,
    /// For `%O`: 1 asks for the `0xF_` DCS group.
    pub alt_dcs: i32,
    /// `%v`: absolute, Unix seconds.
    pub validity: i64,
    /// `%V`: absolute, Unix seconds.
    pub deferred: i64,
    /// `%d`.
    pub dlr_mask: i32,
    /// The time `%v %V` count from, in Unix seconds; `None` reads the
    /// clock when rendering.
    pub now: Option<i64>,
}

impl Default for Context<'_> {
    fn default() -> Self {
        Context {
            text: "",
            data: None,
            sender: "",
            receiver: "",
            smsc_id: None,
            smsc_number: None,
            foreign_id: None,
            service: None,
            account: None,
            binfo: None,
            meta_data: None,
            dlr_url: None,
            charset: None,
            udh: None,
            uuid: None,
            time: None,
            coding: -1,
            mclass: -1,
            mwi: -1,
            compress: -1,
            alt_dcs: -1,
            validity: -1,
            deferred: -1,
            dlr_mask: -1,
            now: None,
        }
    }
}

impl<'a> Context<'a> {
    /// The context of an incoming message, for its replies and URLs: the
    /// sender is the phone, the receiver the shortcode it wrote to, the
    /// smsc-id Kannel's (or else the backend's name), the time Kannel's
    /// (or else the message's date).
    ///
    /// Where this differs from what smsbox's escapes see in the same MO:
    /// - rapidbox decodes a UCS-2 MO to text, so it is shown as smsbox
    ///   shows it with `mo-recode = true`: coding 0, charset `UTF-8`, the
    ///   text in UTF-8. (An 8-bit MO is its payload as it came.) The
    ///   sms-services app, with `mo_recode = false`, sets [`Context::data`],
    ///   `coding` and `charset` back to the UTF-16BE bytes, as smsbox
    ///   without `mo-recode` shows them.
    /// - `%P` is the shortcode; smsbox shows its `faked-sender` or
    ///   `global-sender` instead when one is set.
    /// - `%n` is the MO's Kannel `service` (usually none); smsbox shows the
    ///   sms-service's `name` (by default its keyword pattern, such as
    ///   `^[ ]*(kw)[ ]*`). Set [`Context::service`] to show an app's name.
    /// - rapidbox does not keep an MO's `smsc_number`, so `%f` shows it
    ///   unset. (Its `account`, `binfo`, `mclass`, `mwi`, `compress`,
    ///   `alt_dcs`, `validity` and `deferred` are kept, see
    ///   [`KannelInfo::mt_options`](crate::model::KannelInfo::mt_options).)
    pub fn from_incoming(message: &'a Message) -> Context<'a> {
        let kannel = message.kannel.as_ref();
        let mut ctx = Context {
            text: &message.text,
            sender: &message.connection.address,
            receiver: kannel.and_then(|k| k.shortcode.as_deref()).unwrap_or(""),
            smsc_id: Some(
                kannel
                    .and_then(|k| k.smsc_id.as_deref())
                    .unwrap_or(&message.connection.backend),
            ),
            time: Some(
                kannel
                    .and_then(|k| k.time)
                    .map_or(message.date, |secs| secs.saturating_mul(1_000_000)),
            ),
            ..Context::default()
        };
        if let Some(k) = kannel {
            ctx.uuid = k.uuid.map(Uuid::from_bytes);
            ctx.data = k.binary.as_deref();
            ctx.udh = k.udh.as_deref();
            ctx.coding = k.coding;
            ctx.charset = k.charset.as_deref();
            ctx.service = k.service.as_deref();
            ctx.meta_data = k.meta_data.as_deref();
            ctx.foreign_id = k.foreign_id.as_deref();
            ctx.dlr_mask = k.dlr_mask;
            if let Some(o) = k.mt_options.as_deref() {
                ctx.account = o.account.as_deref();
                ctx.binfo = o.binfo.as_deref();
                ctx.mclass = o.mclass;
                ctx.mwi = o.mwi;
                ctx.compress = o.compress;
                ctx.alt_dcs = o.alt_dcs;
                ctx.validity = i64::from(o.validity);
                ctx.deferred = i64::from(o.deferred);
            }
            if k.coding == 2 {
                ctx.coding = 0;
                ctx.charset = Some("UTF-8");
            }
        }
        ctx
    }
}

/// The text fields of a box protocol `sms`, copied as UTF-8 (invalid
/// sequences replaced), to make a [`Context`] from: exactly what smsbox's
/// escapes see in the same message.
#[derive(Debug, Clone)]
pub struct SmsFields<'s> {
    sms: &'s Sms,
    text: String,
    strings: [Option<String>; 11],
}

impl<'s> SmsFields<'s> {
    /// Copies `sms`'s text fields.
    pub fn new(sms: &'s Sms) -> SmsFields<'s> {
        let copy = |f: &Option<Bytes>| f.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        SmsFields {
            sms,
            text: copy(&sms.msgdata).unwrap_or_default(),
            strings: [
                copy(&sms.sender),
                copy(&sms.receiver),
                copy(&sms.smsc_id),
                copy(&sms.smsc_number),
                copy(&sms.foreign_id),
                copy(&sms.service),
                copy(&sms.account),
                copy(&sms.binfo),
                copy(&sms.meta_data),
                copy(&sms.dlr_url),
                copy(&sms.charset),
            ],
        }
    }

    /// The context: for an MO, `%p` is its sender and `%P` its receiver;
    /// for anything else (a report) `%p` is its receiver and `%P` its
    /// sender: smsbox swaps an MO's numbers before it expands, and not a
    /// report's.
    pub fn context(&self) -> Context<'_> {
        let s = self.sms;
        let [sender, receiver, smsc_id, smsc_number, foreign_id, service, account, binfo, meta_data, dlr_url, charset] =
            &self.strings;
        let (phone, other) = if s.sms_type == SmsType::Mo {
            (sender, receiver)
        } else {
            (receiver, sender)
        };
        Context {
            text: &self.text,
            data: s.msgdata.as_deref(),
            sender: phone.as_deref().unwrap_or(""),
            receiver: other.as_deref().unwrap_or(""),
            smsc_id: smsc_id.as_deref(),
            smsc_number: smsc_number.as_deref(),
            foreign_id: foreign_id.as_deref(),
            service: service.as_deref(),
            account: account.as_deref(),
            binfo: binfo.as_deref(),
            meta_data: meta_data.as_deref(),
            dlr_url: dlr_url.as_deref(),
            charset: charset.as_deref(),
            udh: s.udhdata.as_deref(),
            uuid: Some(Uuid::from_bytes(*s.id.as_bytes())),
            time: Some(i64::from(s.time).saturating_mul(1_000_000)),
            coding: i32::from(s.coding),
            mclass: s.mclass,
            mwi: s.mwi,
            compress: s.compress,
            alt_dcs: s.alt_dcs,
            validity: i64::from(s.validity),
            deferred: i64::from(s.deferred),
            dlr_mask: s.dlr_mask.0,
            now: None,
        }
    }
}
