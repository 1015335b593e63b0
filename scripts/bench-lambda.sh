#!/usr/bin/env bash
# The Lambda benchmark (a command, not a test): builds every function and a hello-world `lambda_runtime`
# binary with the workspace's release profile, runs each under the Runtime API emulator in
# scripts/bench-lambda.py on 127.0.0.1, and writes a markdown table (stdout and ${1:-target/bench-lambda.md},
# which git ignores). The HTTP functions get an API Gateway v2 request for a path no function serves and the
# jobs function an empty SQS batch, so the warm figure is the handler overhead without storage time; the
# functions still build their SDK clients at init, pointed at a closed 127.0.0.1 port with dummy keys, so
# nothing can reach AWS or 169.254.169.254. Each function gets the queue URLs template.yaml gives it (checkout and
# orders the orders queue's), since a queue URL adds an SQS client to its init. The checkout sweep gets an
# EventBridge schedule event; it reads the unsettled orders on every invocation, so its DynamoDB endpoint is the
# emulator's empty stand-in on 127.0.0.1 (see scripts/bench-lambda.py) and its invocation figures include that
# one local round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

out="${1:-target/bench-lambda.md}"
mkdir -p "$(dirname "$out")"
cold="${BENCH_COLD_STARTS:-20}"
warm="${BENCH_WARM_INVOCATIONS:-50}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
bench="$PWD/.cache/aws/bench"
mkdir -p "$bench/hello/src"

say "hello-world lambda_runtime crate (same release profile, same lambda_runtime version)"
runtime_version=$(awk '/^name = "lambda_runtime"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
[[ -n "$runtime_version" ]] || die "Cargo.lock holds no lambda_runtime"
tokio_version=$(awk '/^name = "tokio"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
{
  cat <<EOF
[package]
name = "hello-world"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
lambda_runtime = { version = "=$runtime_version", default-features = false, features = ["tracing"] }
serde_json = "1"
tokio = { version = "=$tokio_version", default-features = false, features = ["macros", "rt"] }

[workspace]

EOF
  # The workspace's release profile, verbatim.
  awk '/^\[profile.release\]/ { on = 1; print; next } /^\[/ { on = 0 } on' Cargo.toml
} >"$bench/hello/Cargo.toml"
cat >"$bench/hello/src/main.rs" <<'EOF'
//! Hello world on lambda_runtime: the baseline the benchmark compares every function with.
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async { Ok::<Value, Error>(json!({ "statusCode": 200, "body": "hello" })) })).await
}
EOF

say "release builds"
CARGO_TARGET_DIR="$target" cargo build --release --manifest-path "$bench/hello/Cargo.toml"
cargo build --release -p health -p products -p product -p cart -p discounts -p checkout -p orders -p payments -p reports -p jobs \
  -p checkout-sweep -p order-events -p privacy -p sales-report -p openapi -p docs -p mcp --features aws --bins

cat >"$bench/event.json" <<'EOF'
{"version":"2.0","routeKey":"$default","rawPath":"/bench/not-a-route","rawQueryString":"","headers":{"host":"bench.example"},"requestContext":{"accountId":"123456789012","apiId":"bench","domainName":"bench.example","http":{"method":"GET","path":"/bench/not-a-route","protocol":"HTTP/1.1","sourceIp":"192.0.2.1","userAgent":"bench"},"requestId":"bench","routeKey":"$default","stage":"$default","time":"21/Nov/2026:07:00:00 +0000","timeEpoch":1795158000000},"isBase64Encoded":false}
EOF
echo '{"Records":[]}' >"$bench/sqs-event.json"
orders_queue=http://127.0.0.1:9/000000000000/orders.fifo
orders_dlq=http://127.0.0.1:9/000000000000/orders-dlq.fifo
privacy_queue=http://127.0.0.1:9/000000000000/privacy.fifo
privacy_dlq=http://127.0.0.1:9/000000000000/privacy-dlq.fifo

say "measuring: $cold cold starts and $warm warm invocations each"
env -i PATH="$PATH" HOME="$HOME" \
  AWS_ACCESS_KEY_ID=storefrontlocal AWS_SECRET_ACCESS_KEY=storefrontlocal AWS_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:9 AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9 \
  JOBS_QUEUE_URL=http://127.0.0.1:9/000000000000/jobs.fifo JOBS_DEAD_LETTER_QUEUE_URL=http://127.0.0.1:9/000000000000/jobs-dlq.fifo \
  AWS_LAMBDA_FUNCTION_NAME=bench AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_VERSION='$LATEST' \
  AWS_LAMBDA_LOG_LEVEL=error TABLE_NAME=bench STOREFRONT_SECRET=bench-only-secret-bench-only-secret-0123 \
  python3 scripts/bench-lambda.py "$bench/event.json" "$cold" "$warm" \
    "hello-world=$target/release/hello-world" \
    "health=$target/release/health" "products=$target/release/products" "product=$target/release/product" \
    "cart=$target/release/cart" "discounts=$target/release/discounts" \
    "checkout=$target/release/checkout;ORDERS_QUEUE_URL=$orders_queue" "orders=$target/release/orders;ORDERS_QUEUE_URL=$orders_queue" \
    "payments=$target/release/payments" "reports=$target/release/reports" \
    "openapi=$target/release/openapi" "docs=$target/release/docs" "mcp=$target/release/mcp;ORDERS_QUEUE_URL=$orders_queue" \
    "jobs=$target/release/jobs@$bench/sqs-event.json" \
    "order-events=$target/release/order-events@$bench/sqs-event.json;ORDERS_QUEUE_URL=$orders_queue;ORDERS_DEAD_LETTER_QUEUE_URL=$orders_dlq" \
    "privacy=$target/release/privacy@$bench/sqs-event.json;PRIVACY_QUEUE_URL=$privacy_queue;PRIVACY_DEAD_LETTER_QUEUE_URL=$privacy_dlq" \
    "sales-report=$target/release/sales-report@$PWD/events/schedule.json;AWS_ENDPOINT_URL_DYNAMODB={empty_dynamodb}" \
    "checkout-sweep=$target/release/checkout-sweep@$PWD/events/schedule.json;ORDERS_QUEUE_URL=$orders_queue;AWS_ENDPOINT_URL_DYNAMODB={empty_dynamodb}" \
  | tee "$out"
echo "written to $out"
