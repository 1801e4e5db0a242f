//! `store::schema::amount`, called directly: a stored amount's text becomes
//! an `Amount` by the same strict rule as an incoming one, after trimming the
//! zeros PostgreSQL's `NUMERIC` renders beyond two decimals; anything else is
//! corrupt data (`StoreError::Corrupt`, naming the text), never a zero.

use freedompay_receiver::protocol::Amount;
use freedompay_receiver::store::StoreError;
use freedompay_receiver::store::tables::amount;

fn parsed(text: &str) -> Amount {
    text.parse().unwrap()
}

#[test]
fn stored_amounts_read_by_value_with_trailing_zeros_trimmed() {
    let cases = [
        ("7000", "7000"),
        ("7000.000", "7000"),
        ("7000.00", "7000"),
        ("7000.0", "7000"),
        ("7000.5", "7000.5"),
        ("7000.50", "7000.5"),
        ("7000.500", "7000.5"),
        ("7000.010", "7000.01"),
        ("7000.0100000", "7000.01"),
        ("0", "0"),
        ("0.000", "0"),
        ("0.01", "0.01"),
        ("007", "7"),
        ("999999999999999999.99", "999999999999999999.99"),
        // A bare point trims to the integer: accepted here, unlike an
        // incoming amount (the store only trims what is after the point).
        ("7000.", "7000"),
    ];
    for (text, want) in cases {
        let got = amount(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(got, parsed(want), "{text:?}");
        assert_eq!(got.canonical(), want, "{text:?} canonical");
    }
}

#[test]
fn unreadable_stored_amounts_are_corrupt() {
    let cases = [
        "",
        "abc",
        "NaN",
        "nan",
        "inf",
        "7e3",
        "7E3",
        "-5",
        "-0.01",
        "+5",
        "7000.001",
        "7000.0001",
        "7000.123000",
        " 7000",
        "7000 ",
        "7,000",
        "7 000",
        "1.2.3",
        ".5",
        "0x10",
        "1000000000000000000",
    ];
    for text in cases {
        match amount(text) {
            Err(StoreError::Corrupt(why)) => {
                assert!(
                    why.starts_with(&format!("amount {text:?}: ")),
                    "{text:?}: {why}"
                );
            }
            Err(other) => panic!("{text:?}: not Corrupt but {other}"),
            Ok(value) => panic!("{text:?} was read as {value}"),
        }
    }
}

#[test]
fn the_error_says_why() {
    let why = |text: &str| match amount(text) {
        Err(StoreError::Corrupt(why)) => why,
        other => panic!("{text:?}: {other:?}"),
    };
    assert_eq!(why(""), "amount \"\": amount is empty");
    assert_eq!(why("-5"), "amount \"-5\": amount \"-5\" is negative");
    assert_eq!(
        why("7.123"),
        "amount \"7.123\": amount \"7.123\" has more than two decimals"
    );
    assert!(
        why("7e3").contains("is not a decimal number"),
        "{}",
        why("7e3")
    );
    assert!(
        why("NaN").contains("is not a decimal number"),
        "{}",
        why("NaN")
    );
    assert!(
        why("1000000000000000000").ends_with("is too large"),
        "{}",
        why("1000000000000000000")
    );
}
