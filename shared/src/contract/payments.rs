//! The payments contract (see `ports::payments::Payments`), as named cases, run against the sandbox (on the
//! memory and SQLite stores) and against the Stripe adapter on localstripe.
//!
//! A provider's own deduplication of a repeated idempotency key cannot be shown everywhere: localstripe
//! ignores `Idempotency-Key`, so that case runs only where the fixture says the backend honours keys (the
//! sandbox); for Stripe, the adapter's tests show on a recording server that the key is sent on every call.

use crate::contract::{CaseReport, ensure};
use crate::domain::{Currency, Money};
use crate::ports::payments::{ChargeRequest, ChargeStatus, PaymentError, Payments};

/// What the suite needs to know about the backend under test.
#[derive(Debug, Clone)]
pub struct PaymentsFixture {
    /// A payment token the provider approves.
    pub approved: String,
    /// A payment token the provider declines on charge.
    pub declined: String,
    /// Whether the backend itself answers a repeated idempotency key with the first charge (a real provider
    /// and the sandbox do; localstripe does not).
    pub honours_idempotency_keys: bool,
    /// A prefix making this run's order ids unique on a shared backend.
    pub namespace: String,
}

fn request(fixture: &PaymentsFixture, order: &str, token: &str, amount: i64) -> ChargeRequest {
    let order_id = format!("{}-{order}", fixture.namespace);
    ChargeRequest {
        idempotency_key: format!("order-{order_id}-charge"),
        order_id,
        amount: Money::new(amount, Currency::EUR),
        payment_token: token.to_owned(),
    }
}

fn fmt_err(error: PaymentError) -> String {
    format!("{error:?}")
}

async fn an_approved_charge_is_captured_and_found(payments: &dyn Payments, fixture: &PaymentsFixture) -> Result<(), String> {
    let charge_request = request(fixture, "approved", &fixture.approved, 2599);
    let charge = payments.charge(charge_request.clone()).await.map_err(fmt_err)?;
    ensure!(charge.status == ChargeStatus::Captured, "the charge is {:?}", charge.status);
    ensure!(charge.amount == charge_request.amount, "charged {:?} for {:?}", charge.amount, charge_request.amount);
    ensure!(charge.order_id == charge_request.order_id, "the charge names order {}", charge.order_id);
    ensure!(charge.provider == payments.name(), "the charge names provider {}", charge.provider);
    let found = payments.find_charge(&charge_request.order_id, &charge_request.idempotency_key).await.map_err(fmt_err)?;
    ensure!(found.as_ref().map(|found| &found.charge_id) == Some(&charge.charge_id), "the lookup found {found:?}");
    Ok(())
}

async fn a_declined_charge_takes_nothing(payments: &dyn Payments, fixture: &PaymentsFixture) -> Result<(), String> {
    let charge_request = request(fixture, "declined", &fixture.declined, 1000);
    let declined = payments.charge(charge_request.clone()).await;
    ensure!(matches!(declined, Err(PaymentError::Declined { .. })), "a declining token gave {declined:?}");
    let found = payments.find_charge(&charge_request.order_id, &charge_request.idempotency_key).await.map_err(fmt_err)?;
    ensure!(found.is_none(), "a declined payment left a charge: {found:?}");
    Ok(())
}

async fn an_order_never_charged_has_no_charge(payments: &dyn Payments, fixture: &PaymentsFixture) -> Result<(), String> {
    let charge_request = request(fixture, "never", &fixture.approved, 1000);
    let found = payments.find_charge(&charge_request.order_id, &charge_request.idempotency_key).await.map_err(fmt_err)?;
    ensure!(found.is_none(), "an order never charged has {found:?}");
    Ok(())
}

async fn a_refund_is_made_once(payments: &dyn Payments, fixture: &PaymentsFixture) -> Result<(), String> {
    let charge_request = request(fixture, "refunded", &fixture.approved, 1500);
    let charge = payments.charge(charge_request.clone()).await.map_err(fmt_err)?;
    let refund_key = format!("order-{}-refund", charge_request.order_id);
    let refunded = payments.refund(&charge, &refund_key).await.map_err(fmt_err)?;
    ensure!(refunded.status == ChargeStatus::Refunded && refunded.charge_id == charge.charge_id, "the refund gave {refunded:?}");
    let again = payments.refund(&charge, &refund_key).await.map_err(fmt_err)?;
    ensure!(again.status == ChargeStatus::Refunded && again.charge_id == charge.charge_id, "a second refund gave {again:?}");
    Ok(())
}

async fn a_repeated_key_returns_the_first_charge(payments: &dyn Payments, fixture: &PaymentsFixture) -> Result<(), String> {
    let charge_request = request(fixture, "repeated", &fixture.approved, 990);
    let first = payments.charge(charge_request.clone()).await.map_err(fmt_err)?;
    let second = payments.charge(charge_request).await.map_err(fmt_err)?;
    ensure!(first.charge_id == second.charge_id, "two charges under one key: {} and {}", first.charge_id, second.charge_id);
    Ok(())
}

/// Runs every case against `payments`.
pub async fn run(payments: &dyn Payments, fixture: &PaymentsFixture) -> Vec<CaseReport> {
    let mut reports = vec![
        CaseReport { name: "an approved charge is captured and found", outcome: an_approved_charge_is_captured_and_found(payments, fixture).await },
        CaseReport { name: "a declined charge takes nothing", outcome: a_declined_charge_takes_nothing(payments, fixture).await },
        CaseReport { name: "an order never charged has no charge", outcome: an_order_never_charged_has_no_charge(payments, fixture).await },
        CaseReport { name: "a refund is made once", outcome: a_refund_is_made_once(payments, fixture).await },
    ];
    if fixture.honours_idempotency_keys {
        reports.push(CaseReport {
            name: "a repeated key returns the first charge",
            outcome: a_repeated_key_returns_the_first_charge(payments, fixture).await,
        });
    }
    reports
}
