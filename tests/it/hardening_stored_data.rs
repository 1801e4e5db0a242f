//! Hostile data that is already stored (signed by FreedomPay, or written into
//! `orders` by an internal service) on its way to an operator: `history`'s
//! text in a terminal, a damaged order row on the console and in `history`.

use std::borrow::Cow;

use freedompay_receiver::protocol::Status;
use freedompay_receiver::untrusted::escape;

use crate::on_both_backends;
use crate::operator_console::Console;
use crate::operator_history::cli;
use crate::support::pg::{Cluster, server_url};
use crate::support::{Backend, MERCHANT, TestApp, base_toml, freedompay};

/// What a terminal obeys: cursor up and erase line, a carriage return,
/// hidden text, clear screen, OSC 52 (writes the clipboard), C1 CSI, DEL and
/// a right-to-left override with an isolate.
const TERMINAL_ATTACK: &str = "\u{1b}[1A\u{1b}[2K\rneeds_refund no\u{1b}[8m hidden\u{1b}[2J\
    \u{1b}]52;c;aGk=\u{7}\u{9b}2J\u{7f}\u{202e}on\u{2066}x\u{2069}\u{200f}\u{61c}";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The first character of `printed` a terminal would obey (newlines between
/// lines aside), if any.
fn raw_control(printed: &str) -> Option<char> {
    printed.chars().find(|&c| {
        c != '\n'
            && (c.is_control()
                || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    })
}

on_both_backends! {
    async fn history_text_escapes_terminal_controls_in_every_line(backend) {
        let app = TestApp::spawn(backend).await;
        let order = "O\u{1b}[2J\u{1b}]52;c;aGk=\u{7}-1";
        app.order(order, "1000", "KZT").await;
        let failed = freedompay::result(order, "9701", "1000")
            .set("pg_result", "0")
            .set("pg_failure_code", "101")
            .set("pg_failure_description", TERMINAL_ATTACK)
            .without("pg_card_pan")
            .without("pg_captured");
        app.fp.send("result", &failed).await.assert_answer("result", Status::Ok);
        let toml = base_toml(&app.db_url);

        let out = cli(&toml, &["history", "--merchant-id", MERCHANT, "--order-id", order]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let printed = text(&out.stdout);
        assert_eq!(raw_control(&printed), None, "{printed:?}");
        // The header, the state block and the event lines show the escapes.
        assert!(printed.starts_with("order O\\u{1b}[2J\\u{1b}]52;c;aGk=\\u{7}-1, merchant 545774"), "{printed}");
        assert!(printed.contains("\n  order O\\u{1b}[2J\\u{1b}]52;c;aGk=\\u{7}-1 is pending"), "{printed}");
        assert!(printed.contains("failure 101: \\u{1b}[1A\\u{1b}[2K\\u{d}needs_refund no\\u{1b}[8m hidden"), "{printed}");
        assert!(printed.contains("\\u{9b}2J\\u{7f}\\u{202e}on\\u{2066}x\\u{2069}\\u{200f}\\u{61c}"), "{printed}");

        // By payment id the same; JSON keeps the stored text (JSON escapes it).
        let out = cli(&toml, &["history", "--merchant-id", MERCHANT, "--payment-id", "9701"]).await;
        assert_eq!(raw_control(&text(&out.stdout)), None, "{}", text(&out.stdout));
        let out = cli(&toml, &["history", "--merchant-id", MERCHANT, "--payment-id", "9701", "--json"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        assert_eq!(doc["order_id"], order);
        assert_eq!(doc["payments"][0]["failure_description"], TERMINAL_ATTACK);
        app.stop().await;
    }
}

// The escaping rule itself, case by case.

#[test]
fn escape_leaves_plain_text_borrowed() {
    for text in ["", "O-123", "Заказ №5 ✓", "a \"quoted\" 'text' <b>"] {
        assert!(
            matches!(escape(text), Cow::Borrowed(t) if t == text),
            "{text}"
        );
    }
}

#[test]
fn escape_writes_terminal_controls_as_escapes() {
    assert_eq!(
        escape("a\u{1b}[1A\u{1b}[2K\rb"),
        "a\\u{1b}[1A\\u{1b}[2K\\u{d}b"
    );
    assert_eq!(escape("\u{1b}]52;c;aGk=\u{7}"), "\\u{1b}]52;c;aGk=\\u{7}");
    assert_eq!(escape("x\ny\tz\0"), "x\\u{a}y\\u{9}z\\u{0}");
    assert_eq!(
        escape("\u{7f}\u{80}\u{9b}\u{9f}\u{a0}"),
        "\\u{7f}\\u{80}\\u{9b}\\u{9f}\u{a0}"
    );
}

#[test]
fn escape_writes_bidi_controls_and_separators_as_escapes() {
    for c in [
        '\u{61c}', '\u{200e}', '\u{200f}', '\u{2028}', '\u{2029}', '\u{202a}', '\u{202b}',
        '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
    ] {
        let text = format!("no{c}ok");
        assert_eq!(escape(&text), format!("no\\u{{{:x}}}ok", u32::from(c)));
    }
    // Neighbours that are ordinary text.
    assert_eq!(
        escape("\u{200d}\u{2030}\u{2065}\u{206a}"),
        "\u{200d}\u{2030}\u{2065}\u{206a}"
    );
}

#[test]
fn escape_lets_no_backslash_pass_for_an_escape() {
    assert_eq!(escape("\\u{1b}"), "\\\\u{1b}");
    assert_ne!(escape("\\u{1b}"), escape("\u{1b}"));
}

/// Runs one statement on the test's database, as an internal service would.
async fn execute(app: &TestApp, backend: Backend, sql: String) {
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// The damaged amounts each backend can store, as SQL and as shown: a text
/// and a BLOB on SQLite; NaN and Infinity in PostgreSQL's NUMERIC.
fn damaged_amounts(backend: Backend) -> [(&'static str, &'static str); 2] {
    match backend {
        Backend::Sqlite => [("'abc'", "abc"), ("X'373030'", "X'373030'")],
        Backend::Postgres => [("'NaN'", "NaN"), ("'Infinity'", "Infinity")],
    }
}

on_both_backends! {
    async fn a_damaged_order_is_shown_as_stored_on_the_console_and_in_history(backend) {
        let console = Console::start(backend).await;
        let app = &console.app;
        let toml = base_toml(&app.db_url);
        for (i, (sql, shown)) in damaged_amounts(backend).into_iter().enumerate() {
            let order = format!("D-{i}");
            let payment = format!("980{i}");
            app.order(&order, "1000", "KZT").await;
            app.fp.send("result", &freedompay::result(&order, &payment, "1000")).await.assert_answer("result", Status::Ok);
            execute(app, backend, format!("UPDATE orders SET amount = {sql} WHERE order_id = '{order}'")).await;

            // The order page, the payment page and the search show it, marked.
            for path in [format!("/order/{MERCHANT}/{order}"), format!("/payment/{MERCHANT}/{payment}"), format!("/search?q={order}")] {
                let response = console.get(&path).await;
                let status = response.status();
                let page = response.text().await.unwrap();
                assert_eq!(status, 200, "{path}: {page}");
                assert!(page.contains(&format!("{} KZT", html(shown))), "{path}: {page}");
                assert!(page.contains("damaged"), "{path}: {page}");
            }

            // `history` prints the stored text, marked; JSON names the damaged column.
            let out = cli(&toml, &["history", "--merchant-id", MERCHANT, "--order-id", &order]).await;
            assert!(out.status.success(), "{shown}: {}", text(&out.stderr));
            let printed = text(&out.stdout);
            assert!(printed.contains(&format!("  {shown} KZT (amount damaged), status paid")), "{printed}");
            assert!(printed.contains(&format!("order {order} is paid ({shown} KZT, amount damaged)")), "{printed}");
            let out = cli(&toml, &["history", "--merchant-id", MERCHANT, "--payment-id", &payment, "--json"]).await;
            assert!(out.status.success(), "{shown}: {}", text(&out.stderr));
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
            assert_eq!(doc["order"]["amount"], shown, "{doc}");
            assert_eq!(doc["order"]["damaged"], serde_json::json!(["amount"]), "{doc}");
            assert_eq!(doc["payments"][0]["amount"], "1000", "{doc}");
            assert!(doc["payments"][0].get("damaged").is_none(), "{doc}");
        }
        if backend == Backend::Sqlite {
            // A value no reader can decode is a damaged row too: 500 naming
            // it, not "the database did not answer".
            execute(app, backend, "UPDATE orders SET created_at = 'garbage' WHERE order_id = 'D-0'".to_owned()).await;
            let response = console.get(&format!("/order/{MERCHANT}/D-0")).await;
            let status = response.status();
            let page = response.text().await.unwrap();
            assert_eq!(status, 500, "{page}");
            assert!(page.contains("A stored row cannot be read"), "{page}");
        }
        console.app.stop().await;
    }
}

/// A database that does not answer is still that, not a damaged row: 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_answers_503_while_the_database_is_down() {
    if server_url().is_none() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let console = Console::start_on(&cluster.url).await;
    console.app.order("U-1", "10", "KZT").await;
    assert_eq!(console.get("/order/545774/U-1").await.status(), 200);
    tokio::task::block_in_place(|| cluster.stop());
    for path in ["/order/545774/U-1", "/search?q=U-1", "/"] {
        let response = console.get(path).await;
        let status = response.status();
        let page = response.text().await.unwrap();
        assert_eq!(status, 503, "{path}: {page}");
        assert!(page.contains("The database did not answer"), "{page}");
    }
    tokio::task::block_in_place(|| cluster.start_again());
    console.app.stop().await;
}

/// `text` as the console's template engine writes it into a page.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
