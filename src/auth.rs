//! Who sent a callback: the merchant, resolved as the interface says, and the
//! key whose `pg_sig` verifies. Nothing about a request is believed before this.
//!
//! A callback that carries `pg_merchant_id` is checked against that merchant's
//! keys only. One that does not is checked against each configured merchant in
//! turn, and the merchant whose key verifies is the sender.

use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigError, MerchantSettings};
use crate::domain::CallbackKind;
use crate::protocol::{Message, SignatureError, Variant, VerifyOptions, verify};

/// Which of a merchant's keys verified the request. The answer is signed with
/// the same key, so that FreedomPay can verify it with the key it used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyLabel {
    Current,
    Previous,
    Payout,
}

impl KeyLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyLabel::Current => "current",
            KeyLabel::Previous => "previous",
            KeyLabel::Payout => "payout",
        }
    }
}

/// One merchant's identity and keys. `Debug` shows no key.
#[derive(Clone, Debug)]
pub struct MerchantKeys {
    pub id: String,
    current: SecretString,
    previous: Option<SecretString>,
    payout: Option<SecretString>,
}

impl MerchantKeys {
    /// Keys to try for a callback of `kind`, in order. Payout notifications are
    /// probably signed with the payout key (protocol reference §2.3, uncertain),
    /// so the payment keys are tried after it.
    fn candidates(&self, kind: CallbackKind) -> Vec<(KeyLabel, &SecretString)> {
        let mut keys = Vec::with_capacity(3);
        if kind == CallbackKind::Payout
            && let Some(payout) = &self.payout
        {
            keys.push((KeyLabel::Payout, payout));
        }
        keys.push((KeyLabel::Current, &self.current));
        if let Some(previous) = &self.previous {
            keys.push((KeyLabel::Previous, previous));
        }
        keys
    }

    fn key(&self, label: KeyLabel) -> &SecretString {
        match label {
            KeyLabel::Payout => self.payout.as_ref().unwrap_or(&self.current),
            KeyLabel::Previous => self.previous.as_ref().unwrap_or(&self.current),
            KeyLabel::Current => &self.current,
        }
    }
}

/// A request whose signature verified.
#[derive(Clone, Copy, Debug)]
pub struct Authenticated<'a> {
    pub merchant: &'a MerchantKeys,
    pub key_label: KeyLabel,
    pub variant: Variant,
}

impl Authenticated<'_> {
    /// The key to sign the answer with.
    pub fn signing_key(&self) -> &str {
        self.merchant.key(self.key_label).expose_secret()
    }
}

/// Why a request is not authenticated. Both answer 403 and change nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unknown merchant {0:?}")]
    UnknownMerchant(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

impl AuthError {
    /// A short stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::UnknownMerchant(_) => "unknown_merchant",
            AuthError::Signature(e) => e.reason(),
        }
    }
}

/// Every configured merchant.
#[derive(Clone, Debug)]
pub struct Merchants {
    list: Vec<MerchantKeys>,
}

impl Merchants {
    pub fn from_settings(settings: &[MerchantSettings]) -> Result<Merchants, ConfigError> {
        let list = settings
            .iter()
            .map(|m| {
                Ok(MerchantKeys {
                    id: m.id.clone(),
                    current: m.payment_key()?,
                    previous: m.previous_secret_key.clone(),
                    payout: m.payout_secret_key.clone(),
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Merchants { list })
    }

    pub fn get(&self, id: &str) -> Option<&MerchantKeys> {
        self.list.iter().find(|m| m.id == id)
    }

    /// Resolves the merchant and verifies the signature.
    pub fn authenticate(
        &self,
        kind: CallbackKind,
        message: &Message,
        script: &str,
        options: VerifyOptions,
    ) -> Result<Authenticated<'_>, AuthError> {
        let claimed = message.get("pg_merchant_id").filter(|id| !id.is_empty());
        let candidates: Vec<&MerchantKeys> = match claimed {
            Some(id) => vec![
                self.get(id)
                    .ok_or_else(|| AuthError::UnknownMerchant(id.to_owned()))?,
            ],
            None => self.list.iter().collect(),
        };
        let mut last_error = SignatureError::Mismatch;
        for merchant in candidates {
            let keys = merchant.candidates(kind);
            let secrets: Vec<&str> = keys.iter().map(|(_, k)| k.expose_secret()).collect();
            match verify(script, message, &secrets, options) {
                Ok(verified) => {
                    return Ok(Authenticated {
                        merchant,
                        key_label: keys[verified.key_index].0,
                        variant: verified.variant,
                    });
                }
                // Missing, duplicate or malformed pg_sig fails the same way for
                // every merchant: no need to try the others.
                Err(SignatureError::Mismatch) => {}
                Err(other) => return Err(other.into()),
            }
            last_error = SignatureError::Mismatch;
        }
        Err(last_error.into())
    }
}
