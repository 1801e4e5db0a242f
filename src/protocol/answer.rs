//! The merchant's XML answer to a callback (protocol reference §2.6):
//! `<response>` with `pg_status`, `pg_description`, any extra fields, a fresh
//! `pg_salt` and the `pg_sig` over them, signed with the endpoint's own script
//! name. Also the parser that reads such an answer back (CLI, simulator, tests).

use std::fmt;

use rand::RngExt;
use rand::distr::Alphanumeric;

use super::decode::parse_xml;
use super::encode::to_xml;
use super::signature::{self, SIG_FIELD};
use super::{DecodeError, Message};

/// Length of the random salt in every signed answer.
pub const SALT_LEN: usize = 20;

/// `pg_status` of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Rejected,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Rejected => "rejected",
            Status::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "ok" => Some(Status::Ok),
            "rejected" => Some(Status::Rejected),
            "error" => Some(Status::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the merchant answers, before salt and signature are added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    pub description: String,
    /// Further fields, signed like the rest (e.g. `pg_error_description`).
    pub extra: Vec<(String, String)>,
}

impl Answer {
    pub fn new(status: Status, description: impl Into<String>) -> Self {
        Answer {
            status,
            description: description.into(),
            extra: Vec::new(),
        }
    }

    fn fields(&self) -> Message {
        let mut message = Message::new();
        message.push("pg_status", self.status.as_str());
        message.push("pg_description", self.description.clone());
        for (name, value) in &self.extra {
            message.push(name.clone(), value.clone());
        }
        message
    }

    /// The signed XML document, with a fresh salt.
    pub fn to_signed_xml(&self, script: &str, secret: &str) -> String {
        self.to_signed_xml_with_salt(script, secret, &fresh_salt())
    }

    /// As [`Answer::to_signed_xml`] with a given salt (reproducible tests).
    pub fn to_signed_xml_with_salt(&self, script: &str, secret: &str, salt: &str) -> String {
        let mut message = self.fields();
        message.push("pg_salt", salt);
        let sig = signature::sign(script, &message, secret);
        message.push(SIG_FIELD, sig);
        render(&message)
    }

    /// An unsigned answer, for requests whose merchant or key is unknown: there
    /// is no key to sign with, and signing with a guessed one would leak nothing
    /// useful but would look authoritative.
    pub fn to_unsigned_xml(&self) -> String {
        render(&self.fields())
    }
}

/// A random salt from the thread-local CSPRNG, alphanumeric.
pub fn fresh_salt() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(SALT_LEN)
        .map(char::from)
        .collect()
}

fn render(message: &Message) -> String {
    to_xml("response", message)
}

/// An answer read back from XML: its fields, for signature checks, and the
/// decoded status and description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAnswer {
    pub message: Message,
    pub status: Option<Status>,
    pub description: Option<String>,
}

/// Parses a `<response>` document.
pub fn parse_answer(xml: &str) -> Result<ParsedAnswer, DecodeError> {
    let message = parse_xml(xml)?;
    let status = message.get("pg_status").and_then(Status::parse);
    let description = message.get("pg_description").map(str::to_owned);
    Ok(ParsedAnswer {
        message,
        status,
        description,
    })
}
