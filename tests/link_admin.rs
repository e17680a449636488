//! The bearerbox link's obedience to admin commands, against a scripted
//! peer speaking the box protocol with boxproto (Debian's bearerbox offers
//! no way to send a box suspend or resume on demand; the rest of the link
//! is tested against the real one in kannel_e2e.rs):
//!
//! - the box identifies first, with its smsbox-id;
//! - suspend stops MTs until resume; then they flow;
//! - admin shutdown closes the session, and the link reconnects by itself.

use std::sync::Arc;
use std::time::Duration;

use boxproto::{
    Ack, AckStatus, Admin, AdminCommand, BoxCodec, Bytes, Coding, Msg, Sms, SmsType, Uuid,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;

use rapidbox::config::Config;
use rapidbox::model::{Connection, Direction, KannelInfo, Message};
use rapidbox::router::{App, AppFuture, Incoming};
use rapidbox::{Daemon, Running};

const WAIT: Duration = Duration::from_secs(10);

/// rapidbox, as an embedder would start it, attached to the scripted
/// bearerbox on `port` as smsbox-id `rapidbox`, routing through `apps`
/// alone, with `max_routing` MOs handled at once.
async fn start(
    port: u16,
    max_routing: usize,
    apps: Vec<Box<dyn App>>,
) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let toml = format!(
        "[store]\npath = {}\n\
         [kannel]\nport = {port}\nsmsbox_id = \"rapidbox\"\nmax_in_flight = 8\n\
         max_routing = {max_routing}\nreconnect_min_ms = 50\nreconnect_max_secs = 1\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[router]\napps = []\n\
         # The link's own bounds are under test: no MO leaves routing early.\n\
         defer_after_ms = 0\n",
        toml::Value::String(dir.path().join("s.redb").display().to_string())
    );
    let config = Config::from_toml_str(&toml).unwrap_or_else(|e| panic!("config: {e}"));
    let builder = apps
        .into_iter()
        .fold(Daemon::builder(config), |b, app| b.app(app));
    let running = tokio::time::timeout(WAIT, builder.start())
        .await
        .unwrap_or_else(|_| panic!("start took over {WAIT:?}"))
        .unwrap_or_else(|e| panic!("rapidbox does not start: {e}"));
    (running, dir)
}

async fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"))
        .port();
    (listener, port)
}

async fn accept(listener: &TcpListener) -> Peer {
    let (socket, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("the box did not connect within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("accept: {e}"));
    Framed::new(socket, BoxCodec::new())
}

type Peer = Framed<TcpStream, BoxCodec>;

/// The next message from the box that is not a heartbeat.
async fn next(peer: &mut Peer) -> Msg {
    loop {
        let item = tokio::time::timeout(WAIT, peer.next())
            .await
            .unwrap_or_else(|_| panic!("nothing from the box within {WAIT:?}"))
            .unwrap_or_else(|| panic!("the box closed the connection"))
            .unwrap_or_else(|e| panic!("framing error: {e}"))
            .unwrap_or_else(|e| panic!("bad frame from the box: {e}"));
        if !matches!(item, Msg::Heartbeat(_)) {
            return item;
        }
    }
}

/// Nothing but heartbeats from the box for `quiet`.
async fn silent(peer: &mut Peer, quiet: Duration) {
    let outcome = tokio::time::timeout(quiet, next(peer)).await;
    assert!(
        outcome.is_err(),
        "the box sent {:?} while it should be quiet",
        outcome.ok()
    );
}

async fn admin(peer: &mut Peer, command: AdminCommand) {
    let msg = Admin {
        command,
        ..Admin::default()
    };
    peer.send(Msg::from(msg))
        .await
        .unwrap_or_else(|e| panic!("cannot send admin: {e}"));
}

/// An outgoing message to +4912 through the bearerbox, sent as an
/// embedder would: through the intake, which commits it and offers it to
/// the link.
async fn send(running: &Running, text: &str) {
    let mut msg = Message::new(
        running.store().allocate_id(),
        Connection::new("fake", "+4912"),
        Direction::Outgoing,
        text,
    );
    msg.kannel = Some(KannelInfo {
        uuid: Some(*uuid::Uuid::new_v4().as_bytes()),
        shortcode: Some("5555".into()),
        smsc_id: Some("fake".into()),
        ..KannelInfo::default()
    });
    let _sent = running
        .intake()
        .send(vec![msg])
        .await
        .unwrap_or_else(|e| panic!("cannot send: {e}"));
}

#[tokio::test]
async fn suspend_holds_mts_until_resume_and_shutdown_makes_the_link_reconnect() {
    let (listener, port) = listen().await;
    let (running, _dir) = start(port, 8, Vec::new()).await;
    let accept = || accept(&listener);

    let mut peer = accept().await;
    match next(&mut peer).await {
        Msg::Admin(a) => {
            assert_eq!(a.command, AdminCommand::Identify);
            assert_eq!(a.boxc_id.as_deref(), Some(&b"rapidbox"[..]));
        }
        other => panic!("the box must identify first, sent {other}"),
    }

    admin(&mut peer, AdminCommand::Suspend).await;
    // Give the suspend time to land before the MT is offered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&running, "held").await;
    silent(&mut peer, Duration::from_millis(700)).await;

    admin(&mut peer, AdminCommand::Resume).await;
    match next(&mut peer).await {
        Msg::Sms(sms) => {
            assert_eq!(sms.sms_type, SmsType::MtPush);
            assert_eq!(sms.msgdata.as_deref(), Some(&b"held"[..]));
            assert_eq!(sms.dlr_url, None, "no reports asked for, so no dlr_url");
            assert_eq!(sms.boxc_id.as_deref(), Some(&b"rapidbox"[..]));
            assert_eq!(sms.receiver.as_deref(), Some(&b"+4912"[..]));
        }
        other => panic!("after resume the held MT must come, got {other}"),
    }

    // The bearerbox says it is going away: the box closes and comes back.
    admin(&mut peer, AdminCommand::Shutdown).await;
    let closed =
        tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = peer.next().await {} }).await;
    assert!(
        closed.is_ok(),
        "the box kept the connection after admin shutdown"
    );
    let mut again = accept().await;
    match next(&mut again).await {
        Msg::Admin(a) => assert_eq!(a.command, AdminCommand::Identify),
        other => panic!("a reconnecting box identifies first, sent {other}"),
    }
    // The MT sent before the shutdown was never answered: it comes again.
    match next(&mut again).await {
        Msg::Sms(sms) => assert_eq!(sms.msgdata.as_deref(), Some(&b"held"[..])),
        other => panic!("the unanswered MT must be sent again, got {other}"),
    }

    tokio::time::timeout(WAIT, running.stop())
        .await
        .unwrap_or_else(|_| panic!("rapidbox did not stop within {WAIT:?}"));
}

/// Holds every message in `handle` until the test closes the gate.
struct Gate(Arc<Semaphore>);

impl App for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn handle<'a>(&'a self, _msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        Box::pin(async move {
            // Never a permit: waits until the semaphore is closed.
            let _closed = self.0.acquire().await;
            Ok(true)
        })
    }
}

fn mo(n: u128) -> Sms {
    Sms {
        sender: Some(Bytes::from_static(b"+4912")),
        receiver: Some(Bytes::from_static(b"5555")),
        msgdata: Some(Bytes::from_static(b"hello")),
        smsc_id: Some(Bytes::from_static(b"fake")),
        coding: Coding::SevenBit,
        id: Uuid::from_u128(n),
        time: 1_700_000_000,
        sms_type: SmsType::Mo,
        ..Sms::default()
    }
}

/// A slow app fills every routing slot: the session must still read what
/// the bearerbox sends (acks, admin commands), turn away what it has no
/// room for, and see the bearerbox leave.
#[tokio::test]
async fn with_every_routing_slot_busy_the_link_still_reads_and_answers_the_bearerbox() {
    let (listener, port) = listen().await;
    let gate = Arc::new(Semaphore::new(0));
    let (running, _dir) = start(port, 1, vec![Box::new(Gate(gate.clone()))]).await;
    let mut peer = accept(&listener).await;
    match next(&mut peer).await {
        Msg::Admin(a) => assert_eq!(a.command, AdminCommand::Identify),
        other => panic!("the box must identify first, sent {other}"),
    }
    // The first takes the one routing slot, the second waits for it, the
    // third finds no room at all.
    for n in 1..=3 {
        peer.send(Msg::from(mo(n)))
            .await
            .unwrap_or_else(|e| panic!("cannot send MO {n}: {e}"));
    }
    match next(&mut peer).await {
        Msg::Ack(Ack { nack, id, .. }) => {
            assert_eq!((nack, id), (AckStatus::FailedTmp, Uuid::from_u128(3)));
        }
        other => panic!("the MO with no room must be acked failed_tmp at once, got {other}"),
    }
    admin(&mut peer, AdminCommand::Shutdown).await;
    let closed =
        tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = peer.next().await {} }).await;
    assert!(
        closed.is_ok(),
        "the box did not see admin shutdown while its apps were busy"
    );
    // Back again; once the app lets go, the redelivered MOs are answered.
    let mut again = accept(&listener).await;
    match next(&mut again).await {
        Msg::Admin(a) => assert_eq!(a.command, AdminCommand::Identify),
        other => panic!("a reconnecting box identifies first, sent {other}"),
    }
    gate.close();
    again
        .send(Msg::from(mo(1)))
        .await
        .unwrap_or_else(|e| panic!("cannot redeliver: {e}"));
    match next(&mut again).await {
        Msg::Ack(Ack { nack, id, .. }) => {
            assert_eq!((nack, id), (AckStatus::Success, Uuid::from_u128(1)));
        }
        other => panic!("the redelivered MO must be acked, got {other}"),
    }
    tokio::time::timeout(WAIT, running.stop())
        .await
        .unwrap_or_else(|_| panic!("rapidbox did not stop within {WAIT:?}"));
}
