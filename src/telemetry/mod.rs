//! What the service tells its operators: logs with `tracing` (human-readable
//! `pretty` or one JSON object per line, filtered by `log.level` or
//! `RUST_LOG`), Prometheus [`metrics`], and one span per [`request`]. Every
//! log line passes through the card-number [`mask`].

pub mod mask;
pub mod metrics;
pub mod process;
pub mod request;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(mask::MaskCardNumbers(std::io::stderr));
    // A second initialisation (tests) keeps the first subscriber. JSON lines
    // carry the current span's fields once (`span`), not again for every
    // span around it (`spans`): a request's line has one span, and the list
    // only repeated it.
    let _ = if settings.format == "json" {
        builder.json().with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
}
