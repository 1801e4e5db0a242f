//! The console with ids that a plain path would mangle: every link leads
//! to the page of its own order.

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

}
