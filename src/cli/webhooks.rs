//! `webhooks list|show|replay|listen`: the webhook outbox for operators.
//! `list` and `show` only read (through `database.read_url` when set);
//! `replay` sends deliveries again with the same `webhook-id` and body,
//! recording who asked; `listen` (`cli::listen`) forwards new messages to a
//! developer's URL and writes nothing. Stored text (answers' excerpts, errors) is escaped before it
//! reaches the terminal: it is an endpoint's.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Subcommand};

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, Settings, runtime};
use crate::store::outbox::{DeliveryFilter, DeliveryListed, MessageShown};
use crate::store::{Store, StoreError};
use crate::untrusted::escape;

#[derive(Debug, Args)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    pub command: WebhooksCommand,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List deliveries, newest first (at most 500).
    List(ListArgs),
    /// One message: its body, its deliveries and every attempt.
    Show(ShowArgs),
    /// Send deliveries again (same webhook-id and body), from now.
    Replay(ReplayArgs),
    /// Forward new messages to a URL on your machine, signed with a secret
    /// for the session, printing each (a temporary endpoint for development).
    ///
    /// Prints a new whsec_ signing secret (or uses --secret), then follows the
    /// messages committed after it started (polling every 200 ms) and sends
    /// each to --forward-to signed exactly as the dispatcher signs
    /// (webhook-id, webhook-timestamp, webhook-signature), printing the time,
    /// type, id, HTTP status and latency. It never writes to the database:
    /// a failed forward is printed, not retried, and the outbox's deliveries
    /// are untouched. The service writes messages only for the [[webhooks]]
    /// endpoints that want them, so the configuration needs at least one (on
    /// a developer's machine its url may point anywhere). Ctrl-C stops it.
    Listen(super::listen::ListenArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this endpoint's.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Only these: pending, delivered or dead.
    #[arg(long, value_parser = ["pending", "delivered", "dead"])]
    pub state: Option<String>,
    /// Only those created at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The message's id (`msg_…`, its webhook-id).
    pub id: String,
    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "endpoint"])))]
pub struct ReplayArgs {
    /// One message (all its deliveries, or `--endpoint`'s).
    pub id: Option<String>,
    /// An endpoint's deliveries (with `--since`).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Those created at or after this time (RFC 3339); required with
    /// `--endpoint` alone.
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Only these: pending, delivered or dead.
    #[arg(long, value_parser = ["pending", "delivered", "dead"])]
    pub state: Option<String>,
    /// Who asks (recorded); default: the user running the command.
    #[arg(long)]
    pub by: Option<String>,
}

pub fn run(settings: &Settings, args: &WebhooksArgs) -> ExitCode {
    let result = runtime().block_on(async {
        let store = Store::connect(&settings.database)?;
        let result = match &args.command {
            WebhooksCommand::List(a) => list(&store, a).await,
            WebhooksCommand::Show(a) => show(&store, a).await,
            WebhooksCommand::Replay(a) => replay(&store, a).await,
            WebhooksCommand::Listen(a) => super::listen::run(&store, settings, a).await,
        };
        store.close().await;
        result
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn line(d: &DeliveryListed) -> String {
    let last = match (d.last_status, &d.last_error) {
        (Some(status), _) => format!("HTTP {status}"),
        (None, Some(error)) => escape(error).into_owned(),
        (None, None) => "-".to_owned(),
    };
    // A settled delivery's next_attempt_at is when it was settled.
    let when = if d.state == "pending" {
        "next"
    } else {
        "settled"
    };
    format!(
        "{}  {}  {}  {}  merchant {}  {}  attempts {}  last {}  {when} {}{}",
        d.created_at.format("%Y-%m-%d %H:%M:%S"),
        escape(&d.message_id),
        escape(&d.endpoint),
        d.message_type,
        escape(&d.merchant_id),
        d.state,
        d.attempts,
        last,
        d.next_attempt_at.format("%Y-%m-%d %H:%M:%S"),
        d.replayed_by
            .as_deref()
            .map(|who| format!("  replayed by {}", escape(who)))
            .unwrap_or_default(),
    )
}

async fn list(store: &Store, args: &ListArgs) -> Result<ExitCode, StoreError> {
    let found = store
        .webhook_deliveries(&DeliveryFilter {
            endpoint: args.endpoint.as_deref(),
            state: args.state.as_deref(),
            since: args.since,
            ..DeliveryFilter::default()
        })
        .await?;
    for delivery in &found {
        if args.json {
            match serde_json::to_string(delivery) {
                Ok(json) => println!("{json}"),
                Err(e) => return Err(StoreError::Corrupt(e.to_string())),
            }
        } else {
            println!("{}", line(delivery));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(store: &Store, args: &ShowArgs) -> Result<ExitCode, StoreError> {
    let Some(message) = store.webhook_message(&args.id).await? else {
        eprintln!("error: no message {}", escape(&args.id));
        return Ok(ExitCode::from(EXIT_FAILURE));
    };
    if args.json {
        let json = serde_json::to_string_pretty(&message)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        println!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    print_message(&message);
    Ok(ExitCode::SUCCESS)
}

fn print_message(message: &MessageShown) {
    println!("message {}", escape(&message.id));
    println!("body {}", escape(&message.body));
    for delivery in &message.deliveries {
        println!("delivery {}", line(delivery));
    }
    for a in &message.attempts {
        println!(
            "attempt {}  {}  {}  {}  {} ms{}{}",
            a.attempted_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            escape(&a.endpoint),
            a.outcome,
            a.status
                .map_or_else(|| "-".to_owned(), |s| format!("HTTP {s}")),
            a.latency_ms,
            a.error
                .as_deref()
                .map(|e| format!("  error: {}", escape(e)))
                .unwrap_or_default(),
            a.excerpt
                .as_deref()
                .map(|e| format!("  answer: {}", escape(e)))
                .unwrap_or_default(),
        );
    }
}

async fn replay(store: &Store, args: &ReplayArgs) -> Result<ExitCode, StoreError> {
    if args.id.is_none() && args.since.is_none() {
        eprintln!("error: --endpoint needs --since (or name one message)");
        return Ok(ExitCode::from(EXIT_BAD_CONFIG));
    }
    let who = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "an operator".to_owned());
    let count = store
        .replay_webhooks(
            &DeliveryFilter {
                message_id: args.id.as_deref(),
                endpoint: args.endpoint.as_deref(),
                state: args.state.as_deref(),
                since: args.since,
            },
            &who,
        )
        .await?;
    println!("{count} deliveries queued again");
    Ok(ExitCode::SUCCESS)
}
