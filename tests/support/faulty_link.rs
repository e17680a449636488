//! A faulty link: `boxtap`'s relay, in process, between a bearerbox and
//! its box, with its fault switch in the test's hands.
//!
//! Point the box at [`FaultyLink::port`]; flip faults with
//! [`FaultyLink::faults`] (`boxtap::fault`). Nothing is recorded: the
//! tests that use it judge by the store and by fakesmsc, not by frames
//! (the [`super::recorder`] taps are for that).

use boxtap::fault::Faults;
use boxtap::{self as tap, TapConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A relay on a free port in front of a bearerbox's smsbox-port; stopped
/// on drop.
pub struct FaultyLink {
    port: u16,
    faults: Faults,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl FaultyLink {
    /// Starts relaying from a free port to `127.0.0.1:bearerbox_port`.
    pub async fn start(bearerbox_port: u16) -> FaultyLink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("faulty link: cannot listen: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("faulty link: no local address: {e}"))
            .port();
        let config = TapConfig::new(format!("127.0.0.1:{bearerbox_port}"));
        let faults = config.faults.clone();
        // A receiver that is gone only stops the recording, never the relay.
        let (sink, _) = mpsc::channel(1);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            if let Err(e) = tap::run(listener, config, sink, stopped).await {
                eprintln!("faulty link stopped: {e}");
            }
        });
        FaultyLink {
            port,
            faults,
            stop: Some(stop),
            task,
        }
    }

    /// The port the box connects to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The relay's fault switch.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

impl Drop for FaultyLink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
