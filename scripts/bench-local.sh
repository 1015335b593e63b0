#!/usr/bin/env bash
# The local host under load (a command, not a test): builds `local-host` with the release profile, starts it on
# 127.0.0.1 on a fresh data file with the demo catalog, and measures, each bounded:
# - product reads (`GET /products/{id}`) and searches (`GET /products?q=walnut`) with oha (crates.io): keep-alive,
#   ${BENCH_CONNECTIONS:-32} connections for ${BENCH_SECONDS:-10} s each;
# - checkouts with drill (crates.io), because every checkout needs a shopper, a cart and an Idempotency-Key of its
#   own and oha repeats one fixed request: ${BENCH_CHECKOUTS:-400} iterations, ${BENCH_CONNECTIONS:-32} at a time,
#   each registering a shopper, signing in, putting one unit in the cart and checking out with the sandbox's
#   `tok_success`. The checkout request's own latency is reported; its rate is checkouts over the run's wall time,
#   sign-ups included. Passwords use the test-only cheap Argon2 costs (`--insecure-fast-passwords`) so that signing
#   the shoppers up does not swamp the checkouts.
# Writes a markdown table to stdout and to ${1:-target/bench-local.md} (git ignores target/). The tools are installed
# once into ${STOREFRONT_TOOLS:-~/.cache/storefront}/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

out="${1:-target/bench-local.md}"
mkdir -p "$(dirname "$out")"
seconds="${BENCH_SECONDS:-10}"
connections="${BENCH_CONNECTIONS:-32}"
checkouts="${BENCH_CHECKOUTS:-400}"
OHA_VERSION=1.16.0
DRILL_VERSION=0.9.1
tools="$STOREFRONT_TOOLS/bench"
pids=()
run=$(mktemp -d -t storefront-bench.XXXXXX)
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$run"; }
trap cleanup EXIT

install() {
  local name=$1 version=$2
  if [[ "$("$tools/bin/$name" --version 2>/dev/null)" != *"$version"* ]]; then
    say "installing $name $version from crates.io into $tools"
    env -u CARGO_TARGET_DIR cargo install "$name" --version "=$version" --locked --root "$tools" --force || die "cargo install $name@$version"
  fi
}
install oha "$OHA_VERSION"
install drill "$DRILL_VERSION"

say "release build of local-host"
cargo build --release -p local-host
binary="${CARGO_TARGET_DIR:-$PWD/target}/release/local-host"

port=$(free_port)
admin=admin@bench.test
"$binary" --port "$port" --data "$run/store.db" --log warn --admin-email "$admin" --login-attempts-per-client 1000000 \
  --insecure-fast-passwords >"$run/stdout" 2>"$run/stderr" &
pids+=($!)
base="http://127.0.0.1:$port"
wait_for_url "$base/health" 60 || { cat "$run/stderr" >&2; die "the local host did not answer"; }

say "a product with stock for every checkout, made by the first admin"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
curl -sf -H 'content-type: application/json' -d "{\"email\":\"$admin\",\"password\":\"bench-admin-password-0001\"}" "$base/auth/register" >/dev/null
admin_token=$(curl -sf -H 'content-type: application/json' -d "{\"email\":\"$admin\",\"password\":\"bench-admin-password-0001\"}" "$base/auth/login" | json "['access_token']")
product=$(curl -sf -H "authorization: Bearer $admin_token" -H 'content-type: application/json' \
  -d "{\"sku\":\"BENCH-1\",\"name\":\"Bench lamp\",\"category\":\"lighting\",\"price\":{\"amount\":1500,\"currency\":\"EUR\"},\"stock\":$((checkouts * 2))}" \
  "$base/products" | json "['id']")
read_id=$(curl -sf "$base/products?limit=1" | json "['items'][0]['id']")

oha_row() {
  local what=$1 url=$2
  "$tools/bin/oha" -z "${seconds}s" -c "$connections" --no-tui --output-format json "$url" >"$run/oha.json"
  python3 - "$what" "$run/oha.json" <<'EOF'
import json, sys
what, path = sys.argv[1], sys.argv[2]
result = json.load(open(path))
summary, percentiles = result["summary"], result["latencyPercentiles"]
statuses = result.get("statusCodeDistribution", {})
ok = sum(count for status, count in statuses.items() if status.startswith("2"))
total = sum(statuses.values())
print(f"| {what} | {summary['requestsPerSec']:.0f} | {percentiles['p50'] * 1000:.2f} | {percentiles['p99'] * 1000:.2f} | {ok} of {total} |")
EOF
}

say "measuring: $seconds s per read, $connections connections; $checkouts checkouts"
{
  echo "| load (local host, release, 127.0.0.1) | requests/s | p50 ms | p99 ms | 2xx |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  oha_row "GET /products/{id}, $connections connections, ${seconds} s (oha)" "$base/products/$read_id"
  oha_row "GET /products?q=walnut, $connections connections, ${seconds} s (oha)" "$base/products?q=walnut"
} >"$run/table.md"

tag=$(date +%s%N)
cat >"$run/checkout.yml" <<EOF
---
base: '$base'
concurrency: $connections
iterations: $checkouts
plan:
  - name: register
    request:
      url: /auth/register
      method: POST
      headers:
        Content-Type: application/json
      body: '{"email":"shopper-$tag-{{ iteration }}@bench.test","password":"bench-password-{{ iteration }}"}'
  - name: login
    request:
      url: /auth/login
      method: POST
      headers:
        Content-Type: application/json
      body: '{"email":"shopper-$tag-{{ iteration }}@bench.test","password":"bench-password-{{ iteration }}"}'
    assign: session
  - name: cart
    request:
      url: /cart/items/$product
      method: PUT
      headers:
        Content-Type: application/json
        Authorization: 'Bearer {{ session.body.access_token }}'
      body: '{"quantity":1}'
  - name: checkout
    request:
      url: /checkout
      method: POST
      headers:
        Content-Type: application/json
        Authorization: 'Bearer {{ session.body.access_token }}'
        Idempotency-Key: 'bench-$tag-{{ iteration }}'
      body: '{"payment_token":"tok_success"}'
EOF
started=$(now_ms)
NO_COLOR=1 "$tools/bin/drill" --benchmark "$run/checkout.yml" --stats --quiet --nanosec >"$run/drill.txt" 2>&1 || { cat "$run/drill.txt" >&2; die "drill failed"; }
elapsed_ms=$(( $(now_ms) - started ))
python3 - "$run/drill.txt" "$checkouts" "$elapsed_ms" "$connections" >>"$run/table.md" <<'EOF'
import re, sys
text, checkouts, elapsed_ms, connections = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def stat(label):
    match = re.search(r"^checkout\s+" + re.escape(label) + r"\s+([0-9.]+)", text, re.M)
    if not match:
        sys.exit(f"drill printed no '{label}' for checkout:\n{text}")
    return float(match.group(1))
total, failed = stat("Total requests"), stat("Failed requests")
if total != checkouts or failed:
    sys.exit(f"{failed:.0f} of {total:.0f} checkouts failed:\n{text}")
rate = checkouts / (elapsed_ms / 1000)
median, p99 = stat("Median time per request") / 1e6, stat("99.0'th percentile") / 1e6
print(f"| POST /checkout, {connections} shoppers at a time, {checkouts} in all (drill; rate over the run, sign-ups included) | {rate:.0f} | {median:.2f} | {p99:.2f} | {checkouts - failed:.0f} of {total:.0f} |")
EOF
remaining=$(curl -sf "$base/products/$product" | json "['stock']")
[[ "$remaining" -eq "$checkouts" ]] || die "stock left $remaining, expected $checkouts: a checkout was lost or doubled"
tee "$out" <"$run/table.md"
echo "written to $out"
