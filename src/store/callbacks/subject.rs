//! Which rows a callback is about, written once: [`Subject::of`] names its
//! payment and order (or its payout), the decision key it is stored under and
//! the lock it decides under; [`Wanted::of`] gathers them for a group, which
//! is what a group's read fetches.

use std::collections::BTreeMap;

use crate::domain::{Callback, CallbackKind, Detail, IdempotencyKey};

/// The rows and keys one callback is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// Its payment (none for payouts).
    pub payment_id: Option<String>,
    /// Its order as named by the callback (a payout's order id too, as the
    /// decision may look at both); when it names none, the order is its
    /// payment's (found once the payment is read).
    pub order_id: Option<String>,
    /// Its payout, by the merchant's payout order id.
    pub payout_order_id: Option<String>,
    /// The key its decision is stored under (a redirect's key too).
    pub key: Option<IdempotencyKey>,
    /// What its decision is serialised on (`merchant/subject`), across
    /// groups and instances: a check's payment, a key's subject. Redirects
    /// take none (a payer replaying one must not wait behind callbacks).
    pub lock: Option<String>,
}

impl Subject {
    pub fn of(callback: &Callback) -> Subject {
        let payout = callback.kind == CallbackKind::Payout;
        let key = callback
            .idempotency_key()
            .or_else(|| callback.redirect_key());
        let lock_subject = match &callback.detail {
            Detail::Check(notice) => Some(notice.payment_id.as_str()),
            Detail::Redirect | Detail::Unparsed => None,
            _ => key.as_ref().map(|k| k.subject_id.as_str()),
        };
        Subject {
            payment_id: callback.payment_id.clone().filter(|_| !payout),
            order_id: callback.order_id.clone(),
            payout_order_id: callback.order_id.clone().filter(|_| payout),
            lock: lock_subject.map(|s| format!("{}/{s}", callback.merchant_id)),
            key,
        }
    }
}

/// What a group reads, merchant by merchant (a group nearly always has one).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Lock names, sorted and once each: every group takes its locks in this
    /// order, so no two groups or instances can deadlock on them.
    pub locks: Vec<String>,
    pub merchants: BTreeMap<String, MerchantWanted>,
}

/// One merchant's part of [`Wanted`]: ids sorted and once each.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MerchantWanted {
    pub payments: Vec<String>,
    /// Orders named by a callback; the orders of the payments read are
    /// added by the read.
    pub orders: Vec<String>,
    pub payouts: Vec<String>,
    pub keys: Vec<IdempotencyKey>,
}

impl Wanted {
    pub fn of<'a>(callbacks: impl Iterator<Item = &'a Callback>) -> Wanted {
        let mut wanted = Wanted::default();
        for callback in callbacks {
            let subject = Subject::of(callback);
            let of_merchant = wanted
                .merchants
                .entry(callback.merchant_id.clone())
                .or_default();
            of_merchant.payments.extend(subject.payment_id);
            of_merchant.orders.extend(subject.order_id);
            of_merchant.payouts.extend(subject.payout_order_id);
            of_merchant.keys.extend(subject.key);
            wanted.locks.extend(subject.lock);
        }
        wanted.locks.sort();
        wanted.locks.dedup();
        for of_merchant in wanted.merchants.values_mut() {
            for ids in [
                &mut of_merchant.payments,
                &mut of_merchant.orders,
                &mut of_merchant.payouts,
            ] {
                ids.sort();
                ids.dedup();
            }
            let mut seen = std::collections::HashSet::new();
            of_merchant.keys.retain(|k| seen.insert(k.clone()));
        }
        wanted
    }
}
