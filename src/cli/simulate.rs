//! `simulate`: play FreedomPay against any URL (like `stripe trigger`), and
//! report what was sent, what came back, and whether the answer's signature
//! verifies. `simulate scenario` runs check → result → duplicate → refund.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::json;

use super::secret::key_from_args;
use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, runtime};
use crate::config::Settings;
use crate::domain::CallbackKind;
use crate::protocol::Amount;
use crate::simulate::fields::PaymentFacts;
use crate::simulate::scenario::{self, Step, StepSummary, Target};
use crate::simulate::{Encoding, Exchange, Fields, SignatureCheck, Simulator};
use crate::store::{NewOrder, Store};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(subcommand)]
    pub what: What,
    /// The service's base URL, or for a single callback the endpoint's full URL.
    /// Default: from the config's server.listen, else http://127.0.0.1:8080.
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Sent as pg_merchant_id; also picks the merchant (and key) from --config.
    #[arg(long, global = true)]
    pub merchant_id: Option<String>,
    /// File holding the merchant's secret key (one trailing newline ignored);
    /// takes precedence over --secret, FPR_SECRET and the configuration.
    #[arg(long, global = true, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// The merchant's secret key (default: from --secret-file, else from
    /// --config). On the command line it shows in `ps` and the shell history:
    /// set FPR_SECRET or use --secret-file instead.
    #[arg(
        long,
        global = true,
        env = "FPR_SECRET",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub secret: Option<String>,
    /// Sent as pg_order_id. Default: a fresh SIM-<digits> id.
    #[arg(long, global = true)]
    pub order_id: Option<String>,
    /// Sent as pg_amount (and the other amount fields).
    #[arg(long, global = true, default_value = "100")]
    pub amount: Amount,
    /// Sent as pg_currency.
    #[arg(long, global = true, default_value = "KZT")]
    pub currency: String,
    /// Sent as pg_payment_id. Default: a fresh random id.
    #[arg(long, global = true)]
    pub payment_id: Option<String>,
    /// How the callback is sent: form, multipart, get, xml or pg-xml.
    #[arg(long, global = true, value_enum, default_value_t = Encoding::Form)]
    pub encoding: Encoding,
    /// Insert the order into the configured database first (local testing).
    #[arg(long, global = true)]
    pub create_order: bool,
    /// Machine-readable output (one JSON document).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum What {
    /// A check request.
    Check,
    /// A result notification (successful unless --failure).
    Result {
        /// A failed payment (pg_result=0 with a failure code) instead.
        #[arg(long)]
        failure: bool,
        /// pg_can_reject: 1 (the first delivery) or 0 (retries).
        #[arg(long, default_value = "1")]
        can_reject: u8,
    },
    /// A refund notification.
    Refund,
    /// A capture (clearing) notification.
    Capture,
    /// A payout notification (to pg_post_link).
    Payout {
        /// pg_status of the payout: ok or error.
        #[arg(long, default_value = "ok")]
        status: String,
    },
    /// The payer's browser coming back to the success (or --failure) URL.
    Redirect {
        /// Come back to the failure URL instead of the success URL.
        #[arg(long)]
        failure: bool,
    },
    /// check → result → duplicate result → refund for one order.
    Scenario,
}

impl What {
    fn kind(&self) -> Option<CallbackKind> {
        Some(match self {
            What::Check => CallbackKind::Check,
            What::Result { .. } => CallbackKind::Result,
            What::Refund => CallbackKind::Refund,
            What::Capture => CallbackKind::Capture,
            What::Payout { .. } => CallbackKind::Payout,
            What::Redirect { failure: false } => CallbackKind::Success,
            What::Redirect { failure: true } => CallbackKind::Failure,
            What::Scenario => return None,
        })
    }
}

pub fn run(settings: Option<&Settings>, args: &SimulateArgs) -> ExitCode {
    let order_id = args
        .order_id
        .clone()
        .unwrap_or_else(|| format!("SIM-{}", random_digits(8)));
    let payment_id = args.payment_id.clone().unwrap_or_else(|| random_digits(10));
    let amount = args.amount.to_string();
    let facts = PaymentFacts {
        merchant_id: args.merchant_id.as_deref(),
        order_id: &order_id,
        payment_id: &payment_id,
        amount: &amount,
        currency: &args.currency,
    };
    let payout = matches!(args.what, What::Payout { .. });
    let key = match secret(settings, args, payout) {
        Ok(k) => k,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    runtime().block_on(async {
        if args.create_order
            && let Err(message) = create_order(settings, args, &order_id).await
        {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_FAILURE);
        }
        let simulator = match Simulator::new() {
            Ok(simulator) => simulator,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        match args.what.kind() {
            Some(kind) => {
                let url = endpoint_url(settings, args, kind);
                let fields = fields_for(&args.what, &facts);
                match simulator.send(&url, args.encoding, &key, &fields).await {
                    Ok(exchange) => report_one(kind.as_str(), &exchange, args.json),
                    Err(e) => network_error(&url, &e),
                }
            }
            None => {
                let target = Target {
                    check_url: endpoint_url(settings, args, CallbackKind::Check),
                    result_url: endpoint_url(settings, args, CallbackKind::Result),
                    refund_url: endpoint_url(settings, args, CallbackKind::Refund),
                    key,
                };
                match scenario::run(&simulator, &target, &facts, args.encoding).await {
                    Ok(steps) => report_scenario(&order_id, &steps, args.json),
                    Err(e) => network_error(&target.check_url, &e),
                }
            }
        }
    })
}

fn fields_for(what: &What, facts: &PaymentFacts<'_>) -> Fields {
    match what {
        What::Check | What::Scenario => facts.check(),
        What::Result {
            failure: false,
            can_reject,
        } => facts
            .result_success()
            .set("pg_can_reject", &can_reject.min(&1).to_string()),
        What::Result {
            failure: true,
            can_reject,
        } => facts
            .result_failure()
            .set("pg_can_reject", &can_reject.min(&1).to_string()),
        What::Refund => facts.refund(),
        What::Capture => facts.capture(),
        What::Payout { status } => facts.payout(status),
        What::Redirect { failure } => facts.redirect(*failure),
    }
}

/// The key: --secret-file, else --secret or FPR_SECRET, else the merchant's
/// key from the config.
fn secret(
    settings: Option<&Settings>,
    args: &SimulateArgs,
    payout: bool,
) -> Result<String, String> {
    if let Some(key) = key_from_args(args.secret_file.as_deref(), args.secret.as_deref())? {
        return Ok(key);
    }
    let settings =
        settings.ok_or("no key: give --secret-file PATH, set FPR_SECRET, or --config")?;
    let merchant = settings
        .merchant(args.merchant_id.as_deref())
        .map_err(|e| e.to_string())?;
    if payout && let Some(key) = &merchant.payout_secret_key {
        return Ok(key.expose_secret().to_owned());
    }
    merchant
        .payment_key()
        .map(|k| k.expose_secret().to_owned())
        .map_err(|e| e.to_string())
}

/// A full endpoint URL: --url as given when it names a path (single callbacks),
/// else the base URL plus the endpoint's configured path.
fn endpoint_url(settings: Option<&Settings>, args: &SimulateArgs, kind: CallbackKind) -> String {
    let base = match &args.url {
        Some(url) => url.clone(),
        None => settings.map_or_else(
            || "http://127.0.0.1:8080".to_owned(),
            |s| format!("http://{}", s.server.listen.replace("0.0.0.0", "127.0.0.1")),
        ),
    };
    let has_path = url::Url::parse(&base).is_ok_and(|u| u.path() != "/");
    if has_path && args.what.kind().is_some() {
        return base;
    }
    let path = settings.map_or_else(
        || format!("/freedompay/{}", kind.as_str()),
        |s| s.endpoints.path(kind).to_owned(),
    );
    format!("{}{path}", base.trim_end_matches('/'))
}

async fn create_order(
    settings: Option<&Settings>,
    args: &SimulateArgs,
    order_id: &str,
) -> Result<(), String> {
    let settings = settings.ok_or("--create-order needs --config (the database to write to)")?;
    let merchant_id = settings
        .merchant(args.merchant_id.as_deref())
        .map_err(|e| e.to_string())?
        .id
        .clone();
    let store = Store::connect(&settings.database).map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let order = NewOrder {
        order_id,
        amount: args.amount,
        currency: &args.currency,
        expires_at: None,
    };
    let inserted = store.insert_order(&merchant_id, &order).await;
    store.close().await;
    inserted.map_err(|e| format!("--create-order: {e}"))
}

fn network_error(url: &str, error: &reqwest::Error) -> ExitCode {
    eprintln!("error: {url}: {error}");
    ExitCode::from(EXIT_FAILURE)
}

fn signature_word(check: SignatureCheck) -> &'static str {
    match check {
        SignatureCheck::Ok => "signature OK",
        SignatureCheck::Bad => "signature BAD",
        SignatureCheck::Absent => "unsigned",
    }
}

fn exchange_json(name: &str, exchange: &Exchange) -> serde_json::Value {
    json!({
        "callback": name,
        "url": exchange.url,
        "encoding": exchange.encoding,
        "sent": exchange.sent.to_json(),
        "http_status": exchange.http_status,
        "pg_status": exchange.pg_status().map(|s| s.as_str()),
        "description": exchange.answer.as_ref().and_then(|a| a.description.clone()),
        "signature": exchange.signature,
        "location": exchange.headers.get("location").and_then(|v| v.to_str().ok()),
    })
}

fn print_exchange(name: &str, exchange: &Exchange) {
    let method = if exchange.encoding == Encoding::Get {
        "GET"
    } else {
        "POST"
    };
    println!(
        "{name:<17} {method} {} ({})",
        exchange.url, exchange.encoding
    );
    println!("  sent            {}", summarize(&exchange.sent));
    let answer = match (exchange.pg_status(), exchange.headers.get("location")) {
        (Some(status), _) => format!(
            "HTTP {}, pg_status {status}: {:?}, {}",
            exchange.http_status,
            exchange.description(),
            signature_word(exchange.signature)
        ),
        (None, Some(location)) => format!(
            "HTTP {}, redirect to {}",
            exchange.http_status,
            location.to_str().unwrap_or("?")
        ),
        (None, None) => format!(
            "HTTP {}, {} bytes of {}",
            exchange.http_status,
            exchange.body.len(),
            exchange
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("unknown type")
        ),
    };
    println!("  answer          {answer}");
}

/// The fields that say what a callback is about; the rest are counted
/// (`--json` shows every field).
fn summarize(sent: &crate::protocol::Message) -> String {
    const SHOWN: [&str; 8] = [
        "pg_order_id",
        "pg_payment_id",
        "pg_amount",
        "pg_currency",
        "pg_result",
        "pg_refund_amount",
        "pg_clearing_amount",
        "pg_status",
    ];
    let pairs = sent.to_pairs();
    let mut shown: Vec<String> = pairs
        .iter()
        .filter(|(n, _)| SHOWN.contains(&n.as_str()))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let rest = pairs.len() - shown.len();
    if rest > 0 {
        shown.push(format!("(+{rest} more, with pg_salt and pg_sig)"));
    }
    shown.join(" ")
}

fn report_one(name: &str, exchange: &Exchange, as_json: bool) -> ExitCode {
    if as_json {
        println!("{}", exchange_json(name, exchange));
    } else {
        print_exchange(name, exchange);
    }
    let redirect = (200..400).contains(&exchange.http_status) && exchange.answer.is_none();
    if redirect || (exchange.http_status == 200 && exchange.signature == SignatureCheck::Ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

fn report_scenario(order_id: &str, steps: &[Step], as_json: bool) -> ExitCode {
    let passed = steps.iter().filter(|s| s.passed).count();
    let all = passed == steps.len();
    if as_json {
        let list: Vec<_> = steps
            .iter()
            .map(|s| {
                let mut value = exchange_json(s.name, &s.exchange);
                let summary = StepSummary {
                    step: s.name,
                    expected: s.expected.as_str(),
                    passed: s.passed,
                    problem: s.problem.as_deref(),
                };
                value["result"] = json!(summary);
                value
            })
            .collect();
        println!(
            "{}",
            json!({ "order_id": order_id, "passed": all, "steps": list })
        );
    } else {
        println!("scenario for order {order_id}");
        for step in steps {
            print_exchange(step.name, &step.exchange);
            match &step.problem {
                None => println!("  expected        {}: as expected", step.expected),
                Some(problem) => println!(
                    "  expected        {}: NOT AS EXPECTED: {problem}",
                    step.expected
                ),
            }
        }
        println!(
            "scenario {}: {passed}/{} steps as expected",
            if all { "passed" } else { "FAILED" },
            steps.len()
        );
    }
    if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

fn random_digits(n: usize) -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..n)
        .map(|i| char::from(b'0' + rng.random_range(u8::from(i == 0)..10)))
        .collect()
}
