//! The `rapidbox` command line.
//!
//! `rapidbox run` runs the router (see [`rapidbox::daemon`]);
//! `rapidbox check-config` reports every problem in a configuration file;
//! `rapidbox hash-password` prints a console user's password hash;
//! `rapidbox import-kannel-conf` converts a kannel.conf (see
//! [`rapidbox::kannel_conf`]); `purge`, `backup`, `verify` and `compact`
//! look after the store (`cli/store.rs`).
//!
//! The recording relay between a box and a bearerbox is its own tool,
//! `boxtap` (`tap/`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rapidbox::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[path = "cli/store.rs"]
mod store_cli;

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
    /// finishing the messages in hand. SIGHUP re-reads --config and
    /// applies its apps, backends, sendsms and console users without
    /// dropping the bearerbox link; a file with errors is refused.
    Run {
        /// The TOML configuration (see rapidbox.example.toml).
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The log's format: `text`, or `json` (one object a line, for log
        /// shippers). Overrides `[log] format`.
        #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
        log_format: Option<String>,
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
    /// Purge messages dated before DATE from a stopped store, with
    /// everything that is only theirs (connections and opt-outs stay).
    ///
    /// Messages still owed work are kept (queued, errored, waiting for a
    /// delivery report, dlr-url calls owed) unless --including-owed. While
    /// rapidbox runs, set [store] retention_days instead.
    Purge {
        /// YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], UTC.
        #[arg(long, value_name = "DATE")]
        before: String,
        /// Purge messages still owed work too.
        #[arg(long)]
        including_owed: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write a consistent copy of the store to DEST (a new file), then
    /// verify it. For the redb store (store.backend = "redb").
    ///
    /// Works while rapidbox runs: it then asks the running rapidbox (at
    /// [http] listen, with [http] password, which must be set) to write
    /// the copy, as its user; otherwise it copies the stopped store
    /// itself.
    Backup {
        /// The new file.
        dest: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check a store file: checksums, schema version, and that its tables
    /// agree. The file must not be open in a running rapidbox. For the
    /// redb store's file.
    Verify {
        /// The store file (default: the configured store).
        file: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Shrink a stopped store's file to what it holds (after a purge). For
    /// the redb store.
    Compact {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The TOML configuration (default: the embedded defaults).
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn load(&self) -> anyhow::Result<Config> {
        store_cli::config(self.config.as_deref())
    }
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

/// See Cargo.toml: the allocator is chosen for the daemon's load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    match command {
        // The daemon's runtime is shaped by its configuration
        // (`[runtime]`), so that is read first.
        Command::Run { config, log_format } => {
            let loaded = match &config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            let runtime = daemon_runtime(&loaded)?;
            runtime.block_on(run(loaded, config, log_format.as_deref()))
        }
        command => {
            init_log(LogFormat::Text);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start tokio")?
                .block_on(other(command))
        }
    }
}

/// The daemon's tokio runtime, with `[runtime] worker_threads` workers
/// (see [`rapidbox::config::RuntimeConfig::workers`]).
fn daemon_runtime(config: &Config) -> anyhow::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let env_set = std::env::var_os("TOKIO_WORKER_THREADS").is_some();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = config.runtime.workers(cpus, env_set) {
        builder.worker_threads(workers);
    }
    builder.enable_all().build().context("cannot start tokio")
}

/// Every command but `run`.
async fn other(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { .. } => unreachable!("`run` has a runtime of its own"),
        Command::CheckConfig { file, print } => check_config(&file, print),
        Command::HashPassword => hash_password(),
        Command::ImportKannelConf(args) => import_kannel_conf(&args),
        Command::Purge {
            before,
            including_owed,
            config,
        } => store_cli::purge(&config.load()?, &before, including_owed).await,
        Command::Backup { dest, config } => store_cli::backup(&config.load()?, &dest).await,
        Command::Verify { file, config } => {
            store_cli::verify(&store_cli::store_path(file, &config.load()?)?)
        }
        Command::Compact { config } => store_cli::compact(&config.load()?),
    }
}

/// Logs to stderr in `format`, what `RUST_LOG` says (default: info).
fn init_log(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        // The current span's fields (a message's id and Kannel UUID) with
        // every line, at the top of the object for a shipper to index.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn run(
    config: Config,
    path: Option<PathBuf>,
    log_format: Option<&str>,
) -> anyhow::Result<()> {
    // The configuration was read first (by main): it may say how to log.
    // Its errors are printed by main, before any log line.
    let format = match log_format {
        Some("json") => LogFormat::Json,
        Some(_) => LogFormat::Text,
        None => config.log.format,
    };
    init_log(format);
    if path.is_none() {
        tracing::info!("no --config: running on embedded defaults");
    }
    rapidbox::run(config, path).await?;
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
    println!("{}", rapidbox::hash_password(password)?);
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
