//! From a checked [`Request`] to the outgoing messages: one per receiver
//! and part, each with its own UUID and the request's MT fields, as
//! smsbox's `send_message` hands them to the bearerbox.

use super::split::Payload;
use super::Request;
use crate::model::{Connection, Direction, KannelInfo, Message, MtOptions};
use crate::text;

/// One SMS of a request's text, for each receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The text, for people, the store and templates.
    pub text: String,
    /// The exact MT payload when it is not simply the text's UTF-8 (8-bit
    /// data, UCS-2).
    pub payload: Option<Vec<u8>>,
}

impl Part {
    /// The part made of `bytes` of `payload` (whose kind says how to read
    /// them as text).
    pub(super) fn new(payload: &Payload, bytes: Vec<u8>, charset: Option<&str>) -> Part {
        match payload {
            // GSM text: the UTF-8 is the payload, as the MT's 7-bit text.
            Payload::Gsm(_) => Part {
                text: String::from_utf8_lossy(&bytes).into_owned(),
                payload: None,
            },
            Payload::Octets(_) => Part {
                text: text::decode_mo(&bytes, text::coding::EIGHT_BIT, charset).text,
                payload: Some(bytes),
            },
            Payload::Ucs2(_) => Part {
                text: text::decode_mo(&bytes, text::coding::UCS2, None).text,
                payload: Some(bytes),
            },
        }
    }
}

impl Request {
    /// The outgoing messages: for each receiver, one per part, in order;
    /// `next_id` gives each its id. As in Kannel's `sms_split`, only a
    /// receiver's first part asks for delivery reports.
    pub fn messages(&self, mut next_id: impl FnMut() -> u64) -> Vec<Message> {
        let mut messages = Vec::with_capacity(self.receivers.len() * self.parts.len());
        for receiver in &self.receivers {
            for (i, part) in self.parts.iter().enumerate() {
                let mut options = self.options.clone();
                let mut dlr_mask = self.dlr_mask;
                if i > 0 && dlr_mask > 0 {
                    dlr_mask = 0;
                    options.dlr_url = None;
                }
                messages.push(self.message(receiver, part, dlr_mask, options, next_id()));
            }
        }
        messages
    }

    fn message(
        &self,
        receiver: &str,
        part: &Part,
        dlr_mask: i32,
        options: MtOptions,
        id: u64,
    ) -> Message {
        let mut msg = Message::new(
            id,
            Connection::new(&self.backend, receiver),
            Direction::Outgoing,
            part.text.clone(),
        );
        let uuid = *uuid::Uuid::new_v4().as_bytes();
        msg.external_id = Some(uuid::Uuid::from_bytes(uuid).to_string());
        msg.kannel = Some(KannelInfo {
            uuid: Some(uuid),
            shortcode: Some(self.sender.clone()),
            smsc_id: self.smsc_id.clone(),
            coding: self.coding,
            charset: self.charset.clone(),
            udh: self.udh.clone(),
            binary: part.payload.clone(),
            dlr_mask,
            service: Some(self.service.clone()),
            meta_data: None,
            foreign_id: None,
            mt_options: Some(Box::new(options)),
            time: None,
        });
        msg
    }
}
