//! `status` and `balance`: ask FreedomPay (signed, verified) and print the
//! answer's fields. Nothing is written.

use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, Settings, runtime};
use crate::api::client::ClientSetupError;
use crate::api::{ApiClient, ApiError};
use crate::protocol::Message;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["order_id", "payment_id", "payout_order_id"])))]
pub struct StatusArgs {
    /// The merchant; may be left out when exactly one is configured.
    #[arg(long)]
    pub merchant_id: Option<String>,
    /// A payment by the merchant's order id (`get_status3.php`).
    #[arg(long)]
    pub order_id: Option<String>,
    /// A payment by FreedomPay's payment id (`get_status3.php`).
    #[arg(long)]
    pub payment_id: Option<String>,
    /// A payout by its order id (`g2g/payout_status2`).
    #[arg(long)]
    pub payout_order_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// The merchant; may be left out when exactly one is configured.
    #[arg(long)]
    pub merchant_id: Option<String>,
    /// The balance in this currency (ISO 4217 code).
    #[arg(long, default_value = "KZT")]
    pub currency: String,
}

/// The API client of the merchant named (or the only one).
pub(super) fn client(
    settings: &Settings,
    merchant_id: Option<&str>,
) -> Result<ApiClient, ExitCode> {
    settings
        .merchant(merchant_id)
        .map_err(ClientSetupError::from)
        .and_then(|merchant| ApiClient::from_settings(&settings.api, merchant))
        .map_err(|e| {
            eprintln!("error: {e}");
            match e {
                ClientSetupError::Config(_) => ExitCode::from(EXIT_BAD_CONFIG),
                ClientSetupError::Http(_) => ExitCode::from(EXIT_FAILURE),
            }
        })
}

pub fn status(settings: &Settings, args: &StatusArgs) -> ExitCode {
    let api = match client(settings, args.merchant_id.as_deref()) {
        Ok(api) => api,
        Err(code) => return code,
    };
    let answer = runtime().block_on(async {
        if let Some(order_id) = &args.payout_order_id {
            api.payout_status(order_id).await
        } else {
            api.payment_status(args.payment_id.as_deref(), args.order_id.as_deref())
                .await
                .map(|report| report.response)
        }
    });
    print_answer(answer)
}

pub fn balance(settings: &Settings, args: &BalanceArgs) -> ExitCode {
    let api = match client(settings, args.merchant_id.as_deref()) {
        Ok(api) => api,
        Err(code) => return code,
    };
    print_answer(runtime().block_on(api.balance(&args.currency)))
}

/// Prints a verified answer's fields, one `name: value` a line (salt and
/// signature left out), or the error.
pub(super) fn print_answer(answer: Result<Message, ApiError>) -> ExitCode {
    match answer {
        Ok(message) => {
            for (name, value) in message.to_pairs() {
                if name != "pg_salt" && name != "pg_sig" {
                    println!("{name}: {value}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
