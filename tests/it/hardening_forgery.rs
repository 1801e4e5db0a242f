//! Forgery, as a property: random requests, random keys, random single-field
//! tampering of validly signed requests. None of them may change state.

use freedompay_receiver::protocol::Message;
use freedompay_receiver::simulate::Encoding;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support::freedompay::{self, FreedomPay};
use crate::support::pg::server_url;
use crate::support::{Backend, KEY, MERCHANT, TestApp};

/// How a validly signed request is spoiled.
#[derive(Clone, Debug)]
enum Tamper {
    WrongKey(String),
    ChangeValue(prop::sample::Index, String),
    AddField(String, String),
    RemoveField(prop::sample::Index),
    ReplaceSignature(String),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        "[a-zA-Z0-9]{1,32}"
            .prop_filter("not the key", |k| k != KEY)
            .prop_map(Tamper::WrongKey),
        (any::<prop::sample::Index>(), "[a-z0-9]{1,8}")
            .prop_map(|(i, v)| Tamper::ChangeValue(i, v)),
        ("[a-z_]{1,10}", "[a-z0-9]{1,8}").prop_map(|(n, v)| Tamper::AddField(n, v)),
        any::<prop::sample::Index>().prop_map(Tamper::RemoveField),
        "[0-9a-f]{32}".prop_map(Tamper::ReplaceSignature),
    ]
}

fn forge(tamper: &Tamper, amount: &str) -> Message {
    let fields = freedompay::result("F", "99", amount);
    let signed = FreedomPay::sign("result", KEY, &fields);
    let mut pairs = signed.to_pairs();
    let sig = pairs.pop().expect("pg_sig is last");
    // Indices pick among the non-empty fields, so that no tampering can hide
    // behind the tolerated drop-empty signature variant.
    let non_empty: Vec<usize> = (0..pairs.len())
        .filter(|&i| !pairs[i].1.is_empty())
        .collect();
    match tamper {
        Tamper::WrongKey(key) => return FreedomPay::sign("result", key, &fields),
        Tamper::ChangeValue(index, value) => {
            let i = non_empty[index.index(non_empty.len())];
            pairs[i].1 = if &pairs[i].1 == value {
                format!("{value}x")
            } else {
                value.clone()
            };
        }
        Tamper::AddField(name, value) => pairs.push((name.clone(), value.clone())),
        Tamper::RemoveField(index) => {
            pairs.remove(non_empty[index.index(non_empty.len())]);
        }
        Tamper::ReplaceSignature(forged) => {
            pairs.push(("pg_sig".into(), forged.clone()));
            return Message::from_pairs(pairs).unwrap();
        }
    }
    pairs.push(sig);
    Message::from_pairs(pairs).unwrap()
}

#[test]
fn no_request_without_a_valid_signature_changes_state() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut backends = vec![Backend::Sqlite];
    if server_url().is_some() {
        backends.push(Backend::Postgres);
    }
    for backend in backends {
        let app = runtime.block_on(TestApp::spawn(backend));
        runtime.block_on(app.order("F", "1000", "KZT"));
        let mut runner = TestRunner::new(Config {
            cases: 128,
            ..Config::default()
        });
        let encodings = prop::sample::select(Encoding::ALL.to_vec());
        runner
            .run(
                &(
                    tamper(),
                    encodings,
                    prop::sample::select(vec!["1000", "1", "999999"]),
                ),
                |(t, encoding, amount)| {
                    let message = forge(&t, amount);
                    let reply =
                        runtime.block_on(app.fp.deliver("/freedompay/result", encoding, &message));
                    prop_assert!(
                        reply.status == 403 || reply.status == 400 || reply.status == 429,
                        "{:?}: {}",
                        t,
                        reply.status
                    );
                    Ok(())
                },
            )
            .unwrap();
        runtime.block_on(async {
            let counts = app.store.count_events(None).await.unwrap();
            assert_eq!(
                (counts.first, counts.duplicate),
                (0, 0),
                "{backend:?}: a forgery was stored"
            );
            assert!(app.store.payment(MERCHANT, "99").await.unwrap().is_none());
            let order = app.store.order(MERCHANT, "F").await.unwrap().unwrap();
            assert_eq!(
                order.status,
                freedompay_receiver::domain::OrderStatus::Pending
            );
            app.stop().await;
        });
    }
}
