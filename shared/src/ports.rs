//! The traits the domain needs from the outside world.
//!
//! Each trait's documentation is a contract that every adapter keeps; `contract` (feature `testkit`)
//! holds the suites that check it. Nothing here names a vendor type.

pub mod clock;
pub mod id_gen;
pub mod item_store;
pub mod job_queue;
pub mod mailer;
pub mod password;
pub mod payments;
pub mod random;
pub mod token;

pub use clock::{Clock, Sleep, SleepFuture, Timestamp};
pub use id_gen::IdGen;
pub use item_store::{
    Condition, Cursor, Item, ItemKey, ItemStore, Page, Query, StoreError, Write,
};
pub use job_queue::{Delivery, JobInbox, JobQueue, NewJob, Outcome, QueueError};
pub use mailer::{Mail, MailError, MailFuture, Mailer};
pub use password::{PasswordHashError, PasswordHasher};
pub use payments::{Charge, ChargeRequest, ChargeStatus, PaymentError, PaymentFuture, Payments};
pub use random::{Random, RandomError};
pub use token::{AccessClaims, IssuedToken, TokenError, TokenRejection, TokenSigner};
