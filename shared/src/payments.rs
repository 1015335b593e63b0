//! Payments as the checkout uses them: the built-in sandbox provider (`sandbox`) and the gateway
//! (`gateway`) that calls any provider with retries, backoff and a circuit breaker.

pub mod gateway;
pub mod sandbox;

pub use gateway::{Breaker, BreakerSettings, GatewayError, PaymentGateway, RetryPolicy};
pub use sandbox::SandboxPayments;
