//! `history`: everything the database holds about one order (or payment),
//! printed as one timeline: the order, its payments, every delivery with the
//! answer sent and, under it, the webhook messages it made with each
//! endpoint's delivery state, the outbound tasks, and a closing statement of
//! what is waiting. `--json` prints the same as one JSON document (the
//! messages in `webhooks`, each naming its `event_id`). Nothing is written.
//!
//! Every text line passes through [`escape`]: stored values come from
//! FreedomPay or from `orders`, and a control character in one of them must
//! not move the cursor, erase or hide a line, or write the clipboard of the
//! operator's terminal.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args};

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, Settings, runtime};
use crate::operator;
use crate::store::{History, HistoryKey, Store};
use crate::untrusted::escape;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["order_id", "payment_id"])))]
pub struct HistoryArgs {
    /// The merchant's order id.
    #[arg(long)]
    pub order_id: Option<String>,
    /// FreedomPay's payment id (the history of its order).
    #[arg(long)]
    pub payment_id: Option<String>,
    /// The merchant; may be left out when exactly one is configured.
    #[arg(long)]
    pub merchant_id: Option<String>,
    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(settings: &Settings, args: &HistoryArgs) -> ExitCode {
    let merchant = match settings.merchant(args.merchant_id.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let (key, subject) = match (&args.order_id, &args.payment_id) {
        (Some(id), _) => (HistoryKey::Order(id), format!("order {id}")),
        (None, Some(id)) => (HistoryKey::Payment(id), format!("payment {id}")),
        // clap requires one of the two.
        (None, None) => return ExitCode::from(EXIT_BAD_CONFIG),
    };
    let found = runtime().block_on(async {
        let store = Store::connect(&settings.database)?;
        let found = store.history(&merchant.id, key).await;
        store.close().await;
        found
    });
    match found {
        Ok(Some(history)) if args.json => match serde_json::to_string_pretty(&Json {
            summary: operator::summary(&history),
            history: &history,
        }) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        },
        Ok(Some(history)) => {
            print!("{}", render_text(&history));
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!(
                "error: nothing is stored about {subject} of merchant {}",
                merchant.id
            );
            ExitCode::from(EXIT_FAILURE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The `--json` document: the stored history and the closing summary.
#[derive(serde::Serialize)]
struct Json<'a> {
    #[serde(flatten)]
    history: &'a History,
    summary: Vec<String>,
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn or_dash(value: Option<&str>) -> &str {
    value.filter(|v| !v.is_empty()).unwrap_or("-")
}

/// The timeline as text (times in UTC).
pub fn render_text(h: &History) -> String {
    let mut out = String::new();
    render_into(&mut out, h);
    out
}

/// Writes one line of the timeline, escaped; `put!(out)` writes an empty one.
macro_rules! put {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&escape(&format!($($arg)*)));
        $out.push('\n');
    }};
}

fn render_into(out: &mut String, h: &History) {
    let subject = h.order_id.as_deref().unwrap_or("(unknown)");
    put!(
        out,
        "order {subject}, merchant {} (times in UTC)",
        h.merchant_id
    );
    match &h.order {
        Some(o) => put!(
            out,
            "  {} {}{}, status {}, expires {}, created {}, updated {}",
            o.amount,
            o.currency,
            o.damage_note(),
            o.status,
            o.expires_at
                .as_ref()
                .map_or_else(|| "-".to_owned(), |at| at.shown(|at| time(*at))),
            time(o.created_at),
            time(o.updated_at)
        ),
        None => put!(out, "  not in the orders table"),
    }
    put!(out);
    put!(out, "payments");
    if h.payments.is_empty() {
        put!(out, "  none");
    }
    for p in &h.payments {
        put!(
            out,
            "  {}  {}  {} {}{}  card {}  captured {}  needs_refund {}  refunded {}{}",
            p.payment_id,
            p.status,
            p.amount,
            p.currency,
            p.damage_note(),
            or_dash(p.card_mask.as_deref()),
            p.captured.map_or("-", |c| if c { "yes" } else { "no" }),
            if p.needs_refund { "yes" } else { "no" },
            p.refunded_amount,
            if p.testing_mode { "  (test)" } else { "" }
        );
        if p.failure_code.is_some() || p.failure_description.is_some() {
            put!(
                out,
                "      failure {}: {}",
                or_dash(p.failure_code.as_deref()),
                or_dash(p.failure_description.as_deref())
            );
        }
    }
    if let Some(p) = &h.payout {
        put!(out);
        put!(out, "payout");
        put!(
            out,
            "  {}  {}  amount {}{}  card {}  payment {}",
            p.order_id,
            p.status,
            or_dash(p.amount.as_deref()),
            p.damage_note(),
            or_dash(p.card_mask.as_deref()),
            or_dash(p.payment_id.as_deref())
        );
    }
    put!(out);
    put!(out, "events");
    if h.events.is_empty() {
        put!(out, "  none");
    }
    for e in &h.events {
        let answer = match (&e.answer_status, &e.answer_description) {
            (Some(status), Some(d)) if !d.is_empty() => format!("{status} \"{d}\""),
            (Some(status), _) => status.clone(),
            (None, _) => "no answer (nothing decided)".to_owned(),
        };
        put!(
            out,
            "  {}  #{} {}  payment {}  -> {}{}{}  signed {}/{}",
            time(e.received_at),
            e.id,
            e.kind,
            or_dash(e.payment_id.as_deref()),
            answer,
            if e.duplicate { "  DUPLICATE" } else { "" },
            if e.conflict { "  CONFLICT" } else { "" },
            or_dash(e.signature_variant.as_deref()),
            or_dash(e.key_label.as_deref())
        );
        let fields: Vec<String> = operator::key_fields(e)
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if !fields.is_empty() {
            put!(out, "      {}", fields.join(" "));
        }
        if let Some(flag) = &e.flag {
            put!(out, "      flagged: {flag}");
        }
        for m in h.webhooks_of(e.id) {
            put!(out, "      webhook {}  {}", m.id, m.message_type);
            if m.deliveries.is_empty() {
                put!(out, "        no endpoint wanted it");
            }
            for d in &m.deliveries {
                let when = match d.state.as_str() {
                    "delivered" => format!(
                        "delivered {}",
                        d.delivered_at.map_or_else(|| "-".to_owned(), time)
                    ),
                    "pending" => format!("next {}", time(d.next_attempt_at)),
                    _ => "-".to_owned(),
                };
                put!(
                    out,
                    "        -> {}  {}  attempts {}  last {}  {when}",
                    d.endpoint,
                    d.state,
                    d.attempts,
                    operator::last_answer(d)
                );
            }
        }
    }
    put!(out);
    put!(out, "outbound tasks");
    if h.tasks.is_empty() {
        put!(out, "  none");
    }
    for t in &h.tasks {
        put!(
            out,
            "  #{} {} {}{}  {}  stage {}  amount {}{}  attempts {}  next {}  last error {}  outcome {}",
            t.id,
            t.task,
            t.subject_id,
            if t.task_key.is_empty() {
                String::new()
            } else {
                format!(" [{}]", t.task_key)
            },
            t.state,
            or_dash(t.stage.as_deref()),
            or_dash(t.amount.as_deref()),
            t.damage_note(),
            t.attempts,
            if t.state == "open" {
                time(t.next_attempt_at)
            } else {
                "-".to_owned()
            },
            or_dash(t.last_error.as_deref()),
            or_dash(t.outcome.as_deref())
        );
    }
    put!(out);
    put!(out, "state");
    for line in operator::summary(h) {
        put!(out, "  {line}");
    }
}
