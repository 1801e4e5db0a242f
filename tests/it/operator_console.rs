//! The read-only console: its own loopback listener behind a token, pages
//! that escape what came from the internet, and, in a real headless
//! Chromium, the overview, a timeline and the Webhooks page.

use std::path::{Path, PathBuf};

use freedompay_receiver::config::Settings;
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::{Backend, MERCHANT, TestApp, freedompay};

pub const TOKEN: &str = "console-token-0123456789";
const HOSTILE: &str = "<script>alert('x')</script>";

/// A receiver with the console on, and the console's base URL.
pub struct Console {
    pub app: TestApp,
    pub base: String,
    _dir: tempfile::TempDir,
}

/// A loopback port free right now (the console binds it a moment later).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Console {
    pub async fn start(backend: Backend) -> Console {
        Self::start_with(backend, "").await
    }

    /// With `extra` settings (e.g. `[[webhooks]]` endpoints) after the base.
    pub async fn start_with(backend: Backend, extra: &str) -> Console {
        let extra = extra.to_owned();
        Self::start_app(|console| {
            TestApp::spawn_with(backend, move |toml| {
                toml.push_str(&extra);
                toml.push_str(&console);
            })
        })
        .await
    }

    /// On the database at `url`, which the test owns (e.g. a cluster it stops).
    pub async fn start_on(url: &str) -> Console {
        let toml = crate::support::base_toml(url);
        Self::start_app(|console| {
            let settings = Settings::from_toml(&(toml + &console)).unwrap();
            TestApp::spawn_settings(settings, None)
        })
        .await
    }

    /// Starts the app that `spawn` makes of the `[console]` settings.
    async fn start_app<F: Future<Output = TestApp>>(spawn: impl FnOnce(String) -> F) -> Console {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("console.token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let port = free_port();
        let app = spawn(format!(
            "\n[console]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\n",
            token_file.display()
        ))
        .await;
        Console {
            app,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.app
            .fp
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.text().await.unwrap()
    }

    /// An order paid with a check that carries a hostile merchant field, and
    /// a repeated result.
    async fn paid_order(&self, order: &str, payment: &str) {
        self.app.order(order, "1000", "KZT").await;
        let fp = &self.app.fp;
        fp.send(
            "check",
            &freedompay::check(order, payment, "1000").set("customer_ref", HOSTILE),
        )
        .await
        .assert_answer("check", Status::Ok);
        let result = freedompay::result(order, payment, "1000");
        fp.send("result", &result)
            .await
            .assert_answer("result", Status::Ok);
        fp.send("result", &result)
            .await
            .assert_answer("result", Status::Ok);
    }
}

on_both_backends! {
    async fn console_needs_the_token_and_is_never_cached(backend) {
        let console = Console::start(backend).await;
        let http = &console.app.fp.http;
        let url = format!("{}/", console.base);
        let anonymous = http.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), 401);
        assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic "));
        assert_eq!(anonymous.headers()["cache-control"], "no-store");
        let wrong = http.get(&url).bearer_auth("console-token-0123456788").send().await.unwrap();
        assert_eq!(wrong.status(), 401);
        let short = http.get(&url).bearer_auth("console").send().await.unwrap();
        assert_eq!(short.status(), 401);
        let wrong_basic = http.get(&url).basic_auth("operator", Some("nope")).send().await.unwrap();
        assert_eq!(wrong_basic.status(), 401);

        let bearer = console.get("/").await;
        assert_eq!(bearer.status(), 200);
        assert_eq!(bearer.headers()["cache-control"], "no-store");
        assert!(bearer.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        let basic = http.get(&url).basic_auth("anyone", Some(TOKEN)).send().await.unwrap();
        assert_eq!(basic.status(), 200);

        // Read-only: nothing but GET is routed, even with the token.
        let post = http.post(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(post.status(), 405);
        let anonymous_post = http.post(&url).send().await.unwrap();
        assert_eq!(anonymous_post.status(), 401);
        // The callback port does not serve the console.
        let on_callback_port = http.get(console.app.url("/search?q=1")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(on_callback_port.status(), 404);
        console.app.stop().await;
    }

    async fn console_pages_show_the_stored_facts_escaped(backend) {
        let console = Console::start(backend).await;
        console.paid_order("O-C1", "9601").await;
        let mask = console.app.store.payment(MERCHANT, "9601").await.unwrap().unwrap().card_mask.unwrap();

        let timeline = console.page("/order/545774/O-C1").await;
        assert!(timeline.contains("order O-C1 is paid (1000 KZT)"), "{timeline}");
        assert!(timeline.contains("nothing is waiting"), "{timeline}");
        assert!(timeline.contains(&mask), "{timeline}");
        assert!(timeline.contains("duplicate"), "{timeline}");
        assert!(timeline.contains("Order O-C1 can be paid"), "{timeline}");
        // The hostile merchant field is shown as text, never as markup.
        assert!(timeline.contains("&lt;script&gt;alert('x')&lt;/script&gt;"), "{timeline}");
        assert!(!timeline.contains("<script"), "{timeline}");
        assert_eq!(console.page("/payment/545774/9601").await, timeline);
        let missing = console.get("/order/545774/NO-SUCH").await;
        assert_eq!(missing.status(), 404);

        // Search by order id, payment id, and the card mask's last digits.
        let suffix = &mask[mask.len() - 4..];
        for query in ["O-C1", "9601", suffix] {
            let found = console.page(&format!("/search?q={query}")).await;
            assert!(found.contains("href=\"/payment/545774/9601\""), "{query}: {found}");
            assert!(found.contains("href=\"/order/545774/O-C1\""), "{query}: {found}");
        }
        let hostile = console.page("/search?q=%3Cscript%3E%25").await;
        assert!(!hostile.contains("<script"), "{hostile}");
        assert!(hostile.contains("&lt;script&gt;%"), "{hostile}");
        assert!(!hostile.contains("9601"), "a LIKE wildcard in the query matched: {hostile}");

        let overview = console.page("/").await;
        assert!(overview.contains("<strong id=\"total-callbacks\">3</strong>"), "{overview}");
        assert!(overview.contains("<strong id=\"total-repeats\">1</strong>"), "{overview}");
        assert!(overview.contains("<svg"), "{overview}");
        console.app.stop().await;
    }
}

/// Every link to the event list on a page, with the number it shows.
fn event_links(page: &str) -> Vec<(String, i64)> {
    let mut links = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<a href=\"/events?") {
        rest = &rest[start + "<a href=\"".len()..];
        let href_end = rest.find('"').unwrap();
        let href = rest[..href_end].replace("&amp;", "&");
        let text_start = rest.find('>').unwrap() + 1;
        let text_end = rest.find("</a>").unwrap();
        let text = &rest[text_start..text_end];
        // The number, with or without a <strong> around it.
        let digits: String = text
            .trim_end_matches("</strong>")
            .rsplit('>')
            .next()
            .unwrap()
            .to_owned();
        links.push((href, digits.parse().unwrap()));
        rest = &rest[text_end..];
    }
    links
}

/// The number in `<strong id="{id}">`.
fn strong(page: &str, id: &str) -> i64 {
    let open = format!("<strong id=\"{id}\">");
    let start = page
        .find(&open)
        .unwrap_or_else(|| panic!("no {id}: {page}"))
        + open.len();
    let end = start + page[start..].find('<').unwrap();
    page[start..end].parse().unwrap()
}

fn rows(list: &str) -> usize {
    list.matches("<tr class=\"event\">").count()
}

on_both_backends! {
    async fn every_overview_number_links_to_the_events_behind_it(backend) {
        let console = Console::start(backend).await;
        console.paid_order("O-E1", "9801").await;
        console.paid_order("O-E2", "9802").await;
        let fp = &console.app.fp;
        // A repeat with other content (a conflict) and a refund larger than
        // the payment (flagged).
        let conflicting = freedompay::result("O-E1", "9801", "1000").set("pg_amount", "999");
        fp.send("result", &conflicting).await.assert_answer("result", Status::Ok);
        fp.send("refund", &freedompay::refund("O-E2", "9802", "5000")).await.assert_answer("refund", Status::Ok);
        // A check about an order nobody created, whose id is markup.
        fp.send("check", &freedompay::check(HOSTILE, "9803", "10")).await;

        let overview = console.page("/").await;
        assert_eq!(strong(&overview, "total-callbacks"), 9, "{overview}");
        assert_eq!(strong(&overview, "total-repeats"), 3, "{overview}");
        assert_eq!(strong(&overview, "total-conflicts"), 1, "{overview}");
        assert_eq!(strong(&overview, "total-flagged"), 1, "{overview}");
        let links = event_links(&overview);
        // Totals, repeats, conflicts, flagged, and two per kind and answer.
        assert!(links.len() >= 4 + 2 * 3, "{links:?}");
        for (href, count) in &links {
            let list = console.page(href).await;
            assert_eq!(rows(&list) as i64, *count, "{href}: {list}");
        }

        // The filters, one by one and together.
        let repeats = console.page("/events?kind=result&answer=ok&duplicate=1").await;
        assert_eq!(rows(&repeats), 3, "{repeats}");
        let first = console.page("/events?kind=result&answer=ok&duplicate=0&since=24h").await;
        assert_eq!(rows(&first), 2, "{first}");
        assert!(first.contains("href=\"/order/545774/O-E2\""), "{first}");
        assert!(first.contains("href=\"/payment/545774/9802\""), "{first}");
        // Newest first.
        assert!(first.find("O-E2").unwrap() < first.find("O-E1").unwrap(), "{first}");
        let conflicts = console.page("/events?conflict=1").await;
        assert_eq!(rows(&conflicts), 1, "{conflicts}");
        assert!(conflicts.contains("conflict") && conflicts.contains("9801"), "{conflicts}");
        let flagged = console.page("/events?flagged=1").await;
        assert_eq!(rows(&flagged), 1, "{flagged}");
        assert!(flagged.contains("over_refund"), "{flagged}");
        assert_eq!(rows(&console.page("/events?kind=payout").await), 0);
        assert_eq!(rows(&console.page("/events?kind=result&answer=rejected").await), 0);
        assert!(console.page("/events").await.contains("at most 200 rows"));

        // A stored field with markup is shown as text on the list.
        let checks = console.page("/events?kind=check").await;
        assert_eq!(rows(&checks), 3, "{checks}");
        assert!(checks.contains("&lt;script&gt;alert('x')&lt;/script&gt;"), "{checks}");
        assert!(!checks.contains("<script"), "{checks}");

        // A filter that does not parse is refused, not ignored.
        for bad in ["/events?since=forever", "/events?since=0h", "/events?duplicate=yes"] {
            assert_eq!(console.get(bad).await.status(), 400, "{bad}");
        }
        console.app.stop().await;
    }

    async fn a_forged_request_shows_in_the_signature_failures_since_start(backend) {
        let console = Console::start(backend).await;
        let before = console.page("/").await;
        assert!(before.contains("Since the process started"), "{before}");
        let failures = strong(&before, "signature-failures");
        console
            .app
            .fp
            .send_as("check", freedompay::Encoding::Form, "forged", &freedompay::check("O-F", "9901", "10"))
            .await;
        let after = console.page("/").await;
        // Other servers in this test process count too: at least one more.
        assert!(strong(&after, "signature-failures") > failures, "{after}");
        // Nothing about it is stored.
        assert_eq!(strong(&after, "total-callbacks"), 0, "{after}");
        strong(&after, "database-errors");
        console.app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_refuses_to_start_off_loopback_or_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    for (console, expected) in [
        (
            "listen = \"0.0.0.0:0\"\ntoken_file = \"/dev/null\"",
            "console.listen",
        ),
        ("listen = \"127.0.0.1:0\"", "console.token_file"),
        (
            "listen = \"127.0.0.1:0\"\ntoken_file = \"/dev/null\"",
            "at least 16",
        ),
    ] {
        let toml = format!("{}\n[console]\n{console}\n", crate::support::base_toml(&db));
        let settings = freedompay_receiver::config::Settings::from_toml(&toml).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let error = freedompay_receiver::server::run(settings, listener, async {})
            .await
            .expect_err(console);
        assert!(error.to_string().contains(expected), "{console}: {error}");
    }
}

/// The headless browser: from `scripts/test`, or on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FPR_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    })
}

/// Runs headless Chromium on `url` with `args`; returns its standard output.
async fn browse(chromium: &Path, profile: &Path, args: &[String], url: &str) -> String {
    let out = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        let reason = std::env::var("FPR_TEST_CHROMIUM_MISSING")
            .unwrap_or_else(|_| "chromium is not installed".to_owned());
        // CI sets FPR_REQUIRE_BROWSER: there a missing browser fails the
        // test rather than passing it unseen.
        assert!(
            std::env::var_os("FPR_REQUIRE_BROWSER").is_none(),
            "FPR_REQUIRE_BROWSER is set but there is no browser: {reason}"
        );
        eprintln!("\n!!!!!!!! SKIPPED console_in_a_real_browser: {reason} !!!!!!!!\n");
        return;
    };
    let console = Console::start(Backend::Sqlite).await;
    console.paid_order("O-B1", "9701").await;
    console.paid_order("O-B2", "9702").await;
    let profile = tempfile::tempdir().unwrap();
    // Basic credentials in the URL: the browser sends them on the first request.
    let base = console
        .base
        .replace("http://", &format!("http://operator:{TOKEN}@"));

    let dom = browse(
        &chromium,
        profile.path(),
        &["--dump-dom".to_owned()],
        &format!("{base}/"),
    )
    .await;
    assert!(dom.contains("Overview: the last 24 hours"), "{dom}");
    assert!(
        dom.contains("<strong id=\"total-callbacks\">6</strong>"),
        "{dom}"
    );
    assert!(dom.contains("<svg"), "{dom}");
    let dom = browse(
        &chromium,
        profile.path(),
        &["--dump-dom".to_owned()],
        &format!("{base}/order/545774/O-B1"),
    )
    .await;
    assert!(dom.contains("order O-B1 is paid (1000 KZT)"), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script"), "{dom}");
    let dom = browse(
        &chromium,
        profile.path(),
        &["--dump-dom".to_owned()],
        &format!("{base}/webhooks"),
    )
    .await;
    assert!(dom.contains("<h1>Webhooks</h1>"), "{dom}");
    assert!(dom.contains("webhooks replay ID"), "{dom}");

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, path) in [
        ("overview", "/"),
        ("timeline", "/order/545774/O-B1"),
        ("webhooks", "/webhooks"),
    ] {
        let file = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&file);
        browse(
            &chromium,
            profile.path(),
            &[
                format!("--screenshot={}", file.display()),
                "--window-size=1280,1400".to_owned(),
            ],
            &format!("{base}{path}"),
        )
        .await;
        assert!(
            std::fs::metadata(&file).unwrap().len() > 1000,
            "{}",
            file.display()
        );
    }
    console.app.stop().await;
}

/// The signature-failure and 503 counts of the overview add up every series
/// of exactly one counter of the Prometheus text.
#[test]
fn process_counts_sum_every_series_of_one_counter_only() {
    use freedompay_receiver::console::process_counts::total;
    let text = "# TYPE freedompay_signature_failures_total counter\n\
        freedompay_signature_failures_total{endpoint=\"check\",reason=\"signature\"} 3\n\
        freedompay_signature_failures_total{endpoint=\"result\",reason=\"merchant\"} 2\n\
        freedompay_signature_failures_total_other 7\n\
        freedompay_database_errors_total 4\n";
    assert_eq!(total(text, "freedompay_signature_failures_total"), 5);
    assert_eq!(total(text, "freedompay_database_errors_total"), 4);
    assert_eq!(total(text, "freedompay_duplicates_total"), 0);
}
