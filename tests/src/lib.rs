//! Test support: the target the end-to-end scenarios drive, and a small HTTP client for them.
//!
//! The scenarios speak HTTP to a base URL so that every host runs the very same ones. With
//! `STOREFRONT_BASE_URL` set they drive that host (the local host binary, `cargo lambda watch`, `wrangler dev`);
//! without it they start the local host in-process on a temporary SQLite file and a free loopback port, so plain
//! `cargo test` works offline. Either way they need the demo catalog in the store.
//!
//! The authentication scenarios also need the host's master secret (to mint tokens the host would accept,
//! then spoil them one claim at a time) and its first admin's e-mail address. For the in-process host they are
//! known; for a base URL they come from `STOREFRONT_SECRET` (the hex text of the local host's `<data>.secret`
//! file, or the secret configured on Lambda or Workers) and `STOREFRONT_ADMIN_EMAIL`, and a scenario that
//! needs one fails with a clear message when it is unset. Every password and token a scenario uses is
//! appended to the file named by `STOREFRONT_SECRETS_LOG`, if set, so the test script can check that none of
//! them reached the host's logs.

pub mod host_process;
pub mod mail_sink;
pub mod store_scan;

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::Context as _;
use serde_json::Value;

/// The variable naming the host under test.
pub const BASE_URL_VAR: &str = "STOREFRONT_BASE_URL";
/// The variable holding the host's master secret in hex (needed with [`BASE_URL_VAR`]).
pub const SECRET_VAR: &str = "STOREFRONT_SECRET";
/// The variable holding the host's first-admin e-mail address (needed with [`BASE_URL_VAR`]).
pub const ADMIN_EMAIL_VAR: &str = "STOREFRONT_ADMIN_EMAIL";
/// The variable naming a file to which the scenarios append every password and token they use.
pub const SECRETS_LOG_VAR: &str = "STOREFRONT_SECRETS_LOG";
/// The first admin's address of the in-process host.
pub const IN_PROCESS_ADMIN_EMAIL: &str = "admin@scenarios.test";

struct Target {
    url: String,
    /// The master secret, hex; `None` when driving a base URL (it then comes from the environment).
    secret_hex: Option<String>,
    /// The in-process host's data file, whose privacy queue the scenarios look at.
    data: Option<std::path::PathBuf>,
}

static TARGET: OnceLock<Target> = OnceLock::new();

fn target() -> &'static Target {
    TARGET.get_or_init(|| match std::env::var(BASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => {
            eprintln!("end-to-end scenarios: driving {url}");
            Target { url: url.trim().trim_end_matches('/').to_owned(), secret_hex: None, data: None }
        }
        _ => {
            let (url, secret_hex, data) =
                start_in_process_host().unwrap_or_else(|error| panic!("could not start the local host: {error:#}"));
            eprintln!("end-to-end scenarios: {BASE_URL_VAR} is unset, driving an in-process local host at {url}");
            Target { url, secret_hex: Some(secret_hex), data: Some(data) }
        }
    })
}

/// The base URL of the host under test (without a trailing slash), starting the in-process local host once if
/// no URL is given.
pub fn base_url() -> &'static str {
    &target().url
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok()).collect()
}

/// The host's master secret: known for the in-process host, from [`SECRET_VAR`] otherwise.
///
/// # Panics
/// When driving a base URL and [`SECRET_VAR`] is unset or not hex: the scenario cannot run, and says so.
pub fn master_secret() -> Vec<u8> {
    let hex = match &target().secret_hex {
        Some(hex) => hex.clone(),
        None => std::env::var(SECRET_VAR).unwrap_or_else(|_| {
            panic!("{SECRET_VAR} must hold the host's master secret (hex) to run the token scenarios against {BASE_URL_VAR}")
        }),
    };
    decode_hex(&hex).unwrap_or_else(|| panic!("{SECRET_VAR} is not hex"))
}

/// The first admin's e-mail address: known for the in-process host, from [`ADMIN_EMAIL_VAR`] otherwise.
///
/// # Panics
/// When driving a base URL and [`ADMIN_EMAIL_VAR`] is unset.
pub fn admin_email() -> String {
    if target().secret_hex.is_some() {
        return IN_PROCESS_ADMIN_EMAIL.to_owned();
    }
    match std::env::var(ADMIN_EMAIL_VAR) {
        Ok(email) if !email.trim().is_empty() => email.trim().to_owned(),
        _ => panic!("{ADMIN_EMAIL_VAR} must name the host's first admin to run the admin scenarios against {BASE_URL_VAR}"),
    }
}

/// Where the host's mail arrives: the in-process host's `.eml` folder, else what [`mail_sink::MAIL_SINK_VAR`]
/// names.
///
/// # Panics
/// When driving a base URL and the variable is unset or malformed.
pub fn mail_sink() -> mail_sink::MailSink {
    use mail_sink::{MAIL_SINK_VAR, MailSink};
    if let Some(data) = &target().data {
        return MailSink::Eml(data.with_extension("db.mail"));
    }
    match std::env::var(MAIL_SINK_VAR) {
        Ok(text) => MailSink::parse(&text).unwrap_or_else(|error| panic!("{error:#}")),
        Err(_) => panic!("{MAIL_SINK_VAR} must name where the host's mail arrives to check the mail {BASE_URL_VAR} sends"),
    }
}

/// What the host's store holds: the in-process host's SQLite file, else what [`store_scan::STORE_SCAN_VAR`]
/// names.
///
/// # Panics
/// When driving a base URL and the variable is unset or malformed.
pub fn store_scan() -> store_scan::StoreScan {
    use store_scan::{STORE_SCAN_VAR, StoreScan};
    if let Some(data) = &target().data {
        return StoreScan::Sqlite(data.clone());
    }
    match std::env::var(STORE_SCAN_VAR) {
        Ok(text) => StoreScan::parse(&text).unwrap_or_else(|error| panic!("{error:#}")),
        Err(_) => panic!("{STORE_SCAN_VAR} must name the host's store to scan what {BASE_URL_VAR} keeps"),
    }
}

static SECRETS_LOG: Mutex<()> = Mutex::new(());

/// Notes a password or token a scenario used, in the file named by [`SECRETS_LOG_VAR`] (if set), one per line.
pub fn remember_secret(secret: &str) {
    let Ok(path) = std::env::var(SECRETS_LOG_VAR) else { return };
    if secret.is_empty() || path.trim().is_empty() {
        return;
    }
    let _guard = SECRETS_LOG.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path.trim())
        .unwrap_or_else(|error| panic!("{SECRETS_LOG_VAR}: {error}"));
    writeln!(file, "{secret}").unwrap_or_else(|error| panic!("{SECRETS_LOG_VAR}: {error}"));
}

/// How long a scenario waits for one answer: far more than any request takes (a debug build under
/// `cargo lambda watch` compiling a function on its first request included).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A text no other scenario run uses: the time in nanoseconds and a counter.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{prefix}{nanos:x}{}", UNIQUE.fetch_add(1, Ordering::SeqCst))
}

/// The prefix of the in-process host's folder in the temporary directory; the process id follows it.
const IN_PROCESS_DIR_PREFIX: &str = "storefront-e2e-";

/// A fresh folder for the in-process host's data: `storefront-e2e-<pid>` in the temporary directory. The host lives
/// as long as the test process, which exits without dropping anything (so a `TempDir` would stay behind, with the
/// host's master secret in it): each run first removes the folders of earlier runs whose process is gone, as Linux's
/// `/proc` tells (elsewhere they stay; `scripts/test` also runs everything with a temporary directory of its own).
fn in_process_dir() -> anyhow::Result<std::path::PathBuf> {
    let base = std::env::temp_dir();
    let proc_fs = std::path::Path::new("/proc/self").exists();
    if let (true, Ok(entries)) = (proc_fs, std::fs::read_dir(&base)) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|name| name.strip_prefix(IN_PROCESS_DIR_PREFIX)).and_then(|pid| pid.parse::<u32>().ok());
            if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(format!("{IN_PROCESS_DIR_PREFIX}{}", std::process::id()));
    // A folder of an earlier process that had this id: start from nothing.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("a folder for the in-process host: {}", dir.display()))?;
    Ok(dir)
}

/// Starts the local host on its own thread and runtime (so it outlives any one test's runtime) and returns its URL,
/// its master secret (hex) and its data file.
fn start_in_process_host() -> anyhow::Result<(String, String, std::path::PathBuf)> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("local-host".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = sender.send(Err(anyhow::Error::new(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                let dir = match in_process_dir() {
                    Ok(dir) => dir,
                    Err(error) => {
                        let _ = sender.send(Err(error));
                        return;
                    }
                };
                let data = dir.join("e2e.db");
                let config = local_host::Config {
                    host: std::net::Ipv4Addr::LOCALHOST.into(),
                    port: 0,
                    data: data.clone(),
                    no_seed: false,
                    demo_products: shared::demo::DEMO_PRODUCT_COUNT,
                    log: "warn".to_owned(),
                    admin_email: Some(IN_PROCESS_ADMIN_EMAIL.to_owned()),
                    // Every scenario logs in from 127.0.0.1; the per-account limit is the one they exercise.
                    login_attempts_per_client: 10_000,
                    argon2_memory_kib: None,
                    argon2_iterations: None,
                    argon2_parallelism: None,
                    insecure_fast_passwords: true,
                    checkout_lease_secs: shared::idempotency::DEFAULT_LEASE_SECS,
                    sweep_grace_secs: 120,
                    sweep_interval_secs: 30,
                    payments: "sandbox".to_owned(),
                    stripe_secret_key: None,
                    stripe_api_base: None,
                    mail_dir: None,
                    mail_from: None,
                    alerts_to: None,
                    mcp_allowed_origins: String::new(),
                    report_interval_secs: 3600,
                    queue_visibility_secs: 30,
                    #[cfg(debug_assertions)]
                    fault_crash_after_jobs: None,
                    #[cfg(debug_assertions)]
                    fault_poison_orders: None,
                };
                match local_host::start(config, std::future::pending()).await {
                    Ok(running) => {
                        let secret = std::fs::read_to_string(data.with_extension("db.secret"))
                            .context("the local host kept no secret beside its data file");
                        let started = secret.map(|secret| (format!("http://{}", running.addr), secret.trim().to_owned(), data.clone()));
                        let _ = sender.send(started);
                        let _ = running.done.await;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error));
                    }
                }
                let _ = std::fs::remove_dir_all(&dir);
            });
        })
        .context("failed to spawn the host thread")?;
    receiver.recv().context("the host thread ended before it started")?
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body, parsed as JSON (`Value::Null` when empty or not JSON).
    pub json: Value,
    /// The raw body.
    pub text: String,
}

impl Answer {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The problem document's `code`, if this is one.
    pub fn problem_code(&self) -> Option<&str> {
        if self.header("content-type") != Some("application/problem+json") {
            return None;
        }
        self.json.get("code").and_then(Value::as_str)
    }
}

/// A client for the host under test.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// A client for [`base_url`].
    pub fn new() -> Self {
        Self::at(base_url())
    }

    /// A client for another host than [`base_url`] (a scenario that starts a host of its own).
    pub fn at(base: &str) -> Self {
        // A scenario must fail, not hang, when a host stops answering (a restarted function, a reset Worker).
        let client = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap_or_else(|error| panic!("no HTTP client: {error}"));
        Self { base: base.trim_end_matches('/').to_owned(), client }
    }

    /// The base URL this client talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client (for a request that may legitimately get no answer, such as one cut by a killed host).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request with optional headers and body.
    pub async fn send(&self, method: reqwest::Method, path: &str, headers: &[(&str, &str)], body: Option<(&str, Vec<u8>)>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        read_whole(request, path).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, &[], None).await
    }

    /// Sends a request with an optional bearer token and an optional JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization.iter().map(|value| ("authorization", value.as_str())).collect();
        self.send(method, path, &headers, body.map(|body| ("application/json", body.to_string().into_bytes()))).await
    }

    /// Registers `email` with `password` (both remembered as secrets), returning the answer.
    pub async fn register(&self, email: &str, password: &str) -> Answer {
        remember_secret(password);
        let body = serde_json::json!({ "email": email, "password": password });
        self.call(reqwest::Method::POST, "/auth/register", None, Some(&body)).await
    }

    /// Logs in, returning the answer; its tokens, if any, are remembered as secrets.
    pub async fn login(&self, email: &str, password: &str) -> Answer {
        remember_secret(password);
        let body = serde_json::json!({ "email": email, "password": password });
        let answer = self.call(reqwest::Method::POST, "/auth/login", None, Some(&body)).await;
        remember_tokens(&answer);
        answer
    }

    /// Refreshes, returning the answer; its tokens, if any, are remembered as secrets.
    pub async fn refresh(&self, refresh_token: &str) -> Answer {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        let answer = self.call(reqwest::Method::POST, "/auth/refresh", None, Some(&body)).await;
        remember_tokens(&answer);
        answer
    }

    /// Registers a new account with a fresh address and password and logs it in.
    ///
    /// # Panics
    /// When either step fails: the scenario cannot go on.
    pub async fn new_user(&self, prefix: &str) -> User {
        let email = format!("{}@scenarios.test", unique(prefix));
        let password = unique("pw-correct-horse-");
        let registered = self.register(&email, &password).await;
        assert_eq!(registered.status, 201, "register {email}: {}", registered.text);
        self.sign_in(&email, &password).await
    }

    /// Logs in an existing account.
    ///
    /// # Panics
    /// When the login fails.
    pub async fn sign_in(&self, email: &str, password: &str) -> User {
        let answer = self.login(email, password).await;
        assert_eq!(answer.status, 200, "login {email}: {}", answer.text);
        let text = |field: &str| answer.json[field].as_str().unwrap_or_default().to_owned();
        User {
            id: answer.json["account"]["id"].as_str().unwrap_or_default().to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            access: text("access_token"),
            refresh: text("refresh_token"),
        }
    }

    /// Follows `next_cursor` from `GET /products?<query>` until the search is complete, returning every item.
    pub async fn walk_products(&self, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let path = match &cursor {
                Some(cursor) => format!("/products?{query}&cursor={cursor}"),
                None => format!("/products?{query}"),
            };
            let page = self.get(&path).await;
            assert_eq!(page.status, 200, "{path}: {}", page.text);
            items.extend(page.json["items"].as_array().cloned().unwrap_or_default());
            match page.json.get("next_cursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
        panic!("{query}: the search did not end within 1000 pages");
    }

    /// The host's first admin ([`admin_email`]), registered with `password` if no scenario has registered it yet,
    /// signed in and checked to hold the admin role.
    ///
    /// The sign-in is shared by every scenario of this test process and renewed only when it is
    /// [`ADMIN_SESSION_REUSE`] old: the host allows an account a burst of five logins and then one a minute,
    /// so scenarios that each logged the admin in would be refused with 429.
    ///
    /// # Panics
    /// When the registration or login fails, or the account is not an admin.
    pub async fn admin(&self, password: &str) -> User {
        static ADMIN: tokio::sync::Mutex<Option<(User, std::time::Instant)>> = tokio::sync::Mutex::const_new(None);
        let mut signed_in = ADMIN.lock().await;
        if let Some((admin, _)) = signed_in.as_ref().filter(|(_, at)| at.elapsed() < ADMIN_SESSION_REUSE) {
            return admin.clone();
        }
        let email = admin_email();
        let registered = self.register(&email, password).await;
        assert!(matches!(registered.status, 201 | 409), "register the first admin {email}: {}", registered.text);
        let admin = self.sign_in(&email, password).await;
        let shown = self.call(reqwest::Method::GET, "/me", Some(&admin.access), None).await;
        assert_eq!(shown.json["role"], "admin", "{email} is not the host's first admin: {}", shown.text);
        *signed_in = Some((admin.clone(), std::time::Instant::now()));
        admin
    }

    /// Creates a product as `admin` in category `scenarios`, named after a fresh word starting with `word` (so
    /// no search of another scenario finds it), priced `price` minor units of EUR, with `stock` units; returns
    /// the created product as the host shows it.
    ///
    /// # Panics
    /// When the host does not answer 201.
    pub async fn create_product(&self, admin: &User, word: &str, price: i64, stock: u32) -> Value {
        let body = serde_json::json!({
            "sku": unique("SKU-"),
            "name": format!("Scenario {}", unique(word)),
            "description": "written by the commerce scenarios",
            "category": "scenarios",
            "price": { "amount": price, "currency": "EUR" },
            "stock": stock
        });
        let created = self.call(reqwest::Method::POST, "/products", Some(&admin.access), Some(&body)).await;
        assert_eq!(created.status, 201, "create a product with {stock} in stock: {}", created.text);
        created.json
    }

    /// A product's current stock, from `GET /products/{id}`.
    ///
    /// # Panics
    /// When the product cannot be read or shows no stock.
    pub async fn stock_of(&self, product_id: &str) -> u64 {
        let path = format!("/products/{product_id}");
        let product = self.get(&path).await;
        assert_eq!(product.status, 200, "{path}: {}", product.text);
        product.json["stock"].as_u64().unwrap_or_else(|| panic!("{path} shows no stock: {}", product.text))
    }

    /// `POST /checkout` as `user` with `Idempotency-Key: <key>` and the body `{"payment_token": <payment_token>}`.
    pub async fn checkout(&self, user: &User, key: &str, payment_token: &str) -> Answer {
        let body = serde_json::json!({ "payment_token": payment_token });
        self.checkout_raw(Some(&user.access), Some(key.as_bytes()), &body).await
    }

    /// `POST /checkout` with an optional bearer token, an optional `Idempotency-Key` given as raw bytes (so a
    /// scenario can send what a well-behaved client would not, such as non-ASCII text) and any JSON body.
    pub async fn checkout_raw(&self, token: Option<&str>, key: Option<&[u8]>, body: &Value) -> Answer {
        let mut request = self
            .client
            .post(format!("{}/checkout", self.base))
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(key) = key {
            let value = reqwest::header::HeaderValue::from_bytes(key)
                .unwrap_or_else(|error| panic!("Idempotency-Key {:?} cannot be sent: {error}", String::from_utf8_lossy(key)));
            request = request.header("idempotency-key", value);
        }
        read_whole(request, "/checkout").await
    }
}

/// How long the scenarios reuse the first admin's sign-in: well within the access token's 15 minutes, so a
/// scenario that takes the token at the end of this time still has minutes left to use it.
pub const ADMIN_SESSION_REUSE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Sends a request and reads its response whole.
///
/// # Panics
/// When the request cannot be sent (`path` names it in the message).
async fn read_whole(request: reqwest::RequestBuilder, path: &str) -> Answer {
    let response = request.send().await.unwrap_or_else(|error| panic!("{path}: {error}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, headers, json, text }
}

/// The claims of a token, read without checking it (the scenarios spoil them one at a time).
///
/// # Panics
/// When the token is not a JWS with a JSON payload.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap_or_else(|| panic!("not a JWS"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap_or_else(|error| panic!("{error}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|error| panic!("{error}"))
}

/// A compact JWS of `header` and `claims`, signed with HS256 and the host's access-token key (derived from
/// [`master_secret`] as the host derives it). The result is remembered as a secret.
///
/// # Panics
/// When the master secret is unavailable or too short.
pub fn mint(header: &Value, claims: &Value) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    use secrecy::ExposeSecret as _;
    let keys = shared::http::Keys::derive(&master_secret()).unwrap_or_else(|error| panic!("{error}"));
    let encode = |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let input = format!("{}.{}", encode(header), encode(claims));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(keys.access_tokens.expose_secret())
        .unwrap_or_else(|error| panic!("{error}"));
    mac.update(input.as_bytes());
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let token = format!("{input}.{signature}");
    remember_secret(&token);
    token
}

/// A signed-in scenario user.
#[derive(Debug, Clone)]
pub struct User {
    /// The account id.
    pub id: String,
    /// The e-mail address it registered with.
    pub email: String,
    /// Its password.
    pub password: String,
    /// Its current access token.
    pub access: String,
    /// Its current refresh token.
    pub refresh: String,
}

fn remember_tokens(answer: &Answer) {
    for field in ["access_token", "refresh_token"] {
        if let Some(token) = answer.json[field].as_str() {
            remember_secret(token);
        }
    }
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}
