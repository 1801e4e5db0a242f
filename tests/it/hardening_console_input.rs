//! The console with ids and queries that a plain path or query would
//! mangle: every link leads to the page of its own order, and an overlong
//! search is refused as such, not answered as an outage.

use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::operator_console::{Console, TOKEN};
use crate::support::freedompay;

/// Every `href` in `html`, as a browser reads it.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').expect("the link ends")].replace("&amp;", "&"))
        .collect()
}

/// The part of `page` from `start` to the next `end`.
fn section<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {page}"));
    let rest = &page[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// `text` as the console's template engine writes it into a page.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn form(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Console {
    /// Follows `href` as a browser would (the URL standard's parsing, which
    /// drops `.` and `..` segments, also as `%2E`) and returns the page.
    async fn follow(&self, href: &str) -> (u16, String) {
        let url = url::Url::parse(&self.base).unwrap().join(href).unwrap();
        let response = self
            .app
            .fp
            .http
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

on_both_backends! {
    async fn links_to_odd_order_ids_lead_to_their_own_page(backend) {
        let console = Console::start(backend).await;
        let app = &console.app;
        app.order("1001", "10", "KZT").await;
        app.order("545774", "10", "KZT").await;
        let odd = [".", "..", "10\t01", "10\r\n01", "a/b", "%2E", "?x=1#y", "50%", "1 2", "é.ü", "..."];
        for (i, id) in odd.into_iter().enumerate() {
            app.order(id, "10", "KZT").await;
            let payment = format!("99{i}");
            app.fp.send("check", &freedompay::check(id, &payment, "10")).await.assert_answer("check", Status::Ok);
            app.fp.send("result", &freedompay::result(id, &payment, "10")).await.assert_answer("result", Status::Ok);

            let heading = format!("<h1>Order {}</h1>", html(id));
            let search = console.page(&format!("/search?q={}", form(id))).await;
            let mut links = hrefs(section(&search, "<table id=\"orders\">", "</table>"));
            links.extend(hrefs(section(&search, "<table id=\"payments\">", "</table>")));
            // The event list's row of this check: its order and payment links.
            let events = console.page("/events?kind=check").await;
            let payment_cell = format!(">{payment}</a>");
            let row = events.split("<tr").find(|row| row.contains(&payment_cell)).expect("the check is listed");
            links.extend(hrefs(row));
            assert_eq!(links.len(), 5, "{id:?}: {links:?}");
            for href in links {
                let (status, page) = console.follow(&href).await;
                assert_eq!(status, 200, "{id:?} via {href}: {page}");
                assert!(page.contains(&heading), "{id:?} via {href} leads elsewhere: {page}");
            }
        }
        console.app.stop().await;
    }

    async fn an_overlong_search_is_refused_with_a_reason(backend) {
        let console = Console::start(backend).await;
        // A payment, so that the card mask suffix is compared at all.
        console.app.order("S-1", "10", "KZT").await;
        console.app.fp.send("result", &freedompay::result("S-1", "9931", "10")).await.assert_answer("result", Status::Ok);
        // 60,000 characters made SQLite refuse the LIKE pattern (503 before
        // the cap); 257, LIKE's wildcards among them, is one too many.
        for query in ["7".repeat(60_000), "%25_".repeat(128) + "7"] {
            let response = console.get(&format!("/search?q={query}")).await;
            let status = response.status();
            let page = response.text().await.unwrap();
            assert_eq!(status, 400, "{} bytes: {}", query.len(), page.get(page.len().saturating_sub(300)..).unwrap_or(&page));
            assert!(page.contains("The search text is longer than 256 characters"), "{page}");
        }
        let longest = "7".repeat(256);
        let page = console.page(&format!("/search?q={longest}")).await;
        assert!(page.contains(&format!("Results for <code>{longest}</code>")), "{page}");
        console.app.stop().await;
    }
}
