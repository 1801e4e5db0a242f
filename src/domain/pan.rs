//! Card numbers. FreedomPay sends masked PANs (`5483-18XX-XXXX-0293`), but the
//! receiver never relies on that: any card-number field is re-masked before it
//! is stored or logged, so a full PAN can never reach the database.

use crate::protocol::Message;

/// Whether a field name carries a card number (`pg_card_pan`, `pg_card_hash`).
pub fn is_card_field(name: &str) -> bool {
    name.contains("card_pan") || name.contains("card_hash") || name.ends_with("_pan")
}

/// Keeps the first 6 and last 4 digits, replaces every other digit with `X`,
/// and leaves separators and existing `X`s as they are. Values with 10 or
/// fewer digits are already masked (or not a PAN) and are returned unchanged.
pub fn mask_pan(value: &str) -> String {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if digits <= 10 {
        return value.to_owned();
    }
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen <= 6 || seen > digits - 4 {
                c
            } else {
                'X'
            }
        })
        .collect()
}

/// The message as `events.fields` JSON, card-number fields masked.
pub fn masked_fields_json(message: &Message) -> String {
    message
        .to_json_with(|name, value| {
            if is_card_field(name) {
                mask_pan(value)
            } else {
                value.to_owned()
            }
        })
        .to_string()
}
