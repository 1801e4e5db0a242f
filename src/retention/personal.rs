//! Which received fields are the payer's personal data, and their removal
//! from a stored event: each such field keeps its name and place, its value
//! becomes [`MARKER`]. Amounts, ids, statuses and card masks stay (a card
//! number is stored masked already, `protocol::card_numbers`).

/// The fields FreedomPay sends that identify the payer: contact details,
/// the card holder's name, the payer's address.
pub const FIELDS: &[&str] = &[
    "pg_user_phone",
    "pg_user_contact_email",
    "pg_user_email",
    "pg_user_ip",
    "pg_card_owner",
];

/// What a personal value becomes.
pub const MARKER: &str = "[expunged]";

/// Whether `name` is personal: built in, or listed in
/// `retention.personal_fields`.
pub fn is_personal(name: &str, extra: &[String]) -> bool {
    FIELDS.contains(&name) || extra.iter().any(|e| e == name)
}

/// The stored fields (JSON text: an array of `[name, value]` pairs, as the
/// write path stores them) with every personal value replaced; `None` when
/// nothing changes (no personal field, or all already replaced) or the text
/// is not that shape (left as it is: the rewrite never guesses).
pub fn expunge(fields: &str, extra: &[String]) -> Option<String> {
    let mut pairs: Vec<(String, String)> = serde_json::from_str(fields).ok()?;
    let mut changed = false;
    for (name, value) in &mut pairs {
        if is_personal(name, extra) && value != MARKER {
            *value = MARKER.to_owned();
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    serde_json::to_string(&pairs).ok()
}
