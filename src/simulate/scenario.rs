//! The end-to-end scenario for one order: check → result → the same result
//! again (FreedomPay's retry) → refund, each answer checked against what a
//! correct receiver must say.

use serde::Serialize;

use super::fields::PaymentFacts;
use super::{Encoding, Exchange, SignatureCheck, Simulator};
use crate::protocol::Status;

/// Where the scenario sends its callbacks.
#[derive(Clone, Debug)]
pub struct Target {
    pub check_url: String,
    pub result_url: String,
    pub refund_url: String,
    pub key: String,
}

/// One step and whether its answer was the expected one.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: &'static str,
    pub expected: Status,
    pub exchange: Exchange,
    pub passed: bool,
    /// Why the step failed, if it did.
    pub problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StepSummary<'a> {
    pub step: &'a str,
    pub expected: &'a str,
    pub passed: bool,
    pub problem: Option<&'a str>,
}

impl Step {
    fn judge(
        name: &'static str,
        expected: Status,
        exchange: Exchange,
        same_as: Option<&Exchange>,
    ) -> Step {
        let problem = if exchange.http_status != 200 {
            Some(format!("HTTP {} instead of 200", exchange.http_status))
        } else if exchange.pg_status() != Some(expected) {
            Some(format!(
                "pg_status {} instead of {expected}",
                exchange
                    .pg_status()
                    .map_or("missing".to_owned(), |s| s.to_string())
            ))
        } else if exchange.signature != SignatureCheck::Ok {
            Some("the answer's signature does not verify".to_owned())
        } else if let Some(first) = same_as
            && first.description() != exchange.description()
        {
            Some("a repeated delivery got a different answer".to_owned())
        } else {
            None
        };
        Step {
            name,
            expected,
            passed: problem.is_none(),
            problem,
            exchange,
        }
    }
}

/// Runs the four steps; stops early only on a network error.
pub async fn run(
    simulator: &Simulator,
    target: &Target,
    facts: &PaymentFacts<'_>,
    encoding: Encoding,
) -> Result<Vec<Step>, reqwest::Error> {
    let key = target.key.as_str();
    let check = simulator
        .send(&target.check_url, encoding, key, &facts.check())
        .await?;
    let result_fields = facts.result_success();
    let result = simulator
        .send(&target.result_url, encoding, key, &result_fields)
        .await?;
    let again = simulator
        .send(&target.result_url, encoding, key, &result_fields)
        .await?;
    let refund = simulator
        .send(&target.refund_url, encoding, key, &facts.refund())
        .await?;
    let duplicate = Step::judge("duplicate result", Status::Ok, again, Some(&result));
    Ok(vec![
        Step::judge("check", Status::Ok, check, None),
        Step::judge("result", Status::Ok, result, None),
        duplicate,
        Step::judge("refund", Status::Ok, refund, None),
    ])
}
