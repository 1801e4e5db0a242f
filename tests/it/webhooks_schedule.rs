//! The retry schedule with a fixed jitter draw, and `Retry-After`.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use freedompay_receiver::config::Settings;
use freedompay_receiver::webhooks::{Next, Schedule, parse_retry_after};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
}

fn at(secs: f64) -> Next {
    Next::RetryAt(now() + chrono::Duration::milliseconds((secs * 1000.0).round() as i64))
}

const DEFAULTS: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

#[test]
fn webhooks_schedule_default_delays_then_dead() {
    let schedule = Schedule::default().with_draw(|| 0.0);
    assert_eq!(schedule.max_attempts(), 8);
    for (i, delay) in DEFAULTS.iter().enumerate() {
        let attempt = u32::try_from(i).unwrap() + 1;
        assert_eq!(
            schedule.after_failure(attempt, None, now()),
            at(*delay as f64),
            "after attempt {attempt}"
        );
    }
    assert_eq!(schedule.after_failure(8, None, now()), Next::Dead);
    assert_eq!(schedule.after_failure(u32::MAX, None, now()), Next::Dead);
    // A day and more in all.
    assert!(DEFAULTS.iter().sum::<u64>() > 86_400);
}

#[test]
fn webhooks_schedule_jitter_moves_each_delay_by_the_drawn_share() {
    let up = Schedule::default().with_draw(|| 1.0);
    let down = Schedule::default().with_draw(|| -1.0);
    let half = Schedule::default().with_draw(|| 0.5);
    assert_eq!(up.after_failure(2, None, now()), at(345.0));
    assert_eq!(down.after_failure(2, None, now()), at(255.0));
    assert_eq!(half.after_failure(1, None, now()), at(5.375));
    // A draw outside -1..=1 is clamped; one that is not a number is no jitter.
    let wild = Schedule::default().with_draw(|| 7.0);
    assert_eq!(wild.after_failure(2, None, now()), at(345.0));
    let nan = Schedule::default().with_draw(|| f64::NAN);
    assert_eq!(nan.after_failure(2, None, now()), at(300.0));
    // The configured percentage.
    let wide = Schedule::new(vec![Duration::from_secs(100)], 40, Duration::from_secs(60))
        .with_draw(|| -1.0);
    assert_eq!(wide.after_failure(1, None, now()), at(60.0));
    assert_eq!(wide.after_failure(2, None, now()), Next::Dead);
}

#[test]
fn webhooks_schedule_honours_retry_after_as_not_before_up_to_the_cap() {
    let schedule = Schedule::default().with_draw(|| 0.0);
    // Longer than the schedule's delay: waited for.
    assert_eq!(
        schedule.after_failure(1, Some(Duration::from_secs(120)), now()),
        at(120.0)
    );
    // Shorter: the schedule's delay stands.
    assert_eq!(
        schedule.after_failure(2, Some(Duration::from_secs(10)), now()),
        at(300.0)
    );
    // A year is capped at a day.
    assert_eq!(
        schedule.after_failure(1, Some(Duration::from_secs(365 * 86_400)), now()),
        at(86_400.0)
    );
    // It never adds attempts.
    assert_eq!(
        schedule.after_failure(8, Some(Duration::from_secs(5)), now()),
        Next::Dead
    );
}

#[test]
fn webhooks_schedule_parses_retry_after_seconds_dates_and_ignores_garbage() {
    assert_eq!(
        parse_retry_after("120", now()),
        Some(Duration::from_secs(120))
    );
    assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
    // An HTTP-date (IMF-fixdate) 90 s from now, and one already past.
    assert_eq!(
        parse_retry_after("Tue, 01 Dec 2026 10:01:30 GMT", now()),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        parse_retry_after("Tue, 01 Dec 2026 09:00:00 GMT", now()),
        Some(Duration::ZERO)
    );
    // Digits too many for any integer: very long, and the schedule caps it.
    let huge = parse_retry_after("99999999999999999999999", now()).unwrap();
    assert_eq!(
        Schedule::default()
            .with_draw(|| 0.0)
            .after_failure(1, Some(huge), now()),
        at(86_400.0)
    );
    for garbage in ["", "soon", "-5", "1.5", "12 s", "Tomorrow, 10:00"] {
        assert_eq!(parse_retry_after(garbage, now()), None, "{garbage:?}");
    }
}

#[test]
fn webhooks_schedule_comes_from_the_configuration() {
    let settings = Settings::from_toml(
        r#"
[[merchants]]
id = "545774"
secret_key = "very-secret-merchant-key"

[webhook_delivery]
retry_delays_secs = [1, 2]
jitter_percent = 10
max_retry_after_secs = 30
"#,
    )
    .unwrap();
    let schedule = settings.webhook_delivery.schedule().with_draw(|| 1.0);
    assert_eq!(schedule.max_attempts(), 3);
    assert_eq!(schedule.after_failure(1, None, now()), at(1.1));
    assert_eq!(schedule.after_failure(2, None, now()), at(2.2));
    assert_eq!(
        schedule.after_failure(2, Some(Duration::from_secs(3600)), now()),
        at(30.0)
    );
    assert_eq!(schedule.after_failure(3, None, now()), Next::Dead);
    // The defaults.
    let defaults = Settings::from_toml(
        "[[merchants]]\nid = \"545774\"\nsecret_key = \"very-secret-merchant-key\"\n",
    )
    .unwrap()
    .webhook_delivery;
    assert_eq!(defaults.retry_delays_secs, DEFAULTS);
    assert_eq!(defaults.jitter_percent, 15);
    assert_eq!(defaults.max_retry_after_secs, 86_400);
    assert_eq!(defaults.poll_interval_ms, 1000);
    assert_eq!(defaults.lease_secs, 60);
}
