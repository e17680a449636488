//! The `rapidbox` command line.
//!
//! `rapidbox run` runs the router (see [`rapidbox::daemon`]);
//! `rapidbox check-config` reports every problem in a configuration file;
//! `rapidbox hash-password` prints a console user's password hash;
//! `rapidbox import-kannel-conf` converts a kannel.conf (see
//! [`rapidbox::kannel_conf`]);
//! `rapidbox tap` puts a recording relay between a box and a bearerbox
//! (see [`rapidbox::tap`]) and prints every frame decoded with `boxproto`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rapidbox::config::Config;
use rapidbox::tap::{self, EventKind, TapConfig, TapEvent};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;

/// An SMS router that attaches to Kannel's bearerbox as an SMS box.
#[derive(Debug, Parser)]
#[command(name = "rapidbox", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run rapidbox: attach to the bearerbox, route every MO, reply.
    ///
    /// Without --config it runs on embedded defaults: store at
    /// ./data/rapidbox.redb, bearerbox at 127.0.0.1:13001 with no
    /// smsbox-id, apps optout and echo. Stops on SIGINT or SIGTERM after
    /// finishing the messages in hand.
    Run {
        /// The TOML configuration (see rapidbox.example.toml).
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file: every problem, with its key path.
    ///
    /// Exits non-zero when there is any error; warnings alone pass.
    CheckConfig {
        /// The TOML configuration to check.
        file: PathBuf,
        /// Also print the effective configuration, every default written out.
        #[arg(long)]
        print: bool,
    },
    /// Print the argon2 hash of a password read from stdin, for a
    /// `[[console_users]]` entry's `password_hash`.
    ///
    /// Reads one line (the password, without its newline) so that it
    /// stays out of the shell history and the process list:
    /// `rapidbox hash-password` and type it, or pipe it in.
    HashPassword,
    /// Convert a Kannel smsbox configuration (kannel.conf or smsbox.conf)
    /// to rapidbox's.
    ///
    /// Reads the file as Kannel 1.4.5 does (includes, quotes, comments) and
    /// prints rapidbox's TOML: the bearerbox connection and smsbox-id, the
    /// sendsms port as [http] listen, every sendsms-user. Everything not
    /// carried over is listed, with why, on stderr and as comments in the
    /// output. Exits non-zero when the output needs an edit before rapidbox
    /// can run on it (check-config's errors are printed).
    ImportKannelConf(ImportArgs),
    /// Relay between a box and a bearerbox, printing every frame.
    ///
    /// Point the box (smsbox, wapbox, rapidbox) at --listen instead of the
    /// bearerbox. Frames go to stdout, one line each, direction first; logs
    /// go to stderr (RUST_LOG sets the level).
    Tap(TapArgs),
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The Kannel configuration file.
    file: PathBuf,
    /// Write rapidbox's configuration here instead of to stdout.
    #[arg(long, short, value_name = "OUT")]
    output: Option<PathBuf>,
    /// The directory Kannel runs in: Kannel opens relative include paths
    /// from there, not from the including file's directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    kannel_dir: PathBuf,
}

#[derive(Debug, Args)]
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
}

/// How many events may wait between the relay and the printer before the
/// relay waits for the printer.
const EVENT_BACKLOG: usize = 1024;

/// See Cargo.toml: the allocator is chosen for the daemon's load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    match Cli::parse().command {
        Command::Run { config } => run(config).await,
        Command::CheckConfig { file, print } => check_config(&file, print),
        Command::HashPassword => hash_password(),
        Command::ImportKannelConf(args) => import_kannel_conf(&args),
        Command::Tap(args) => run_tap(args).await,
    }
}

async fn run(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = match &path {
        Some(path) => Config::load(path)?,
        None => {
            tracing::info!("no --config: running on embedded defaults");
            Config::default()
        }
    };
    rapidbox::daemon::run(&config).await?;
    Ok(())
}

fn check_config(file: &Path, print: bool) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let report = rapidbox::config::check(&text);
    for problem in &report.warnings {
        println!("warning: {problem}");
    }
    for problem in &report.errors {
        println!("error: {problem}");
    }
    if !report.is_ok() {
        anyhow::bail!(
            "{}: {} error(s), {} warning(s)",
            file.display(),
            report.errors.len(),
            report.warnings.len()
        );
    }
    println!(
        "{}: ok ({} warning(s))",
        file.display(),
        report.warnings.len()
    );
    if print {
        let config = Config::load(file)?;
        print!("{}", config.to_toml_string()?);
    }
    Ok(())
}

fn hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        anyhow::bail!("no password on stdin: type it, or pipe it in");
    }
    println!("{}", rapidbox::console::hash_password(password)?);
    Ok(())
}

fn import_kannel_conf(args: &ImportArgs) -> anyhow::Result<()> {
    use rapidbox::kannel_conf;

    let options = kannel_conf::ReadOptions::new(&args.kannel_dir);
    let conf = kannel_conf::read(&args.file, &options)?;
    let conversion = kannel_conf::convert(&conf)?;
    for note in &conversion.notes {
        eprintln!("note: {note}");
    }
    match &args.output {
        Some(path) => std::fs::write(path, &conversion.toml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{}", conversion.toml),
    }
    let report = &conversion.report;
    for problem in &report.warnings {
        eprintln!("check-config warning: {problem}");
    }
    for problem in &report.errors {
        eprintln!("check-config error: {problem}");
    }
    if !report.is_ok() {
        anyhow::bail!(
            "the converted configuration needs an edit before rapidbox can run on it: \
             {} error(s), see the notes above",
            report.errors.len()
        );
    }
    Ok(())
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
                "# recorded {} by rapidbox tap: box <-> bearerbox {}\n",
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
