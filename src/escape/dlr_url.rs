//! A sendsms caller's `dlr-url`, expanded for a delivery report as
//! smsbox expands it.

use boxproto::Sms;

use super::{Pattern, SmsFields, Style};
use crate::model::{now_micros, Message};

/// The caller's `template` with Kannel's escapes substituted from the
/// report `report` on `message`, as smsbox substitutes them in a
/// `dlr-url`: every escape of [`crate::escape`], with smsbox's values and
/// its URL-encoding ([`Style::Smsbox`]: a space as `+`, `%t` as
/// `YYYY-MM-DD+HH:MM:SS`, `%S` and `%C` unencoded), and an unknown escape
/// or a final `%` left as written ([`Pattern::lenient`]): the caller's
/// server was written for smsbox. As measured on Kannel 1.4.5's smsbox (a
/// sendsms with dlr-mask 31, fake SMSC), on a report:
///
/// | escape | value |
/// | --- | --- |
/// | `%d` | the event (the report's dlr_mask: 1, 2, 4, 8, 16) |
/// | `%A`, `%b` | the report's text (`ACK/` from the fake SMSC) |
/// | `%a` | its words, joined by `+`; `%k` the first, `%s %S %r` the next |
/// | `%p` | the phone: the MT's receiver (`to`) |
/// | `%P` | the MT's sender (`from`) |
/// | `%q`, `%Q` | `%p`, `%P` with a leading `00` as `%2B` |
/// | `%i` | the SMSC id |
/// | `%I` | the report's own UUID (not the MT's) |
/// | `%F` | the SMSC's id for the MT (empty until it gives one) |
/// | `%n` | the service: the sendsms username |
/// | `%D` | the report's meta-data; `%#group#key#` one of its values |
/// | `%T` | the report's time, Unix seconds; `%t` as `YYYY-MM-DD+HH:MM:SS` |
/// | `%R` | the dlr-url itself |
/// | `%c %m %M` | the report's coding, mclass, mwi (-1 when the bearerbox leaves them unset); `%C` the charset, `%O` the DCS |
/// | `%u %f %o %B` | the report's UDH, SMSC number, account, billing info |
/// | `%v %V` | the validity and deferral left, in minutes (nothing when unset) |
/// | `%%` | a percent sign |
///
/// A report without a sender, receiver, service or smsc-id takes the
/// MT's; one without a time takes the time now.
pub fn expand_dlr_url(template: &str, report: &Sms, message: &Message) -> String {
    let fields = SmsFields::new(report);
    let mut ctx = fields.context();
    let kannel = message.kannel.as_ref();
    if ctx.sender.is_empty() {
        ctx.sender = &message.connection.address;
    }
    if ctx.receiver.is_empty() {
        ctx.receiver = kannel.and_then(|k| k.shortcode.as_deref()).unwrap_or("");
    }
    if ctx.service.is_none_or(str::is_empty) {
        ctx.service = kannel.and_then(|k| k.service.as_deref());
    }
    if ctx.smsc_id.is_none_or(str::is_empty) {
        ctx.smsc_id = kannel.and_then(|k| k.smsc_id.as_deref());
    }
    if report.time <= 0 {
        ctx.time = Some(now_micros());
    }
    // The report's dlr_url is rapidbox's id for the MT; smsbox's is the
    // caller's URL.
    ctx.dlr_url = Some(template);
    Pattern::lenient(template).render(&ctx, Style::Smsbox)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, Direction, KannelInfo};
    use boxproto::{Bytes, DlrMask, SmsType, Uuid};

    fn message() -> Message {
        let mut m = Message::new(
            7,
            Connection::new("fake", "00497"),
            Direction::Outgoing,
            "hi",
        );
        m.kannel = Some(KannelInfo {
            shortcode: Some("+5555".into()),
            service: Some("u".into()),
            ..KannelInfo::default()
        });
        m
    }

    fn report() -> Sms {
        Sms {
            sender: Some(Bytes::from_static(b"+5555")),
            receiver: Some(Bytes::from_static(b"00497")),
            msgdata: Some(Bytes::from_static(b"ACK/")),
            time: 1_795_702_758,
            smsc_id: Some(Bytes::from_static(b"fake")),
            service: Some(Bytes::from_static(b"u")),
            id: Uuid::from_u128(0x5cea),
            sms_type: SmsType::ReportMo,
            dlr_mask: DlrMask(8),
            meta_data: Some(Bytes::from_static(b"?orig_msg?dlr_mask=31&")),
            ..Sms::default()
        }
    }

    /// The values smsbox 1.4.5 put in the same URL for the same report.
    #[test]
    fn escapes_are_substituted_as_smsbox_does() {
        let url = "http://h/dlr?d=%d&A=%A&T=%T&t=%t&p=%p&P=%P&q=%q&Q=%Q&i=%i&n=%n&k=%k&F=%F&D=%D&x=%x&pct=%%";
        assert_eq!(
            expand_dlr_url(url, &report(), &message()),
            "http://h/dlr?d=8&A=ACK%2F&T=1795702758&t=2026-11-26+14:19:18&p=00497&P=%2B5555\
             &q=%2B497&Q=%2B5555&i=fake&n=u&k=ACK%2F&F=&D=%3Forig_msg%3Fdlr_mask%3D31%26&x=%x&pct=%"
        );
        assert_eq!(
            expand_dlr_url("%I", &report(), &message()),
            Uuid::from_u128(0x5cea).to_string()
        );
        assert_eq!(
            expand_dlr_url("%R|%", &report(), &message()),
            "%25R%7C%25|%"
        );
    }

    #[test]
    fn missing_report_fields_fall_back_to_the_message() {
        let mut r = report();
        r.sender = None;
        r.receiver = None;
        r.service = None;
        r.msgdata = Some(Bytes::from_static(b"id:1 stat:DELIVRD"));
        assert_eq!(
            expand_dlr_url("%P %p %n %A", &r, &message()),
            "%2B5555 00497 u id%3A1+stat%3ADELIVRD"
        );
    }
}
