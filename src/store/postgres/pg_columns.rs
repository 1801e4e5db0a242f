//! The group rows as PostgreSQL array parameters, in one place for both group
//! paths (`pg_group`, `pg_optimistic`): one array per column.

use rust_decimal::Decimal;
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs};

use crate::domain::{IdempotencyKey, Payment};
use crate::store::Delivery;
use crate::store::callbacks::group_decide::{Key, NewEvent};

/// Something that takes binds: a query, with or without a row type.
pub(crate) trait Binds<'q>: Sized {
    fn add<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>;
}

impl<'q> Binds<'q> for Query<'q, Postgres, PgArguments> {
    fn add<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
    {
        self.bind(value)
    }
}

impl<'q, O> Binds<'q> for QueryAs<'q, Postgres, O, PgArguments> {
    fn add<T>(self, value: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
    {
        self.bind(value)
    }
}

/// Binds nine arrays: each event's kind, order id, payment id, fields,
/// answer status and description, duplicate flag, signature variant and key
/// label. `delivery` gives the delivery of a job by its index.
pub(crate) fn bind_events<'q, 'd, Q: Binds<'q>>(
    query: Q,
    events: &[NewEvent],
    delivery: impl Fn(usize) -> &'d Delivery,
) -> Q {
    let text = |f: &dyn Fn(&NewEvent) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    let callback = |e: &NewEvent| &delivery(e.job).callback;
    query
        .add(text(&|e| Some(callback(e).event_kind().to_owned())))
        .add(text(&|e| callback(e).order_id.clone()))
        .add(text(&|e| callback(e).payment_id.clone()))
        .add(text(&|e| Some(delivery(e.job).fields_json.clone())))
        .add(text(&|e| {
            e.answer.as_ref().map(|(s, _)| s.as_str().to_owned())
        }))
        .add(text(&|e| e.answer.as_ref().map(|(_, d)| d.clone())))
        .add(events.iter().map(|e| e.duplicate).collect::<Vec<_>>())
        .add(text(&|e| {
            Some(delivery(e.job).signature_variant.to_owned())
        }))
        .add(text(&|e| Some(delivery(e.job).key_label.to_owned())))
}

/// Binds twelve arrays: each payment's id, order id, amount, currency,
/// status, captured, testing mode, card mask, failure code and description,
/// needs-refund flag and refunded amount.
pub(crate) fn bind_payments<'q, Q: Binds<'q>>(query: Q, payments: &[(&Key, &Payment)]) -> Q {
    let text = |f: &dyn Fn(&Payment) -> Option<String>| {
        payments.iter().map(|(_, p)| f(p)).collect::<Vec<_>>()
    };
    let flag = |f: fn(&Payment) -> bool| payments.iter().map(|(_, p)| f(p)).collect::<Vec<_>>();
    let decimal =
        |f: fn(&Payment) -> Decimal| payments.iter().map(|(_, p)| f(p)).collect::<Vec<_>>();
    query
        .add(text(&|p| Some(p.payment_id.clone())))
        .add(text(&|p| Some(p.order_id.clone())))
        .add(decimal(|p| p.amount.as_decimal()))
        .add(text(&|p| Some(p.currency.clone())))
        .add(text(&|p| Some(p.status.as_str().to_owned())))
        .add(payments.iter().map(|(_, p)| p.captured).collect::<Vec<_>>())
        .add(flag(|p| p.testing_mode))
        .add(text(&|p| p.card_mask.clone()))
        .add(text(&|p| p.failure_code.clone()))
        .add(text(&|p| p.failure_description.clone()))
        .add(flag(|p| p.needs_refund))
        .add(decimal(|p| p.refunded_amount.as_decimal()))
}

/// The advisory-lock names of the keys' subjects (`merchant/subject`), sorted
/// and once each: every path takes its locks in this order, so no two
/// groups or instances can deadlock on them.
pub(crate) fn lock_names<'a>(keys: impl Iterator<Item = &'a IdempotencyKey>) -> Vec<String> {
    let mut names: Vec<String> = keys
        .map(|k| format!("{}/{}", k.merchant_id, k.subject_id))
        .collect();
    names.sort();
    names.dedup();
    names
}
