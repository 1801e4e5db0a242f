//! Order rows an internal service wrote damaged, in every shape each backend
//! can store: the callbacks about them are answered by rule and flagged
//! `bad_order_row` in their group's transaction (never a 503 on every
//! retry), and the callbacks of healthy orders in the same group are not
//! held back. Payment and payout rows (the service's own) damaged by hand:
//! their callbacks are recorded and flagged `bad_stored_row` (so an operator
//! sees them) and answered 503 until the row is mended, without holding back
//! the rest of their group.

use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, freedompay};

/// Damaging updates (`$1`/`?1` is the order id), each a shape the backend
/// accepts despite the table's types and checks.
fn shapes(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Sqlite => &[
            // A TEXT column keeps a BLOB as a BLOB.
            "UPDATE orders SET amount = X'373030' WHERE order_id = ?1",
            "UPDATE orders SET amount = 'abc' WHERE order_id = ?1",
            "UPDATE orders SET amount = '' WHERE order_id = ?1",
            "UPDATE orders SET currency = X'4B5A54' WHERE order_id = ?1",
            "UPDATE orders SET expires_at = X'00' WHERE order_id = ?1",
            "UPDATE orders SET expires_at = 'soon' WHERE order_id = ?1",
            "UPDATE orders SET paid_payment_id = X'31' WHERE order_id = ?1",
        ],
        Backend::Postgres => &[
            "UPDATE orders SET amount = 'NaN' WHERE order_id = $1",
            "UPDATE orders SET amount = 'Infinity' WHERE order_id = $1",
            "UPDATE orders SET amount = 1e40 WHERE order_id = $1",
            "UPDATE orders SET amount = 0.000001 WHERE order_id = $1",
        ],
    }
}

async fn damage(app: &TestApp, backend: Backend, sql: &str, order_id: &str) {
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .bind(order_id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .bind(order_id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

on_both_backends! {
    async fn every_damaged_order_shape_is_answered_by_rule_and_flagged(backend) {
        let app = TestApp::spawn(backend).await;
        let shapes = shapes(backend);
        for (i, sql) in shapes.iter().enumerate() {
            app.order(&format!("D-{i}"), "700", "KZT").await;
            damage(&app, backend, sql, &format!("D-{i}")).await;
            app.order(&format!("H-{i}"), "700", "KZT").await;
        }
        // Damaged and healthy orders together, so that they share groups.
        let sends = (0..shapes.len()).flat_map(|i| {
            [
                (format!("D-{i}"), format!("{}", 100 + i)),
                (format!("H-{i}"), format!("{}", 200 + i)),
            ]
        });
        let replies = futures_util::future::join_all(sends.map(|(order, payment)| {
            let app = &app;
            async move {
                let reply = app.fp.send("result", &freedompay::result(&order, &payment, "700")).await;
                (order, reply)
            }
        }))
        .await;
        for (order, reply) in &replies {
            if order.starts_with('D') {
                let i: usize = order[2..].parse().unwrap();
                reply.assert_answer("result", Status::Rejected);
                assert_eq!(
                    reply.description(),
                    format!("Order {order} cannot be paid: its record is damaged"),
                    "{}",
                    shapes[i]
                );
            } else {
                reply.assert_answer("result", Status::Ok);
            }
        }
        let events = app.store.event_marks(Some("result")).await.unwrap();
        assert_eq!(events.len(), 2 * shapes.len(), "every callback recorded once: {events:?}");
        for event in &events {
            let damaged = event.order_id.as_deref().is_some_and(|o| o.starts_with('D'));
            assert_eq!(
                event.flag.as_deref().is_some_and(|f| f.starts_with("bad_order_row: ")),
                damaged,
                "{event:?}"
            );
        }
        // A repeat gets the stored answer.
        let again = app.fp.send("result", &freedompay::result("D-0", "100", "700")).await;
        again.assert_answer("result", Status::Rejected);
        app.stop().await;
    }

    async fn a_damaged_payment_or_payout_row_is_flagged_and_answered_503_until_mended(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O-1", "700", "KZT").await;
        app.order("O-2", "700", "KZT").await;
        app.fp.send("result", &freedompay::result("O-1", "501", "700")).await.assert_answer("result", Status::Ok);
        let payout = freedompay::payout("PO-1", "77", "ok");
        app.fp.send("payout", &payout).await.assert_answer("payout", Status::Ok);
        let (payment_sql, payout_sql, mend_payment, mend_payout) = match backend {
            Backend::Sqlite => (
                "UPDATE payments SET amount = X'373030' WHERE payment_id = ?1",
                "UPDATE payouts SET amount = X'31' WHERE order_id = ?1",
                "UPDATE payments SET amount = '700' WHERE payment_id = ?1",
                "UPDATE payouts SET amount = '5000' WHERE order_id = ?1",
            ),
            Backend::Postgres => (
                "UPDATE payments SET amount = 'NaN' WHERE payment_id = $1",
                "UPDATE payouts SET amount = 'NaN' WHERE order_id = $1",
                "UPDATE payments SET amount = 700 WHERE payment_id = $1",
                "UPDATE payouts SET amount = 5000 WHERE order_id = $1",
            ),
        };
        damage(&app, backend, payment_sql, "501").await;
        damage(&app, backend, payout_sql, "PO-1").await;

        // Together, so that they share a group: the damaged rows' callbacks
        // get 503, the healthy one is paid.
        let refund = freedompay::refund("O-1", "501", "700");
        // A new word about the payout (a repeat would get its stored answer).
        let payout_again = freedompay::payout("PO-1", "77", "error");
        let healthy = freedompay::result("O-2", "502", "700");
        let (refunded, paid_out, paid) = tokio::join!(
            app.fp.send("refund", &refund),
            app.fp.send("payout", &payout_again),
            app.fp.send("result", &healthy),
        );
        assert_eq!(refunded.status, 503, "{}", refunded.body);
        assert_eq!(paid_out.status, 503, "{}", paid_out.body);
        paid.assert_answer("result", Status::Ok);
        let flagged: Vec<_> = app
            .store
            .event_marks(None)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|event| event.flag)
            .collect();
        assert!(flagged.iter().any(|f| f.starts_with("bad_stored_row: payment: ")), "{flagged:?}");
        assert!(flagged.iter().any(|f| f.starts_with("bad_stored_row: payout: ")), "{flagged:?}");

        // Mended, FreedomPay's next delivery is decided.
        damage(&app, backend, mend_payment, "501").await;
        damage(&app, backend, mend_payout, "PO-1").await;
        app.fp.send("refund", &refund).await.assert_answer("refund", Status::Ok);
        app.fp.send("payout", &payout_again).await.assert_answer("payout", Status::Ok);
        app.stop().await;
    }
}
