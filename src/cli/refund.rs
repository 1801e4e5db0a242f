//! `refund`: refund a payment, fully or partly, through the merchant's refund
//! method. The request is stored first (with its request id), then sent at
//! once; the same task machinery as automatic refunds makes sure it is sent
//! at most once, and `serve`'s reconciler finishes it if this command cannot
//! (no believable answer yet, or the refund is not confirmed yet).

use std::process::ExitCode;

use clap::Args;

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, Settings, runtime};
use crate::api::RefundMethod;
use crate::domain::task::{NewTask, RefundStage, TaskKind, TaskState};
use crate::protocol::Amount;
use crate::reconcile::Reconciler;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct RefundArgs {
    /// The merchant; may be left out when exactly one is configured.
    #[arg(long)]
    pub merchant_id: Option<String>,
    /// FreedomPay's payment id.
    #[arg(long)]
    pub payment_id: String,
    /// Refund this much; left out: all that is not refunded yet.
    #[arg(long)]
    pub amount: Option<Amount>,
    /// revoke, superapp, v5 or card_api; left out: the merchant's refund_method.
    #[arg(long)]
    pub method: Option<String>,
}

pub fn run(settings: &Settings, args: &RefundArgs) -> ExitCode {
    let merchant = match settings.merchant(args.merchant_id.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let method_name = args.method.as_deref().unwrap_or(&merchant.refund_method);
    let Some(method) = RefundMethod::parse(method_name) else {
        eprintln!("error: --method: must be revoke, superapp, v5 or card_api");
        return ExitCode::from(EXIT_BAD_CONFIG);
    };
    let request_id = uuid::Uuid::now_v7().to_string();
    let result = runtime().block_on(async {
        let store = Store::connect(&settings.database).map_err(Box::new)?;
        store.migrate().await.map_err(Box::new)?;
        let outcome = refund(settings, &store, &merchant.id, args, method, &request_id).await;
        store.close().await;
        outcome
    });
    match result {
        Ok(Some((message, state))) => {
            println!("{message}");
            if state == TaskState::Failed {
                ExitCode::from(EXIT_FAILURE)
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok(None) => {
            eprintln!(
                "error: payment {} of merchant {} is not in the database",
                args.payment_id, merchant.id
            );
            ExitCode::from(EXIT_FAILURE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn refund(
    settings: &Settings,
    store: &Store,
    merchant_id: &str,
    args: &RefundArgs,
    method: RefundMethod,
    request_id: &str,
) -> Result<Option<(String, TaskState)>, Box<dyn std::error::Error>> {
    if store
        .payment(merchant_id, &args.payment_id)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let id = store
        .schedule_task(&NewTask {
            merchant_id,
            kind: TaskKind::Refund,
            subject_id: &args.payment_id,
            task_key: request_id,
            stage: Some(RefundStage::New),
            method: Some(method.as_str()),
            request_id: Some(request_id),
            amount: args.amount,
            confirm_total: None,
            due_in_secs: 0,
        })
        .await?
        .ok_or("the refund task was not stored")?;
    let reconciler = Reconciler::new(settings, store.clone())?;
    reconciler.run_task(id).await?;
    let task = store
        .task(id)
        .await?
        .ok_or("the refund task was not stored")?;
    let state = task.state;
    let message = match task.state {
        TaskState::Done => format!(
            "refund {request_id} ({}): {}",
            method.as_str(),
            task.outcome.unwrap_or_default()
        ),
        TaskState::Open => format!(
            "refund {request_id} ({}) is {}: {}. The running service finishes it.",
            method.as_str(),
            task.stage.map_or("open", |s| s.as_str()),
            task.last_error.unwrap_or_default()
        ),
        TaskState::Failed => format!(
            "refund {request_id} ({}) failed: {}",
            method.as_str(),
            task.last_error.unwrap_or_default()
        ),
    };
    Ok(Some((message, state)))
}
