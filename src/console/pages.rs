//! The console's pages, rendered with maud: every interpolated value is
//! HTML-escaped by the template engine (stored fields come from the
//! internet). Links carry ids as path segments in which every byte but
//! the unreserved letters, digits, `-`, `_` and `~` is percent-encoded
//! ([`segment`]); an id of `.` or `..` goes in the query string instead
//! ([`timeline_link`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Timelike, Utc};
use maud::{DOCTYPE, Markup, html};

use super::process_counts::ProcessCounts;
use crate::operator;
use crate::store::tables::Stored;
use crate::store::tables::events::EventRow;
use crate::store::tables::payments::PaymentRow;
use crate::store::{
    DEAD_LIST_LIMIT, DeadDelivery, EVENT_LIST_LIMIT, EventFilter, History, LIST_LIMIT, Overview,
    SearchResults, WebhookOverview,
};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}\
    nav{margin-bottom:1rem}nav a{margin-right:1rem}\
    table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
    th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
    th{background:#f3f3f3}.num{text-align:right}.dup{color:#a60}.bad{color:#b00}\
    code{font-size:.9em}details{margin:.25rem 0}";

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · freedompay-receiver console" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                nav {
                    a href="/" { "Overview" }
                    a href="/webhooks" { "Webhooks" }
                    form method="get" action="/search" style="display:inline" {
                        input type="search" name="q" placeholder="order id, payment id, card suffix";
                        " "
                        button type="submit" { "Search" }
                    }
                }
                h1 { (title) }
                (body)
            }
        }
    }
}

/// `text` as one path segment: every byte percent-encoded but ALPHA, DIGIT,
/// `-`, `_` and `~`. By hand, because a URL library's segment encoder keeps
/// `.` (so `.` and `..` are path steps) and drops TAB, CR and LF (so
/// `10\t01` becomes `1001`, another order).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The timeline of `id` under `/{kind}/{merchant}/{id}`. An id of `.` or
/// `..` goes in the query string (`/{kind}/{merchant}?id=..`): the URL
/// standard removes such a path segment even percent-encoded (`%2E`), so a
/// browser would never ask for it.
fn timeline_link(kind: &str, merchant: &str, id: &str) -> String {
    if id == "." || id == ".." {
        format!("/{kind}/{}?id={}", segment(merchant), segment(id))
    } else {
        format!("/{kind}/{}/{}", segment(merchant), segment(id))
    }
}

fn order_link(merchant: &str, order_id: &str) -> String {
    timeline_link("order", merchant, order_id)
}

fn payment_link(merchant: &str, payment_id: &str) -> String {
    timeline_link("payment", merchant, payment_id)
}

/// A link to the event list of the last 24 hours with `filters`, its query
/// string form-encoded.
fn events_link(filters: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("since", "24h");
    for (name, value) in filters {
        query.append_pair(name, value);
    }
    format!("/events?{}", query.finish())
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn opt(value: Option<&str>) -> &str {
    value.filter(|v| !v.is_empty()).unwrap_or("-")
}

/// A record's damage note, marked; nothing for an intact record.
fn damage(note: &str) -> Markup {
    html! {
        @if !note.is_empty() { span class="bad" { (note) } }
    }
}

/// The cells every list of payments starts with: merchant, order and
/// payment (linked), amount.
fn payment_cells(p: &Stored<PaymentRow>) -> Markup {
    html! {
        td { (p.merchant_id) }
        td { a href=(order_link(&p.merchant_id, &p.order_id)) { (p.order_id) } }
        td { a href=(payment_link(&p.merchant_id, &p.payment_id)) { (p.payment_id) } }
        td class="num" { (p.amount) " " (p.currency) (damage(&p.damage_note())) }
    }
}

pub fn error_page(message: &str) -> Markup {
    page("Not available", html! { p { (message) } })
}

/// The 24 hours ending with the current one, oldest first, as `YYYY-MM-DDTHH`.
fn last_hours(now: DateTime<Utc>) -> Vec<String> {
    let this_hour = now
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .unwrap_or(now);
    (0..24)
        .rev()
        .map(|back| {
            (this_hour - Duration::hours(back))
                .format("%Y-%m-%dT%H")
                .to_string()
        })
        .collect()
}

/// Callbacks per hour as an inline SVG bar chart (first deliveries and repeats).
fn chart(overview: &Overview) -> Markup {
    let hours = last_hours(Utc::now());
    let mut per_hour: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for row in &overview.hourly {
        let entry = per_hour.entry(row.hour.as_str()).or_default();
        if row.duplicate {
            entry.1 += row.count;
        } else {
            entry.0 += row.count;
        }
    }
    let max = per_hour
        .values()
        .map(|(a, b)| a + b)
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height, bar) = (600_i64, 120_i64, 25_i64);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(width) height=(height + 20)
            viewBox={ "0 0 " (width) " " (height + 20) } role="img"
            aria-label="callbacks per hour, last 24 hours" {
            @for (i, hour) in hours.iter().enumerate() {
                @let (first, repeats) = per_hour.get(hour.as_str()).copied().unwrap_or((0, 0));
                @let x = i as i64 * bar;
                @let first_h = first * height / max;
                @let repeat_h = repeats * height / max;
                g {
                    title { (hour) ":00 UTC: " (first) " callbacks, " (repeats) " repeats" }
                    rect x=(x + 2) y=(height - first_h - repeat_h) width=(bar - 4) height=(repeat_h) fill="#d9a441" {}
                    rect x=(x + 2) y=(height - first_h) width=(bar - 4) height=(first_h) fill="#3b73b9" {}
                }
                @if i % 6 == 0 {
                    text x=(x + 2) y=(height + 15) font-size="11" { (hour.get(11..).unwrap_or("")) ":00" }
                }
            }
        }
    }
}

/// `12.3 MiB`.
fn mebibytes(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn overview(o: &Overview, process: &ProcessCounts) -> Markup {
    // kind -> answer -> (first deliveries, repeats)
    let mut by_kind: BTreeMap<&str, BTreeMap<&str, (i64, i64)>> = BTreeMap::new();
    let (mut total, mut repeats) = (0, 0);
    for row in &o.hourly {
        let answer = row.answer_status.as_deref().unwrap_or("none");
        let cell = by_kind
            .entry(&row.kind)
            .or_default()
            .entry(answer)
            .or_default();
        if row.duplicate {
            cell.1 += row.count;
            repeats += row.count;
        } else {
            cell.0 += row.count;
        }
        total += row.count;
    }
    html! {
        (page("Overview: the last 24 hours", html! {
            p {
                "Callbacks: " a href=(events_link(&[])) { strong id="total-callbacks" { (total) } }
                ", of them repeats of an earlier delivery: "
                a href=(events_link(&[("duplicate", "1")])) { strong id="total-repeats" { (repeats) } }
                ", repeats whose content differs (conflicts): "
                a href=(events_link(&[("conflict", "1")])) { strong id="total-conflicts" { (o.marked.conflicts) } }
                ", flagged for an operator: "
                a href=(events_link(&[("flagged", "1")])) { strong id="total-flagged" { (o.marked.flagged) } }
                ". Payments needing a refund: "
                a href="#needing-refund" { strong id="count-needing-refund" { (o.needing_refund.len()) } }
                ". Tasks failed or overdue: "
                a href="#tasks" { strong id="count-tasks" { (o.tasks_needing_attention.len()) } }
                "."
            }
            p id="event-log" {
                "The event log: "
                strong id="log-size" { (mebibytes(o.log.bytes)) }
                " on disk, oldest event received "
                strong id="log-oldest" {
                    (o.log.oldest.map_or("never (empty)".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string()))
                }
                @if o.log.partitions > 0 {
                    ", in " strong id="log-partitions" { (o.log.partitions) } " monthly partitions ("
                    strong id="log-months-ahead" { (o.log.months_ahead) } " months ahead ready)"
                }
                ". What is kept and for how long: README, \"Keeping and deleting data\"."
            }
            p id="process-counts" {
                "Since the process started (counted in memory, never stored): requests whose \
                 signature or merchant did not verify: "
                strong id="signature-failures" { (process.signature_failures) }
                ", callbacks answered 503 because the database failed: "
                strong id="database-errors" { (process.database_errors) }
                "."
            }
            h2 { "Callbacks per hour (UTC)" }
            (chart(o))
            h2 { "By kind and answer" }
            table id="by-kind" {
                tr { th { "kind" } th { "answer" } th { "first deliveries" } th { "repeats" } }
                @for (kind, answers) in &by_kind {
                    @for (answer, (first, dup)) in answers {
                        tr {
                            td { (kind) } td { (answer) }
                            td class="num" {
                                a href=(events_link(&[("kind", kind), ("answer", answer), ("duplicate", "0")])) { (first) }
                            }
                            td class="num dup" {
                                a href=(events_link(&[("kind", kind), ("answer", answer), ("duplicate", "1")])) { (dup) }
                            }
                        }
                    }
                }
                @if by_kind.is_empty() { tr { td colspan="4" { "none" } } }
            }
            h2 id="needing-refund" { "Payments needing a refund" }
            table {
                tr { th { "merchant" } th { "order" } th { "payment" } th { "amount" } th { "refunded" } th { "card" } th { "updated" } }
                @for p in &o.needing_refund {
                    tr {
                        (payment_cells(p))
                        td class="num" { (p.refunded_amount) }
                        td { (opt(p.card_mask.as_deref())) }
                        td { (time(p.updated_at)) }
                    }
                }
                @if o.needing_refund.is_empty() { tr { td colspan="7" { "none" } } }
            }
            h2 id="tasks" { "Tasks failed or overdue" }
            table {
                tr { th { "task" } th { "merchant" } th { "subject" } th { "state" } th { "attempts" } th { "due" } th { "last error" } }
                @for t in &o.tasks_needing_attention {
                    @let href = if t.task == "payment_status" || t.task == "refund" {
                        payment_link(&t.merchant_id, &t.subject_id)
                    } else {
                        order_link(&t.merchant_id, &t.subject_id)
                    };
                    tr {
                        td { "#" (t.id) " " (t.task) }
                        td { (t.merchant_id) }
                        td { a href=(href) { (t.subject_id) } }
                        td class=(if t.state == "failed" { "bad" } else { "" }) { (t.state) }
                        td class="num" { (t.attempts) }
                        td { (time(t.next_attempt_at)) }
                        td { (opt(t.last_error.as_deref())) }
                    }
                }
                @if o.tasks_needing_attention.is_empty() { tr { td colspan="7" { "none" } } }
            }
            p { small { "Lists show at most " (LIST_LIMIT) " rows. Signature failures and 503 answers are not stored; the process also reports them at /metrics." } }
        }))
    }
}

/// The filter in words, for the event list's heading.
fn describe(filter: &EventFilter) -> String {
    let mut parts = vec![format!("received in the last {} h", filter.since_hours)];
    if let Some(kind) = &filter.kind {
        parts.push(format!("kind {kind}"));
    }
    match &filter.answer {
        Some(Some(answer)) => parts.push(format!("answered {answer}")),
        Some(None) => parts.push("without an answer".to_owned()),
        None => {}
    }
    match filter.duplicate {
        Some(true) => parts.push("repeats only".to_owned()),
        Some(false) => parts.push("first deliveries only".to_owned()),
        None => {}
    }
    if filter.conflict {
        parts.push("conflicting repeats only".to_owned());
    }
    if filter.flagged {
        parts.push("flagged only".to_owned());
    }
    parts.join(", ")
}

pub fn events(filter: &EventFilter, rows: &[EventRow]) -> Markup {
    html! {
        (page("Events", html! {
            p id="event-filter" { "Events " (describe(filter)) ", newest first, at most " (EVENT_LIST_LIMIT) " rows." }
            @if rows.len() as i64 >= EVENT_LIST_LIMIT {
                p class="bad" { "The list is cut at " (EVENT_LIST_LIMIT) " rows: older matching events are not shown." }
            }
            table id="events" {
                tr { th { "received (UTC)" } th { "merchant" } th { "kind" } th { "order" } th { "payment" } th { "answer" } th { "marks" } }
                @for e in rows {
                    tr class="event" {
                        td { (time(e.received_at)) }
                        td { (e.merchant_id) }
                        td { (e.kind) }
                        td { @match &e.order_id {
                            Some(order) => a href=(order_link(&e.merchant_id, order)) { (order) },
                            None => "-",
                        } }
                        td { @match &e.payment_id {
                            Some(payment) => a href=(payment_link(&e.merchant_id, payment)) { (payment) },
                            None => "-",
                        } }
                        td { (opt(e.answer_status.as_deref())) }
                        td {
                            @if e.duplicate { span class="dup" { "duplicate " } }
                            @if e.conflict { span class="bad" { "conflict " } }
                            @if let Some(flag) = &e.flag { span class="bad" { "flag: " (flag) } }
                        }
                    }
                }
                @if rows.is_empty() { tr { td colspan="7" { "none" } } }
            }
        }))
    }
}

pub fn search(query: &str, results: &SearchResults) -> Markup {
    html! {
        (page("Search", html! {
            form method="get" action="/search" {
                input type="search" name="q" value=(query) placeholder="order id, payment id, card suffix";
                " "
                button type="submit" { "Search" }
            }
            @if !query.trim().is_empty() {
                p { "Results for " code { (query) } ":" }
                h2 { "Orders" }
                table id="orders" {
                    tr { th { "merchant" } th { "order" } th { "amount" } th { "status" } th { "updated" } }
                    @for o in &results.orders {
                        tr {
                            td { (o.merchant_id) }
                            td { a href=(order_link(&o.merchant_id, &o.order_id)) { (o.order_id) } }
                            td class="num" { (o.amount) " " (o.currency) (damage(&o.damage_note())) }
                            td { (o.status) }
                            td { (time(o.updated_at)) }
                        }
                    }
                    @if results.orders.is_empty() { tr { td colspan="5" { "none" } } }
                }
                h2 { "Payments" }
                table id="payments" {
                    tr { th { "merchant" } th { "order" } th { "payment" } th { "amount" } th { "status" } th { "card" } th { "refunded" } }
                    @for p in &results.payments {
                        tr {
                            (payment_cells(p))
                            td { (p.status) @if p.needs_refund { " " span class="bad" { "needs refund" } } }
                            td { (opt(p.card_mask.as_deref())) }
                            td class="num" { (p.refunded_amount) }
                        }
                    }
                    @if results.payments.is_empty() { tr { td colspan="7" { "none" } } }
                }
            }
        }))
    }
}

/// The webhook messages of the event `event_id`, each with its deliveries.
fn event_webhooks(h: &History, event_id: i64) -> Markup {
    html! {
        @for m in h.webhooks_of(event_id) {
            div class="webhook" {
                code { (m.id) } " " (m.message_type)
                ul {
                    @for d in &m.deliveries {
                        li {
                            (d.endpoint) ": "
                            span class=[(d.state == "dead").then_some("bad")] { (d.state) }
                            ", attempts " (d.attempts) ", last " (operator::last_answer(d))
                            @if let Some(at) = d.delivered_at { ", delivered " (time(at)) }
                            @if d.state == "pending" { ", next " (time(d.next_attempt_at)) }
                        }
                    }
                    @if m.deliveries.is_empty() { li { "no endpoint wanted it" } }
                }
            }
        }
    }
}

pub fn timeline(h: &History) -> Markup {
    let title = format!("Order {}", h.order_id.as_deref().unwrap_or("(unknown)"));
    html! {
        (page(&title, html! {
            p { "Merchant " (h.merchant_id) ". Times in UTC." }
            h2 { "State" }
            ul id="summary" {
                @for line in operator::summary(h) { li { (line) } }
            }
            h2 { "Order" }
            @if let Some(o) = &h.order {
                table id="order" {
                    tr { th { "amount" } th { "status" } th { "expires" } th { "paid by" } th { "created" } th { "updated" } }
                    tr {
                        td class="num" { (o.amount) " " (o.currency) (damage(&o.damage_note())) }
                        td { (o.status) }
                        td { (o.expires_at.as_ref().map_or_else(|| "-".to_owned(), |at| at.shown(|at| time(*at)))) }
                        td { (opt(o.paid_payment_id.as_ref().map(ToString::to_string).as_deref())) }
                        td { (time(o.created_at)) }
                        td { (time(o.updated_at)) }
                    }
                }
            } @else {
                p { "Not in the orders table." }
            }
            h2 { "Payments" }
            table id="payments" {
                tr { th { "payment" } th { "status" } th { "amount" } th { "card" } th { "captured" } th { "needs refund" } th { "refunded" } th { "failure" } }
                @for p in &h.payments {
                    tr {
                        td { (p.payment_id) @if p.testing_mode { " (test)" } }
                        td { (p.status) }
                        td class="num" { (p.amount) " " (p.currency) (damage(&p.damage_note())) }
                        td { (opt(p.card_mask.as_deref())) }
                        td { (p.captured.map_or("-", |c| if c { "yes" } else { "no" })) }
                        td class=(if p.needs_refund { "bad" } else { "" }) { (if p.needs_refund { "yes" } else { "no" }) }
                        td class="num" { (p.refunded_amount) }
                        td { (opt(p.failure_code.as_deref())) " " (opt(p.failure_description.as_deref())) }
                    }
                }
                @if h.payments.is_empty() { tr { td colspan="8" { "none" } } }
            }
            @if let Some(p) = &h.payout {
                h2 { "Payout" }
                p { (p.order_id) ": " (p.status) ", amount " (opt(p.amount.as_deref())) (damage(&p.damage_note())) ", card " (opt(p.card_mask.as_deref())) }
            }
            h2 { "Events" }
            table id="events" {
                tr { th { "received" } th { "#" } th { "kind" } th { "payment" } th { "answer" } th { "repeat" } th { "signature" } th { "fields" } th { "webhooks" } }
                @for e in &h.events {
                    tr {
                        td { (time(e.received_at)) }
                        td class="num" { (e.id) }
                        td { (e.kind) }
                        td { (opt(e.payment_id.as_deref())) }
                        td { (opt(e.answer_status.as_deref())) " " (e.answer_description.as_deref().unwrap_or("")) }
                        td class="dup" {
                            @if e.duplicate { "duplicate" }
                            @if e.conflict { " conflict" }
                            @if let Some(flag) = &e.flag { br; "flagged: " (flag) }
                        }
                        td { (opt(e.signature_variant.as_deref())) " / " (opt(e.key_label.as_deref())) }
                        td {
                            @for (name, value) in operator::key_fields(e) { code { (name) "=" (value) } " " }
                            details {
                                summary { "all fields" }
                                table {
                                    @for (name, value) in operator::pairs(e) { tr { td { code { (name) } } td { code { (value) } } } }
                                }
                            }
                        }
                        td { (event_webhooks(h, e.id)) }
                    }
                }
                @if h.events.is_empty() { tr { td colspan="9" { "none" } } }
            }
            h2 { "Outbound tasks" }
            table id="tasks" {
                tr { th { "#" } th { "task" } th { "subject" } th { "state" } th { "stage" } th { "amount" } th { "attempts" } th { "next attempt" } th { "last error" } th { "outcome" } }
                @for t in &h.tasks {
                    tr {
                        td class="num" { (t.id) }
                        td { (t.task) }
                        td { (t.subject_id) }
                        td class=(if t.state == "failed" { "bad" } else { "" }) { (t.state) }
                        td { (opt(t.stage.as_deref())) }
                        td class="num" { (opt(t.amount.as_deref())) (damage(&t.damage_note())) }
                        td class="num" { (t.attempts) }
                        td { @if t.state == "open" { (time(t.next_attempt_at)) } @else { "-" } }
                        td { (opt(t.last_error.as_deref())) }
                        td { (opt(t.outcome.as_deref())) }
                    }
                }
                @if h.tasks.is_empty() { tr { td colspan="10" { "none" } } }
            }
        }))
    }
}

/// An age in seconds, in words: `45 s`, `12 min 5 s`, `3 h 12 min`, `2 d 4 h`.
fn age(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{s} s")
    }
}

/// A dead delivery's subject, linked to its timeline when it is a payment
/// or a payout (an order); an event's flag without either, as text.
fn subject(d: &DeadDelivery) -> Markup {
    let of = |kind: &str| {
        d.ordering_key
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix(d.merchant_id.as_str()))
            .and_then(|rest| rest.strip_prefix(':'))
    };
    html! {
        @if let Some(payment) = of("payment:") {
            "payment " a href=(payment_link(&d.merchant_id, payment)) { (payment) }
        } @else if let Some(order) = of("payout:") {
            "payout of order " a href=(order_link(&d.merchant_id, order)) { (order) }
        } @else {
            (d.ordering_key)
        }
    }
}

/// The Webhooks page: per endpoint (those `configured`, then any other
/// the outbox names, marked), the deliveries settled in the last 24 hours,
/// those pending now and the oldest's age; then the dead deliveries.
pub fn webhooks(w: &WebhookOverview, configured: &[String]) -> Markup {
    let mut endpoints: Vec<&str> = configured.iter().map(String::as_str).collect();
    let stored = w
        .settled
        .iter()
        .map(|c| c.endpoint.as_str())
        .chain(w.pending.iter().map(|p| p.endpoint.as_str()))
        .chain(w.dead.iter().map(|d| d.endpoint.as_str()));
    for name in stored {
        if !endpoints.contains(&name) {
            endpoints.push(name);
        }
    }
    let settled = |endpoint: &str, state: &str| -> i64 {
        w.settled
            .iter()
            .filter(|c| c.endpoint == endpoint && c.state == state)
            .map(|c| c.count)
            .sum()
    };
    html! {
        (page("Webhooks", html! {
            p {
                "Read-only. To send deliveries again, run "
                code { "freedompay-receiver webhooks replay ID" }
                " (or " code { "--endpoint NAME --since TIME --state dead" } ") on the command line; "
                code { "webhooks show ID" } " prints every attempt of a message."
            }
            h2 { "Endpoints" }
            table id="endpoints" {
                tr { th { "endpoint" } th { "delivered (24 h)" } th { "dead (24 h)" } th { "pending now" } th { "oldest pending" } }
                @for endpoint in &endpoints {
                    @let pending = w.pending.iter().find(|p| p.endpoint == *endpoint);
                    tr class="endpoint" {
                        td {
                            (endpoint)
                            @if !configured.iter().any(|c| c == endpoint) {
                                " " span class="bad" { "(not configured: its deliveries are kept, never sent)" }
                            }
                        }
                        td class="num delivered" { (settled(endpoint, "delivered")) }
                        td class=(if settled(endpoint, "dead") > 0 { "num dead bad" } else { "num dead" }) { (settled(endpoint, "dead")) }
                        td class="num pending" { (pending.map_or(0, |p| p.count)) }
                        td class="oldest" { (pending.map_or_else(|| "-".to_owned(), |p| age(p.oldest_secs))) }
                    }
                }
                @if endpoints.is_empty() { tr { td colspan="5" { "no endpoint configured, nothing stored" } } }
            }
            h2 id="dead" { "Dead deliveries" }
            p { "Newest first, at most " (DEAD_LIST_LIMIT) " rows; a replayed delivery leaves this list." }
            @if w.dead.len() as i64 >= DEAD_LIST_LIMIT {
                p class="bad" { "The list is cut at " (DEAD_LIST_LIMIT) " rows: older dead deliveries are not shown (" code { "webhooks list --state dead" } " lists up to 500)." }
            }
            table id="dead-deliveries" {
                tr { th { "died (UTC)" } th { "message" } th { "type" } th { "endpoint" } th { "merchant" } th { "subject" } th { "attempts" } th { "last error" } }
                @for d in &w.dead {
                    tr class="dead" {
                        td { (time(d.died_at)) }
                        td { code { (d.message_id) } }
                        td { (d.message_type) }
                        td { (d.endpoint) }
                        td { (d.merchant_id) }
                        td { (subject(d)) }
                        td class="num" { (d.attempts) }
                        td class="bad" {
                            @match (d.last_error.as_deref(), d.last_status) {
                                (Some(error), _) if !error.is_empty() => { (error) }
                                (_, Some(status)) => { "HTTP " (status) }
                                _ => { "-" }
                            }
                        }
                    }
                }
                @if w.dead.is_empty() { tr { td colspan="8" { "none" } } }
            }
        }))
    }
}
