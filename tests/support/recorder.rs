//! Taps between Kannel daemons, recording into one shared [`Recording`].
//!
//! A [`RunningTap`] is `boxtap` on a free port in front of a
//! bearerbox port; point a box at [`RunningTap::port`]. Every tap of a test
//! feeds the same [`Recording`], labelled with its link name (`smsbox`,
//! `wapbox`, ...), so the test sees one timeline of all the frames.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxtap::{self as tap, Direction, EventKind, TapConfig, TapEvent};
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::process::Daemon;
use super::wire;

/// How many events may wait in a tap's channel before the relay waits.
const TAP_BACKLOG: usize = 1024;

/// How often [`Recording::wait_for`] looks again.
const POLL: Duration = Duration::from_millis(20);

/// One tap event and the link it came from.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The tap's link name.
    pub link: &'static str,
    /// What the tap saw.
    pub event: TapEvent,
}

/// One recorded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The tap's link name.
    pub link: &'static str,
    /// Which way it went.
    pub direction: Direction,
    /// The whole frame, length prefix included.
    pub raw: Bytes,
}

impl Frame {
    /// `link direction summary`, the summary from [`wire::Message::summary`].
    pub fn summary(&self) -> String {
        match wire::read(&self.raw) {
            Ok(msg) => format!("{} {} {}", self.link, self.direction, msg.summary()),
            Err(e) => format!("{} {} unreadable ({e})", self.link, self.direction),
        }
    }
}

/// Everything the taps of a test saw, in the order it arrived.
#[derive(Debug, Clone, Default)]
pub struct Recording(Arc<Mutex<Vec<Recorded>>>);

impl Recording {
    /// Every event so far.
    pub fn events(&self) -> Vec<Recorded> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every frame so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.events()
            .into_iter()
            .filter_map(|r| match r.event.kind {
                EventKind::Frame { direction, raw } => Some(Frame {
                    link: r.link,
                    direction,
                    raw,
                }),
                _ => None,
            })
            .collect()
    }

    /// True once a box has connected through the tap of `link`.
    pub fn opened(&self, link: &str) -> bool {
        self.events()
            .iter()
            .any(|r| r.link == link && matches!(r.event.kind, EventKind::Opened { .. }))
    }

    /// Waits until `done` holds for the frames recorded so far. After
    /// `timeout` it panics with `what`, every frame recorded and the log
    /// tails of `daemons`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        daemons: &[&Daemon],
        done: impl Fn(&[Frame]) -> bool,
    ) {
        let started = Instant::now();
        while !done(&self.frames()) {
            if started.elapsed() >= timeout {
                let mut report = format!("no {what} within {timeout:?}; recorded:\n");
                for frame in self.frames() {
                    let _ = writeln!(report, "  {}", frame.summary());
                }
                for daemon in daemons {
                    report.push_str(&daemon.log_tails());
                }
                panic!("{report}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn push(&self, recorded: Recorded) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(recorded);
    }
}

/// A tap relaying to a bearerbox port, and the means to stop it.
#[derive(Debug)]
pub struct RunningTap {
    link: &'static str,
    port: u16,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tap::TapError>>,
    collector: JoinHandle<()>,
}

impl RunningTap {
    /// A tap named `link` on a free port of 127.0.0.1, in front of
    /// 127.0.0.1:`bearerbox_port`, feeding `recording`.
    pub async fn start(link: &'static str, bearerbox_port: u16, recording: &Recording) -> Self {
        // Port 0 and read back: the tap binds before anyone needs the
        // port, so no port is handed out twice.
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the {link} tap: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the {link} tap has no address: {e}"))
            .port();
        let (tx, mut rx) = mpsc::channel(TAP_BACKLOG);
        let (stop, stopped) = oneshot::channel::<()>();
        let config = TapConfig::new(format!("127.0.0.1:{bearerbox_port}"));
        let task = tokio::spawn(tap::run(listener, config, tx, stopped));
        let sink = recording.clone();
        let collector = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                sink.push(Recorded { link, event });
            }
        });
        RunningTap {
            link,
            port,
            stop,
            task,
            collector,
        }
    }

    /// The port boxes connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting, closes what is still relayed and waits until every
    /// event is in the recording.
    pub async fn stop(self) {
        let link = self.link;
        // The receiver is gone only if the tap already ended; the join
        // below reports how.
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the {link} tap failed: {e}"),
            Err(e) => panic!("the {link} tap's task failed: {e}"),
        }
        if let Err(e) = self.collector.await {
            panic!("the {link} tap's collector failed: {e}");
        }
    }
}
