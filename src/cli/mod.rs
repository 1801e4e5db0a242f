//! The command line: one file per subcommand, each a thin shell over the library.

mod bench;
mod check_config;
mod deliver;
mod healthcheck;
mod history;
mod listen;
mod order;
mod payout;
mod refund;
mod retention;
mod secret;
mod serve;
mod sign;
mod simulate;
mod status;
mod verify;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

/// Exit code for bad configuration or arguments (interface contract).
pub const EXIT_BAD_CONFIG: u8 = 2;
/// Exit code for a runtime failure, or a signature that does not verify.
pub const EXIT_FAILURE: u8 = 1;

/// The version `--version` prints: the package version and the git revision
/// it was built from (`build.rs`; "unknown" without git).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("FPR_BUILD_REVISION"),
    ")"
);

/// Merchant-side webhook receiver for the FreedomPay payment gateway.
#[derive(Debug, Parser)]
#[command(name = "freedompay-receiver", version = VERSION, about)]
pub struct Cli {
    /// Configuration file (TOML). Every key can also be set as FPR__SECTION__KEY.
    #[arg(long, global = true, env = "FPR_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the callback receiver (the default when no subcommand is given).
    Serve,
    /// Apply the database migrations and exit (on PostgreSQL, partitioning
    /// the event log by month, without copying an existing one).
    Migrate {
        /// Leave PostgreSQL's `events` a plain table: only for measuring
        /// what partitioning costs (`scripts/bench`).
        #[arg(long, hide = true)]
        plain_events: bool,
    },
    /// Send the webhook outbox's deliveries until stopped (what `serve` does
    /// inside when endpoints are configured), as a process of its own.
    Deliver,
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig(check_config::CheckConfigArgs),
    /// Exit 0 when /readyz of the configured server.listen answers 200, else 1
    /// (a container health check that needs no shell or curl).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Insert an order, as the merchant's internal services do.
    AddOrder(order::AddOrderArgs),
    /// Play FreedomPay against a URL and check the signed answers.
    Simulate(simulate::SimulateArgs),
    /// Load-test a running service with signed result callbacks (scripts/bench).
    Bench(bench::BenchArgs),
    /// Ask FreedomPay for the status of a payment or a payout.
    Status(status::StatusArgs),
    /// Refund a payment (fully or partly) through the merchant's refund method.
    Refund(refund::RefundArgs),
    /// Pay money out to a card or a card token (asks for confirmation).
    Payout(payout::PayoutArgs),
    /// Ask FreedomPay for the merchant's balance.
    Balance(status::BalanceArgs),
    /// Compute the pg_sig of a message given as name=value pairs.
    Sign(sign::SignArgs),
    /// Check the pg_sig of a message given as name=value pairs or as XML.
    Verify(verify::VerifyArgs),
    /// Print what the database holds about one order or payment, as a timeline.
    History(history::HistoryArgs),
    /// The webhook outbox: list deliveries, show a message, replay, listen.
    Webhooks(webhooks::WebhooksArgs),
    /// Archive and delete old events, replace old personal data; check archives.
    Retention(retention::RetentionArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(cli.config.as_deref()),
        Command::Migrate { plain_events } => serve::migrate(cli.config.as_deref(), plain_events),
        Command::Deliver => deliver::run(cli.config.as_deref()),
        Command::CheckConfig(args) => check_config::run(cli.config.as_deref(), &args),
        Command::Healthcheck(args) => healthcheck::run(cli.config.as_deref(), &args),
        Command::AddOrder(args) => with_settings(cli.config.as_deref(), |s| order::run(s, &args)),
        Command::Simulate(args) => match optional_settings(cli.config.as_deref()) {
            Ok(settings) => simulate::run(settings.as_ref(), &args),
            Err(code) => code,
        },
        Command::Bench(args) => match optional_settings(cli.config.as_deref()) {
            Ok(settings) => bench::run(settings.as_ref(), &args),
            Err(code) => code,
        },
        Command::Status(args) => with_settings(cli.config.as_deref(), |s| status::status(s, &args)),
        Command::Refund(args) => with_settings(cli.config.as_deref(), |s| refund::run(s, &args)),
        Command::Payout(args) => with_settings(cli.config.as_deref(), |s| payout::run(s, &args)),
        Command::Balance(args) => {
            with_settings(cli.config.as_deref(), |s| status::balance(s, &args))
        }
        Command::Sign(args) => sign::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::History(args) => with_settings(cli.config.as_deref(), |s| history::run(s, &args)),
        Command::Webhooks(args) => {
            with_settings(cli.config.as_deref(), |s| webhooks::run(s, &args))
        }
        Command::Retention(args) if retention::needs_settings(&args) => {
            with_settings(cli.config.as_deref(), |s| retention::run(Some(s), &args))
        }
        Command::Retention(args) => retention::run(None, &args),
    }
}

/// Loads and validates the configuration as `serve` does; on problems prints
/// each as one line naming the key and returns the exit code for bad
/// configuration.
fn load_settings(path: Option<&std::path::Path>) -> Result<Settings, ExitCode> {
    let settings = Settings::load_unchecked(path).map_err(|e| report_problems(&[e]))?;
    let found = crate::config::validate::problems(&settings);
    if found.is_empty() {
        Ok(settings)
    } else {
        Err(report_problems(&found))
    }
}

/// The settings of a long-running command (`serve`, `deliver`): validated,
/// logging set up, and the configuration's warnings logged.
fn start_service(path: Option<&std::path::Path>) -> Result<Settings, ExitCode> {
    let settings = load_settings(path)?;
    crate::telemetry::init(&settings.log);
    for warning in crate::config::validate::warnings(&settings) {
        tracing::warn!("{warning}");
    }
    Ok(settings)
}

/// Runs `command` with the validated settings, or reports the problems.
fn with_settings(
    path: Option<&std::path::Path>,
    command: impl FnOnce(&Settings) -> ExitCode,
) -> ExitCode {
    match load_settings(path) {
        Ok(settings) => command(&settings),
        Err(code) => code,
    }
}

/// The settings when a configuration is given; commands that can also run
/// from their own arguments take this.
fn optional_settings(path: Option<&std::path::Path>) -> Result<Option<Settings>, ExitCode> {
    path.map(|p| load_settings(Some(p))).transpose()
}

/// Prints configuration problems, one line each, and gives exit code 2.
fn report_problems(problems: &[crate::config::ConfigError]) -> ExitCode {
    for problem in problems {
        eprintln!("error: {problem}");
    }
    ExitCode::from(EXIT_BAD_CONFIG)
}

/// The async runtime for commands that talk to the database or the network.
/// When the system refuses one (no threads or file descriptors left), the
/// command ends with one line naming the cause and exit code 1, not a panic.
fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(i32::from(EXIT_FAILURE));
        }
    }
}

/// Parses `name=value` command-line pairs (split at the first `=`).
fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {text:?}"))
}
