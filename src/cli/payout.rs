//! `payout`: pay money out to a card (`g2g/p2p2nonreg`) or to a registered
//! card token (`g2g/reg2reg`). Money leaves the merchant's balance, so the
//! command asks for confirmation unless `--yes`. The payout is recorded as
//! `process` before the request; its notify, the answer, or the reconciler's
//! status queries settle it.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, Settings, runtime};
use crate::api::{PayoutDestination, PayoutRequest};
use crate::domain::pan::mask_pan;
use crate::protocol::Amount;
use crate::reconcile::Reconciler;
use crate::store::Store;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("destination").required(true).args(["card", "card_token"])))]
pub struct PayoutArgs {
    /// The merchant; may be left out when exactly one is configured.
    #[arg(long)]
    pub merchant_id: Option<String>,
    /// The recipient's card number.
    #[arg(long)]
    pub card: Option<String>,
    /// A card registered with FreedomPay (needs --user-id).
    #[arg(long, requires = "user_id")]
    pub card_token: Option<String>,
    /// The user the card token belongs to.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Decimal amount to pay out, e.g. 5000 or 5000.50.
    #[arg(long)]
    pub amount: Amount,
    /// The payout's order id in the merchant's system (unique).
    #[arg(long)]
    pub order_id: String,
    /// ISO 4217 currency code; left out: FreedomPay's default for the merchant.
    #[arg(long)]
    pub currency: Option<String>,
    /// The payout's description, as the recipient's bank may show it.
    #[arg(long, default_value = "Payout")]
    pub description: String,
    /// Where FreedomPay sends the payout notify; default api.payout_post_link.
    #[arg(long)]
    pub post_link: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(settings: &Settings, args: &PayoutArgs) -> ExitCode {
    let merchant = match settings.merchant(args.merchant_id.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let Some(post_link) = args
        .post_link
        .as_deref()
        .or(settings.api.payout_post_link.as_deref())
    else {
        eprintln!("error: --post-link: not given and api.payout_post_link is not set");
        return ExitCode::from(EXIT_BAD_CONFIG);
    };
    let (destination, shown) = match (&args.card, &args.card_token) {
        (Some(card), _) => (
            PayoutDestination::Card(card),
            format!("card {}", mask_pan(card)),
        ),
        (None, Some(token)) => (
            PayoutDestination::Token(token),
            format!("card token {token}"),
        ),
        (None, None) => unreachable!("clap requires one destination"),
    };
    let currency = args.currency.as_deref().unwrap_or("KZT");
    if !args.yes
        && !confirmed(&format!(
            "Pay out {} {currency} to {shown} (order {}) for merchant {}?",
            args.amount, args.order_id, merchant.id
        ))
    {
        eprintln!("not confirmed; nothing sent");
        return ExitCode::from(EXIT_FAILURE);
    }
    let request = PayoutRequest {
        order_id: &args.order_id,
        amount: args.amount,
        currency: args.currency.as_deref(),
        description: &args.description,
        post_link,
        user_id: args.user_id.as_deref(),
        destination,
    };
    let result: Result<String, Box<dyn std::error::Error>> = runtime().block_on(async {
        let store = Store::connect(&settings.database)?;
        store.migrate().await?;
        if !store
            .record_payout_request(&merchant.id, &args.order_id, args.amount)
            .await?
        {
            return Err(format!("payout order id {} is already used", args.order_id).into());
        }
        let reconciler = Reconciler::new(settings, store.clone())?;
        let api = reconciler
            .client(&merchant.id)
            .ok_or("the merchant has no API client")?;
        let answer = api.payout(&request).await?;
        let applied = reconciler
            .apply_payout_answer(&merchant.id, &args.order_id, &answer)
            .await?;
        store.close().await;
        Ok(match applied {
            Some(_) => format!(
                "payout {}: {}",
                args.order_id,
                answer.get("pg_status").unwrap_or("")
            ),
            None => format!(
                "payout {} is in process; its notify or the reconciler settles it",
                args.order_id
            ),
        })
    });
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Asks on the terminal; only `yes` confirms.
fn confirmed(question: &str) -> bool {
    print!("{question} Type yes to confirm: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}
