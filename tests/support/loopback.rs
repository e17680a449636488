//! MOs with any field a Kannel message has, through a real bearerbox.
//!
//! fakesmsc sends only a sender, a receiver, text or data and a UDH; an
//! SMSC may set much more on an MO (message class, PID, RPI, validity,
//! deferred, billing info...), which smsbox shows to its services. To give
//! both boxes such MOs through the same bearerbox, the bearerbox gets a
//! `loopback` SMSC (gw/smsc/smsc_loopback.c: every MT routed to it comes
//! back as an MO, every field kept, a new UUID, its smsc-id the loopback's)
//! and the test connects as a box of its own, [`Injector`], that sends MTs
//! to it.
//!
//! The injector identifies with an smsbox-id, so the bearerbox never gives
//! it an MO (MOs without a route go only to boxes without an id), and it
//! reads the acks of what it sends in the background.

use std::time::Duration;

use boxproto::{Admin, AdminCommand, BoxCodec, Bytes, Coding, Msg, Sms, SmsType, Uuid};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

use super::conf::{Conf, Group};

/// The loopback SMSC's smsc-id: the MOs it makes carry it.
pub const LOOPBACK_SMSC_ID: &str = "loop";

/// The injector's smsbox-id.
pub const INJECTOR_ID: &str = "injector";

/// How long connecting and sending may take.
const WAIT: Duration = Duration::from_secs(10);

/// Adds the loopback SMSC to a bearerbox configuration made by
/// [`conf::bearerbox`](super::conf::bearerbox). MTs that name it reach it
/// and no other SMSC (bearerbox 1.4.5 routes by `allowed-smsc-id` and
/// `denied-smsc-id`, not by the MT's smsc-id alone), and MTs that name the
/// fake SMSC never reach it.
pub fn add_to(bearerbox: &mut Conf) {
    bearerbox.set("smsc", "denied-smsc-id", LOOPBACK_SMSC_ID);
    bearerbox.push(
        Group::new("smsc")
            .set("smsc", "loopback")
            .set("smsc-id", LOOPBACK_SMSC_ID)
            .set("allowed-smsc-id", LOOPBACK_SMSC_ID),
    );
}

/// A box connection that sends MTs to the loopback SMSC.
pub struct Injector {
    sink: futures_util::stream::SplitSink<Framed<TcpStream, BoxCodec>, Msg>,
    /// Reads (and drops) what the bearerbox sends: acks, heartbeats.
    reader: JoinHandle<()>,
}

impl Injector {
    /// Connects to the bearerbox's box port and identifies as
    /// [`INJECTOR_ID`].
    pub async fn connect(smsbox_port: u16) -> Injector {
        let socket = tokio::time::timeout(WAIT, TcpStream::connect(("127.0.0.1", smsbox_port)))
            .await
            .unwrap_or_else(|_| panic!("injector: no connection within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("injector: cannot connect: {e}"));
        let (mut sink, mut stream) = Framed::new(socket, BoxCodec::new()).split();
        let identify = Admin {
            command: AdminCommand::Identify,
            boxc_id: Some(Bytes::from(INJECTOR_ID)),
            ..Admin::default()
        };
        sink.send(Msg::from(identify))
            .await
            .unwrap_or_else(|e| panic!("injector: cannot identify: {e}"));
        let reader = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
        Injector { sink, reader }
    }

    /// Sends `mo` (whose sender is the phone, receiver the shortcode) as
    /// an MT to the loopback SMSC, which gives it back as an MO. Its
    /// `time` is now, its UUID new, its smsc-id the loopback's.
    pub async fn send(&mut self, mut mo: Sms) {
        mo.smsc_id = Some(Bytes::from(LOOPBACK_SMSC_ID));
        mo.sms_type = SmsType::MtPush;
        mo.id = Uuid::new_v4();
        mo.time = now();
        tokio::time::timeout(WAIT, self.sink.send(Msg::from(mo)))
            .await
            .unwrap_or_else(|_| panic!("injector: send took over {WAIT:?}"))
            .unwrap_or_else(|e| panic!("injector: cannot send: {e}"));
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Unix seconds now, as the box protocol carries times.
pub fn now() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// A 7-bit text MO from `phone` to `shortcode`, every other field unset
/// (Kannel's -1 and NULL), for a test to set what it needs.
pub fn text_mo(phone: &str, shortcode: &str, text: &str) -> Sms {
    Sms {
        sender: Some(Bytes::from(phone.to_owned())),
        receiver: Some(Bytes::from(shortcode.to_owned())),
        msgdata: Some(Bytes::from(text.to_owned())),
        coding: Coding::SevenBit,
        ..Sms::default()
    }
}
