//! One module per backend. Each turns its backend's records and errors into the ports' types; nothing shaped
//! like a vendor gets past them.
//!
//! `memory` is plain Rust and always built (tests on every host use it); `system` needs the operating system
//! (feature `native`); `sqlite` is the local host's embedded store (feature `local`); `argon2` and `jwt` are the
//! password hasher and access-token signer of every host (always built); `stripe` is the Stripe payment
//! provider (feature `stripe`, native hosts only); `eml` writes mail as `.eml` files into a folder (the local host's
//! carrier, feature `native`); `ses` sends it through Amazon SES v2 (feature `aws`).

pub mod argon2;
#[cfg(feature = "cloudflare")]
pub mod d1;
#[cfg(feature = "cloudflare")]
pub mod kv;
#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "native")]
pub mod eml;
#[cfg(feature = "aws")]
pub mod ses;
pub mod jwt;
pub mod memory;
#[cfg(feature = "cloudflare")]
pub mod queues;
#[cfg(feature = "local")]
pub mod sqlite;
#[cfg(feature = "aws")]
pub mod sqs;
#[cfg(feature = "stripe")]
pub mod stripe;
#[cfg(feature = "native")]
pub mod system;

/// Settings of a queue with a dead-letter queue, the same on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received job stays invisible before it is delivered again.
    pub visibility_timeout: std::time::Duration,
    /// How many deliveries a job gets before it is dead-lettered (SQS's `maxReceiveCount`).
    pub max_attempts: u32,
    /// How long a deduplication id is remembered (SQS FIFO keeps it five minutes).
    pub dedup_window: std::time::Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: std::time::Duration::from_secs(30),
            max_attempts: 5,
            dedup_window: std::time::Duration::from_secs(300),
        }
    }
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// An HTTP client for AWS emulators on 127.0.0.1 (DynamoDB Local, moto, ElasticMQ) in tests and test tools: plain
/// HTTP, and no trusted root at all, so it can never complete a TLS handshake with a real AWS endpoint by mistake.
/// The SDK clients are built without a default HTTP client (the workspace leaves out `default-https-client`), so
/// every client is given one: this, or the Lambda host's.
///
/// # Errors
/// When the TLS configuration cannot be built.
#[cfg(feature = "aws")]
pub fn emulator_http_client() -> Result<aws_sdk_dynamodb::config::SharedHttpClient, aws_smithy_http_client::HttpClientError> {
    use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let tls = TlsContext::builder().with_trust_store(TrustStore::empty()).build()?;
    Ok(aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).tls_context(tls).build_https())
}
