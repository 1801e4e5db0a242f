//! Every order rule, passing and failing, as check answers on both backends.

use freedompay_receiver::domain::CallbackKind;
use freedompay_receiver::protocol::{Amount, Status};
use freedompay_receiver::store::NewOrder;

use crate::on_both_backends;
use crate::support::freedompay::{self, Fields};
use crate::support::{MERCHANT, TestApp};

/// Sends a check and returns (pg_status, pg_description).
async fn check(app: &TestApp, fields: &Fields) -> (Status, String) {
    let reply = app.fp.send("check", fields).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    (reply.pg_status().unwrap(), reply.description())
}

on_both_backends! {
    async fn known_order_amount_and_currency(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("123", "7000", "KZT").await;
        assert_eq!(check(&app, &freedompay::check("123", "1", "7000.00")).await.0, Status::Ok);
        assert_eq!(
            check(&app, &freedompay::check("999", "2", "7000")).await,
            (Status::Rejected, "Order 999 is not known".into())
        );
        assert_eq!(
            check(&app, &freedompay::check("123", "3", "6999.99")).await,
            (Status::Rejected, "Amount 6999.99 does not match the amount 7000 of order 123".into())
        );
        assert_eq!(
            check(&app, &freedompay::check("123", "4", "7000").set("pg_currency", "USD")).await,
            (Status::Rejected, "Currency USD does not match the currency KZT of order 123".into())
        );
        // Every check is an event, whatever the answer.
        assert_eq!(app.store.count_events(Some(CallbackKind::Check)).await.unwrap().first, 4);
        app.stop().await;
    }

    async fn rules_can_be_turned_off(backend) {
        let app = TestApp::spawn_with(backend, |t| t.push_str(
            "\n[rules]\nrequire_known_order = false\namount_must_match = false\ncurrency_must_match = false\n",
        )).await;
        app.order("123", "7000", "KZT").await;
        assert_eq!(check(&app, &freedompay::check("999", "1", "1")).await.0, Status::Ok);
        assert_eq!(check(&app, &freedompay::check("123", "2", "1").set("pg_currency", "USD")).await.0, Status::Ok);
        app.stop().await;
    }

    async fn currency_list_and_amount_bounds(backend) {
        let app = TestApp::spawn_with(backend, |t| t.push_str(
            "\n[rules]\nrequire_known_order = false\nallowed_currencies = [\"KZT\"]\nmin_amount = \"100\"\nmax_amount = \"5000.50\"\n",
        )).await;
        assert_eq!(check(&app, &freedompay::check("1", "1", "100")).await.0, Status::Ok);
        assert_eq!(check(&app, &freedompay::check("1", "2", "5000.5")).await.0, Status::Ok);
        assert_eq!(
            check(&app, &freedompay::check("1", "3", "99.99")).await,
            (Status::Rejected, "Amount 99.99 is below the minimum of 100".into())
        );
        assert_eq!(
            check(&app, &freedompay::check("1", "4", "5000.51")).await,
            (Status::Rejected, "Amount 5000.51 is above the maximum of 5000.5".into())
        );
        assert_eq!(
            check(&app, &freedompay::check("1", "5", "200").set("pg_currency", "RUB")).await,
            (Status::Rejected, "Currency RUB is not accepted".into())
        );
        app.stop().await;
    }

    async fn expired_orders(backend) {
        let app = TestApp::spawn(backend).await;
        let past = chrono::Utc::now() - chrono::Duration::hours(1);
        let future = chrono::Utc::now() + chrono::Duration::hours(1);
        for (id, expires_at) in [("old", past), ("new", future)] {
            app.store
                .insert_order(MERCHANT, &NewOrder {
                    order_id: id,
                    amount: "10".parse::<Amount>().unwrap(),
                    currency: "KZT",
                    expires_at: Some(expires_at),
                })
                .await
                .unwrap();
        }
        assert_eq!(check(&app, &freedompay::check("new", "1", "10")).await.0, Status::Ok);
        assert_eq!(
            check(&app, &freedompay::check("old", "2", "10")).await,
            (Status::Rejected, "Order old has expired".into())
        );
        app.stop().await;

        let lenient = TestApp::spawn_with(backend, |t| t.push_str("\n[rules]\nreject_expired = false\n")).await;
        lenient.store
            .insert_order(MERCHANT, &NewOrder {
                order_id: "old",
                amount: "10".parse::<Amount>().unwrap(),
                currency: "KZT",
                expires_at: Some(past),
            })
            .await
            .unwrap();
        assert_eq!(check(&lenient, &freedompay::check("old", "2", "10")).await.0, Status::Ok);
        lenient.stop().await;
    }

    async fn already_paid_orders(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("123", "7000", "KZT").await;
        app.fp.send("result", &freedompay::result("123", "1", "7000")).await.assert_answer("result", Status::Ok);
        assert_eq!(
            check(&app, &freedompay::check("123", "2", "7000")).await,
            (Status::Rejected, "Order 123 is already paid".into())
        );
        app.stop().await;

        let lenient = TestApp::spawn_with(backend, |t| t.push_str("\n[rules]\nreject_already_paid = false\n")).await;
        lenient.order("123", "7000", "KZT").await;
        lenient.fp.send("result", &freedompay::result("123", "1", "7000")).await.assert_answer("result", Status::Ok);
        assert_eq!(check(&lenient, &freedompay::check("123", "2", "7000")).await.0, Status::Ok);
        lenient.stop().await;
    }

    async fn testing_mode(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("T", "10", "KZT").await;
        assert_eq!(check(&app, &freedompay::check("T", "1", "10").set("pg_testing_mode", "1")).await.0, Status::Ok);
        app.stop().await;

        let strict = TestApp::spawn_with(backend, |t| t.push_str("\n[rules]\nreject_testing_mode = true\n")).await;
        strict.order("T", "10", "KZT").await;
        assert_eq!(
            check(&strict, &freedompay::check("T", "1", "10").set("pg_testing_mode", "1")).await,
            (Status::Rejected, "Test payments are not accepted".into())
        );
        assert_eq!(check(&strict, &freedompay::check("T", "2", "10").set("pg_testing_mode", "0")).await.0, Status::Ok);
        strict.stop().await;
    }
}
