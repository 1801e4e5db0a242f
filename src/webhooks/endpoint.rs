//! A configured receiver of messages (`[[webhooks]]`): where it is, how
//! deliveries to it are signed, which messages it wants and how long one
//! delivery may take.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use super::message::MessageType;
use super::signature::SigningSecret;

/// One endpoint, compiled from its settings.
#[derive(Clone)]
pub struct Endpoint {
    /// Its name: how operators, metrics and the outbox refer to it.
    pub name: String,
    pub url: url::Url,
    /// The current secret first, then the previous one during a rotation:
    /// each delivery is signed with all of them.
    pub secrets: Vec<SigningSecret>,
    /// The message types it is sent; `None`: all.
    pub types: Option<BTreeSet<MessageType>>,
    /// The merchants whose messages it is sent; `None`: all.
    pub merchants: Option<BTreeSet<String>>,
    /// How long one delivery may take, connecting and reading the answer included.
    pub timeout: Duration,
}

impl Endpoint {
    /// Whether a message of `message_type` for `merchant_id` goes to this endpoint.
    pub fn wants(&self, message_type: MessageType, merchant_id: &str) -> bool {
        self.types
            .as_ref()
            .is_none_or(|types| types.contains(&message_type))
            && self
                .merchants
                .as_ref()
                .is_none_or(|merchants| merchants.contains(merchant_id))
    }

    /// The URL as it may be shown: a password in it is replaced.
    pub fn display_url(&self) -> String {
        let mut url = self.url.clone();
        if url.password().is_some() {
            // Only fails for URLs that cannot have a password, which this has.
            let _ = url.set_password(Some("[redacted]"));
        }
        url.to_string()
    }
}

// By hand: the URL may carry a password and is shown without it; the
// secrets' own Debug is redacted.
impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &self.display_url())
            .field("secrets", &self.secrets)
            .field("types", &self.types)
            .field("merchants", &self.merchants)
            .field("timeout", &self.timeout)
            .finish()
    }
}
