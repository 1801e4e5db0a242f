//! `add-order`: insert an order the way the merchant's internal services do.
//! Useful for a first local run and for manual orders.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, Settings, runtime};
use crate::protocol::Amount;
use crate::store::{NewOrder, Store};

#[derive(Debug, Args)]
pub struct AddOrderArgs {
    /// The merchant; may be left out when exactly one is configured.
    #[arg(long)]
    pub merchant_id: Option<String>,
    /// The merchant's order id (what FreedomPay sends as pg_order_id).
    #[arg(long)]
    pub order_id: String,
    /// Decimal amount, e.g. 7000 or 7000.50.
    #[arg(long)]
    pub amount: Amount,
    /// ISO 4217 currency code of the amount.
    #[arg(long, default_value = "KZT")]
    pub currency: String,
    /// RFC 3339 time after which the order may no longer be paid.
    #[arg(long)]
    pub expires_at: Option<DateTime<Utc>>,
}

pub fn run(settings: &Settings, args: &AddOrderArgs) -> ExitCode {
    let merchant_id = match settings.merchant(args.merchant_id.as_deref()) {
        Ok(merchant) => merchant.id.clone(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let order = NewOrder {
        order_id: &args.order_id,
        amount: args.amount,
        currency: &args.currency,
        expires_at: args.expires_at,
    };
    let result = runtime().block_on(async {
        let store = Store::connect(&settings.database)?;
        store.migrate().await?;
        let inserted = store.insert_order(&merchant_id, &order).await;
        store.close().await;
        inserted
    });
    match result {
        Ok(()) => {
            println!(
                "order {} of merchant {merchant_id}: {} {} (pending)",
                args.order_id, args.amount, args.currency
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
