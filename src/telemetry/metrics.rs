//! Prometheus metrics, recorded with the `metrics` crate and rendered by
//! `metrics-exporter-prometheus` at `GET /metrics`. Every name is listed here,
//! and in the README.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests by `endpoint`, `answer` (`ok`/`rejected`/`error`/`none`) and HTTP `status`.
pub const REQUESTS: &str = "freedompay_requests_total";
/// Requests whose signature or merchant did not verify, by `endpoint` and `reason`.
pub const SIGNATURE_FAILURES: &str = "freedompay_signature_failures_total";
/// Repeated deliveries answered from the stored decision, by `endpoint`.
pub const DUPLICATES: &str = "freedompay_duplicates_total";
/// Request latency in seconds, by `endpoint`.
pub const DURATION: &str = "freedompay_request_duration_seconds";
/// Callbacks that could not be recorded because of the database, by `endpoint`.
pub const DATABASE_ERRORS: &str = "freedompay_database_errors_total";
/// Requests being handled right now.
pub const IN_FLIGHT: &str = "freedompay_requests_in_flight";
/// Payments taken although the rules refused them, still to be refunded.
pub const NEEDING_REFUND: &str = "freedompay_payments_needing_refund";

/// Reconciler task steps, by `task` and `outcome` (`done`, `again`, `failed`):
/// a growing `failed` count needs an operator.
pub const RECONCILE_TASKS: &str = "freedompay_reconcile_tasks_total";

/// Jobs (callbacks, redirects, unparsed deliveries) by how they were
/// committed: `group` (with their group, the normal case) or `one_by_one`
/// (their group's transaction failed, so each was retried alone).
pub const GROUP_CALLBACKS: &str = "freedompay_group_callbacks_total";

/// Write transactions that failed (a group of callbacks, or the readiness
/// probe), by `cause` (`disk_full`, `read_only`, `unavailable`,
/// `contention`, `data`, `other`).
pub const WRITE_FAILURES: &str = "freedompay_write_failures_total";

/// Webhook delivery attempts, by `endpoint` and `outcome`: `delivered` (a
/// 2xx), `failed` (tried again later), `dead` (no attempt left, or the
/// endpoint answered 410 Gone).
pub const WEBHOOK_DELIVERIES: &str = "freedompay_webhook_deliveries_total";
/// Webhook deliveries waiting to be sent, by configured `endpoint`, counted
/// in the database at scrape time.
pub const WEBHOOK_PENDING: &str = "freedompay_webhook_pending";
/// How long the oldest pending delivery has waited (since it was written or
/// replayed), by configured `endpoint`, read at scrape time; 0 when none.
pub const WEBHOOK_OLDEST_PENDING: &str = "freedompay_webhook_oldest_pending_seconds";
/// 1 for an endpoint that answered 410 Gone: this process sends it nothing
/// more until restarted (its deliveries stay pending).
pub const WEBHOOK_ENDPOINT_DISABLED: &str = "freedompay_webhook_endpoint_disabled";
/// Webhook attempt latency in seconds (request to the end of the answer), by
/// `endpoint`.
pub const WEBHOOK_ATTEMPT_SECONDS: &str = "freedompay_webhook_attempt_seconds";

/// Reconciler tasks given up (state `failed`), counted in the database at
/// scrape time: an alert source that survives restarts.
pub const RECONCILE_TASKS_FAILED: &str = "freedompay_reconcile_tasks_failed";

/// 1 while the reconciler runs, 0 when it is off or could not be set up (see
/// the error log at start).
pub const RECONCILER_RUNNING: &str = "freedompay_reconciler_running";

/// 1 when the service is ready at scrape time (what `/readyz` checks: the
/// database answers and the write path can commit), else 0.
pub const READY: &str = "freedompay_ready";

/// Always 1, labelled with the `version` of the running binary.
pub const BUILD_INFO: &str = "freedompay_build_info";

/// Database pool connections open (in use or idle), read at scrape time.
pub const DB_POOL_CONNECTIONS: &str = "freedompay_db_pool_connections";
/// Database pool connections idle, read at scrape time.
pub const DB_POOL_IDLE: &str = "freedompay_db_pool_idle_connections";

/// Process figures read from `/proc` at scrape time (Linux), with the names
/// Prometheus client libraries use.
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";

/// Repeated deliveries whose signed content differs from the first delivery
/// of their key (recorded with `events.conflict`), by `endpoint`.
pub const CONFLICTING_REPEATS: &str = "freedompay_conflicting_repeats_total";

/// Events flagged for an operator (`events.flag`), by `endpoint` and `flag`
/// (`unparseable`, `over_refund`, `payout_contradiction`, `bad_order_row`,
/// `bad_stored_row`, `early_notice`).
pub const FLAGGED_EVENTS: &str = "freedompay_flagged_events_total";

/// Repeats of a redirect back, counted instead of recorded, by `endpoint`.
pub const REDIRECT_REPEATS: &str = "freedompay_redirect_repeats_total";

/// Rows retention archived, deleted or rewrote, by `action` (`archived`,
/// `deleted`, `expunged`) and `table`.
pub const RETENTION_ROWS: &str = "freedompay_retention_rows_total";
/// Retention runs that stopped on an error.
pub const RETENTION_FAILURES: &str = "freedompay_retention_failures_total";
/// When the last complete retention run ended (Unix seconds; 0: never).
pub const RETENTION_LAST_SUCCESS: &str = "freedompay_retention_last_success_timestamp_seconds";
/// Age of the oldest event in the log (0 when empty).
pub const EVENTS_OLDEST_SECONDS: &str = "freedompay_events_oldest_seconds";
/// The event log's size on disk (PostgreSQL: its partitions and indexes;
/// SQLite: the database file).
pub const EVENT_LOG_BYTES: &str = "freedompay_event_log_bytes";
/// PostgreSQL: the partitions of `events`.
pub const EVENT_PARTITIONS: &str = "freedompay_event_partitions";
/// PostgreSQL: whole months after the current one with a partition ready.
pub const EVENT_PARTITIONS_AHEAD: &str = "freedompay_event_partitions_ahead_months";

/// Latency buckets: callbacks should take milliseconds; FreedomPay's timeout is ~30 s.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder (installed on first use) and its renderer.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Only an empty bucket list is refused, and BUCKETS is not empty; the
        // default buckets would still give a working exporter.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), &BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(WEBHOOK_ATTEMPT_SECONDS.to_owned()),
                    &BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let handle = builder.install_recorder().unwrap_or_else(|_| {
            // Another recorder is already installed (only possible when the
            // library is embedded): render this one's view regardless.
            PrometheusBuilder::new().build_recorder().handle()
        });
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}
