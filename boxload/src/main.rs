//! `boxload`: the command line. Everything else is in the library.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use boxload::{Options, TextCoding};

/// A fake bearerbox that load-tests a Kannel box (rapidbox, smsbox): the box
/// connects to --listen as to a bearerbox's smsbox-port; boxload offers it
/// numbered MOs, acks its MTs, and reports throughput, latency, losses.
///
/// Output: a readable report on stdout, then the same report as one JSON
/// line, always last (--json: only the JSON line). Exit status 0 when every
/// MO was acked success and answered exactly once with no mismatched
/// replies; 1 otherwise (0 with --allow-loss); 2 when no load could run.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Where the box connects, IP:PORT.
    #[arg(long, default_value = "127.0.0.1:13001")]
    listen: SocketAddr,
    /// MOs to offer.
    #[arg(long, default_value_t = 1000)]
    messages: u32,
    /// MO text; {n} becomes the MO's number and must appear in the reply.
    #[arg(long, default_value = "load test {n}")]
    text: String,
    /// 0: 7-bit (UTF-8), 2: UCS-2 (UTF-16BE).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    coding: u8,
    /// Senders, used round robin: +2567720000001 .. +256772000000K.
    #[arg(long, default_value_t = 10)]
    senders: u32,
    /// The MOs' receiver.
    #[arg(long, default_value = "5555")]
    shortcode: String,
    /// The MOs' smsc_id.
    #[arg(long, default_value = "fake")]
    smsc: String,
    /// Unacknowledged MOs at most (bearerbox's smsbox-max-pending).
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// Offer MOs at this rate, paced evenly; default as fast as the window allows.
    #[arg(long, value_name = "MSGS_PER_SEC")]
    rate: Option<f64>,
    /// Send a delivered report for each MT whose dlr_mask has bit 1.
    #[arg(long)]
    dlr: bool,
    /// Seconds without progress to wait for the rest once all MOs are offered.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    grace: f64,
    /// Seconds the whole run may take, waiting for the box included.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    timeout: f64,
    /// Print only the JSON line.
    #[arg(long)]
    json: bool,
    /// Exit 0 even when MOs were lost, duplicated or not acked success.
    #[arg(long)]
    allow_loss: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("boxload: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let secs = |what: &str, s: f64| {
        Duration::try_from_secs_f64(s).with_context(|| format!("--{what} {s}: not a duration"))
    };
    let options = Options {
        messages: cli.messages,
        text: cli.text,
        coding: match cli.coding {
            0 => TextCoding::SevenBit,
            2 => TextCoding::Ucs2,
            other => anyhow::bail!("--coding {other}: only 0 (7-bit) and 2 (UCS-2) are offered"),
        },
        senders: cli.senders,
        shortcode: cli.shortcode,
        smsc: cli.smsc,
        window: cli.window,
        rate: cli.rate,
        dlr: cli.dlr,
        grace: secs("grace", cli.grace)?,
        timeout: secs("timeout", cli.timeout)?,
    };
    options.validate()?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    eprintln!("boxload: waiting for a box on {}", cli.listen);
    let report = boxload::run(listener, &options).await?;
    if !cli.json {
        print!("{}", report.to_text());
    }
    println!("{}", report.to_json());
    Ok(if report.passed() || cli.allow_loss {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
