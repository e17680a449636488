//! The box protocol's layout, read without `boxproto`: the field lists of
//! Kannel's `gw/msg-decl.h` (1.4.5), INTEGER as a big-endian `i32`, OCTSTR
//! and UUID as a big-endian `i32` length (-1 for NULL) and that many bytes.
//!
//! Tests use it to look at recorded frames (which kind, which fields are
//! set) independently of the crate under test, and to cross-check what
//! `boxproto` decodes.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Int,
    Str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Heartbeat,
    Admin,
    Sms,
    Ack,
    WdpDatagram,
}

impl Kind {
    /// The message type on the wire.
    pub fn code(self) -> i32 {
        match self {
            Kind::Heartbeat => 0,
            Kind::Admin => 1,
            Kind::Sms => 2,
            Kind::Ack => 3,
            Kind::WdpDatagram => 4,
        }
    }

    /// Kannel's name for the message type.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Heartbeat => "heartbeat",
            Kind::Admin => "admin",
            Kind::Sms => "sms",
            Kind::Ack => "ack",
            Kind::WdpDatagram => "wdp_datagram",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i32),
    Str(Option<Vec<u8>>),
}

pub const HEARTBEAT: &[(&str, Field)] = &[("load", Field::Int)];
pub const ADMIN: &[(&str, Field)] = &[("command", Field::Int), ("boxc_id", Field::Str)];
pub const SMS: &[(&str, Field)] = &[
    ("sender", Field::Str),
    ("receiver", Field::Str),
    ("udhdata", Field::Str),
    ("msgdata", Field::Str),
    ("time", Field::Int),
    ("smsc_id", Field::Str),
    ("smsc_number", Field::Str),
    ("foreign_id", Field::Str),
    ("service", Field::Str),
    ("account", Field::Str),
    ("id", Field::Str),
    ("sms_type", Field::Int),
    ("mclass", Field::Int),
    ("mwi", Field::Int),
    ("coding", Field::Int),
    ("compress", Field::Int),
    ("validity", Field::Int),
    ("deferred", Field::Int),
    ("dlr_mask", Field::Int),
    ("dlr_url", Field::Str),
    ("pid", Field::Int),
    ("alt_dcs", Field::Int),
    ("rpi", Field::Int),
    ("charset", Field::Str),
    ("boxc_id", Field::Str),
    ("binfo", Field::Str),
    ("msg_left", Field::Int),
    // split_parts is VOID: not on the wire.
    ("priority", Field::Int),
    ("resend_try", Field::Int),
    ("resend_time", Field::Int),
    ("meta_data", Field::Str),
];
pub const ACK: &[(&str, Field)] = &[
    ("nack", Field::Int),
    ("time", Field::Int),
    ("id", Field::Str),
];
pub const WDP_DATAGRAM: &[(&str, Field)] = &[
    ("source_address", Field::Str),
    ("source_port", Field::Int),
    ("destination_address", Field::Str),
    ("destination_port", Field::Int),
    ("user_data", Field::Str),
];

#[derive(Debug, Clone)]
pub struct Message {
    pub kind: Kind,
    pub fields: Vec<(&'static str, Value)>,
}

impl Message {
    /// The field `name`; panics on a name the kind does not have,
    /// which is a mistake in this file, not in the input.
    pub fn get(&self, name: &str) -> Value {
        match self.fields.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => value.clone(),
            None => panic!("{:?} has no field {name}", self.kind),
        }
    }

    /// True when the field holds something other than NULL or -1.
    pub fn is_set(&self, name: &str) -> bool {
        !matches!(self.get(name), Value::Int(-1) | Value::Str(None))
    }

    /// One line: the type, then the fields that are set, strings shown
    /// with non-printable bytes escaped (`sms sender="+4912" sms_type=0 ...`).
    pub fn summary(&self) -> String {
        let mut line = self.kind.name().to_owned();
        for (name, value) in &self.fields {
            match value {
                Value::Int(-1) | Value::Str(None) => {}
                Value::Int(n) => {
                    let _ = write!(line, " {name}={n}");
                }
                Value::Str(Some(bytes)) => {
                    let _ = write!(line, " {name}=\"{}\"", bytes.escape_ascii());
                }
            }
        }
        line
    }
}

/// Reads a whole frame, prefix included. Every byte must be used.
pub fn read(raw: &[u8]) -> Result<Message, String> {
    let mut rest = raw;
    let len = int(&mut rest)?;
    if usize::try_from(len) != Ok(rest.len()) {
        return Err(format!("length prefix {len}, body of {} bytes", rest.len()));
    }
    let (kind, layout) = match int(&mut rest)? {
        0 => (Kind::Heartbeat, HEARTBEAT),
        1 => (Kind::Admin, ADMIN),
        2 => (Kind::Sms, SMS),
        3 => (Kind::Ack, ACK),
        4 => (Kind::WdpDatagram, WDP_DATAGRAM),
        other => return Err(format!("unknown message type {other}")),
    };
    let mut fields = Vec::with_capacity(layout.len());
    for (name, field) in layout {
        let value = match field {
            Field::Int => Value::Int(int(&mut rest)?),
            Field::Str => Value::Str(octstr(&mut rest).map_err(|e| format!("{name}: {e}"))?),
        };
        fields.push((*name, value));
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last field", rest.len()));
    }
    Ok(Message { kind, fields })
}

fn int(rest: &mut &[u8]) -> Result<i32, String> {
    let Some((head, tail)) = rest.split_first_chunk::<4>() else {
        return Err(format!(
            "{} bytes left where an integer was due",
            rest.len()
        ));
    };
    *rest = tail;
    Ok(i32::from_be_bytes(*head))
}

fn octstr(rest: &mut &[u8]) -> Result<Option<Vec<u8>>, String> {
    let len = int(rest)?;
    if len == -1 {
        return Ok(None);
    }
    let Ok(len) = usize::try_from(len) else {
        return Err(format!("length {len}"));
    };
    if rest.len() < len {
        return Err(format!("length {len}, {} bytes left", rest.len()));
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    Ok(Some(bytes.to_vec()))
}
