//! Money amounts as FreedomPay writes them (protocol reference §2): a `.`
//! decimal separator, at most two decimals, no sign, no exponent, no thousands
//! separator. Amounts are [`Decimal`], never floats, and compare by value:
//! `7000`, `7000.0` and `7000.00` are equal.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// Most integer digits accepted; far above any real amount, well inside `Decimal`.
const MAX_INTEGER_DIGITS: usize = 18;

/// A non-negative amount with at most two decimals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

/// Why a text is not an amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount {0:?} is negative")]
    Negative(String),
    #[error("amount {0:?} has more than two decimals")]
    TooManyDecimals(String),
    #[error("amount {0:?} is too large")]
    TooLarge(String),
    #[error("amount {0:?} is not a decimal number like 7000 or 7000.50")]
    Invalid(String),
}

impl Amount {
    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// The canonical text: no trailing zeros (`7000`, `7000.5`). This is the
    /// form stored in SQLite, so equal amounts are equal strings there too.
    pub fn canonical(&self) -> String {
        self.0.normalize().to_string()
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// The difference, or `None` if it would be negative.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0
            .checked_sub(other.0)
            .filter(|d| !d.is_sign_negative())
            .map(Amount)
    }

    /// The sum, or `None` if it would overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

impl TryFrom<Decimal> for Amount {
    type Error = AmountError;

    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        value.normalize().to_string().parse()
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let invalid = || AmountError::Invalid(text.to_owned());
        let (integer, fraction) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        if integer.starts_with('-') && integer.len() > 1 {
            let rest_is_number = integer[1..].bytes().all(|b| b.is_ascii_digit())
                && fraction.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()));
            return Err(if rest_is_number {
                AmountError::Negative(text.to_owned())
            } else {
                invalid()
            });
        }
        if integer.is_empty() || !integer.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        if let Some(fraction) = fraction {
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            if fraction.len() > 2 {
                return Err(AmountError::TooManyDecimals(text.to_owned()));
            }
        }
        if integer.trim_start_matches('0').len() > MAX_INTEGER_DIGITS {
            return Err(AmountError::TooLarge(text.to_owned()));
        }
        Decimal::from_str_exact(text)
            .map(Amount)
            .map_err(|_| invalid())
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}
