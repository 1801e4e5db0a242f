//! The `[rules]` section compiled into the domain's [`Rules`]: amounts
//! parsed, currencies upper-cased, the payment date's zone read. Here rather
//! than in `domain::rules`, so that the domain does not depend on the shape
//! of the configuration.

use chrono::FixedOffset;

use super::{ConfigError, RulesSettings};
use crate::domain::Rules;
use crate::protocol::Amount;

impl Rules {
    pub fn from_settings(settings: &RulesSettings) -> Result<Rules, ConfigError> {
        let amount = |key: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|text| {
                    text.parse::<Amount>()
                        .map_err(|e| ConfigError::new(key, e.to_string()))
                })
                .transpose()
        };
        Ok(Rules {
            require_known_order: settings.require_known_order,
            amount_must_match: settings.amount_must_match,
            currency_must_match: settings.currency_must_match,
            allowed_currencies: settings
                .allowed_currencies
                .iter()
                .map(|c| c.to_ascii_uppercase())
                .collect(),
            min_amount: amount("rules.min_amount", &settings.min_amount)?,
            max_amount: amount("rules.max_amount", &settings.max_amount)?,
            reject_expired: settings.reject_expired,
            reject_already_paid: settings.reject_already_paid,
            reject_testing_mode: settings.reject_testing_mode,
            payment_date_offset: settings
                .payment_date_utc_offset
                .parse::<FixedOffset>()
                .map_err(|e| ConfigError::new("rules.payment_date_utc_offset", e.to_string()))?,
        })
    }
}
