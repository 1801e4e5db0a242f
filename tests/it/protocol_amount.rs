//! Money parsing: exact decimals, strict format.

use freedompay_receiver::protocol::{Amount, AmountError};

#[test]
fn equal_amounts_in_different_spellings_are_equal() {
    let a: Amount = "7000".parse().unwrap();
    let b: Amount = "7000.0".parse().unwrap();
    let c: Amount = "7000.00".parse().unwrap();
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(c.canonical(), "7000");
    assert_eq!("12.50".parse::<Amount>().unwrap().canonical(), "12.5");
    assert_eq!("0.01".parse::<Amount>().unwrap().canonical(), "0.01");
}

#[test]
fn everything_else_is_a_typed_error() {
    assert_eq!("".parse::<Amount>(), Err(AmountError::Empty));
    assert_eq!(
        "-5".parse::<Amount>(),
        Err(AmountError::Negative("-5".into()))
    );
    assert_eq!(
        "1.005".parse::<Amount>(),
        Err(AmountError::TooManyDecimals("1.005".into()))
    );
    assert_eq!(
        "1234567890123456789".parse::<Amount>(),
        Err(AmountError::TooLarge("1234567890123456789".into()))
    );
    for bad in [
        "1e3", "7,000", "7 000", "+5", ".5", "5.", "NaN", "0x10", " 5", "5 ", "1.2.3", "-", "٣",
    ] {
        assert_eq!(
            bad.parse::<Amount>(),
            Err(AmountError::Invalid(bad.into())),
            "{bad}"
        );
    }
}
