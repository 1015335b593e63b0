//! Test support: the target the end-to-end scenarios drive, and a small HTTP client for them.
//!
//! The scenarios speak HTTP to a base URL so that every host runs the very same ones. With
//! `STOREFRONT_BASE_URL` set they drive that host (the local host binary, `cargo lambda watch`, `wrangler dev`);
//! without it they start the local host in-process on a temporary SQLite file and a free loopback port, so plain
//! `cargo test` works offline. Either way they need the demo catalog in the store.

use std::sync::OnceLock;

use anyhow::Context as _;
use serde_json::Value;

/// The variable naming the host under test.
pub const BASE_URL_VAR: &str = "STOREFRONT_BASE_URL";

static TARGET: OnceLock<String> = OnceLock::new();

/// The base URL of the host under test (without a trailing slash), starting the in-process local host once if
/// no URL is given.
pub fn base_url() -> &'static str {
    TARGET.get_or_init(|| match std::env::var(BASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => {
            eprintln!("end-to-end scenarios: driving {url}");
            url.trim().trim_end_matches('/').to_owned()
        }
        _ => {
            let url = start_in_process_host().unwrap_or_else(|error| panic!("could not start the local host: {error:#}"));
            eprintln!("end-to-end scenarios: {BASE_URL_VAR} is unset, driving an in-process local host at {url}");
            url
        }
    })
}

/// Starts the local host on its own thread and runtime (so it outlives any one test's runtime) and returns its URL.
fn start_in_process_host() -> anyhow::Result<String> {
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
                let dir = match tempfile::tempdir() {
                    Ok(dir) => dir,
                    Err(error) => {
                        let _ = sender.send(Err(anyhow::Error::new(error)));
                        return;
                    }
                };
                let config = local_host::Config {
                    host: std::net::Ipv4Addr::LOCALHOST.into(),
                    port: 0,
                    data: dir.path().join("e2e.db"),
                    no_seed: false,
                    log: "warn".to_owned(),
                };
                match local_host::start(config, std::future::pending()).await {
                    Ok(running) => {
                        let _ = sender.send(Ok(format!("http://{}", running.addr)));
                        let _ = running.done.await;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error));
                    }
                }
                drop(dir);
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
        Self { base: base_url().to_owned(), client: reqwest::Client::new() }
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
        let response = request.send().await.unwrap_or_else(|error| panic!("{path}: {error}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, headers, json, text }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, &[], None).await
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
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}
