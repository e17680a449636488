//! `boxtap`: a relay between a box and a bearerbox that prints every frame.
//!
//! Point the box (smsbox, wapbox, rapidbox) at `--listen` instead of the
//! bearerbox. Frames go to stdout, one line each, direction first, decoded
//! with `boxproto`; logs go to stderr (RUST_LOG sets the level). `--hex`
//! also appends a recording that the Kannel fidelity test can read.
//! `--control` opens the fault control socket: a line such as `stall 30`,
//! `half-open`, `cut bb>box`, `drip 10`, `corrupt bb>box set 2147483647`,
//! `clear` or `status` switches the faults the relay injects (see
//! `boxtap::fault`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context;
use boxtap::{self as tap, EventKind, TapConfig, TapEvent};
use clap::Parser;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;

/// Relay between a box and a bearerbox, printing every frame.
#[derive(Debug, Parser)]
#[command(name = "boxtap", version, about)]
struct TapArgs {
    /// Address the box connects to.
    #[arg(long, default_value = "127.0.0.1:13011")]
    listen: SocketAddr,
    /// Address of the bearerbox's smsbox-port (or wapbox-port).
    #[arg(long, default_value = "127.0.0.1:13001")]
    bearerbox: String,
    /// Also append every frame to this file as a hex recording
    /// (`box>bb 0000000c...`, one frame a line, `#` comments).
    #[arg(long, value_name = "FILE")]
    hex: Option<PathBuf>,
    /// Longest frame body that is printed and recorded; longer frames are
    /// relayed but only noted.
    #[arg(long, default_value_t = tap::DEFAULT_MAX_RECORDED_FRAME)]
    max_frame: usize,
    /// Print every field of every message (boxproto's `Debug`), not only
    /// the fields that are set.
    #[arg(long)]
    all_fields: bool,
    /// Listen here for fault commands, one a line (`stall 30`,
    /// `half-open`, `cut bb>box`, `drip 10`, `corrupt bb>box set N`,
    /// `clear`, `status`).
    #[arg(long, value_name = "ADDR")]
    control: Option<SocketAddr>,
    /// Print nothing for frames (logs still go to stderr): a relay for
    /// fault tests, where printing every frame would slow it down.
    #[arg(long)]
    quiet: bool,
}

/// How many events may wait between the relay and the printer before the
/// relay waits for the printer.
const EVENT_BACKLOG: usize = 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    run_tap(TapArgs::parse()).await
}

async fn run_tap(args: TapArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %args.listen, bearerbox = %args.bearerbox, "tap ready");

    let mut hex = match &args.hex {
        Some(path) => {
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?;
            let header = format!(
                "# recorded {} by boxtap: box <-> bearerbox {}\n",
                tap::utc_timestamp(SystemTime::now()),
                args.bearerbox
            );
            file.write_all(header.as_bytes())
                .await
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some((path.clone(), file))
        }
        None => None,
    };

    let mut config = TapConfig::new(args.bearerbox.clone());
    config.max_recorded_frame = args.max_frame;
    if let Some(control) = args.control {
        let listener = TcpListener::bind(control)
            .await
            .with_context(|| format!("cannot listen for control on {control}"))?;
        tracing::info!(%control, "fault control ready");
        let faults = config.faults.clone();
        // Ends with the process; it holds nothing that needs closing.
        tokio::spawn(tap::control::serve(
            listener,
            faults,
            std::future::pending::<()>(),
        ));
    }
    let (tx, mut rx) = mpsc::channel(EVENT_BACKLOG);
    let shutdown = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot wait for Ctrl-C; stop the tap with a signal");
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C: stopping the tap");
    };
    let relay = tokio::spawn(tap::run(listener, config, tx, shutdown));

    // The channel ends when the tap has stopped and its connections are gone.
    while let Some(event) = rx.recv().await {
        if args.quiet && hex.is_none() {
            continue;
        }
        let (line, recorded) = describe(&event, args.all_fields);
        println!("{line}");
        if let (Some((path, file)), Some(recorded)) = (&mut hex, recorded) {
            // Flush each line: a tap is often stopped with Ctrl-C, and the
            // recording must hold every frame printed so far.
            file.write_all(recorded.as_bytes())
                .await
                .with_context(|| format!("cannot write {}", path.display()))?;
            file.flush()
                .await
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    relay.await.context("tap task failed")??;
    Ok(())
}

/// The printed line for an event, and the line (newline included) it adds to
/// a hex recording, if any. Messages show their set fields (boxproto's
/// `Display`), or every field with `all_fields` (its `Debug`).
fn describe(event: &TapEvent, all_fields: bool) -> (String, Option<String>) {
    let conn = event.conn;
    match &event.kind {
        EventKind::Frame { direction, raw } => {
            // Decode the body only; the tap already checked the prefix.
            let shown = match boxproto::Msg::decode(raw.slice(4..)) {
                Ok(msg) if all_fields => format!("{msg:?}"),
                Ok(msg) => msg.to_string(),
                Err(e) => format!("undecodable ({e}): {}", tap::to_hex(raw)),
            };
            (
                format!("{direction} conn={conn} {shown}"),
                Some(format!("{}\n", tap::recording_line(*direction, raw))),
            )
        }
        EventKind::Oversized { direction, len } => {
            let note =
                format!("{direction} conn={conn} frame of {len} bytes relayed, not recorded");
            let comment = format!("# {note}\n");
            (note, Some(comment))
        }
        EventKind::NegativeLength { direction, len } => {
            let note = format!("{direction} conn={conn} header with length {len} skipped");
            let comment = format!("# {note}\n");
            (note, Some(comment))
        }
        EventKind::EndedMidFrame {
            direction,
            buffered,
        } => {
            let note = format!("{direction} conn={conn} closed inside a frame ({buffered} bytes)");
            let comment = format!("# {note}\n");
            (note, Some(comment))
        }
        EventKind::Opened { box_addr } => (
            format!("conn={conn} box {box_addr} connected"),
            Some(format!("# conn={conn} box {box_addr} connected\n")),
        ),
        EventKind::Closed { error } => {
            let how = error.as_deref().unwrap_or("closed");
            (
                format!("conn={conn} {how}"),
                Some(format!("# conn={conn} {how}\n")),
            )
        }
    }
}
