//! The reconciler's task model: what a task of `outbound_tasks` is (its
//! kind, state and refund stage, with the text each is stored as), a claimed
//! task as the worker changes it, and a task to create. Pure types, below
//! both their users: the store reads and writes them (`store::outbound`,
//! and the status queries a decision asks for, `store::callbacks::steps`),
//! the reconciler works them.

use crate::domain::{Confirm, ConfirmSubject};
use crate::protocol::Amount;

/// The task key of a status query a decision asked for ([`Confirm`]): the
/// query is made whatever the payment or payout's status, and its signed
/// answer is applied.
pub const CONFIRM_KEY: &str = "confirm";

/// The task kind and subject of a status query a decision asked for.
pub(crate) fn confirm_task(confirm: &Confirm) -> (TaskKind, &str) {
    match &confirm.subject {
        ConfirmSubject::Payment(id) => (TaskKind::PaymentStatus, id),
        ConfirmSubject::Payout(id) => (TaskKind::PayoutStatus, id),
    }
}

/// What a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// A payment seen at check without a result: `get_status3` by payment id.
    PaymentStatus,
    /// An order the payer came back from without a result: by order id.
    OrderStatus,
    /// A payout without a final status: `payout_status2`.
    PayoutStatus,
    /// A refund to send and then confirm.
    Refund,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::PaymentStatus => "payment_status",
            TaskKind::OrderStatus => "order_status",
            TaskKind::PayoutStatus => "payout_status",
            TaskKind::Refund => "refund",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [
            TaskKind::PaymentStatus,
            TaskKind::OrderStatus,
            TaskKind::PayoutStatus,
            TaskKind::Refund,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// Where a task stands (`outbound_tasks.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Open,
    Done,
    /// Given up: an operator must look (the reason is in `last_error`).
    Failed,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Open => "open",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
        }
    }
}

/// How far a refund got (`outbound_tasks.stage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundStage {
    /// Nothing sent yet.
    New,
    /// A request may have left; whether FreedomPay executed it is unknown.
    Sending,
    /// FreedomPay accepted it; a signed status must still show the money back.
    Requested,
}

impl RefundStage {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStage::New => "new",
            RefundStage::Sending => "sending",
            RefundStage::Requested => "requested",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [
            RefundStage::New,
            RefundStage::Sending,
            RefundStage::Requested,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A claimed task. The worker changes it and `Store::save_task` writes it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: i64,
    pub merchant_id: String,
    pub kind: TaskKind,
    pub subject_id: String,
    pub task_key: String,
    pub state: TaskState,
    pub stage: Option<RefundStage>,
    pub method: Option<String>,
    pub request_id: Option<String>,
    pub amount: Option<Amount>,
    pub confirm_total: Option<Amount>,
    pub refund_id: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    /// The claim this copy was read under.
    pub lease_owner: String,
}

/// A task to create (ignored when the same task already exists).
#[derive(Clone, Debug)]
pub struct NewTask<'a> {
    pub merchant_id: &'a str,
    pub kind: TaskKind,
    pub subject_id: &'a str,
    pub task_key: &'a str,
    pub stage: Option<RefundStage>,
    pub method: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub amount: Option<Amount>,
    pub confirm_total: Option<Amount>,
    /// Due this many seconds from now.
    pub due_in_secs: u64,
}
