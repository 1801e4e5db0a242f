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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_values_become_the_marker_in_place() {
        let stored = r#"[["pg_order_id","O-1"],["pg_user_phone","77071234567"],["pg_amount","100.50"],["pg_card_pan","5483-18XX-XXXX-0293"],["pg_card_owner","IVAN IVANOV"],["pg_user_contact_email","a@b.kz"]]"#;
        let out = expunge(stored, &[]).expect("changed");
        assert_eq!(
            out,
            r#"[["pg_order_id","O-1"],["pg_user_phone","[expunged]"],["pg_amount","100.50"],["pg_card_pan","5483-18XX-XXXX-0293"],["pg_card_owner","[expunged]"],["pg_user_contact_email","[expunged]"]]"#
        );
        assert_eq!(expunge(&out, &[]), None, "a second pass changes nothing");
    }

    #[test]
    fn merchant_listed_fields_count_and_others_do_not() {
        let stored = r#"[["customer_name","Aigerim"],["basket","3 items"]]"#;
        assert_eq!(expunge(stored, &[]), None);
        assert_eq!(
            expunge(stored, &["customer_name".to_owned()]).as_deref(),
            Some(r#"[["customer_name","[expunged]"],["basket","3 items"]]"#)
        );
    }

    #[test]
    fn text_of_another_shape_is_left_alone() {
        for odd in ["", "{}", r#"{"pg_user_phone":"1"}"#, "[1,2]", "not json"] {
            assert_eq!(expunge(odd, &[]), None, "{odd}");
        }
    }
}
