//! Between box protocol `sms` frames and stored messages: an MO becomes an
//! incoming [`Message`], an outgoing [`Message`] becomes an MT.

use boxproto::{Bytes, Coding, DlrMask, Sms, SmsType, Uuid};

use crate::model::{
    now_micros, Connection, Direction, KannelInfo, Message, MessageId, MoKey, Status,
};
use crate::text;

/// Why an MO cannot be routed. Kannel's smsbox refuses the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoProblem {
    #[error("the MO has no sender")]
    NoSender,
    #[error("the MO has no receiver")]
    NoReceiver,
}

fn text_of(field: &Option<Bytes>) -> Option<String> {
    field
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn non_empty(field: &Option<Bytes>) -> Option<String> {
    text_of(field).filter(|s| !s.is_empty())
}

/// The backend an MO belongs to: its SMSC, or `kannel` when the bearerbox
/// did not say.
pub fn backend_of(sms: &Sms) -> String {
    non_empty(&sms.smsc_id).unwrap_or_else(|| "kannel".to_owned())
}

/// The incoming message for an MO, with the id `id`.
///
/// An MO without a sender or receiver still becomes a message (status F,
/// so the record of it is kept) and the problem is returned beside it.
/// The MO's `time`, unless Kannel left it unset (-1).
fn mo_time(sms: &Sms) -> Option<i64> {
    (sms.time != -1).then_some(i64::from(sms.time))
}

/// How the store knows this MO again when the bearerbox redelivers it; the
/// same as [`MoKey::of`] the message [`incoming_message`] makes of it.
pub fn mo_key(sms: &Sms) -> MoKey {
    MoKey {
        time: mo_time(sms).unwrap_or(-1),
        uuid: *sms.id.as_bytes(),
    }
}

pub fn incoming_message(sms: &Sms, id: MessageId) -> (Message, Option<MoProblem>) {
    let sender = text_of(&sms.sender).unwrap_or_default();
    let receiver = non_empty(&sms.receiver);
    let problem = if sender.is_empty() {
        Some(MoProblem::NoSender)
    } else if receiver.is_none() {
        Some(MoProblem::NoReceiver)
    } else {
        None
    };
    let data = sms.msgdata.as_deref().unwrap_or_default();
    let charset = text_of(&sms.charset);
    let decoded = text::decode_mo(data, i32::from(sms.coding), charset.as_deref());
    let connection = Connection::new(&backend_of(sms), &sender);
    let mut message = Message::new(id, connection, Direction::Incoming, decoded.text);
    if problem.is_some() {
        message.status = Status::Failed;
    }
    message.external_id = Some(sms.id.to_string());
    message.kannel = Some(KannelInfo {
        uuid: Some(*sms.id.as_bytes()),
        shortcode: receiver,
        smsc_id: non_empty(&sms.smsc_id),
        coding: i32::from(sms.coding),
        charset,
        udh: sms.udhdata.as_ref().map(|b| b.to_vec()),
        binary: decoded.binary,
        dlr_mask: sms.dlr_mask.0,
        service: text_of(&sms.service),
        meta_data: text_of(&sms.meta_data),
        foreign_id: None,
        mt_options: mo_fields(sms).map(Box::new),
        time: mo_time(sms),
    });
    (message, problem)
}

/// The fields an SMSC may set on an MO beyond those [`KannelInfo`] has
/// its own place for (message class, PID, validity, billing info...),
/// kept because smsbox shows them to a `post-url` or `post-xml` service
/// and in escapes; `None` when the SMSC set none, as fakesmsc's and most
/// MOs, so that they cost nothing in the store.
fn mo_fields(sms: &Sms) -> Option<crate::model::MtOptions> {
    let fields = crate::model::MtOptions {
        dlr_url: None,
        mclass: sms.mclass,
        mwi: sms.mwi,
        pid: sms.pid,
        alt_dcs: sms.alt_dcs,
        rpi: sms.rpi,
        validity: sms.validity,
        deferred: sms.deferred,
        priority: sms.priority,
        account: non_empty(&sms.account),
        binfo: non_empty(&sms.binfo),
        meta_data: None,
        compress: sms.compress,
    };
    (fields != crate::model::MtOptions::default()).then_some(fields)
}

/// Settings that shape every MT.
#[derive(Debug, Clone, Default)]
pub struct MtSettings {
    /// Our smsbox-id, so the bearerbox routes the MT's reports back to us.
    pub boxc_id: Option<String>,
    /// Sender for MTs that have none of their own.
    pub global_sender: Option<String>,
    /// Reports asked for on MTs that carry no Kannel details of their own.
    pub dlr_mask: i32,
}

/// Why an outgoing message cannot become an MT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MtProblem {
    #[error("message {0} has no sender: set kannel.global_sender or give one")]
    NoSender(MessageId),
}

/// The MT for an outgoing message.
///
/// `dlr_url` carries the message id: a report echoes it back, which is how
/// it finds its message again, even after a restart.
pub fn mt(msg: &Message, settings: &MtSettings) -> Result<Sms, MtProblem> {
    // A message that did not come through a bearerbox (an HTTP receive, a
    // sendsms) gets its Kannel details here: a fresh UUID (acks match it in
    // memory, reports match the message id), and its backend as smsc-id.
    let from_elsewhere = msg.kannel.is_none();
    let mut kannel = msg.kannel.clone().unwrap_or_default();
    if from_elsewhere {
        kannel.smsc_id = Some(msg.connection.backend.clone());
        kannel.dlr_mask = settings.dlr_mask;
    }
    let uuid = kannel.uuid.unwrap_or_else(|| *Uuid::new_v4().as_bytes());
    let sender = kannel
        .shortcode
        .clone()
        .or_else(|| settings.global_sender.clone())
        .ok_or(MtProblem::NoSender(msg.id))?;
    let options = kannel.mt_options.take().map(|o| *o);
    let (coding, msgdata, udh) = match (&kannel.binary, kannel.coding) {
        // An 8-bit MT (sendsms with coding=1) keeps its bytes as given.
        (Some(data), 1) => (Coding::EightBit, data.clone(), kannel.udh.clone()),
        // A sendsms MT whose payload was fixed when it was taken (UCS-2,
        // or cut by the user's max-messages) goes exactly so.
        (Some(data), coding) if options.is_some() => {
            (Coding::from(coding), data.clone(), kannel.udh.clone())
        }
        // A sendsms caller who asked for UCS-2 gets it even for text that
        // would fit the GSM alphabet, as from Kannel's smsbox.
        (_, text::coding::UCS2) if options.is_some() => {
            let bytes = msg.text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            (Coding::Ucs2, bytes, kannel.udh.clone())
        }
        _ => {
            let (mut coding, bytes) = text::encode_mt(&msg.text);
            // A reply whose coding was left unset (smsbox's text replies)
            // stays unset while its text fits the GSM alphabet.
            if coding == text::coding::SEVEN_BIT && kannel.coding == text::coding::UNSET {
                coding = text::coding::UNSET;
            }
            (Coding::from(coding), bytes, kannel.udh.clone())
        }
    };
    let str_of = |s: Option<String>| s.map(Bytes::from);
    let options = options.unwrap_or_default();
    Ok(Sms {
        sender: Some(Bytes::from(sender)),
        receiver: Some(Bytes::from(msg.connection.address.clone())),
        udhdata: udh.map(Bytes::from),
        msgdata: Some(Bytes::from(msgdata)),
        time: i32::try_from(now_micros() / 1_000_000).unwrap_or(i32::MAX),
        smsc_id: str_of(kannel.smsc_id),
        service: str_of(kannel.service),
        id: Uuid::from_bytes(uuid),
        sms_type: if msg.in_response_to.is_some() {
            SmsType::MtReply
        } else {
            SmsType::MtPush
        },
        coding,
        dlr_mask: DlrMask(kannel.dlr_mask),
        dlr_url: if kannel.dlr_mask > 0 {
            Some(Bytes::from(msg.id.to_string()))
        } else {
            None
        },
        boxc_id: str_of(settings.boxc_id.clone()),
        // A sendsms caller's MT fields; -1 and NULL (Kannel's "not set")
        // for every other MT.
        mclass: options.mclass,
        mwi: options.mwi,
        pid: options.pid,
        alt_dcs: options.alt_dcs,
        rpi: options.rpi,
        validity: options.validity,
        deferred: options.deferred,
        priority: options.priority,
        account: str_of(options.account),
        binfo: str_of(options.binfo),
        meta_data: str_of(options.meta_data),
        compress: options.compress,
        ..Sms::default()
    })
}

/// The message id a report's `dlr_url` carries, when it is one of ours.
pub fn report_message_id(sms: &Sms) -> Option<MessageId> {
    let url = sms.dlr_url.as_ref()?;
    std::str::from_utf8(url).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mo() -> Sms {
        Sms {
            sender: Some(Bytes::from_static(b"+256 772-123456")),
            receiver: Some(Bytes::from_static(b"8500")),
            msgdata: Some(Bytes::from_static("héllo".as_bytes())),
            smsc_id: Some(Bytes::from_static(b"fake")),
            coding: Coding::SevenBit,
            id: Uuid::from_u128(7),
            sms_type: SmsType::Mo,
            ..Sms::default()
        }
    }

    #[test]
    fn an_mo_becomes_an_incoming_message_with_its_kannel_details() {
        let (msg, problem) = incoming_message(&mo(), 9);
        assert_eq!(problem, None);
        assert_eq!(msg.id, 9);
        assert_eq!(msg.text, "héllo");
        assert_eq!(msg.connection.backend, "fake");
        assert_eq!(msg.connection.identity, "256772123456");
        assert_eq!(msg.connection.address, "+256 772-123456");
        assert_eq!(msg.status, Status::Received);
        let k = msg.kannel.unwrap();
        assert_eq!(k.uuid, Some(*Uuid::from_u128(7).as_bytes()));
        assert_eq!(k.shortcode.as_deref(), Some("8500"));
    }

    #[test]
    fn what_the_smsc_set_on_an_mo_is_kept_and_nothing_when_it_set_nothing() {
        let (plain, _) = incoming_message(&mo(), 1);
        assert_eq!(plain.kannel.unwrap().mt_options, None);
        let mut sms = mo();
        sms.mclass = 1;
        sms.pid = 65;
        sms.validity = 1_700_000_000;
        sms.binfo = Some(Bytes::from_static(b"bill"));
        sms.account = Some(Bytes::new());
        let (msg, _) = incoming_message(&sms, 1);
        let kept = msg.kannel.unwrap().mt_options.unwrap();
        assert_eq!((kept.mclass, kept.pid, kept.mwi), (1, 65, -1));
        assert_eq!(kept.validity, 1_700_000_000);
        assert_eq!(kept.binfo.as_deref(), Some("bill"));
        assert_eq!(kept.account, None, "an empty account is none");
        assert_eq!(kept.dlr_url, None);
    }

    #[test]
    fn an_mo_without_sender_or_receiver_is_kept_as_failed() {
        let mut sms = mo();
        sms.sender = Some(Bytes::new());
        let (msg, problem) = incoming_message(&sms, 1);
        assert_eq!(problem, Some(MoProblem::NoSender));
        assert_eq!(msg.status, Status::Failed);
        let mut sms = mo();
        sms.receiver = None;
        assert_eq!(incoming_message(&sms, 1).1, Some(MoProblem::NoReceiver));
    }

    #[test]
    fn a_reply_goes_back_to_the_exact_address_it_came_from() {
        let (incoming, _) = incoming_message(&mo(), 1);
        let reply = Message {
            id: 2,
            direction: Direction::Outgoing,
            status: Status::Queued,
            in_response_to: Some(1),
            text: "Got it".into(),
            kannel: Some(KannelInfo {
                uuid: Some(*Uuid::from_u128(8).as_bytes()),
                shortcode: Some("8500".into()),
                smsc_id: Some("fake".into()),
                dlr_mask: 31,
                ..KannelInfo::default()
            }),
            ..incoming
        };
        let settings = MtSettings {
            boxc_id: Some("rapidbox".into()),
            global_sender: None,
            dlr_mask: 0,
        };
        let sms = mt(&reply, &settings).unwrap();
        assert_eq!(sms.receiver.as_deref(), Some(&b"+256 772-123456"[..]));
        assert_eq!(sms.sender.as_deref(), Some(&b"8500"[..]));
        assert_eq!(sms.smsc_id.as_deref(), Some(&b"fake"[..]));
        assert_eq!(sms.boxc_id.as_deref(), Some(&b"rapidbox"[..]));
        assert_eq!(sms.sms_type, SmsType::MtReply);
        assert_eq!(sms.coding, Coding::SevenBit);
        assert_eq!(sms.dlr_url.as_deref(), Some(&b"2"[..]));
        assert_eq!(report_message_id(&sms), Some(2));
        assert_eq!(sms.id, Uuid::from_u128(8));
    }

    #[test]
    fn a_message_from_http_gets_a_uuid_its_backend_as_smsc_and_the_dlr_mask() {
        let connection = Connection::new("fake", "+4912");
        let msg = Message::new(5, connection, Direction::Outgoing, "hi");
        let settings = MtSettings {
            boxc_id: None,
            global_sender: Some("8500".into()),
            dlr_mask: 27,
        };
        let sms = mt(&msg, &settings).unwrap();
        assert_eq!(sms.smsc_id.as_deref(), Some(&b"fake"[..]));
        assert_eq!(sms.sender.as_deref(), Some(&b"8500"[..]));
        assert_eq!(sms.dlr_mask, DlrMask(27));
        assert_eq!(sms.dlr_url.as_deref(), Some(&b"5"[..]));
        assert_eq!(sms.sms_type, SmsType::MtPush);
        assert!(!sms.id.is_nil());
    }

    #[test]
    fn a_sendsms_mt_carries_the_callers_fields_and_coding() {
        let mut msg = Message::new(
            5,
            Connection::new("fake", "+4912"),
            Direction::Outgoing,
            "hi",
        );
        msg.kannel = Some(KannelInfo {
            uuid: Some([3; 16]),
            shortcode: Some("5555".into()),
            smsc_id: Some("fake".into()),
            coding: 2,
            dlr_mask: 9,
            service: Some("shop".into()),
            mt_options: Some(Box::new(crate::model::MtOptions {
                dlr_url: Some("http://caller/dlr".into()),
                mclass: 1,
                mwi: 2,
                pid: 65,
                alt_dcs: 1,
                rpi: 1,
                validity: 1_795_786_440,
                deferred: 1_795_700_040,
                priority: 3,
                account: Some("acct".into()),
                binfo: Some("bill".into()),
                meta_data: Some("?smpp?a=b".into()),
                compress: 1,
            })),
            ..KannelInfo::default()
        });
        let sms = mt(&msg, &MtSettings::default()).unwrap();
        assert_eq!(
            sms.coding,
            Coding::Ucs2,
            "coding=2 asked for, though GSM fits"
        );
        assert_eq!(sms.msgdata.as_deref(), Some(&[0, b'h', 0, b'i'][..]));
        assert_eq!(
            (
                sms.mclass,
                sms.mwi,
                sms.pid,
                sms.alt_dcs,
                sms.rpi,
                sms.priority
            ),
            (1, 2, 65, 1, 1, 3)
        );
        assert_eq!((sms.validity, sms.deferred), (1_795_786_440, 1_795_700_040));
        assert_eq!(sms.account.as_deref(), Some(&b"acct"[..]));
        assert_eq!(sms.binfo.as_deref(), Some(&b"bill"[..]));
        assert_eq!(sms.meta_data.as_deref(), Some(&b"?smpp?a=b"[..]));
        assert_eq!(sms.compress, 1);
        assert_eq!(sms.service.as_deref(), Some(&b"shop"[..]));
        // The wire's dlr_url is ours; the caller's stays with the message.
        assert_eq!(sms.dlr_url.as_deref(), Some(&b"5"[..]));
        // A reply keeps Kannel's "not set".
        let (incoming, _) = incoming_message(&mo(), 1);
        let plain = mt(&incoming, &MtSettings::default()).unwrap();
        assert_eq!((plain.mclass, plain.validity, plain.priority), (-1, -1, -1));
        assert_eq!(plain.meta_data, None);
    }

    #[test]
    fn a_reply_left_without_coding_keeps_it_unset_unless_it_needs_ucs2() {
        let (mut msg, _) = incoming_message(&mo(), 1);
        msg.kannel.as_mut().unwrap().coding = text::coding::UNSET;
        msg.text = "plain GSM".into();
        let sms = mt(&msg, &MtSettings::default()).unwrap();
        assert_eq!(sms.coding, Coding::Undefined);
        assert_eq!(sms.msgdata.as_deref(), Some(&b"plain GSM"[..]));
        msg.text = "Привет".into();
        assert_eq!(
            mt(&msg, &MtSettings::default()).unwrap().coding,
            Coding::Ucs2
        );
    }

    #[test]
    fn text_outside_gsm_goes_as_ucs2() {
        let (mut msg, _) = incoming_message(&mo(), 1);
        msg.text = "Привет".into();
        msg.kannel.as_mut().unwrap().uuid = Some([1; 16]);
        let sms = mt(&msg, &MtSettings::default()).unwrap();
        assert_eq!(sms.coding, Coding::Ucs2);
        let utf16: Vec<u8> = "Привет".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(sms.msgdata.as_deref(), Some(&utf16[..]));
    }
}
