//! Entities, validated newtypes and the rules the shop owns. Pure: no IO, no clock, no randomness.

pub mod account;
pub mod money;
pub mod product;
pub mod search;

pub use account::{AccountError, Email, Password, PasswordHash, Role, SessionId, User, UserId};
pub use money::{Currency, Money, MoneyError};
pub use product::{Category, NewProduct, Product, ProductError, ProductId, Sku};
pub use search::{SearchError, SearchRequest, SearchSource, Tokens};
