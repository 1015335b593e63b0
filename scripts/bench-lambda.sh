#!/usr/bin/env bash
# The Lambda benchmark (a command, not a test): builds every function and a hello-world `lambda_runtime`
# binary with the workspace's release profile and the rustflags Lambda's arm64 builds get (.cargo/config.toml), for
# this machine's triple, runs each under the Runtime API emulator in
# scripts/bench-lambda.py on 127.0.0.1, and writes a markdown table (stdout and ${1:-target/bench-lambda.md},
# which git ignores). The HTTP functions get an API Gateway v2 request for a path no function serves and the
# jobs function an empty SQS batch, so the warm figure is the handler overhead without storage time; the
# functions still build their SDK clients at init, pointed at a closed 127.0.0.1 port with dummy keys, so
# nothing can reach AWS or 169.254.169.254. Each function gets the queue URLs template.yaml gives it (checkout and
# orders the orders queue's), since a queue URL adds an SQS client to its init. The scheduled functions (the sales
# report, the outbox relay, the checkout sweep) get an EventBridge schedule event; each reads the store on every
# invocation, so their DynamoDB endpoint is the emulator's empty stand-in on 127.0.0.1 (see scripts/bench-lambda.py)
# and their invocation figures include those local round trips. Every function runs with template.yaml's
# SMITHY_CLIENT_SDK_CUSTOM_PARTITION, pointed at the layer's file in the repository, as deployed in the `aws` partition.
#
# A second table puts the functions whose every invocation calls DynamoDB (the scheduled functions)
# beside `hello-dynamodb`: the hello-world plus one `GetItem` per invocation, with its client built at init as the
# functions build theirs and no Storefront code, built from the workspace's Cargo.lock. It is the floor of any
# function that reads the store: the SDK's first call costs a cold start more than the hello-world's whole
# invocation, so those functions are measured against it as well as against the hello-world.
#
# A third table, from the same run, compares one real read: the `product` function's `GET /products/{id}` on
# DynamoDB Local (seeded with the demo catalog by the function itself, `DEMO_SEED`), against the same read as a
# Python 3 function on boto3 (scripts/bench/python_product.py) run by the AWS Lambda Python runtime interface client
# (`awslambdaric` from PyPI), with the ratio of their cold totals (init plus first invocation).
#
# BENCH_FUNCTIONS (space-separated names, default all) limits the first table to some functions, for a quicker run;
# BENCH_REST_MS (default 50) is how long the machine rests before each cold start (scripts/bench-lambda.py).
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
# The workspace's release profile, verbatim: the baseline crates are built with it.
release_profile() {
  awk '/^\[profile.release\]/ { on = 1; print; next } /^\[/ { on = 0 } on' Cargo.toml
}

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
  release_profile
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

say "hello-dynamodb crate: the hello-world plus one DynamoDB GetItem per invocation (the workspace's Cargo.lock)"
# The baseline of the functions whose every invocation calls DynamoDB (the scheduled functions): what the
# SDK itself costs a cold start, with no Storefront code. Its client is built at init as lambda_host builds the
# functions' (the SDK's config builder, rustls on ring trusting the AWS roots); its dependencies are the
# workspace's, at the versions Cargo.lock pins (cargo keeps only the lock's entries the crate uses).
mkdir -p "$bench/hello-dynamodb/src"
{
  cat <<EOF
[package]
name = "hello-dynamodb"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
$(grep -E '^(aws-sdk-dynamodb|aws-smithy-http-client|aws-smithy-runtime-api|lambda_runtime|serde_json) = ' Cargo.toml)
tokio = { version = "1", default-features = false, features = ["macros", "rt"] }

[workspace]

EOF
  release_profile
} >"$bench/hello-dynamodb/Cargo.toml"
cp Cargo.lock "$bench/hello-dynamodb/Cargo.lock"
cat >"$bench/hello-dynamodb/src/main.rs" <<EOF
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{SharedHttpConnector, http_client_fn};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let roots = TrustStore::empty().with_native_roots(false).with_pem_certificate(include_str!("$PWD/functions/lambda-host/src/aws-roots.pem"));
    let tls = TlsContext::builder().with_trust_store(roots).build()?;
    let connector = SharedHttpConnector::new(
        aws_smithy_http_client::Connector::builder().tls_provider(Provider::Rustls(CryptoMode::Ring)).tls_context(tls).build(),
    );
    let variable = |name: &str| std::env::var(name).map_err(|error| format!("{name}: {error}"));
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(variable("AWS_REGION")?))
        .credentials_provider(Credentials::new(variable("AWS_ACCESS_KEY_ID")?, variable("AWS_SECRET_ACCESS_KEY")?, None, None, "environment"))
        .http_client(http_client_fn(move |_settings, _components| connector.clone()));
    if let Ok(endpoint) = variable("AWS_ENDPOINT_URL_DYNAMODB") {
        config = config.endpoint_url(endpoint);
    }
    let client = aws_sdk_dynamodb::Client::from_conf(config.build());
    let table = variable("TABLE_NAME")?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| {
        let read = client.get_item().table_name(&table).key("pk", AttributeValue::S("hello".into())).key("sk", AttributeValue::S("hello".into()));
        async move {
            let found = read.send().await?;
            Ok::<Value, Error>(json!({ "statusCode": 200, "body": found.item.is_some().to_string() }))
        }
    }))
    .await
}
EOF

# Every function template.yaml deploys, in its order: a function added there is measured here (or the run stops
# below, until it has a spec), so that "every function" in the report stays true.
all_functions=$(template_functions | tr '\n' ' ')
functions="${BENCH_FUNCTIONS:-$all_functions}"
for name in $functions; do
  [[ " $all_functions " == *" $name "* ]] || die "BENCH_FUNCTIONS names $name, which is not one of: $all_functions"
done
# The product read below always needs the product function.
packages=(-p product)
for name in $functions; do packages+=(-p "$name"); done

say "release builds"
# Lambda runs arm64 binaries built with .cargo/config.toml's flags for aarch64 (cargo-lambda passes --target). The
# benchmark builds for this machine's triple with those same flags, the hello-world included, and with an explicit
# --target too, so that the flags reach only the binaries measured (not build scripts or proc-macros).
host=$(rustc -vV | sed -n 's/^host: //p')
[[ -n "$host" ]] || die "rustc -vV names no host triple"
deploy_flags=$(deploy_rustflags)
flags_var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$host")_RUSTFLAGS"
export "$flags_var=$deploy_flags"
say "rustflags for $host: $deploy_flags"
CARGO_TARGET_DIR="$target" cargo build --release --target "$host" --manifest-path "$bench/hello/Cargo.toml"
CARGO_TARGET_DIR="$target" cargo build --release --target "$host" --manifest-path "$bench/hello-dynamodb/Cargo.toml"
cargo build --release --target "$host" "${packages[@]}" --features aws --bins
release="$target/$host/release"

# Every binary, the hello-world's included, is measured from a fresh copy, written front to back as unpacking a
# deployment package writes it. Measured from the files the linker wrote, the same code started up to 0.6 ms
# slower or faster from one binary to the next (product: 2.53-2.61 ms as linked, 1.87-1.96 ms copied, in the
# same runs): how a file was written decides how fast its pages map in at exec (the page cache's folio sizes,
# most likely), a difference as large as those this table is for.
deployed="$bench/deployed"
rm -rf "$deployed"
mkdir -p "$deployed"
for name in hello-world hello-dynamodb product $functions; do cp "$release/$name" "$deployed/$name"; done
release="$deployed"

bench_404_event >"$bench/event.json"
echo '{"Records":[]}' >"$bench/sqs-event.json"
orders_queue=http://127.0.0.1:9/000000000000/orders.fifo
orders_dlq=http://127.0.0.1:9/000000000000/orders-dlq.fifo
privacy_queue=http://127.0.0.1:9/000000000000/privacy.fifo
privacy_dlq=http://127.0.0.1:9/000000000000/privacy-dlq.fifo

# One spec per function: NAME=BINARY[@EVENT][;VARIABLE=VALUE...] (scripts/bench-lambda.py).
declare -A spec=(
  [health]="health=$release/health" [products]="products=$release/products" [product]="product=$release/product"
  [register]="register=$release/register" [login]="login=$release/login" [refresh]="refresh=$release/refresh"
  [logout]="logout=$release/logout" [me]="me=$release/me;PRIVACY_QUEUE_URL=$privacy_queue"
  [cart]="cart=$release/cart" [discounts]="discounts=$release/discounts"
  [checkout]="checkout=$release/checkout;ORDERS_QUEUE_URL=$orders_queue" [orders]="orders=$release/orders;ORDERS_QUEUE_URL=$orders_queue"
  [payments]="payments=$release/payments" [reports]="reports=$release/reports"
  [openapi]="openapi=$release/openapi" [docs]="docs=$release/docs" [mcp]="mcp=$release/mcp;ORDERS_QUEUE_URL=$orders_queue"
  [jobs]="jobs=$release/jobs@$bench/sqs-event.json"
  [order-events]="order-events=$release/order-events@$bench/sqs-event.json;ORDERS_QUEUE_URL=$orders_queue;ORDERS_DEAD_LETTER_QUEUE_URL=$orders_dlq"
  [privacy]="privacy=$release/privacy@$bench/sqs-event.json;PRIVACY_QUEUE_URL=$privacy_queue;PRIVACY_DEAD_LETTER_QUEUE_URL=$privacy_dlq"
  [sales-report]="sales-report=$release/sales-report@$PWD/events/schedule.json;AWS_ENDPOINT_URL_DYNAMODB={empty_dynamodb}"
  [outbox-relay]="outbox-relay=$release/outbox-relay@$PWD/events/schedule.json;PRIVACY_QUEUE_URL=$privacy_queue;ORDERS_QUEUE_URL=$orders_queue;AWS_ENDPOINT_URL_DYNAMODB={empty_dynamodb}"
  [checkout-sweep]="checkout-sweep=$release/checkout-sweep@$PWD/events/schedule.json;ORDERS_QUEUE_URL=$orders_queue;AWS_ENDPOINT_URL_DYNAMODB={empty_dynamodb}"
)
specs=("hello-world=$release/hello-world")
for name in $functions; do
  [[ -n "${spec[$name]:-}" ]] || die "scripts/bench-lambda.sh has no spec for $name (template.yaml deploys it): add one to \`spec\`"
  specs+=("${spec[$name]}")
done

say "measuring: $cold cold starts and $warm warm invocations each"
lambda_bench_env \
  python3 scripts/bench-lambda.py "$bench/event.json" "$cold" "$warm" "${specs[@]}" \
  | tee "$out"

# The same measurement for the functions whose every invocation calls DynamoDB, against hello-dynamodb, all on the
# empty stand-in; the hello-world again last, so that the SDK call's own cost is side by side too.
store_specs=("hello-dynamodb=$release/hello-dynamodb@$PWD/events/schedule.json;AWS_ENDPOINT_URL_DYNAMODB={empty_dynamodb}")
for name in sales-report outbox-relay checkout-sweep; do
  [[ " $functions " == *" $name "* ]] && store_specs+=("${spec[$name]}")
done
store_specs+=("hello-world=$release/hello-world")
say "the functions that call DynamoDB on every invocation, against hello-dynamodb"
{
  echo
  echo "The functions whose every invocation calls DynamoDB (the empty stand-in on 127.0.0.1), against \`hello-dynamodb\`: the hello-world plus one \`GetItem\` per invocation, its client built at init as the functions build theirs."
  echo
  lambda_bench_env python3 scripts/bench-lambda.py "$bench/event.json" "$cold" "$warm" "${store_specs[@]}"
} | tee -a "$out"

say "one product read on DynamoDB Local: the Rust product function against Python 3 with boto3"
venv="$STOREFRONT_TOOLS/bench/python-lambda"
AWSLAMBDARIC_VERSION=4.2.2
BOTO3_VERSION=1.44.8
marker="awslambdaric==$AWSLAMBDARIC_VERSION boto3==$BOTO3_VERSION"
if [[ "$(cat "$venv/.installed" 2>/dev/null)" != "$marker" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv $venv"
  "$venv/bin/pip" install --quiet --only-binary=:all: "awslambdaric==$AWSLAMBDARIC_VERSION" "boto3==$BOTO3_VERSION" || die "pip install $marker"
  echo "$marker" >"$venv/.installed"
fi
# The runtime interface client as one executable, so the benchmark starts Python itself, with no shell in between.
printf '#!%s\nimport sys\nsys.path.insert(0, "%s")\nfrom awslambdaric.__main__ import main\nmain([sys.argv[0], "python_product.handler"])\n' \
  "$venv/bin/python" "$PWD/scripts/bench" >"$bench/python-product"
chmod +x "$bench/python-product"
emulators=(env STOREFRONT_AWS_STATE="$bench/emulators" scripts/aws-emulators.sh)
"${emulators[@]}" start
trap '"${emulators[@]}" stop' EXIT
dynamodb=$("${emulators[@]}" env | sed -n 's/^export AWS_ENDPOINT_URL_DYNAMODB=//p')
[[ -n "$dynamodb" ]] || die "DynamoDB Local did not start"
read_env=(lambda_bench_env AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL_DYNAMODB="$dynamodb" TABLE_NAME=bench-read)
# The product function seeds its table with the demo catalog at init when asked (DEMO_SEED), then finds no Runtime
# API on the closed port and stops: that is the whole seeding step.
"${read_env[@]}" DEMO_SEED=true AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 "$release/product" >/dev/null 2>&1 || true
first_product='import boto3
page = boto3.client("dynamodb").scan(TableName="bench-read", FilterExpression="sk = :sk", ExpressionAttributeValues={":sk": {"S": "PRODUCT"}})
print(sorted(item["pk"]["S"] for item in page["Items"])[0].removeprefix("PRODUCT#"))'
product_id=$("${read_env[@]}" "$venv/bin/python" -c "$first_product") || die "DynamoDB Local holds no seeded product"
sed "s#/bench/not-a-route#/products/$product_id#g" "$bench/event.json" >"$bench/product-event.json"
for candidate in "$release/product" "$bench/python-product"; do
  "${read_env[@]}" BENCH_EXPECT_STATUS=200 python3 scripts/bench-lambda.py "$bench/product-event.json" 1 0 "check=$candidate" >/dev/null \
    || die "$candidate could not serve GET /products/$product_id"
done
{
  echo
  echo "One \`GET /products/{id}\` on DynamoDB Local (127.0.0.1), answered 200 every time: the Rust \`product\` function and the same read in Python 3 on boto3 under \`awslambdaric\`."
  echo
  "${read_env[@]}" BENCH_EXPECT_STATUS=200 python3 scripts/bench-lambda.py "$bench/product-event.json" "$cold" "$warm" \
    "product (Rust)=$release/product" "python-boto3=$bench/python-product"
} | tee -a "$out"
# How much of each binary the cold-start linker script gathered (scripts/coldstart-layout.sh): if a change leaves
# the code a cold start runs outside it, this share falls, and the script needs regenerating.
python3 - "$release/hello-world" "$release/product" <<'PY' | tee -a "$out"
import re, subprocess, sys
sizes = {}
for binary in sys.argv[1:]:
    listing = subprocess.run(["readelf", "-SW", binary], check=True, capture_output=True, text=True).stdout
    found = dict(re.findall(r"\] (\.text(?:\.coldstart)?)\s+PROGBITS\s+\S+\s+\S+\s+([0-9a-f]+)", listing))
    sizes[binary.rsplit("/", 1)[1]] = [int(found.get(name, "0"), 16) / 1e6 for name in (".text.coldstart", ".text")]
patterns = sum(1 for line in open("functions/lambda-host/coldstart.ld") if line.lstrip().startswith("*("))
print()
print(f"Cold-start layout (`functions/lambda-host/coldstart.ld`, {patterns} patterns): " + "; ".join(
    f"{name}'s .text.coldstart holds {hot:.2f} MB, the rest of its code {rest:.2f} MB" for name, (hot, rest) in sizes.items()) + ".")
PY
echo "written to $out"
