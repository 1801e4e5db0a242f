//! Card numbers in free text (`domain::pan::mask_card_numbers`): examples, and
//! the property that no Luhn-valid 13–19 digit run survives the mask.

use freedompay_receiver::domain::pan::{is_card_field, mask_card_numbers, masked_fields_json};
use freedompay_receiver::protocol::Message;
use proptest::prelude::*;

/// The Luhn check, written independently of the library's.
fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut d = u32::from(d);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// Every Luhn-valid window of 13–19 digits in `text`, digits joined across
/// any spaces and dashes (the masking rule's notion of a run).
fn card_numbers_in(text: &str) -> Vec<String> {
    let joined: String = text.chars().filter(|c| *c != ' ' && *c != '-').collect();
    let mut found = Vec::new();
    for run in joined.split(|c: char| !c.is_ascii_digit()) {
        let digits: Vec<u8> = run.bytes().map(|b| b - b'0').collect();
        for length in 13..=19 {
            for window in digits.windows(length) {
                if luhn(window) {
                    found.push(window.iter().map(|d| char::from(b'0' + d)).collect());
                }
            }
        }
    }
    found
}

/// A Luhn-valid card number of 13 to 19 digits.
fn card_number() -> impl Strategy<Value = Vec<u8>> {
    (12usize..=18)
        .prop_flat_map(|body| prop::collection::vec(0u8..10, body))
        .prop_map(|mut digits| {
            let check = (0..10u8)
                .find(|c| {
                    let mut all = digits.clone();
                    all.push(*c);
                    luhn(&all)
                })
                .unwrap();
            digits.push(check);
            digits
        })
}

/// The card number written with a space, a dash or nothing between digits.
fn written(digits: &[u8], separators: &[u8]) -> String {
    let mut out = String::new();
    for (i, d) in digits.iter().enumerate() {
        if i > 0 {
            match separators[(i - 1) % separators.len()] {
                1 => out.push(' '),
                2 => out.push('-'),
                _ => {}
            }
        }
        out.push(char::from(b'0' + d));
    }
    out
}

fn around() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z :;,.=]{0,12}",
        "[0-9 -]{0,12}",
        "[0-9a-zX]{0,6}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_card_number_survives_the_mask(
        pan in card_number(),
        separators in prop::collection::vec(0u8..3, 1..5),
        before in around(),
        after in around(),
    ) {
        let pan_text = written(&pan, &separators);
        let text = format!("{before}{pan_text}{after}");
        let masked = mask_card_numbers(&text);
        let digits: String = pan.iter().map(|d| char::from(b'0' + d)).collect();
        let joined: String = masked.chars().filter(|c| *c != ' ' && *c != '-').collect();
        prop_assert!(!joined.contains(&digits), "{} -> {}", text, masked);
        prop_assert!(card_numbers_in(&masked).is_empty(), "{} -> {}", text, masked);
        // Only digits change, and only into `X`.
        prop_assert_eq!(masked.chars().count(), text.chars().count());
        for (a, b) in text.chars().zip(masked.chars()) {
            prop_assert!(a == b || (a.is_ascii_digit() && b == 'X'), "{} -> {}", text, masked);
        }
    }

    #[test]
    fn no_card_number_reaches_the_event_fields(
        pan in card_number(),
        separators in prop::collection::vec(0u8..3, 1..5),
        before in "[a-zA-Z ]{0,8}",
        name in prop::sample::select(vec!["pg_description", "card_number", "note", "pg_card[pan]", "a[b][c]"]),
    ) {
        let pan_text = written(&pan, &separators);
        let message = Message::from_pairs([
            (name.to_owned(), format!("{before}{pan_text}")),
            (format!("x{pan_text}"), "1".to_owned()),
        ]).unwrap();
        let json = masked_fields_json(&message);
        prop_assert!(card_numbers_in(&json).is_empty(), "{}", json);
    }

    #[test]
    fn text_without_a_card_number_comes_back_unchanged(text in any::<String>()) {
        if card_numbers_in(&text).is_empty() {
            prop_assert_eq!(mask_card_numbers(&text), text.as_str());
        }
    }
}

#[test]
fn examples() {
    for (text, expected) in [
        ("4111111111111111", "411111XXXXXX1111"),
        (
            "card 4111 1111 1111 1111, thanks",
            "card 4111 11XX XXXX 1111, thanks",
        ),
        ("4111-1111-1111-1111", "4111-11XX-XXXX-1111"),
        ("pan=5500005555555559;", "pan=550000XXXXXX5559;"),
        // Glued to other digits: the whole run is masked.
        ("00004111111111111111", "000041XXXXXXXXXX1111"),
        // Not Luhn-valid as a whole, but 13 of its digits in a row are:
        // masked, since a card number may be glued to other digits.
        ("4111111111111112", "411111XXXXXX1112"),
        // No 13 to 19 digits in a row pass the check, too short, or already
        // masked: unchanged.
        ("4111111111112", "4111111111112"),
        ("order 123456789012", "order 123456789012"),
        ("2026-11-25 12:00:00", "2026-11-25 12:00:00"),
        ("5483-18XX-XXXX-0293", "5483-18XX-XXXX-0293"),
        ("+7 707 123 45 67", "+7 707 123 45 67"),
    ] {
        assert_eq!(mask_card_numbers(text), expected, "{text}");
    }
}

#[test]
fn card_fields_are_masked_by_name_even_when_not_luhn_valid() {
    for name in [
        "pg_card_pan",
        "pg_card_hash",
        "card_number",
        "pg_card_number",
        "pan",
    ] {
        assert!(is_card_field(name), "{name}");
    }
    // No 13 to 19 digits of this number in a row pass the Luhn check.
    let message = Message::from_pairs([
        ("card_number", "1234567890123400"),
        ("pg_card[pan]", "1234 5678 9012 3400"),
        ("pg_description", "1234567890123400"),
    ])
    .unwrap();
    assert_eq!(
        masked_fields_json(&message),
        r#"[["card_number","123456XXXXXX3400"],["pg_card",[["pan","1234 56XX XXXX 3400"]]],["pg_description","1234567890123400"]]"#
    );
}
