#!/usr/bin/env bash
# The search benchmark (a command, not a test): `GET /products` on a catalog of 10,000 generated products (the
# fixture `shared::demo::generated_catalog`, not the demo) on each host, one after the other on 127.0.0.1:
# - the local host: the release `local-host` binary on its embedded SQLite store, seeded with
#   `--demo-products 10000`;
# - Lambda: the release `products` function under `cargo lambda watch --release` on DynamoDB Local (from
#   scripts/aws-emulators.sh), seeded at its cold start with `DEMO_SEED=10000` (the env file the AWS tier uses,
#   cut to what the function needs);
# - Workers: the release Worker under `wrangler dev` on a local D1 database, seeded by its housekeeping cron
#   trigger with `--var DEMO_SEED:10000`; measured twice: as in production, through its KV listing cache, and
#   with the cache missed on every request (see scripts/bench/search.py's --bust-cache), which runs the search.
#
# Per host and query shape (one word, prefix, typo, three words, filter only; scripts/bench/search.py): p50 and p99
# of the request over one keep-alive connection after a warm-up, the number of matches, and the store items one
# search read (from the function's Server-Timing header). Per host: the time to seed the fixture, and the index's
# size (its shard documents, read from the store's own file or table).
#
# Writes a markdown section to stdout and to ${1:-target/bench-search.md}. BENCH_SEARCH_SAMPLES (default 200),
# BENCH_SEARCH_WARMUP (default 20), BENCH_SEARCH_PRODUCTS (default 10000) and BENCH_SEARCH_HOSTS (default
# "local lambda workers") tune it. Tools are installed as the other benchmarks and tiers install them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

out="${1:-target/bench-search.md}"
mkdir -p "$(dirname "$out")"
samples="${BENCH_SEARCH_SAMPLES:-200}"
warmup="${BENCH_SEARCH_WARMUP:-20}"
products="${BENCH_SEARCH_PRODUCTS:-10000}"
hosts="${BENCH_SEARCH_HOSTS:-local lambda workers}"
[[ "$samples" =~ ^[1-9][0-9]*$ && "$warmup" =~ ^[0-9]+$ && "$products" =~ ^[1-9][0-9]*$ ]] \
  || die "BENCH_SEARCH_SAMPLES, BENCH_SEARCH_WARMUP and BENCH_SEARCH_PRODUCTS must be whole numbers"
for tool in python3 curl setsid; do
  command -v "$tool" >/dev/null || die "$tool not found: the benchmark needs it"
done

run=$(mktemp -d -t storefront-bench-search.XXXXXX)
groups=()
# Every process started here leads a process group of its own (setsid), stopped whole at the end.
cleanup() {
  local group
  for group in "${groups[@]}"; do kill -INT -- "-$group" 2>/dev/null || true; done
  for group in "${groups[@]}"; do
    for _ in $(seq 50); do kill -0 -- "-$group" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$group" 2>/dev/null || true
  done
  if [[ -f "$run/emulators.started" ]]; then
    STOREFRONT_AWS_STATE="$run/aws" scripts/aws-emulators.sh stop || true
  fi
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# No process started here may look for credentials anywhere but these dummy keys.
export AWS_ACCESS_KEY_ID=storefrontlocal AWS_SECRET_ACCESS_KEY=storefrontlocal AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

# index_size SQLITE_FILE: the index shards' count and bytes of JSON in a store's SQLite file (the local host's, or
# the D1 database wrangler dev keeps).
index_size() {
  python3 - "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
count, size = db.execute("SELECT count(*), coalesce(sum(length(data)), 0) FROM items WHERE pk = 'SEARCH' AND sk LIKE 'SHARD#%'").fetchone()
print(f"{count} shards, {size} bytes of JSON ({size / 1024 / 1024:.2f} MiB)")
EOF
}

# wait_200 URL SECONDS GROUP LOG: polls URL until it answers 200, failing early if the process group died.
wait_200() {
  local url=$1 seconds=$2 group=$3 log=$4
  for _ in $(seq $((seconds * 4))); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 600 "$url" || true)" == "200" ]] && return 0
    # The leader's pid, not its group: right after the start, setsid may not have made the group yet.
    kill -0 "$group" 2>/dev/null || { tail -30 "$log" >&2; die "the process serving $url exited"; }
    sleep 0.25
  done
  tail -30 "$log" >&2
  die "no 200 from $url within $seconds s"
}

measure() {
  BENCH_EXPECT_INDEXED="$products" python3 scripts/bench/search.py "$@" >>"$run/rows.md" || die "the measurement on $2 failed"
  tail -n 5 "$run/rows.md" >&2
}

notes=()

bench_local() {
  say "local host: release build"
  cargo build --release -p local-host
  local port started group
  port=$(free_port)
  started=$(now_ms)
  (exec setsid "${CARGO_TARGET_DIR:-$PWD/target}/release/local-host" --port "$port" --data "$run/local.db" --log warn \
    --demo-products "$products" --insecure-fast-passwords) >"$run/local.log" 2>&1 &
  group=$!
  groups+=("$group")
  say "local host: seeding $products products"
  wait_200 "http://127.0.0.1:$port/health" 600 "$group" "$run/local.log"
  notes+=("- local host: seeded $products products and answered in $(( $(now_ms) - started )) ms; index: $(index_size "$run/local.db").")
  measure "http://127.0.0.1:$port" "local (SQLite)" "$samples" "$warmup"
  kill -INT -- "-$group" 2>/dev/null || true
}

bench_lambda() {
  say "Lambda: emulators and tools"
  scripts/aws-emulators.sh install all
  export PATH="$STOREFRONT_TOOLS/aws/venv-lambda/bin:$PATH"
  mkdir -p "$run/aws"
  STOREFRONT_AWS_STATE="$run/aws" scripts/aws-emulators.sh start
  touch "$run/emulators.started"
  eval "$(STOREFRONT_AWS_STATE="$run/aws" scripts/aws-emulators.sh env)"
  local port started group table=storefront-bench-search
  (umask 077; cat >"$run/watch.env" <<EOF
TABLE_NAME=$table
STOREFRONT_SECRET=$secret
DEMO_SEED=$products
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_REGION=$AWS_REGION
AWS_EC2_METADATA_DISABLED=true
AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB
AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true
AWS_LAMBDA_LOG_LEVEL=warn
EOF
)
  port=$(free_port)
  started=$(now_ms)
  (exec setsid cargo lambda watch --release -A 127.0.0.1 -P "$port" --ignore-changes --env-file "$run/watch.env" --features aws) \
    >"$run/watch.log" 2>&1 &
  group=$!
  groups+=("$group")
  say "Lambda: building the release products function and seeding $products products at its cold start"
  wait_200 "http://127.0.0.1:$port/products?limit=1" 1800 "$group" "$run/watch.log"
  local size
  size=$("$STOREFRONT_TOOLS/aws/venv-moto/bin/python" - "$table" <<'EOF'
import os, sys
import boto3
table = boto3.resource("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"], region_name=os.environ["AWS_REGION"]).Table(sys.argv[1])
count, size, start = 0, 0, None
while True:
    args = {"KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": "SEARCH", ":prefix": "SHARD#"}}
    if start:
        args["ExclusiveStartKey"] = start
    page = table.query(**args)
    count += len(page["Items"])
    size += sum(len(item["data"].encode()) for item in page["Items"])
    start = page.get("LastEvaluatedKey")
    if not start:
        break
print(f"{count} shards, {size} bytes of JSON ({size / 1024 / 1024:.2f} MiB)")
EOF
)
  notes+=("- Lambda: the products function built (release), seeded $products products at its cold start and answered in $(( $(now_ms) - started )) ms; index: $size.")
  measure "http://127.0.0.1:$port" "Lambda (DynamoDB Local)" "$samples" "$warmup"
  kill -INT -- "-$group" 2>/dev/null || true
}

bench_workers() {
  say "Workers: tools and the release Worker"
  bash scripts/workers-tools.sh
  # shellcheck source=/dev/null
  source "$STOREFRONT_TOOLS/workers-env.sh"
  export XDG_CONFIG_HOME="$run/xdg" WRANGLER_SEND_METRICS=false WRANGLER_LOG_PATH="$run/wrangler-logs" \
    CLOUDFLARE_CF_FETCH_ENABLED=false NO_COLOR=1 FORCE_COLOR=0
  mkdir -p "$XDG_CONFIG_HOME" "$WRANGLER_LOG_PATH" "$run/worker"
  local release="$PWD/target/worker-host/release"
  if [[ "${BENCH_SKIP_BUILD:-0}" == "1" ]]; then
    say "BENCH_SKIP_BUILD=1: using the release Worker already built in $release"
  else
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" bash functions/worker-host/build.sh
  fi
  [[ -f "$release/entry.mjs" ]] || die "no release Worker in $release"
  wrangler_config_without_build "$run/worker/wrangler.toml"
  wrangler_config_without_build "$run/worker/docs.toml" functions/docs/wrangler.toml
  printf 'STOREFRONT_SECRET=%s\n' "$secret" >"$run/worker/dev.vars"
  chmod 600 "$run/worker/dev.vars"
  local cron port inspector_port group started
  cron=$(housekeeping_cron)
  port=$(free_port)
  inspector_port=$(free_port "$port")
  # As in production and in scripts/bench-workers.sh: no DevTools inspector behind the Worker's console calls, and
  # no local trace store written by wrangler's local observability on every request, no debug log file of every line.
  wrangler_inspector 0
  export X_LOCAL_OBSERVABILITY=false WRANGLER_WRITE_LOGS=false
  (cd "$run/worker" && exec setsid "$WRANGLER_BIN" dev --config "$run/worker/wrangler.toml" --config "$run/worker/docs.toml" --ip 127.0.0.1 --port "$port" \
    --inspector-ip 127.0.0.1 --inspector-port "$inspector_port" --persist-to "$run/worker/state" --test-scheduled \
    --show-interactive-dev-session=false --log-level warn --env-file "$run/worker/dev.vars" --var "DEMO_SEED:$products") \
    >"$run/worker.log" 2>&1 &
  group=$!
  groups+=("$group")
  wait_200 "http://127.0.0.1:$port/health" 120 "$group" "$run/worker.log"
  check_wrangler_inspector storefront "$inspector_port"
  say "Workers: seeding $products products through the housekeeping cron trigger"
  started=$(now_ms)
  curl -sS --fail --max-time 1800 -o /dev/null "http://127.0.0.1:$port/__scheduled?cron=${cron// /+}" \
    || { tail -30 "$run/worker.log" >&2; die "the Worker's scheduled event failed"; }
  local seeded_ms=$(( $(now_ms) - started )) d1
  # wrangler dev keeps D1 as SQLite files under the persist folder; the database is the one with the items table.
  d1=$(python3 - "$run/worker/state" <<'EOF'
import pathlib, sqlite3, sys
for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.sqlite")):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    if db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'items'").fetchone()[0]:
        print(path)
        break
EOF
)
  [[ -n "$d1" ]] || die "no D1 SQLite file with an items table under $run/worker/state"
  notes+=("- Workers: the cron trigger seeded $products products in $seeded_ms ms; index: $(index_size "$d1").")
  measure "http://127.0.0.1:$port" "Workers (D1), KV cache as in production" "$samples" "$warmup"
  measure "http://127.0.0.1:$port" "Workers (D1), KV cache missed" "$samples" "$warmup" --bust-cache
  kill -INT -- "-$group" 2>/dev/null || true
}

: >"$run/rows.md"
for host in $hosts; do
  case "$host" in
    local) bench_local ;;
    lambda) bench_lambda ;;
    workers) bench_workers ;;
    *) die "BENCH_SEARCH_HOSTS: unknown host $host (local, lambda, workers)" ;;
  esac
done

{
  echo "## Search: $products generated products on each host"
  echo
  echo "$(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC'). Each shape: $warmup warm-up requests, then $samples timed ones, one at a time over one keep-alive connection; every answer checked (200, a non-empty page, the same total)."
  echo "\"Items read\" is what one search read from the store (the function's Server-Timing header): the index head, any index shards that changed since the instance last looked, and the page's products."
  echo
  echo "| host | shape | query | p50 ms | p99 ms | matches | items read per search (p50) | KV cache hits | products indexed |"
  echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  cat "$run/rows.md"
  echo
  printf '%s\n' "${notes[@]}"
} >"$run/report.md"
tee "$out" <"$run/report.md"
echo "written to $out" >&2
