//! One callback transaction on PostgreSQL ([`PgTx`]): the SQL of each
//! per-callback step ([`CallbackTx`]), with row locks and a per-payment
//! advisory lock, and `NOTIFY freedompay_events` for each event. Also the
//! row reads the store shares with it.

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use crate::domain::pan::mask_card_numbers;
use crate::domain::{Confirm, CurrentState, IdempotencyKey, Plan};
use crate::protocol::Status;
use crate::reconcile::task::confirm_task;
use crate::store::callbacks::{CallbackTx, Claim, Lookup, Mark, StoredDecision};
use crate::store::rows;
use crate::store::{Delivery, StoreError};

// Row reads lock the row when run inside a callback transaction (outside one,
// the lock ends with the statement), so the same text serves both uses.
pub(super) const SELECT_ORDER: &str = "SELECT order_id, amount::text, currency, status, expires_at, paid_payment_id \
     FROM orders WHERE merchant_id = $1 AND order_id = $2 FOR UPDATE";
pub(super) const SELECT_PAYMENT: &str = "SELECT payment_id, order_id, amount::text, currency, status, captured, testing_mode, \
     card_mask, failure_code, failure_description, needs_refund, refunded_amount::text \
     FROM payments WHERE merchant_id = $1 AND payment_id = $2 FOR UPDATE";
pub(super) const SELECT_PAYOUT: &str = "SELECT order_id, payment_id, status, amount::text, card_mask \
     FROM payouts WHERE merchant_id = $1 AND order_id = $2 FOR UPDATE";

/// One callback transaction on PostgreSQL.
#[derive(Debug)]
pub(crate) struct PgTx(Transaction<'static, Postgres>);

impl PgTx {
    pub(crate) async fn begin(pool: &PgPool) -> Result<PgTx, StoreError> {
        Ok(PgTx(pool.begin().await?))
    }
}

impl CallbackTx for PgTx {
    async fn claim(
        &mut self,
        key: &IdempotencyKey,
        fingerprint: Option<&str>,
    ) -> Result<Claim, StoreError> {
        // The advisory lock serialises every callback about one payment (or
        // payout) until commit, across instances: two first deliveries cannot
        // both see "no payment yet". The unique key makes a repeat lose the claim.
        let claimed = sqlx::query(
            "WITH subject_lock AS (SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $3, 0))) \
             INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, fingerprint) \
             SELECT $1, $2, $3, $4, $5 FROM subject_lock ON CONFLICT DO NOTHING",
        )
        .bind(&key.merchant_id)
        .bind(key.kind)
        .bind(&key.subject_id)
        .bind(&key.discriminator)
        .bind(fingerprint)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            return Ok(Claim::New);
        }
        let stored: StoredDecision = sqlx::query_as(
            "SELECT d.answer_status, d.answer_description, d.fingerprint, e.fields::text AS first_fields \
             FROM callback_decisions d LEFT JOIN events e ON e.id = d.event_id \
             WHERE d.merchant_id = $1 AND d.kind = $2 AND d.subject_id = $3 AND d.discriminator = $4",
        )
        .bind(&key.merchant_id)
        .bind(key.kind)
        .bind(&key.subject_id)
        .bind(&key.discriminator)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(Claim::Stored(stored))
    }

    async fn unclaim(&mut self, key: &IdempotencyKey) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM callback_decisions \
             WHERE merchant_id = $1 AND kind = $2 AND subject_id = $3 AND discriminator = $4",
        )
        .bind(&key.merchant_id)
        .bind(key.kind)
        .bind(&key.subject_id)
        .bind(&key.discriminator)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn lock(&mut self, merchant_id: &str, subject: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
            .bind(merchant_id)
            .bind(subject)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn schedule(&mut self, merchant_id: &str, confirm: &Confirm) -> Result<(), StoreError> {
        let (task, subject) = confirm_task(confirm);
        // A finished query of the same subject is opened again: this is a new
        // question about it. An open one is only brought forward, never put off.
        sqlx::query(
            "INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key, next_attempt_at) \
             VALUES ($1, $2, $3, 'confirm', now() + make_interval(secs => $4::bigint)) \
             ON CONFLICT (merchant_id, task, subject_id, task_key) DO UPDATE SET state = 'open', \
             attempts = CASE WHEN outbound_tasks.state <> 'open' THEN 0 ELSE outbound_tasks.attempts END, \
             last_error = CASE WHEN outbound_tasks.state <> 'open' THEN NULL ELSE outbound_tasks.last_error END, \
             next_attempt_at = CASE WHEN outbound_tasks.state <> 'open' THEN EXCLUDED.next_attempt_at \
               ELSE LEAST(outbound_tasks.next_attempt_at, EXCLUDED.next_attempt_at) END, \
             updated_at = now()",
        )
        .bind(merchant_id)
        .bind(task.as_str())
        .bind(subject)
        .bind(i64::try_from(confirm.due_in_secs).unwrap_or(i64::MAX))
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn claim_redirect(
        &mut self,
        key: &IdempotencyKey,
        fingerprint: Option<&str>,
    ) -> Result<bool, StoreError> {
        // One statement, no subject lock: a payer replaying a redirect URL
        // cannot queue behind the payment's callbacks or hold a connection.
        let repeats: i32 = sqlx::query_scalar(
            "INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, fingerprint) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (merchant_id, kind, subject_id, discriminator) \
             DO UPDATE SET repeats = callback_decisions.repeats + 1 RETURNING repeats",
        )
        .bind(&key.merchant_id)
        .bind(key.kind)
        .bind(&key.subject_id)
        .bind(&key.discriminator)
        .bind(fingerprint)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(repeats == 0)
    }

    async fn load(
        &mut self,
        merchant_id: &str,
        lookup: Lookup<'_>,
    ) -> Result<CurrentState, StoreError> {
        let mut state = CurrentState::default();
        if let Some(payment_id) = lookup.payment_id {
            state.payment = rows::fetch_keyed(
                &mut *self.0,
                SELECT_PAYMENT,
                merchant_id,
                payment_id,
                rows::payment,
            )
            .await?;
        }
        let order_id = lookup
            .order_id
            .map(str::to_owned)
            .or_else(|| state.payment.as_ref().map(|p| p.order_id.clone()));
        if let Some(order_id) = order_id {
            match rows::fetch_keyed(
                &mut *self.0,
                SELECT_ORDER,
                merchant_id,
                &order_id,
                rows::order,
            )
            .await
            {
                Ok(order) => state.order = order,
                Err(e) => {
                    state.order_defect = Some(rows::order_defect(merchant_id, &order_id, e)?);
                }
            }
        }
        if let Some(order_id) = lookup.payout_order_id {
            state.payout = rows::fetch_keyed(
                &mut *self.0,
                SELECT_PAYOUT,
                merchant_id,
                order_id,
                rows::payout,
            )
            .await?;
        }
        Ok(state)
    }

    async fn apply(&mut self, merchant_id: &str, plan: &Plan) -> Result<(), StoreError> {
        if let Some(p) = &plan.payment {
            sqlx::query(
                "INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status, captured, \
                 testing_mode, card_mask, failure_code, failure_description, needs_refund, refunded_amount) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (merchant_id, payment_id) DO UPDATE SET order_id = EXCLUDED.order_id, \
                 amount = EXCLUDED.amount, currency = EXCLUDED.currency, status = EXCLUDED.status, \
                 captured = EXCLUDED.captured, testing_mode = EXCLUDED.testing_mode, \
                 card_mask = EXCLUDED.card_mask, failure_code = EXCLUDED.failure_code, \
                 failure_description = EXCLUDED.failure_description, needs_refund = EXCLUDED.needs_refund, \
                 refunded_amount = EXCLUDED.refunded_amount, updated_at = now()",
            )
            .bind(merchant_id)
            .bind(&p.payment_id)
            .bind(&p.order_id)
            .bind(p.amount.as_decimal())
            .bind(&p.currency)
            .bind(p.status.as_str())
            .bind(p.captured)
            .bind(p.testing_mode)
            .bind(&p.card_mask)
            .bind(&p.failure_code)
            .bind(&p.failure_description)
            .bind(p.needs_refund)
            .bind(p.refunded_amount.as_decimal())
            .execute(&mut *self.0)
            .await?;
        }
        if let Some(o) = &plan.order {
            sqlx::query(
                "UPDATE orders SET status = $3, paid_payment_id = $4, updated_at = now() \
                 WHERE merchant_id = $1 AND order_id = $2",
            )
            .bind(merchant_id)
            .bind(&o.order_id)
            .bind(o.status.as_str())
            .bind(&o.paid_payment_id)
            .execute(&mut *self.0)
            .await?;
        }
        if let Some(p) = &plan.payout {
            sqlx::query(
                "INSERT INTO payouts (merchant_id, order_id, payment_id, status, amount, card_mask) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (merchant_id, order_id) DO UPDATE SET payment_id = EXCLUDED.payment_id, \
                 status = EXCLUDED.status, amount = EXCLUDED.amount, card_mask = EXCLUDED.card_mask, \
                 updated_at = now()",
            )
            .bind(merchant_id)
            .bind(&p.order_id)
            .bind(&p.payment_id)
            .bind(p.status.as_str())
            .bind(p.amount.map(|a| a.as_decimal()))
            .bind(&p.card_mask)
            .execute(&mut *self.0)
            .await?;
        }
        Ok(())
    }

    async fn insert_event(
        &mut self,
        delivery: &Delivery,
        answer: Option<(Status, &str)>,
        mark: Mark<'_>,
    ) -> Result<i64, StoreError> {
        let callback = &delivery.callback;
        let (id, _): (i64, Option<String>) = sqlx::query_as(
            "WITH event AS (INSERT INTO events (merchant_id, kind, order_id, payment_id, fields, \
             answer_status, answer_description, duplicate, signature_variant, key_label, conflict, flag) \
             VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12) RETURNING id) \
             SELECT id, pg_notify('freedompay_events', id::text)::text FROM event",
        )
        .bind(&callback.merchant_id)
        .bind(callback.event_kind())
        .bind(&callback.order_id)
        .bind(&callback.payment_id)
        .bind(&delivery.fields_json)
        .bind(answer.map(|(s, _)| s.as_str()))
        .bind(answer.map(|(_, d)| d))
        .bind(mark.duplicate)
        .bind(delivery.signature_variant)
        .bind(delivery.key_label)
        .bind(mark.conflict)
        // A flag may quote a field's value (an unparseable one): card numbers masked.
        .bind(mark.flag.map(|flag| mask_card_numbers(flag).into_owned()))
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    async fn settle(
        &mut self,
        key: &IdempotencyKey,
        status: Status,
        description: &str,
        event_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE callback_decisions SET answer_status = $5, answer_description = $6, event_id = $7 \
             WHERE merchant_id = $1 AND kind = $2 AND subject_id = $3 AND discriminator = $4",
        )
        .bind(&key.merchant_id)
        .bind(key.kind)
        .bind(&key.subject_id)
        .bind(&key.discriminator)
        .bind(status.as_str())
        .bind(description)
        .bind(event_id)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit().await?)
    }
}
