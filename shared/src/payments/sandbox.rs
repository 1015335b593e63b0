//! The sandbox payment provider: a card processor's test mode kept in the item store, the default on every
//! host, so the whole checkout runs (and is tested) with no outside service.
//!
//! Test tokens, as the wire contract names them:
//! - `tok_success`: approved;
//! - `tok_decline`: declined, nothing recorded;
//! - `tok_timeout_once`: the first attempt for an order makes the charge but its answer is lost (a timeout);
//!   the retry under the same idempotency key finds that charge and returns it, so there is still one charge;
//! - `tok_timeout`: every attempt times out before the provider records anything;
//! - anything else: declined as an unknown token.
//!
//! The ledger lives in partition `SANDBOX_CHARGES`, sort key `<order id>#<idempotency key>`, so a charge is
//! created at most once per key (a not-exists condition) and an order's charges are one prefix query away.
//! `GET /payments/sandbox/charges` reads it.

use std::sync::Arc;

use crate::ports::item_store::{Condition, Cursor, ItemKey, ItemStore, Query, StoreError};
use crate::ports::payments::{Charge, ChargeRequest, ChargeStatus, PaymentError, PaymentFuture, Payments};
use crate::ports::IdGen;

/// The provider's name, as orders record it.
pub const SANDBOX: &str = "sandbox";
const LEDGER_PK: &str = "SANDBOX_CHARGES";

fn charge_key(order_id: &str, idempotency_key: &str) -> ItemKey {
    ItemKey::new(LEDGER_PK, format!("{order_id}#{idempotency_key}"))
}

fn store_error(error: StoreError) -> PaymentError {
    PaymentError::Internal(anyhow::Error::new(error).context("the sandbox ledger failed"))
}

fn decode(item: crate::ports::Item) -> Result<(Charge, u64), PaymentError> {
    let version = item.version;
    let charge = serde_json::from_value(item.data).map_err(|error| PaymentError::Internal(anyhow::Error::new(error).context("decode a sandbox charge")))?;
    Ok((charge, version))
}

/// The sandbox provider on a store.
#[derive(Clone)]
pub struct SandboxPayments<S> {
    store: S,
    ids: Arc<dyn IdGen>,
}

impl<S> std::fmt::Debug for SandboxPayments<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SandboxPayments")
    }
}

impl<S: ItemStore + Clone> SandboxPayments<S> {
    /// The sandbox keeping its ledger in `store`, naming charges with `ids`.
    pub fn new(store: S, ids: Arc<dyn IdGen>) -> Self {
        Self { store, ids }
    }

    async fn existing(&self, order_id: &str, idempotency_key: &str) -> Result<Option<(Charge, u64)>, PaymentError> {
        let item = self.store.get(&charge_key(order_id, idempotency_key)).await.map_err(store_error)?;
        item.map(decode).transpose()
    }

    async fn record(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        let charge = Charge {
            provider: SANDBOX.to_owned(),
            charge_id: format!("ch_{}", self.ids.new_id()),
            order_id: request.order_id.clone(),
            amount: request.amount,
            status: ChargeStatus::Captured,
        };
        let data = serde_json::to_value(&charge).map_err(|error| PaymentError::Internal(error.into()))?;
        let item = crate::ports::Item::new(charge_key(&request.order_id, &request.idempotency_key), 1, data);
        match self.store.put(item, Condition::NotExists).await {
            Ok(()) => Ok(charge),
            // A concurrent attempt under the same key got there first: that is the one charge.
            Err(StoreError::ConditionFailed { .. }) => self
                .existing(&request.order_id, &request.idempotency_key)
                .await?
                .map(|(charge, _)| charge)
                .ok_or_else(|| PaymentError::Internal(anyhow::anyhow!("a sandbox charge vanished"))),
            Err(error) => Err(store_error(error)),
        }
    }

    async fn charge_now(&self, request: ChargeRequest) -> Result<Charge, PaymentError> {
        if let Some((charge, _)) = self.existing(&request.order_id, &request.idempotency_key).await? {
            return Ok(charge);
        }
        match request.payment_token.as_str() {
            "tok_success" => self.record(&request).await,
            "tok_timeout_once" => {
                // The charge is made, but its answer is lost on the way back.
                self.record(&request).await?;
                Err(PaymentError::Timeout)
            }
            "tok_timeout" => Err(PaymentError::Timeout),
            "tok_decline" => Err(PaymentError::Declined { reason: "the card was declined".to_owned() }),
            _ => Err(PaymentError::Declined { reason: "the payment token is not one the sandbox knows".to_owned() }),
        }
    }

    /// The sandbox needs no refund key: a charge's status moves to refunded once, by version, so a repeated
    /// refund finds it refunded.
    async fn refund_now(&self, charge: Charge) -> Result<Charge, PaymentError> {
        let page = self
            .store
            .query(&Query::new(LEDGER_PK, format!("{}#", charge.order_id), 100))
            .await
            .map_err(store_error)?;
        for item in page.items {
            let key = item.key.clone();
            let (mut stored, version) = decode(item)?;
            if stored.charge_id != charge.charge_id {
                continue;
            }
            if stored.status == ChargeStatus::Refunded {
                return Ok(stored);
            }
            stored.status = ChargeStatus::Refunded;
            let data = serde_json::to_value(&stored).map_err(|error| PaymentError::Internal(error.into()))?;
            return match self.store.put(crate::ports::Item::new(key, version + 1, data), Condition::VersionEquals(version)).await {
                Ok(()) => Ok(stored),
                // A concurrent refund of the same charge won: it is refunded once either way.
                Err(StoreError::ConditionFailed { .. }) => Ok(stored),
                Err(error) => Err(store_error(error)),
            };
        }
        Err(PaymentError::Internal(anyhow::anyhow!("the sandbox has no charge {}", charge.charge_id)))
    }

    /// One page of the ledger: an order's charges, or every charge in order-id order.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or the cursor is not one.
    pub async fn ledger(&self, order_id: Option<&str>, limit: usize, after: Option<Cursor>) -> Result<(Vec<Charge>, Option<Cursor>), StoreError> {
        let prefix = order_id.map(|id| format!("{id}#")).unwrap_or_default();
        let page = self.store.query(&Query::new(LEDGER_PK, prefix, limit).after(after)).await?;
        let mut charges = Vec::with_capacity(page.items.len());
        for item in page.items {
            charges.push(decode(item).map_err(|error| StoreError::Internal(anyhow::Error::new(error)))?.0);
        }
        Ok((charges, page.next))
    }
}

impl<S: ItemStore + Clone> Payments for SandboxPayments<S> {
    fn name(&self) -> &'static str {
        SANDBOX
    }

    fn charge(&self, request: ChargeRequest) -> PaymentFuture<'_, Charge> {
        Box::pin(self.charge_now(request))
    }

    fn find_charge(&self, order_id: &str, idempotency_key: &str) -> PaymentFuture<'_, Option<Charge>> {
        let (order_id, idempotency_key) = (order_id.to_owned(), idempotency_key.to_owned());
        Box::pin(async move { Ok(self.existing(&order_id, &idempotency_key).await?.map(|(charge, _)| charge)) })
    }

    fn refund(&self, charge: &Charge, _idempotency_key: &str) -> PaymentFuture<'_, Charge> {
        Box::pin(self.refund_now(charge.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::memory::{ManualClock, MemoryItemStore, SequentialIds};
    use crate::contract::payments::{PaymentsFixture, run};
    use crate::contract::failures;
    use crate::ports::Timestamp;

    fn fixture() -> PaymentsFixture {
        PaymentsFixture {
            approved: "tok_success".to_owned(),
            declined: "tok_decline".to_owned(),
            honours_idempotency_keys: true,
            namespace: "contract".to_owned(),
        }
    }

    #[tokio::test]
    async fn the_sandbox_on_the_memory_store_keeps_the_payments_contract() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let sandbox = SandboxPayments::new(MemoryItemStore::new(clock), Arc::new(SequentialIds::new("c")));
        let reports = run(&sandbox, &fixture()).await;
        assert_eq!(reports.len(), 5);
        assert!(failures(&reports).is_empty(), "{}", failures(&reports));
    }

    #[tokio::test]
    async fn the_sandbox_on_sqlite_keeps_the_payments_contract() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let clock: Arc<dyn crate::ports::Clock> = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let db = crate::adapters::sqlite::SqliteDb::open(&dir.path().join("payments.db"), clock).unwrap_or_else(|error| panic!("{error:#}"));
        let sandbox = SandboxPayments::new(db.item_store(), Arc::new(SequentialIds::new("c")));
        let reports = run(&sandbox, &fixture()).await;
        assert_eq!(reports.len(), 5);
        assert!(failures(&reports).is_empty(), "{}", failures(&reports));
    }

    #[tokio::test]
    async fn the_timeout_tokens_behave_as_the_wire_contract_says() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let sandbox = SandboxPayments::new(MemoryItemStore::new(clock), Arc::new(SequentialIds::new("c")));
        let request = |order: &str, token: &str| ChargeRequest {
            order_id: order.to_owned(),
            idempotency_key: format!("order-{order}-charge"),
            amount: crate::domain::Money::new(100, crate::domain::Currency::EUR),
            payment_token: token.to_owned(),
        };
        assert!(matches!(sandbox.charge(request("o1", "tok_timeout_once")).await, Err(PaymentError::Timeout)));
        let retried = sandbox.charge(request("o1", "tok_timeout_once")).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(retried.status, ChargeStatus::Captured, "the retry under the same key succeeds");
        for _ in 0..3 {
            assert!(matches!(sandbox.charge(request("o2", "tok_timeout")).await, Err(PaymentError::Timeout)));
        }
        assert!(sandbox.find_charge("o2", "order-o2-charge").await.unwrap_or_else(|error| panic!("{error}")).is_none());
        let (ledger, _) = sandbox.ledger(None, 10, None).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(ledger.len(), 1, "one charge in all: {ledger:?}");
    }
}
