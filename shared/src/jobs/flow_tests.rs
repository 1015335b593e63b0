//! The jobs end to end in process: real checkouts and account requests write their events, and the
//! consumers handle each event twice (a redelivery), on the memory store with the memory mailer.

use std::sync::Arc;

use super::*;
use crate::accounts::Accounts;
use crate::adapters::memory::{ManualClock, MemoryItemStore, MemoryMailer, SequentialIds};
use crate::catalog::low_stock_key;
use crate::domain::account::{Email, PasswordHash, Role, User, UserId};
use crate::domain::commerce::Quantity;
use crate::domain::money::{Currency, Money};
use crate::domain::product::{NewProduct, ProductId};
use crate::domain::sales::Day;
use crate::exports::Exports;
use crate::http::{AppState, Keys};
use crate::outbox::Topic;
use crate::ports::{IdGen, Timestamp};

fn ok<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| panic!("{error:?}"))
}

struct World {
    clock: Arc<ManualClock>,
    store: MemoryItemStore,
    state: AppState<MemoryItemStore>,
    mailer: Arc<MemoryMailer>,
    jobs: Jobs<MemoryItemStore>,
    user: User,
    lamp: ProductId,
}

async fn world() -> World {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let store = MemoryItemStore::new(clock.clone());
    let ids: Arc<dyn IdGen> = Arc::new(SequentialIds::new("t"));
    let state = AppState::new(store.clone(), clock.clone(), ids.clone(), ok(Keys::derive(&[7; 32])));
    let fields = ok(NewProduct::new("LAMP-1", "Walnut lamp", "", "lighting", Money::new(2500, Currency::EUR), 6)).with_low_stock_threshold(3);
    let lamp = ok(state.catalog.create(fields, &ids, &clock).await).id;
    let user = User::new(ok(UserId::parse("u-1")), ok(Email::parse("ann@shop.test")), Role::Customer, clock.now());
    ok(Accounts::new(store.clone()).register(&user, &PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".to_owned())).await);
    let mailer = Arc::new(MemoryMailer::default());
    let settings = MailSettings::new(ok(Email::parse("shop@shop.test")), vec![ok(Email::parse("boss@shop.test"))]);
    let jobs = Jobs::new(store.clone(), mailer.clone(), clock.clone(), settings);
    World { clock, store, state, mailer, jobs, user, lamp }
}

impl World {
    async fn buy(&self, order_id: &str, units: u32) {
        ok(self.state.commerce.set_line(&self.user.id, self.lamp.clone(), ok(Quantity::new(units))).await);
        ok(self.state.commerce.checkout(&self.user.id, order_id, "tok_success", None).await);
    }

    /// Every pending event of `topic`, each handled twice by its consumer; asserts each was acked twice.
    async fn deliver_twice(&self, topic: Topic) {
        let outbox = self.state.outbox();
        let (events, _) = ok(outbox.pending(100).await);
        for event in events.iter().filter(|event| event.topic == topic) {
            for attempt in 1..=2 {
                let delivery = Delivery { message_id: event.id.clone(), body: event.body.clone(), attempt, receipt: format!("r{attempt}") };
                let outcome = match topic {
                    Topic::Orders => self.jobs.orders(&delivery).await,
                    Topic::Privacy => self.jobs.privacy(&delivery).await,
                };
                assert_eq!(outcome, Outcome::Ack, "{}", event.id);
            }
            ok(self.store.delete(&event.key(), crate::ports::item_store::Condition::None).await);
        }
    }

    fn subjects(&self) -> Vec<String> {
        self.mailer.sent().iter().map(|mail| mail.subject().to_owned()).collect()
    }
}

#[tokio::test]
async fn each_order_event_mails_counts_and_alerts_exactly_once() {
    let w = world().await;
    w.buy("o-1", 2).await;
    w.deliver_twice(Topic::Orders).await;
    assert_eq!(w.subjects(), ["Storefront: order o-1 confirmed, total EUR 50.00"], "4 left is above the threshold of 3: no alert");
    w.buy("o-2", 1).await;
    w.deliver_twice(Topic::Orders).await;
    assert_eq!(w.subjects().len(), 3, "{:?}", w.subjects());
    assert_eq!(w.subjects()[2], "Storefront: low stock of LAMP-1 (3 left)");
    let alert = &w.mailer.sent()[2];
    assert_eq!(alert.to(), [ok(Email::parse("boss@shop.test"))]);
    w.buy("o-3", 1).await;
    w.deliver_twice(Topic::Orders).await;
    assert_eq!(w.subjects().len(), 4, "still below the threshold: the same crossing is not alerted again");
    ok(w.state.commerce.cancel(&w.user.id, false, "o-1").await);
    w.deliver_twice(Topic::Orders).await;
    assert_eq!(w.subjects()[4], "Storefront: order o-1 cancelled, EUR 50.00 refunded");
    assert!(ok(w.store.get(&low_stock_key(&w.lamp)).await).is_none(), "back to 4 above the threshold: the alert is re-armed");
    w.buy("o-4", 2).await;
    w.deliver_twice(Topic::Orders).await;
    assert_eq!(w.subjects().len(), 7, "a new crossing is alerted: {:?}", w.subjects());
    assert!(w.mailer.raw().iter().all(|raw| !raw.contains("tok_success")), "no payment token in any mail");
    let report = ok(w.jobs.sales().report(Day::of(w.clock.now())).await);
    let eur = &report.totals[0];
    assert_eq!((eur.orders, eur.units, eur.revenue.amount, eur.cancellations, eur.refunds.amount), (4, 6, 15_000, 1, 5_000));
    assert_eq!(report.top_products[0].units, 4, "net of the cancelled order's two units");
}

#[tokio::test]
async fn the_checkouts_trace_travels_with_every_event_of_its_order() {
    let w = world().await;
    let trace = crate::telemetry::TraceParent::start(&SequentialIds::new("trace"));
    ok(w.state.commerce.set_line(&w.user.id, w.lamp.clone(), ok(Quantity::new(1))).await);
    ok(w.state.commerce.checkout(&w.user.id, "o-traced", "tok_success", Some(&trace)).await);
    ok(w.state.commerce.cancel(&w.user.id, false, "o-traced").await);
    w.buy("o-untraced", 1).await;
    let (events, _) = ok(w.state.outbox().pending(100).await);
    let mut traces: Vec<(String, Option<String>)> = events
        .iter()
        .filter(|event| event.topic == Topic::Orders)
        .map(|event| {
            let (parsed, _) = ok(super::orders::OrderEvent::parse(&event.body));
            (parsed.event_id, parsed.traceparent)
        })
        .collect();
    traces.sort();
    let expected = Some(trace.to_string());
    assert_eq!(
        traces,
        [
            ("order.cancelled-o-traced".to_owned(), expected.clone()),
            ("order.created-o-traced".to_owned(), expected),
            ("order.created-o-untraced".to_owned(), None),
        ],
        "both events of the traced order carry its checkout's traceparent; an order placed without one carries none"
    );
    w.deliver_twice(Topic::Orders).await;
    assert_eq!(w.subjects().len(), 3, "the traced events are handled like any other: {:?}", w.subjects());
}

#[tokio::test]
async fn the_sales_report_is_closed_and_mailed_once() {
    let w = world().await;
    w.buy("o-1", 1).await;
    w.deliver_twice(Topic::Orders).await;
    let day = Day::of(w.clock.now());
    w.clock.advance(std::time::Duration::from_secs(86_400));
    let run = ok(w.jobs.sales_report().await);
    assert_eq!(run, reports::ReportRun { date: day, closed_now: true, mailed_now: true });
    let again = ok(w.jobs.sales_report().await);
    assert_eq!(again, reports::ReportRun { date: day, closed_now: false, mailed_now: false });
    let last = w.mailer.sent().last().cloned().unwrap_or_else(|| panic!("no mail"));
    assert_eq!(last.subject(), format!("Storefront: sales report for {day}"));
    assert!(last.text().contains("EUR: 1 orders, 1 units, revenue EUR 25.00"), "{}", last.text());
}

#[tokio::test]
async fn an_export_is_stored_for_its_owner_and_an_erasure_leaves_anonymous_orders() {
    let w = world().await;
    w.buy("o-1", 1).await;
    w.deliver_twice(Topic::Orders).await;
    let accounts = Accounts::new(w.store.clone());
    let (_, event) = ok(accounts.request_export(&w.user.id, w.clock.now()).await);
    assert!(event.is_some());
    w.deliver_twice(Topic::Privacy).await;
    let (manifest, text) = ok(Exports::new(w.store.clone()).get(&w.user.id).await).unwrap_or_else(|| panic!("no export"));
    let document: serde_json::Value = ok(serde_json::from_str(&text));
    assert_eq!(document["account"]["email"], "ann@shop.test");
    assert_eq!(document["orders"][0]["id"], "o-1");
    assert!(manifest.expires_at > w.clock.now());
    assert_eq!(ok(accounts.get(&w.user.id).await).export_requested_at, None, "the request is done");
    assert_eq!(w.subjects().iter().filter(|subject| subject.contains("export is ready")).count(), 1);
    ok(w.state.commerce.set_line(&w.user.id, w.lamp.clone(), ok(Quantity::new(1))).await);
    ok(accounts.close(&w.user.id, w.clock.now()).await);
    w.deliver_twice(Topic::Privacy).await;
    assert!(matches!(accounts.get(&w.user.id).await, Err(crate::accounts::AccountsError::NotFound)));
    assert!(ok(accounts.find_by_email(&w.user.email).await).is_none(), "the address is released");
    assert!(ok(Exports::new(w.store.clone()).get(&w.user.id).await).is_none());
    assert!(ok(w.state.commerce.orders(&w.user.id, false, 10, None).await).orders.is_empty(), "the user's list is gone");
    let all = ok(w.state.commerce.orders(&w.user.id, true, 10, None).await).orders;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].user_id, privacy::anonymous_id(&w.user.id));
    assert!(ok(w.state.commerce.cart(&w.user.id).await).totals.lines.is_empty(), "the cart is gone");
    let again = User::new(ok(UserId::parse("u-2")), w.user.email.clone(), Role::Customer, w.clock.now());
    assert!(accounts.register(&again, &PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".to_owned())).await.is_ok(), "the address registers again");
}

#[tokio::test]
async fn malformed_events_are_dead_lettered_and_store_failures_retried() {
    let w = world().await;
    let delivery = |body: &str| Delivery { message_id: "m".to_owned(), body: body.to_owned(), attempt: 3, receipt: "r".to_owned() };
    assert!(matches!(w.jobs.orders(&delivery("{\"type\":\"order.created\"}")).await, Outcome::DeadLetter { .. }));
    assert!(matches!(w.jobs.orders(&delivery("{\"type\":\"privacy.erase\",\"user_id\":\"u\",\"requested_at\":1}")).await, Outcome::DeadLetter { .. }));
    assert!(matches!(w.jobs.privacy(&delivery("[]")).await, Outcome::DeadLetter { .. }));
    let poisoned = w.jobs.clone().with_poison_prefix(Some("poison-".to_owned()));
    w.buy("poison-1", 1).await;
    let (events, _) = ok(w.state.outbox().pending(10).await);
    let body = events.iter().find(|event| event.topic == Topic::Orders).map(|event| event.body.clone()).unwrap_or_default();
    assert_eq!(poisoned.orders(&delivery(&body)).await, Outcome::Retry { delay: retry_delay(3) });
    w.mailer.fail_next(MailError::Rejected("MessageRejected: not verified".to_owned()));
    assert!(matches!(w.jobs.orders(&delivery(&body)).await, Outcome::DeadLetter { .. }), "a mail refused for good cannot succeed");
    w.mailer.fail_next(MailError::Unavailable("throttled".to_owned()));
    let other = body.replace("poison-1", "poison-1b");
    assert!(matches!(w.jobs.orders(&delivery(&other)).await, Outcome::Retry { .. }));
}
