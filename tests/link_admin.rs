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

use boxproto::{Admin, AdminCommand, BoxCodec, Msg, SmsType};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use rapidbox::dispatch::Dispatch;
use rapidbox::link::connect::Endpoint;
use rapidbox::link::convert::MtSettings;
use rapidbox::link::inbound::Inbound;
use rapidbox::link::outbox::{Outbox, Policy};
use rapidbox::link::{Link, LinkConfig, LinkStatus};
use rapidbox::model::{Connection, Direction, KannelInfo, Message, MessageId};
use rapidbox::router::{Ids, ReplySettings, Router};
use rapidbox::store::{Op, Store, StoreOptions, Unit};

const WAIT: Duration = Duration::from_secs(10);

struct StoreIds(Store);
impl Ids for StoreIds {
    fn next_id(&self) -> MessageId {
        self.0.allocate_id()
    }
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

/// A queued reply, as the router would have stored it.
async fn queue_reply(store: &Store, outbox: &Outbox, text: &str) {
    let id = store.allocate_id();
    let mut msg = Message::new(
        id,
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
    let _applied = store
        .commit(Unit::new().with(Op::put(msg.clone())))
        .await
        .unwrap_or_else(|e| panic!("cannot queue: {e}"));
    outbox.offer(msg);
}

#[tokio::test]
async fn suspend_holds_mts_until_resume_and_shutdown_makes_the_link_reconnect() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let store = Store::open(&dir.path().join("s.redb"), StoreOptions::default())
        .unwrap_or_else(|e| panic!("store: {e}"));
    let router = Router::new(
        Vec::new(),
        Arc::new(StoreIds(store.clone())),
        ReplySettings::default(),
    );
    let outbox = Outbox::new(16, Policy::every_backend());
    let config = Arc::new(rapidbox::config::Config::default());
    let dispatch = Dispatch::new(config, Some(outbox.clone()), None);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"))
        .port();
    let link = Link {
        config: LinkConfig {
            endpoint: Endpoint {
                host: "127.0.0.1".into(),
                port,
                tls: None,
            },
            smsbox_id: Some("rapidbox".into()),
            heartbeat: Duration::from_secs(30),
            max_in_flight: 8,
            max_routing: 8,
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(200),
            max_frame_bytes: boxproto::DEFAULT_MAX_FRAME_LEN,
            mt: MtSettings {
                boxc_id: Some("rapidbox".into()),
                global_sender: None,
                dlr_mask: 0,
            },
        },
        inbound: Inbound {
            store: store.clone(),
            router,
            dispatch,
            dlr_callbacks: None,
        },
        outbox: outbox.clone(),
        status: Arc::new(LinkStatus::default()),
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(link.run(shutdown.clone()));

    let accept = || async {
        let (socket, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .unwrap_or_else(|_| panic!("the box did not connect within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("accept: {e}"));
        Framed::new(socket, BoxCodec::new())
    };

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
    queue_reply(&store, &outbox, "held").await;
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

    shutdown.cancel();
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap_or_else(|_| panic!("the link did not stop within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("the link task failed: {e}"));
    store.close().await;
}
