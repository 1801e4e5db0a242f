//! Pure cores of the event log's upkeep, called directly: the SQLite
//! retention batch's pacer (`retention::pace`), the personal fields'
//! expunging (`retention::personal`), and the monthly partitions' bounds and
//! names (`store::postgres::partitions`).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use freedompay_receiver::retention::pace::{Pacer, TARGET};
use freedompay_receiver::retention::personal::expunge;
use freedompay_receiver::store::{Partition, month_name, month_start, next_month, parse_name};

// The pacer.

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn a_slow_batch_halves_the_next_down_to_the_fewest() {
    let mut pacer = Pacer::new(500, Some(TARGET));
    let sizes: Vec<u32> = (0..7)
        .map(|_| {
            pacer.took(MS(40));
            pacer.size()
        })
        .collect();
    assert_eq!(sizes, [250, 125, 62, 31, 16, 16, 16]);
}

#[test]
fn quick_batches_grow_back_by_a_quarter_up_to_batch() {
    let mut pacer = Pacer::new(500, Some(TARGET));
    pacer.took(MS(40));
    pacer.took(MS(40));
    assert_eq!(pacer.size(), 125);
    let sizes: Vec<u32> = (0..6)
        .map(|_| {
            pacer.took(MS(3));
            pacer.size()
        })
        .collect();
    assert_eq!(sizes, [156, 195, 243, 303, 378, 472]);
    pacer.took(MS(3));
    pacer.took(MS(3));
    assert_eq!(pacer.size(), 500);
}

#[test]
fn a_batch_near_the_target_keeps_its_size() {
    let mut pacer = Pacer::new(500, Some(TARGET));
    pacer.took(MS(40));
    for took in [8, 10, 15] {
        pacer.took(MS(took));
        assert_eq!(pacer.size(), 250, "{took} ms");
    }
}

#[test]
fn without_a_target_every_batch_takes_batch_rows() {
    let mut pacer = Pacer::new(500, None);
    pacer.took(MS(400));
    assert_eq!(pacer.size(), 500);
    let mut small = Pacer::new(4, Some(TARGET));
    small.took(MS(40));
    assert_eq!(
        small.size(),
        4,
        "never below `batch` when it is below the fewest"
    );
}

// Personal fields.

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

// Partitions.

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 13, 14, 15).single().unwrap()
}

#[test]
fn months_start_and_end_in_utc() {
    assert_eq!(
        month_start(at(2026, 12, 31)),
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        next_month(month_start(at(2026, 12, 31))),
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        next_month(month_start(at(2027, 1, 5))),
        Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap()
    );
}

#[test]
fn names_say_their_range() {
    let start = Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap();
    assert_eq!(month_name(start), "events_2027_03");
    assert_eq!(
        parse_name("events_2027_03"),
        Some(Partition {
            name: "events_2027_03".into(),
            lower: Some(start),
            upper: next_month(start)
        })
    );
    assert_eq!(
        parse_name("events_before_2027_03"),
        Some(Partition {
            name: "events_before_2027_03".into(),
            lower: None,
            upper: start
        })
    );
    for other in [
        "events",
        "events_2027",
        "events_2027_13",
        "events_27_03",
        "events_by_payment",
        "eventsx_2027_03",
    ] {
        assert_eq!(parse_name(other), None, "{other}");
    }
}
