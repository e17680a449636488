//! Messages as schema 5 (and 4) stored them, read once to rewrite them in
//! today's form when such a store is opened.
//!
//! Schema 6 added `compress` at the end of
//! [`MtOptions`](crate::model::MtOptions) (the sendsms MT fields). postcard
//! is positional, so a message that carries MT options in the old form
//! does not decode as today's; every other message encodes the same in
//! both. These types are the old layout, field for field, and convert to
//! today's with `compress` unset (-1), which is what those messages sent.

use serde::Deserialize;

use crate::model::{Connection, Direction, KannelInfo, Message, MtOptions, Status};

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct MessageV5 {
    id: u64,
    connection: Connection,
    text: String,
    direction: Direction,
    status: Status,
    date: i64,
    updated: i64,
    sent: Option<i64>,
    delivered: Option<i64>,
    in_response_to: Option<u64>,
    external_id: Option<String>,
    kannel: Option<KannelInfoV5>,
    attempts: u32,
    retry_after: Option<i64>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct KannelInfoV5 {
    uuid: Option<[u8; 16]>,
    shortcode: Option<String>,
    smsc_id: Option<String>,
    coding: i32,
    charset: Option<String>,
    udh: Option<Vec<u8>>,
    binary: Option<Vec<u8>>,
    dlr_mask: i32,
    service: Option<String>,
    meta_data: Option<String>,
    foreign_id: Option<String>,
    mt_options: Option<Box<MtOptionsV5>>,
    time: Option<i64>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct MtOptionsV5 {
    dlr_url: Option<String>,
    mclass: i32,
    mwi: i32,
    pid: i32,
    alt_dcs: i32,
    rpi: i32,
    validity: i32,
    deferred: i32,
    priority: i32,
    account: Option<String>,
    binfo: Option<String>,
    meta_data: Option<String>,
}

/// A schema 5 `messages` value as today's message; `None` when the bytes
/// are not one.
pub(crate) fn decode_message_v5(bytes: &[u8]) -> Option<Message> {
    let old: MessageV5 = postcard::from_bytes(bytes).ok()?;
    Some(Message {
        id: old.id,
        connection: old.connection,
        text: old.text,
        direction: old.direction,
        status: old.status,
        date: old.date,
        updated: old.updated,
        sent: old.sent,
        delivered: old.delivered,
        in_response_to: old.in_response_to,
        external_id: old.external_id,
        kannel: old.kannel.map(|k| KannelInfo {
            uuid: k.uuid,
            shortcode: k.shortcode,
            smsc_id: k.smsc_id,
            coding: k.coding,
            charset: k.charset,
            udh: k.udh,
            binary: k.binary,
            dlr_mask: k.dlr_mask,
            service: k.service,
            meta_data: k.meta_data,
            foreign_id: k.foreign_id,
            mt_options: k.mt_options.map(|o| {
                Box::new(MtOptions {
                    dlr_url: o.dlr_url,
                    mclass: o.mclass,
                    mwi: o.mwi,
                    pid: o.pid,
                    alt_dcs: o.alt_dcs,
                    rpi: o.rpi,
                    validity: o.validity,
                    deferred: o.deferred,
                    priority: o.priority,
                    account: o.account,
                    binfo: o.binfo,
                    meta_data: o.meta_data,
                    compress: -1,
                })
            }),
            time: k.time,
        }),
        attempts: old.attempts,
        retry_after: old.retry_after,
    })
}

/// `message` in schema 5's form (its `compress` dropped): what an old
/// store holds, for the upgrade's tests.
#[cfg(test)]
pub(crate) fn encode_v5(message: &Message) -> Vec<u8> {
    let m = message.clone();
    let old = MessageV5 {
        id: m.id,
        connection: m.connection,
        text: m.text,
        direction: m.direction,
        status: m.status,
        date: m.date,
        updated: m.updated,
        sent: m.sent,
        delivered: m.delivered,
        in_response_to: m.in_response_to,
        external_id: m.external_id,
        kannel: m.kannel.map(|k| KannelInfoV5 {
            uuid: k.uuid,
            shortcode: k.shortcode,
            smsc_id: k.smsc_id,
            coding: k.coding,
            charset: k.charset,
            udh: k.udh,
            binary: k.binary,
            dlr_mask: k.dlr_mask,
            service: k.service,
            meta_data: k.meta_data,
            foreign_id: k.foreign_id,
            mt_options: k.mt_options.map(|o| {
                Box::new(MtOptionsV5 {
                    dlr_url: o.dlr_url,
                    mclass: o.mclass,
                    mwi: o.mwi,
                    pid: o.pid,
                    alt_dcs: o.alt_dcs,
                    rpi: o.rpi,
                    validity: o.validity,
                    deferred: o.deferred,
                    priority: o.priority,
                    account: o.account,
                    binfo: o.binfo,
                    meta_data: o.meta_data,
                })
            }),
            time: k.time,
        }),
        attempts: m.attempts,
        retry_after: m.retry_after,
    };
    postcard::to_allocvec(&old).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sendsms MT as schema 5 stored it.
    fn sendsms_message() -> Message {
        let mut msg = Message::new(
            7,
            Connection::new("fake", "+4912"),
            Direction::Outgoing,
            "hi",
        );
        msg.kannel = Some(KannelInfo {
            coding: 2,
            dlr_mask: 3,
            mt_options: Some(Box::new(MtOptions {
                dlr_url: Some("http://h/d".into()),
                mclass: 1,
                mwi: 2,
                pid: 3,
                priority: 3,
                account: Some("acct".into()),
                meta_data: Some("?smpp?a=b".into()),
                compress: -1,
                ..MtOptions::default()
            })),
            ..KannelInfo::default()
        });
        msg
    }

    #[test]
    fn a_schema_5_sendsms_message_reads_with_compress_unset() {
        let msg = sendsms_message();
        let old = encode_v5(&msg);
        assert!(
            postcard::from_bytes::<Message>(&old).is_err(),
            "the old form does not read as today's"
        );
        assert_eq!(decode_message_v5(&old), Some(msg));
        // A message without MT options is the same in both forms.
        let plain = Message::new(8, Connection::new("b", "1"), Direction::Incoming, "x");
        assert_eq!(encode_v5(&plain), postcard::to_allocvec(&plain).unwrap());
    }
}
