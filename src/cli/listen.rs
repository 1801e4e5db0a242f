//! `webhooks listen --forward-to URL`: a temporary endpoint for a
//! developer's machine, like the Stripe CLI's `listen`. It reads the
//! database of the configuration (the one `serve` writes), prints a signing
//! secret for the session (a new `whsec_` one, or `--secret`), then follows
//! the messages committed after it started and forwards each to the URL,
//! signed exactly as the dispatcher signs (`webhooks::Sender`), printing one
//! line per message: the time, the type, the id (`webhook-id`), the
//! forward's HTTP status (or why it failed) and its latency. Ctrl-C (or
//! SIGTERM) stops it.
//!
//! Decisions, and what they cost:
//!
//! - **It never writes to the database.** The outbox's deliveries, attempts
//!   and leases are the configured endpoints'; a developer's `listen` must
//!   not change them. So a forward that fails is printed and **not retried**
//!   (nothing would remember it), and `webhooks list` never shows `listen`.
//! - **It sees only the messages the service writes**, and the service
//!   writes a message only when at least one `[[webhooks]]` endpoint wants
//!   it (its `types` and `merchants`). So the configuration needs an
//!   endpoint: without one `listen` refuses to start and says so, and it
//!   notes each type no endpoint wants. On a developer's machine the
//!   endpoint may point anywhere (the README's quick start points it at a
//!   closed port): its deliveries are retried and end dead, which only the
//!   local outbox sees.
//! - **Following by creation order, with a look-back.** Message ids are
//!   UUIDv7s, ordered by the time each was made in its transaction
//!   (`store::reads::messages`), but transactions commit in their own order:
//!   a message can become visible after a later-made one was already read.
//!   So every poll (each [`POLL`]) reads the ids made in the last
//!   [`LOOK_BACK`] and forwards those it has not seen, in id order. A
//!   message whose transaction committed more than [`LOOK_BACK`] after it
//!   was made (or made on a host whose clock is that far behind this one's)
//!   is not forwarded. The messages already there when `listen` starts are
//!   marked seen, never forwarded.
//! - Forwards are sent one at a time, in creation order, each within
//!   [`TIMEOUT`]; `--types` keeps only the given types.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use clap::Args;

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, Settings};
use crate::server::shutdown_signal;
use crate::store::{Store, StoreError};
use crate::untrusted::escape;
use crate::webhooks::{Endpoint, MessageType, Outcome, Sender, SigningSecret};

/// How often the database is asked for new messages.
pub const POLL: Duration = Duration::from_millis(200);

/// How far back each poll looks for messages not yet seen: the longest a
/// message's transaction may take from making it to its commit.
pub const LOOK_BACK: Duration = Duration::from_secs(10);

/// How long one forward may take (connecting and reading the answer included).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Ids read per query.
const PAGE: i64 = 500;

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Where to send each message (http or https), e.g. http://127.0.0.1:3000/hook.
    #[arg(long, value_name = "URL")]
    pub forward_to: url::Url,
    /// Sign with this whsec_ secret instead of a new one for the session
    /// (so that the receiver's configuration need not change each time).
    #[arg(long, value_name = "WHSEC")]
    pub secret: Option<String>,
    /// Only these types, comma-separated (e.g. payment.succeeded,payment.refunded).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub types: Vec<String>,
}

/// Runs a session until stopped; bad arguments, or a configuration under
/// which the service writes no messages, give the exit code for bad
/// configuration.
pub async fn run(
    store: &Store,
    settings: &Settings,
    args: &ListenArgs,
) -> Result<ExitCode, StoreError> {
    let setup = match setup(settings, args) {
        Ok(setup) => setup,
        Err(problem) => {
            eprintln!("error: {problem}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    let sender = match Sender::new() {
        Ok(sender) => sender,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    listen(store, &sender, setup).await?;
    Ok(ExitCode::SUCCESS)
}

/// What a session forwards, and where.
struct Setup {
    endpoint: Endpoint,
    /// The secret's text, to print.
    secret: String,
    /// `None`: every type.
    types: Option<BTreeSet<MessageType>>,
}

/// The session's endpoint from the arguments; a problem with them, or a
/// configuration under which the service writes no messages, is an error.
fn setup(settings: &Settings, args: &ListenArgs) -> Result<Setup, String> {
    let configured = settings.webhook_endpoints().map_err(|e| e.to_string())?;
    if configured.is_empty() {
        return Err(
            "webhooks listen: no [[webhooks]] endpoint is configured, and the service \
             writes messages only for the endpoints that want them; add one (its url may \
             point anywhere on a developer's machine: README, \"Webhooks on your machine\")"
                .to_owned(),
        );
    }
    if !matches!(args.forward_to.scheme(), "http" | "https") {
        return Err(format!(
            "--forward-to: {} is not an http or https URL",
            escape(args.forward_to.as_str())
        ));
    }
    let secret = match &args.secret {
        Some(text) => text.trim().to_owned(),
        None => SigningSecret::generate(),
    };
    let key = SigningSecret::parse(&secret).map_err(|e| format!("--secret: {e}"))?;
    let types = if args.types.is_empty() {
        None
    } else {
        let parsed = args
            .types
            .iter()
            .map(|t| {
                MessageType::parse(t.trim()).ok_or_else(|| {
                    let known: Vec<&str> = MessageType::ALL.iter().map(|t| t.as_str()).collect();
                    format!(
                        "--types: no type {} (the types: {})",
                        escape(t),
                        known.join(", ")
                    )
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        Some(parsed)
    };
    // Said once, so that a type that never comes is not a mystery.
    for t in MessageType::ALL {
        let asked = types.as_ref().is_none_or(|types| types.contains(&t));
        let written = configured
            .iter()
            .any(|e| e.types.as_ref().is_none_or(|types| types.contains(&t)));
        if asked && !written {
            eprintln!(
                "note: no [[webhooks]] endpoint wants {}, so the service writes no such messages",
                t.as_str()
            );
        }
    }
    Ok(Setup {
        endpoint: Endpoint {
            name: "listen".to_owned(),
            url: args.forward_to.clone(),
            secrets: vec![key],
            types: None,
            merchants: None,
            timeout: TIMEOUT,
        },
        secret,
        types,
    })
}

async fn listen(store: &Store, sender: &Sender, setup: Setup) -> Result<(), StoreError> {
    println!("webhook signing secret for this session: {}", setup.secret);
    // What is there already is not forwarded.
    let mut follower = Follower::default();
    for id in follower.unseen(store, Utc::now()).await? {
        follower.seen.insert(id);
    }
    println!(
        "forwarding new messages to {} (failed forwards are not retried; Ctrl-C to stop)",
        escape(&setup.endpoint.display_url())
    );
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = round(store, sender, &setup, &mut follower) => {}
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(POLL) => {}
        }
    }
    Ok(())
}

/// Forwards the messages not seen yet. A database error is printed and the
/// round ends: the messages not read are read on the next.
async fn round(store: &Store, sender: &Sender, setup: &Setup, follower: &mut Follower) {
    let ids = match follower.unseen(store, Utc::now()).await {
        Ok(ids) => ids,
        Err(e) => {
            eprintln!("error: reading the messages: {e}");
            return;
        }
    };
    for id in ids {
        let message = match store.message_forwarded(&id).await {
            Ok(message) => message,
            Err(e) => {
                eprintln!("error: reading message {}: {e}", escape(&id));
                return;
            }
        };
        follower.seen.insert(id);
        let Some(message) = message else { continue };
        let wanted = setup.types.as_ref().is_none_or(|types| {
            MessageType::parse(&message.message_type).is_some_and(|t| types.contains(&t))
        });
        if !wanted {
            continue;
        }
        let attempt = sender
            .send(
                &setup.endpoint,
                &message.id,
                Utc::now().timestamp(),
                &message.body,
            )
            .await;
        let result = match &attempt.outcome {
            Outcome::Delivered => attempt
                .status
                .map_or_else(|| "delivered".to_owned(), |s| format!("HTTP {s}")),
            Outcome::Gone => "HTTP 410, not retried".to_owned(),
            Outcome::Failed { reason } => format!("{}, not retried", escape(reason)),
        };
        println!(
            "{}  {}  {}  -> {}  {} ms",
            Local::now().format("%Y-%m-%d %H:%M:%S"),
            escape(&message.message_type),
            escape(&message.id),
            result,
            attempt.latency.as_millis(),
        );
    }
}

/// The ids already seen (forwarded, or there when the session began), from
/// the start of the look-back on.
#[derive(Debug, Default)]
struct Follower {
    seen: BTreeSet<String>,
}

impl Follower {
    /// The ids made since [`LOOK_BACK`] before `now` that are not seen yet,
    /// in creation order. Forgets the seen ids older than that: they are
    /// never read again.
    async fn unseen(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let from = id_floor(now - LOOK_BACK);
        self.seen = self.seen.split_off(&from);
        let mut after = from;
        let mut unseen = Vec::new();
        loop {
            let page = store.message_ids_after(&after, PAGE).await?;
            let more = page.len() as i64 == PAGE;
            if let Some(last) = page.last() {
                after.clone_from(last);
            }
            unseen.extend(page.into_iter().filter(|id| !self.seen.contains(id)));
            if !more {
                return Ok(unseen);
            }
        }
    }
}

/// A text that sorts before every message id made at `at` or later, and
/// after every one made before: `msg_` and the twelve hex digits of a
/// UUIDv7's milliseconds (`webhooks::new_message_id`).
fn id_floor(at: DateTime<Utc>) -> String {
    format!("msg_{:012x}", at.timestamp_millis().max(0))
}
