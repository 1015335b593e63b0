//! The API against its own OpenAPI document, from outside: schemathesis runs every operation of the host's
//! `/openapi.json` with its server-error, status-code and response-schema checks, and headless Chromium renders
//! the `/docs` page.
//!
//! schemathesis is `STOREFRONT_SCHEMATHESIS` and Chromium `STOREFRONT_CHROMIUM` (`scripts/api-clients.sh env`
//! gives both); without them these checks fail, saying so.
//!
//! schemathesis runs three times, so that every operation is reached and none undoes the others' sign-in:
//! 1. as a fresh customer, every operation except the two that end that customer's session
//!    (`close_account`, `logout`: run in 3) and the admin-only ones (run in 2);
//! 2. as the first admin, the admin-only operations (catalog writes, discounts, the sandbox ledger, reports);
//! 3. as another fresh customer, `close_account` and `logout`.
//!
//! Nothing else is excluded. On the AWS tier only (`STOREFRONT_SCHEMATHESIS_UTF8_BODIES_ONLY`, set by
//! `scripts/test-aws.sh`), request bodies that are not UTF-8 are not generated (`tests/clients/st_hooks.py`):
//! `cargo lambda watch` cannot put such a body into an API Gateway event and answers 500 itself, without running
//! the function, where API Gateway would base64-encode it.

use std::path::PathBuf;

use serde_json::Value;
use tests::{Api, base_url};

use crate::admin::admin;

/// The operations only an admin may run (as a customer they answer 403, which the first pass would check).
const ADMIN_ONLY: [&str; 7] =
    ["create_product", "replace_product", "delete_product", "create_discount", "list_discounts", "list_sandbox_charges", "sales_report"];
/// The operations that end the caller's session.
const SESSION_ENDING: [&str; 2] = ["close_account", "logout"];

fn tool(var: &str, what: &str) -> String {
    match std::env::var(var) {
        Ok(path) if !path.trim().is_empty() => path,
        _ => panic!("{var} must name {what} (run scripts/api-clients.sh env)"),
    }
}

/// Runs schemathesis on the operations `include` (or all but `exclude`) with `token`; panics with its report
/// when it finds a failure or cannot run.
async fn schemathesis(pass: &str, token: &str, include: &[&str], exclude: &[&str]) {
    let st = tool("STOREFRONT_SCHEMATHESIS", "the schemathesis command");
    // It writes a cache and a Hypothesis folder into its working directory: give it a temporary one.
    let work = tempfile::tempdir().unwrap_or_else(|error| panic!("a temporary folder: {error}"));
    let mut args: Vec<String> = vec![
        "run".into(),
        format!("{}/openapi.json", base_url()),
        "--url".into(),
        base_url().to_owned(),
        "--checks".into(),
        "not_a_server_error,status_code_conformance,response_schema_conformance".into(),
        "--phases".into(),
        "examples,coverage,fuzzing".into(),
        "--max-examples".into(),
        "15".into(),
        "--generation-deterministic".into(),
        "--workers".into(),
        "1".into(),
        "--max-redirects".into(),
        "0".into(),
        "--request-timeout".into(),
        "30".into(),
        "--no-color".into(),
        "-H".into(),
        format!("Authorization: Bearer {token}"),
    ];
    for id in include {
        args.extend(["--include-operation-id".into(), (*id).to_owned()]);
    }
    for id in exclude {
        args.extend(["--exclude-operation-id".into(), (*id).to_owned()]);
    }
    let mut command = tokio::process::Command::new(&st);
    command.args(&args).current_dir(work.path());
    if std::env::var_os("STOREFRONT_SCHEMATHESIS_UTF8_BODIES_ONLY").is_some() {
        eprintln!("schemathesis, {pass}: request bodies that are not UTF-8 are not generated (tests/clients/st_hooks.py)");
        command.env("SCHEMATHESIS_HOOKS", "st_hooks").env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/clients"));
    }
    let output = command
        .output()
        .await
        .unwrap_or_else(|error| panic!("run {st}: {error}"));
    let report = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = report.lines().filter(|line| line.contains("generated,")).map(str::trim).collect();
    eprintln!("schemathesis, {pass}: {}", summary.join(" | "));
    assert!(output.status.success(), "schemathesis found failures ({pass}):\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains("generated,"), "schemathesis ran no test case ({pass}):\n{report}");
}

#[tokio::test]
async fn schemathesis_finds_no_failure_in_any_operation() {
    let api = Api::new();
    let document = api.get("/openapi.json").await;
    assert_eq!(document.status, 200, "{}", document.text);
    let documented: Vec<&str> = document.json["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, item)| item.as_object().into_iter().flatten().filter_map(|(_, operation)| operation["operationId"].as_str()))
        .collect();
    for id in ADMIN_ONLY.iter().chain(&SESSION_ENDING) {
        assert!(documented.contains(id), "{id} is not an operation of /openapi.json: {documented:?}");
    }
    let customer = api.new_user("schemathesis").await;
    let excluded: Vec<&str> = ADMIN_ONLY.iter().chain(&SESSION_ENDING).copied().collect();
    schemathesis("as a customer", &customer.access, &[], &excluded).await;
    let admin = admin(&api).await;
    schemathesis("as the admin", &admin.access, &ADMIN_ONLY, &[]).await;
    let leaving = api.new_user("schemathesis-leaving").await;
    schemathesis("as a customer who leaves", &leaving.access, &SESSION_ENDING, &[]).await;
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_in_chromium_with_no_console_error() {
    let chromium = tool("STOREFRONT_CHROMIUM", "a Chromium binary");
    let python = tool("STOREFRONT_MCP_PYTHON", "a Python 3");
    let api = Api::new();
    let document = api.get("/openapi.json").await;
    let operations: usize = document.json["paths"].as_object().into_iter().flatten().map(|(_, item)| item.as_object().map_or(0, |methods| methods.len())).sum();
    assert!(operations >= 25, "the document lists only {operations} operations");
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "clients", "page_check.py"].iter().collect();
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .args([chromium.as_str(), &format!("{}/docs", base_url()), ".opblock", &operations.to_string()])
        .output()
        .await
        .unwrap_or_else(|error| panic!("run {}: {error}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the page check failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("not a report ({error}): {stdout}"));
    assert_eq!(report["problems"], serde_json::json!([]), "the page logged problems: {report}");
    assert_eq!(report["count"], operations, "Swagger UI shows every operation of /openapi.json: {report}");
    assert_eq!(report["title"], "Storefront API reference");
}
