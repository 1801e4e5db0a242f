//! When a failed delivery is tried again: a fixed list of delays (about 5 s,
//! 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, a day and more in all), each moved
//! by a random jitter so that the deliveries that failed together during an
//! endpoint's outage do not all come back in the same second, and never
//! before the endpoint's own `Retry-After`. After the last delay the delivery
//! is dead: kept, counted and replayable, no longer tried.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The default delays after the 1st, 2nd, … failed attempt, in seconds.
pub const DEFAULT_RETRY_DELAYS_SECS: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// The default jitter: each delay is moved by up to ±15 %.
pub const DEFAULT_JITTER_PERCENT: u32 = 15;

/// The default cap on an endpoint's `Retry-After`: a day.
pub const DEFAULT_MAX_RETRY_AFTER_SECS: u64 = 86_400;

/// The source of jitter: a number in `-1.0..=1.0` for each delay (values
/// outside are clamped). Injected so that tests can fix it; a closure
/// `Fn() -> f64` is one.
pub trait JitterDraw: Send + Sync {
    fn draw(&self) -> f64;
}

impl<F: Fn() -> f64 + Send + Sync> JitterDraw for F {
    fn draw(&self) -> f64 {
        self()
    }
}

/// The process's random generator, uniform over `-1.0..=1.0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomJitter;

impl JitterDraw for RandomJitter {
    fn draw(&self) -> f64 {
        use rand::RngExt;
        rand::rng().random_range(-1.0..=1.0)
    }
}

/// What follows a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again at (not before) this time.
    RetryAt(DateTime<Utc>),
    /// That was the last attempt.
    Dead,
}

/// The retry schedule of every endpoint.
#[derive(Clone)]
pub struct Schedule {
    delays: Vec<Duration>,
    jitter_percent: u32,
    max_retry_after: Duration,
    draw: Arc<dyn JitterDraw>,
}

impl Schedule {
    /// `delays[i]` follows the `i+1`-th failed attempt; `jitter_percent` is
    /// capped at 100 (a delay never goes below zero).
    pub fn new(delays: Vec<Duration>, jitter_percent: u32, max_retry_after: Duration) -> Schedule {
        Schedule {
            delays,
            jitter_percent: jitter_percent.min(100),
            max_retry_after,
            draw: Arc::new(RandomJitter),
        }
    }

    /// The same schedule with `draw` as its jitter source.
    pub fn with_draw(mut self, draw: impl JitterDraw + 'static) -> Schedule {
        self.draw = Arc::new(draw);
        self
    }

    /// Attempts a delivery gets at most: the first and one per delay.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX - 1)
            .saturating_add(1)
    }

    /// What follows the failure of attempt number `attempt_no` (the first
    /// attempt is 1) at `now`. `retry_after` is the endpoint's `Retry-After`
    /// (see [`parse_retry_after`]): the retry is not before it, capped at the
    /// schedule's maximum, but it never adds an attempt to the schedule.
    pub fn after_failure(
        &self,
        attempt_no: u32,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Next {
        let index = usize::try_from(attempt_no.saturating_sub(1)).unwrap_or(usize::MAX);
        let Some(delay) = (attempt_no >= 1).then(|| self.delays.get(index)).flatten() else {
            return Next::Dead;
        };
        let jittered = self.jitter(*delay);
        let wait = match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_retry_after)),
            None => jittered,
        };
        // A delay beyond chrono's range cannot come from validated settings;
        // were it to, the delivery waits as long as chrono can say.
        let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        Next::RetryAt(
            now.checked_add_signed(wait)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    /// `delay` moved by the drawn fraction of the jitter percentage.
    fn jitter(&self, delay: Duration) -> Duration {
        let draw = self.draw.draw();
        let draw = if draw.is_finite() {
            draw.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let factor = 1.0 + draw * f64::from(self.jitter_percent) / 100.0;
        // Whole milliseconds: the outbox keeps times to the millisecond, and
        // a fixed draw then gives an exact time (tests compare them).
        // `factor` is 0 to 2 (the percentage is capped at 100), so the
        // product is finite and not negative; `as` saturates beyond u64.
        Duration::from_millis((delay.as_secs_f64() * factor * 1000.0).round() as u64)
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("delays", &self.delays)
            .field("jitter_percent", &self.jitter_percent)
            .field("max_retry_after", &self.max_retry_after)
            .finish_non_exhaustive()
    }
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule::new(
            DEFAULT_RETRY_DELAYS_SECS
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            DEFAULT_JITTER_PERCENT,
            Duration::from_secs(DEFAULT_MAX_RETRY_AFTER_SECS),
        )
    }
}

/// A `Retry-After` header value (RFC 9110 §10.2.3) as a wait from `now`:
/// delay-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`; a
/// date already past is no wait). Anything else is ignored (`None`): an
/// endpoint's garbage never stops its retries. No cap here; the schedule
/// caps it.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}
