//! Callback fields as FreedomPay sends them (protocol reference §2), for a
//! given order, payment and amount.

/// Callback fields in arrival order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        Fields(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// Sets a field, replacing an existing one of that name.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.0.retain(|(n, _)| n != name);
        self
    }
}

/// What one simulated payment is about.
#[derive(Clone, Debug)]
pub struct PaymentFacts<'a> {
    pub merchant_id: Option<&'a str>,
    pub order_id: &'a str,
    pub payment_id: &'a str,
    pub amount: &'a str,
    pub currency: &'a str,
}

impl PaymentFacts<'_> {
    fn base(&self) -> Fields {
        let fields = Fields::of(&[
            ("pg_order_id", self.order_id),
            ("pg_payment_id", self.payment_id),
            ("pg_amount", self.amount),
            ("pg_currency", self.currency),
        ]);
        match self.merchant_id {
            Some(id) => fields.set("pg_merchant_id", id),
            None => fields,
        }
    }

    /// A check request (§2.1).
    pub fn check(&self) -> Fields {
        self.base()
            .set("pg_ps_amount", self.amount)
            .set("pg_ps_currency", self.currency)
            .set("pg_ps_full_amount", self.amount)
    }

    /// A successful result notification (§2.2).
    pub fn result_success(&self) -> Fields {
        self.base()
            .set("pg_net_amount", self.amount)
            .set("pg_ps_amount", self.amount)
            .set("pg_ps_full_amount", self.amount)
            .set("pg_ps_currency", self.currency)
            .set("pg_description", "Заказ в интернет-магазине")
            .set("pg_result", "1")
            .set("pg_payment_date", "2026-11-25 12:00:00")
            .set("pg_can_reject", "1")
            .set("pg_user_phone", "77001234567")
            .set("pg_user_contact_email", "payer@example.kz")
            .set("pg_testing_mode", "0")
            .set("pg_captured", "1")
            .set("pg_card_pan", "5483-18XX-XXXX-0293")
            .set("pg_card_exp", "03/29")
            .set("pg_card_owner", "IVAN IVANOV")
            .set("pg_card_brand", "MC")
            .set("pg_payment_method", "bankcard")
    }

    /// A failed result notification (§2.2, failure code 101: lifetime exceeded).
    pub fn result_failure(&self) -> Fields {
        self.result_success()
            .set("pg_result", "0")
            .set("pg_failure_code", "101")
            .set("pg_failure_description", "Время жизни платежа превышено")
            .without("pg_card_pan")
            .without("pg_captured")
    }

    /// A refund notification (§2.5: undocumented, modelled on result).
    pub fn refund(&self) -> Fields {
        self.base()
            .set("pg_refund_amount", self.amount)
            .set("pg_refund_date", "2026-11-25 13:00:00")
    }

    /// A capture (clearing) notification (§2.5).
    pub fn capture(&self) -> Fields {
        self.base()
            .without("pg_amount")
            .set("pg_clearing_amount", self.amount)
    }

    /// A payout notification to `pg_post_link` (§2.3); `status` is `ok` or `error`.
    pub fn payout(&self, status: &str) -> Fields {
        let mut fields = Fields::of(&[
            ("pg_payment_id", self.payment_id),
            ("pg_order_id", self.order_id),
            ("pg_card_hash", "4405-64XX-XXXX-1448"),
            ("pg_status", status),
            ("pg_balance", "1000000"),
            ("pg_payment_amount", self.amount),
            ("pg_to_pay", self.amount),
            ("pg_payment_date", "2026-11-25 14:00:00"),
        ]);
        if let Some(id) = self.merchant_id {
            fields = fields.set("pg_merchant_id", id);
        }
        fields
    }

    /// The payer's browser coming back (§2.4).
    pub fn redirect(&self, failure: bool) -> Fields {
        let fields = Fields::of(&[
            ("pg_order_id", self.order_id),
            ("pg_payment_id", self.payment_id),
        ]);
        if failure {
            fields
                .set("pg_error_code", "101")
                .set("pg_error_description", "Время жизни платежа превышено")
        } else {
            fields
        }
    }
}
