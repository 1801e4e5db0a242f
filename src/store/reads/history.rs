//! The history of one order (its payments, payout, every event, every
//! outbound task about it, and the webhook messages of its events with
//! their deliveries), read as the tables' rows. A stored amount that
//! does not parse (an internal service wrote `'abc'`, a BLOB, PostgreSQL's
//! `NaN`) is kept as stored and its column named damaged
//! ([`Stored::shown`]), so that the operator sees the row the
//! `bad_order_row` flag sends them to.

use serde::Serialize;

use super::on_read_backend;
use super::webhooks::EventMessage;
use crate::store::tables::events::{self, EventRow};
use crate::store::tables::orders::{self, OrderRow};
use crate::store::tables::outbound_tasks::{self, TaskRow};
use crate::store::tables::payments::{self, PaymentRow};
use crate::store::tables::payouts::{self, PayoutRow};
use crate::store::tables::{Dialect, Stored, made};
use crate::store::{Store, StoreError};

/// Everything stored about one order (or one payment whose order is not known).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct History {
    pub merchant_id: String,
    /// The order id the history is about, when known.
    pub order_id: Option<String>,
    pub order: Option<Stored<OrderRow>>,
    pub payments: Vec<Stored<PaymentRow>>,
    pub payout: Option<Stored<PayoutRow>>,
    /// In the order they were recorded.
    pub events: Vec<EventRow>,
    /// Oldest first.
    pub tasks: Vec<Stored<TaskRow>>,
    /// The webhook messages of `events`, in commit order, each with its
    /// deliveries (read in one query for all the events).
    pub webhooks: Vec<EventMessage>,
}

impl History {
    /// The webhook messages of the event `event_id`.
    pub fn webhooks_of(&self, event_id: i64) -> impl Iterator<Item = &EventMessage> {
        self.webhooks.iter().filter(move |m| m.event_id == event_id)
    }
}

/// What a history is looked up by.
#[derive(Clone, Copy, Debug)]
pub enum HistoryKey<'a> {
    Order(&'a str),
    Payment(&'a str),
}

/// The queries of a history, each of one merchant (`$1`) and one id (`$2`).
#[derive(Clone, Copy, Debug)]
enum Query {
    Order,
    PaymentsOfOrder,
    Payment,
    Payout,
    EventsOfOrder,
    EventsOfPayment,
    TasksOfSubject,
}

/// The history's reads of the event log (`$1` merchant, `$2` order or
/// payment id), named, for the plan tests.
pub fn event_log_reads(d: Dialect) -> Vec<(&'static str, String)> {
    vec![
        ("history events of an order", sql(d, Query::EventsOfOrder)),
        (
            "history events of a payment",
            sql(d, Query::EventsOfPayment),
        ),
    ]
}

fn sql(d: Dialect, query: Query) -> String {
    let (m, id) = (d.param(1), d.param(2));
    match query {
        Query::Order => {
            orders::stored_where(d, &format!("o.merchant_id = {m} AND o.order_id = {id}"))
        }
        Query::PaymentsOfOrder => payments::stored_where(
            d,
            &format!(
                "p.merchant_id = {m} AND p.order_id = {id} ORDER BY p.created_at, p.payment_id"
            ),
        ),
        Query::Payment => {
            payments::stored_where(d, &format!("p.merchant_id = {m} AND p.payment_id = {id}"))
        }
        Query::Payout => {
            payouts::stored_where(d, &format!("p.merchant_id = {m} AND p.order_id = {id}"))
        }
        Query::EventsOfOrder => events::where_(
            d,
            &format!("e.merchant_id = {m} AND e.order_id = {id} ORDER BY e.id"),
        ),
        Query::EventsOfPayment => events::where_(
            d,
            &format!("e.merchant_id = {m} AND e.payment_id = {id} ORDER BY e.id"),
        ),
        Query::TasksOfSubject => outbound_tasks::stored_where(
            d,
            &format!("t.merchant_id = {m} AND t.subject_id = {id} ORDER BY t.id"),
        ),
    }
}

impl Store {
    /// The rows `query` finds for `merchant_id` and `id`.
    async fn rows<R>(&self, query: Query, merchant_id: &str, id: &str) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + Send
            + Unpin,
    {
        Ok(on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, query)))
                .bind(merchant_id)
                .bind(id)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The history of an order, or of a payment's order (only of the payment
    /// when its order is not known). `None` when nothing at all is stored.
    pub async fn history(
        &self,
        merchant_id: &str,
        key: HistoryKey<'_>,
    ) -> Result<Option<History>, StoreError> {
        let mut payments: Vec<Stored<PaymentRow>> = Vec::new();
        let order_id = match key {
            HistoryKey::Order(id) => Some(id.to_owned()),
            HistoryKey::Payment(id) => {
                let found: Vec<Stored<PaymentRow>> =
                    self.rows(Query::Payment, merchant_id, id).await?;
                match found.into_iter().next() {
                    Some(payment) => {
                        let order_id = payment.order_id.clone();
                        payments.push(payment);
                        Some(order_id)
                    }
                    None => {
                        let events: Vec<EventRow> =
                            self.rows(Query::EventsOfPayment, merchant_id, id).await?;
                        events.into_iter().find_map(|e| e.order_id)
                    }
                }
            }
        };

        let mut order = None;
        let mut payout = None;
        let mut events: Vec<EventRow> = Vec::new();
        let mut tasks: Vec<Stored<TaskRow>> = Vec::new();
        if let Some(order_id) = order_id.as_deref() {
            let found: Vec<Stored<OrderRow>> =
                self.rows(Query::Order, merchant_id, order_id).await?;
            order = found.into_iter().next();
            let of_order: Vec<Stored<PaymentRow>> = self
                .rows(Query::PaymentsOfOrder, merchant_id, order_id)
                .await?;
            for payment in of_order {
                if !payments.iter().any(|p| p.payment_id == payment.payment_id) {
                    payments.push(payment);
                }
            }
            let found: Vec<Stored<PayoutRow>> =
                self.rows(Query::Payout, merchant_id, order_id).await?;
            payout = found.into_iter().next();
            events = self
                .rows(Query::EventsOfOrder, merchant_id, order_id)
                .await?;
            let about_order: Vec<Stored<TaskRow>> = self
                .rows(Query::TasksOfSubject, merchant_id, order_id)
                .await?;
            tasks.extend(
                about_order
                    .into_iter()
                    .filter(|t| t.task == "order_status" || t.task == "payout_status"),
            );
        }
        let mut payment_ids: Vec<String> = payments.iter().map(|p| p.payment_id.clone()).collect();
        if let HistoryKey::Payment(id) = key
            && !payment_ids.iter().any(|p| p == id)
        {
            payment_ids.push(id.to_owned());
        }
        for payment_id in &payment_ids {
            let of_payment: Vec<EventRow> = self
                .rows(Query::EventsOfPayment, merchant_id, payment_id)
                .await?;
            events.extend(of_payment);
            let about_payment: Vec<Stored<TaskRow>> = self
                .rows(Query::TasksOfSubject, merchant_id, payment_id)
                .await?;
            tasks.extend(
                about_payment
                    .into_iter()
                    .filter(|t| t.task == "payment_status" || t.task == "refund"),
            );
        }
        events.sort_by_key(|e| e.id);
        events.dedup_by_key(|e| e.id);
        tasks.sort_by_key(|t| t.id);
        tasks.dedup_by_key(|t| t.id);

        if order.is_none() && payments.is_empty() && payout.is_none() && events.is_empty() {
            return Ok(None);
        }
        let event_ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let webhooks = self.webhooks_of_events(&event_ids).await?;
        Ok(Some(History {
            merchant_id: merchant_id.to_owned(),
            order_id,
            order: order.map(Stored::shown),
            payments: payments.into_iter().map(Stored::shown).collect(),
            payout: payout.map(Stored::shown),
            events,
            tasks: tasks.into_iter().map(Stored::shown).collect(),
            webhooks,
        }))
    }
}
