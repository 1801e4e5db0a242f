//! Process figures for `/metrics`: CPU time, resident memory, open and
//! allowed file descriptors, start time. Read from Linux's `/proc/self` at
//! scrape time; elsewhere nothing is recorded.

use std::fs;

use super::metrics::{
    PROCESS_CPU, PROCESS_MAX_FDS, PROCESS_OPEN_FDS, PROCESS_RESIDENT_MEMORY, PROCESS_START_TIME,
};

/// Clock ticks per second of `/proc/<pid>/stat`: the kernel reports these
/// fields in USER_HZ, which is 100 on every Linux architecture in use.
const USER_HZ: f64 = 100.0;

/// Sets the process gauges from `/proc/self`; a figure that cannot be read is
/// left out.
pub fn record() {
    if let Some((cpu_ticks, start_ticks)) = stat_ticks() {
        metrics::gauge!(PROCESS_CPU).set(cpu_ticks as f64 / USER_HZ);
        if let Some(boot) = boot_time() {
            metrics::gauge!(PROCESS_START_TIME).set(boot as f64 + start_ticks as f64 / USER_HZ);
        }
    }
    if let Some(kib) = field_of("/proc/self/status", "VmRSS:") {
        metrics::gauge!(PROCESS_RESIDENT_MEMORY).set((kib * 1024) as f64);
    }
    if let Ok(entries) = fs::read_dir("/proc/self/fd") {
        metrics::gauge!(PROCESS_OPEN_FDS).set(entries.count() as f64);
    }
    if let Some(limit) = field_of("/proc/self/limits", "Max open files") {
        metrics::gauge!(PROCESS_MAX_FDS).set(limit as f64);
    }
}

/// User plus system CPU ticks, and the start time in ticks since boot.
fn stat_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: the
    // fields are counted from after its closing parenthesis (field 3 first).
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?, field(22)?))
}

/// Seconds since the epoch at boot (`btime` of `/proc/stat`).
fn boot_time() -> Option<u64> {
    field_of("/proc/stat", "btime")
}

/// The first number after `label` on the line that starts with it.
fn field_of(path: &str, label: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    let line = text.lines().find(|line| line.starts_with(label))?;
    line[label.len()..].split_whitespace().next()?.parse().ok()
}
