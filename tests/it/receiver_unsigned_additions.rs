//! A genuine, correctly signed result with unsigned additions riding on it (a
//! nested `pg_sig`, or an empty protocol field the drop-empty variant would
//! leave out) is refused, and nothing is stored.

use freedompay_receiver::domain::{CallbackKind, OrderStatus};
use freedompay_receiver::protocol::Message;

use crate::on_both_backends;
use crate::support::freedompay::{self, Encoding, FreedomPay};
use crate::support::{KEY, MERCHANT, TestApp};

/// The genuine result for `order`, signed, with `extra` pairs appended after
/// the signature was computed.
fn with_unsigned(order: &str, payment: &str, extra: &[(&str, &str)]) -> Message {
    let genuine = FreedomPay::sign("result", KEY, &freedompay::result(order, payment, "10"));
    let mut pairs = genuine.to_pairs();
    pairs.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    Message::from_pairs(pairs).unwrap()
}

on_both_backends! {
    async fn unsigned_additions_are_refused_and_change_nothing(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("UA-1", "10", "KZT").await;
        let cases: [(&str, Encoding); 5] = [
            ("pg_testing_mode[pg_sig]", Encoding::Form),
            ("pg_testing_mode[pg_sig]", Encoding::Xml),
            ("pg_testing_mode[pg_sig]", Encoding::Multipart),
            ("pg_can_reject", Encoding::Form),
            ("pg_extra[note]", Encoding::Form),
        ];
        for (name, encoding) in cases {
            // The nested pg_sig carries a value; the other additions are empty.
            let value = if name.ends_with("[pg_sig]") { "1" } else { "" };
            let message = with_unsigned("UA-1", "601", &[(name, value)]);
            let reply = app.fp.deliver("/freedompay/result", encoding, &message).await;
            assert_eq!(reply.status, 403, "{name} as {encoding:?}: {}", reply.body);
        }
        assert_eq!(app.store.count_events(None).await.unwrap().first, 0);
        assert!(app.store.payment(MERCHANT, "601").await.unwrap().is_none());
        assert_eq!(app.store.order(MERCHANT, "UA-1").await.unwrap().unwrap().status, OrderStatus::Pending);

        // The same message without the additions is taken.
        let genuine = with_unsigned("UA-1", "601", &[]);
        let reply = app.fp.deliver("/freedompay/result", Encoding::Form, &genuine).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(app.store.count_events(Some(CallbackKind::Result)).await.unwrap().first, 1);
        assert_eq!(app.store.order(MERCHANT, "UA-1").await.unwrap().unwrap().status, OrderStatus::Paid);
        app.stop().await;
    }
}
