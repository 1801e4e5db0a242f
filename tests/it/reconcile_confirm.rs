//! Confirmations: status queries that callback decisions schedule (task key
//! `confirm`) because the callbacks alone cannot settle what happened, and
//! whose signed answers decide. On both backends.

use freedompay_receiver::domain::task::{CONFIRM_KEY, Task, TaskKind, TaskState};
use freedompay_receiver::domain::{PaymentStatus, PayoutStatus};
use freedompay_receiver::protocol::{Amount, Status};

use crate::on_both_backends;
use crate::support::freedompay;
use crate::support::reconcile::Rig;
use crate::support::{Backend, MERCHANT, TestApp, TestDb, base_toml};
use freedompay_receiver::config::Settings;

async fn confirmation(rig: &Rig, kind: TaskKind, subject: &str) -> Task {
    let tasks = rig
        .app
        .store
        .tasks_for(MERCHANT, kind, subject)
        .await
        .unwrap();
    tasks
        .into_iter()
        .find(|t| t.task_key == CONFIRM_KEY)
        .expect("a confirmation is scheduled")
}

fn amount(text: &str) -> Amount {
    text.parse().unwrap()
}

/// A database migrated as the previous version left it, with a payment that
/// version rejected.
async fn database_before_the_state_machine(backend: Backend) -> TestDb {
    let db = match backend {
        Backend::Sqlite => TestDb::new(backend).await,
        Backend::Postgres => TestDb::empty_postgres().await,
    };
    let dir = match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    };
    let mut migrator = sqlx::migrate::Migrator::new(std::path::Path::new(dir))
        .await
        .unwrap();
    let earlier: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 20261202000001)
        .cloned()
        .collect();
    migrator.migrations = earlier.into();
    match backend {
        Backend::Sqlite => {
            let options = std::str::FromStr::from_str(&db.url)
                .map(|o: sqlx::sqlite::SqliteConnectOptions| o.create_if_missing(true))
                .unwrap();
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.unwrap();
            sqlx::query("INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status) VALUES (?1, 'OLD-1', 'O', '5', 'KZT', 'rejected')").bind(MERCHANT).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            sqlx::query("INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status) VALUES ($1, 'OLD-1', 'O', 5, 'KZT', 'rejected')").bind(MERCHANT).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    db
}

on_both_backends! {
    async fn a_payment_rejected_before_the_upgrade_gets_a_confirmation(backend) {
        let db = database_before_the_state_machine(backend).await;
        let settings = Settings::from_toml(&base_toml(&db.url)).unwrap();
        let app = TestApp::spawn_settings(settings, Some(db)).await;
        let tasks = app.store.tasks_for(MERCHANT, TaskKind::PaymentStatus, "OLD-1").await.unwrap();
        assert!(tasks.iter().any(|t| t.task_key == CONFIRM_KEY && t.state == TaskState::Open), "{tasks:?}");
        // The flagged-events index is built (on PostgreSQL concurrently, by a
        // migration of its own outside a transaction).
        let indexes: i64 = match backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
                let n = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'events_flagged'").fetch_one(&pool).await.unwrap();
                pool.close().await;
                n
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
                let n = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                     WHERE c.relname = 'events_flagged' AND i.indisvalid",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                pool.close().await;
                n
            }
        };
        assert_eq!(indexes, 1);
        app.stop().await;
    }

    async fn a_rejection_freedompay_did_not_revert_is_found_and_flagged_for_refund(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        app.order("O", "1000", "KZT").await;
        for (payment, status) in [("1", "success"), ("2", "failed")] {
            let wrong = freedompay::result("O", payment, "5").set("pg_can_reject", "1");
            app.fp.send("result", &wrong).await.assert_answer("result", Status::Rejected);
            rig.fake.add_payment(payment, "O", "5", status);
            let task = confirmation(&rig, TaskKind::PaymentStatus, payment).await;
            assert!(rig.reconciler.run_task(task.id).await.unwrap());
        }
        // FreedomPay completed the first anyway: it is ours, to be refunded.
        let completed = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!((completed.status, completed.needs_refund), (PaymentStatus::Succeeded, true));
        // The second was reverted: it stays rejected.
        let reverted = app.store.payment(MERCHANT, "2").await.unwrap().unwrap();
        assert_eq!((reverted.status, reverted.needs_refund), (PaymentStatus::Rejected, false));
        assert_eq!(rig.fake.calls_to("get_status3.php"), 2);
        app.store.close().await;
    }

    async fn a_rejection_freedompay_reverted_is_confirmed_and_nothing_changes(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        app.order("O", "1000", "KZT").await;
        // Reverted as `revoked`, as `refunded`, or as a refunded total that
        // covers the amount: the rejection stands, nothing to refund.
        for (payment, status, refunded) in [("1", "revoked", None), ("2", "refunded", None), ("3", "success", Some("5"))] {
            let wrong = freedompay::result("O", payment, "5").set("pg_can_reject", "1");
            app.fp.send("result", &wrong).await.assert_answer("result", Status::Rejected);
            rig.fake.add_payment(payment, "O", "5", status);
            if let Some(total) = refunded {
                rig.fake.state.payments.lock().unwrap().get_mut(payment).unwrap().refunded = amount(total);
            }
            let task = confirmation(&rig, TaskKind::PaymentStatus, payment).await;
            assert!(rig.reconciler.run_task(task.id).await.unwrap());
            let stored = app.store.payment(MERCHANT, payment).await.unwrap().unwrap();
            assert_eq!(
                (stored.status, stored.needs_refund, stored.refunded_amount),
                (PaymentStatus::Rejected, false, Amount::default()),
                "{status}"
            );
            let task = app.store.task(task.id).await.unwrap().unwrap();
            assert_eq!(task.state, TaskState::Done, "{status}");
        }
        app.store.close().await;
    }

    async fn contradicting_payout_statuses_are_flagged_and_settled_by_a_status_query(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        app.fp.send("payout", &freedompay::payout("PO-1", "77", "error")).await.assert_answer("payout", Status::Ok);
        app.fp.send("payout", &freedompay::payout("PO-1", "77", "ok")).await.assert_answer("payout", Status::Ok);
        // The first final status is kept until FreedomPay's signed word.
        assert_eq!(app.store.payout(MERCHANT, "PO-1").await.unwrap().unwrap().status, PayoutStatus::Error);
        let events = app.store.event_marks(Some("payout")).await.unwrap();
        assert_eq!(events[1].flag.as_deref(), Some("payout_contradiction: error stored, success received"));
        rig.fake.script_payout("PO-1", &["success"]);
        let task = confirmation(&rig, TaskKind::PayoutStatus, "PO-1").await;
        assert!(rig.reconciler.run_task(task.id).await.unwrap());
        assert_eq!(app.store.payout(MERCHANT, "PO-1").await.unwrap().unwrap().status, PayoutStatus::Success);
        let task = app.store.task(task.id).await.unwrap().unwrap();
        assert_eq!(task.state, TaskState::Done);
        app.store.close().await;
    }

    async fn two_refunds_of_one_amount_without_refund_id_are_confirmed_by_the_status_total(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        app.order("O", "7000", "KZT").await;
        app.fp.send("result", &freedompay::result("O", "1", "7000")).await.assert_answer("result", Status::Ok);
        let refund = freedompay::refund("O", "1", "1000");
        app.fp.send("refund", &refund).await.assert_answer("refund", Status::Ok);
        // A second refund of the same amount, or a retry of the first: the
        // callback cannot tell, FreedomPay's cumulative total can.
        app.fp.send("refund", &refund).await.assert_answer("refund", Status::Ok);
        assert_eq!(app.store.payment(MERCHANT, "1").await.unwrap().unwrap().refunded_amount, amount("1000"));
        rig.fake.add_payment("1", "O", "7000", "success");
        rig.fake.state.payments.lock().unwrap().get_mut("1").unwrap().refunded = amount("2000");
        let task = confirmation(&rig, TaskKind::PaymentStatus, "1").await;
        assert!(rig.reconciler.run_task(task.id).await.unwrap());
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!((payment.status, payment.refunded_amount), (PaymentStatus::Succeeded, amount("2000")));
        app.store.close().await;
    }
}
