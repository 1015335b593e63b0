#!/usr/bin/env bash
# Tests the Cloudflare Workers host under `wrangler dev` (workerd with Miniflare's D1, KV and Queues), on
# 127.0.0.1 only:
#   1. installs the tools (scripts/workers-tools.sh, idempotent, cached outside the repository);
#   2. builds the test flavour of the Worker (feature `testkit`: adds GET /__test/contract);
#   3. starts `wrangler dev --env test` with a fresh persist folder and a random master secret;
#   4. seeds the demo catalog through the cron trigger (`/__scheduled`, the same code path a deployed cron runs);
#   5. runs the item store contract suite inside workerd against the real D1 binding and checks every case;
#   6. runs the end-to-end scenarios (`cargo test -p tests` with STOREFRONT_BASE_URL);
#   7. reports the wasm size (raw and gzipped), the time from `wrangler dev` start to the first 200, and
#      p50/p99 of 200 sequential GET /products/{id}; then `wrangler deploy --dry-run` bundles the release flavour.
# wrangler is stopped by its process group id on exit, whatever happens. Exit status 0 only if every check passed.
# Set STOREFRONT_SKIP_DRY_RUN=1 to leave out step 7's deploy dry run (it rebuilds the release flavour).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="${STOREFRONT_TOOLS:-$HOME/.cache/storefront}"
PORT="${STOREFRONT_WORKERS_PORT:-8787}"
BASE="http://127.0.0.1:$PORT"

log() { printf 'test-workers: %s\n' "$*" >&2; }
fail() { printf 'test-workers: FAILED: %s\n' "$*" >&2; exit 1; }

bash "$ROOT/scripts/workers-tools.sh"
# shellcheck source=/dev/null
source "$TOOLS/workers-env.sh"
export XDG_CONFIG_HOME="$TOOLS/xdg" WRANGLER_SEND_METRICS=false WRANGLER_LOG_PATH="$TOOLS/wrangler-logs"
mkdir -p "$XDG_CONFIG_HOME" "$WRANGLER_LOG_PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log "building the test flavour"
bash "$ROOT/functions/worker-host/build.sh" --features testkit
OUT="$ROOT/target/worker-host/testkit"

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/storefront-workers.XXXXXX")
WRANGLER_PID=""
cleanup() {
  if [[ -n "$WRANGLER_PID" ]] && kill -0 "$WRANGLER_PID" 2>/dev/null; then
    kill -TERM -- "-$WRANGLER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$WRANGLER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$WRANGLER_PID" 2>/dev/null || true
  fi
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT INT TERM

if curl -s -o /dev/null --max-time 1 "$BASE/health"; then
  fail "something already answers on $BASE; set STOREFRONT_WORKERS_PORT"
fi

# A fresh random master secret per run, passed through an env file outside the repository.
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'STOREFRONT_SECRET=%s\n' "$SECRET" > "$RUN_DIR/dev.vars"
chmod 600 "$RUN_DIR/dev.vars"

log "starting wrangler dev on $BASE (persist: $RUN_DIR/state)"
started_ns=$(date +%s%N)
# setsid: wrangler and its workerd child share a new process group whose id is wrangler's PID.
(cd "$ROOT" && exec setsid "$WRANGLER_BIN" dev --env test --ip 127.0.0.1 --port "$PORT" \
  --persist-to "$RUN_DIR/state" --env-file "$RUN_DIR/dev.vars" --test-scheduled \
  --show-interactive-dev-session=false --log-level warn) > "$RUN_DIR/wrangler.log" 2>&1 &
WRANGLER_PID=$!

first_200_ms=""
for _ in $(seq 1200); do
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/health" || true)" == "200" ]]; then
    first_200_ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
    break
  fi
  kill -0 "$WRANGLER_PID" 2>/dev/null || { cat "$RUN_DIR/wrangler.log" >&2; fail "wrangler dev exited"; }
  sleep 0.1
done
[[ -n "$first_200_ms" ]] || { tail -50 "$RUN_DIR/wrangler.log" >&2; fail "no 200 from $BASE/health within 120 s"; }
log "first 200 after ${first_200_ms} ms"

log "seeding the demo catalog through the cron trigger"
curl -sS --fail --max-time 300 "$BASE/__scheduled?cron=*/15+*+*+*+*" > "$RUN_DIR/scheduled.txt" \
  || { tail -50 "$RUN_DIR/wrangler.log" >&2; fail "the scheduled event failed"; }
listing=$(curl -sS --fail --max-time 30 "$BASE/products?limit=5") || fail "GET /products failed after seeding"
PRODUCT_ID=$(printf '%s' "$listing" | python3 -c 'import json,sys; items=json.load(sys.stdin)["items"]; print(items[0]["id"] if items else "")')
[[ -n "$PRODUCT_ID" ]] || fail "the catalog is empty after seeding: $listing"

log "running the item store contract suite inside workerd (D1)"
contract_status=$(curl -sS -o "$RUN_DIR/contract.json" -w '%{http_code}' --max-time 300 "$BASE/__test/contract") \
  || fail "the contract route did not answer"
python3 - "$RUN_DIR/contract.json" "$contract_status" <<'PY' || { tail -30 "$RUN_DIR/wrangler.log" >&2; fail "the item store contract suite failed inside workerd"; }
import json, sys
report = json.load(open(sys.argv[1]))
cases = report["cases"]
for case in cases:
    print(f"  {'ok  ' if case['ok'] else 'FAIL'} {report['suite']}: {case['name']}" + ("" if case["ok"] else f" -- {case['error']}"))
failed = [case for case in cases if not case["ok"]]
print(f"contract {report['suite']}: {len(cases) - len(failed)} passed, {len(failed)} failed (HTTP {sys.argv[2]})")
sys.exit(1 if failed or not cases or sys.argv[2] != "200" else 0)
PY

scenarios="missing"
if [[ -f "$ROOT/tests/Cargo.toml" ]]; then
  log "running the end-to-end scenarios against $BASE"
  if STOREFRONT_BASE_URL="$BASE" cargo test --manifest-path "$ROOT/Cargo.toml" -p tests --test it -- catalog:: bad_input::; then
    scenarios="passed"
  else
    scenarios="failed"
  fi
fi

log "measuring 200 sequential GET /products/$PRODUCT_ID"
python3 - "$PORT" "$PRODUCT_ID" > "$RUN_DIR/latency.txt" <<'PY'
import http.client, sys, time
port, product_id = int(sys.argv[1]), sys.argv[2]
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
samples = []
for _ in range(200):
    started = time.perf_counter()
    connection.request("GET", f"/products/{product_id}")
    response = connection.getresponse()
    response.read()
    samples.append((time.perf_counter() - started) * 1000)
    if response.status != 200:
        sys.exit(f"GET /products/{product_id} answered {response.status}")
samples.sort()
print(f"p50={samples[99]:.2f}ms p99={samples[197]:.2f}ms max={samples[-1]:.2f}ms")
PY
latency=$(cat "$RUN_DIR/latency.txt")

wasm_raw=$(stat -c %s "$OUT/index_bg.wasm")
wasm_gz=$(gzip -9 -c "$OUT/index_bg.wasm" | wc -c)

dry_run="skipped (STOREFRONT_SKIP_DRY_RUN=1)"
release_sizes=""
if [[ "${STOREFRONT_SKIP_DRY_RUN:-0}" != "1" ]]; then
  log "wrangler deploy --dry-run (release flavour)"
  if (cd "$ROOT" && "$WRANGLER_BIN" deploy --dry-run --outdir "$RUN_DIR/dist") > "$RUN_DIR/dry-run.log" 2>&1; then
    dry_run="ok: $(grep -Eo 'Total Upload: .*' "$RUN_DIR/dry-run.log" | head -n1)"
    release_wasm="$ROOT/target/worker-host/release/index_bg.wasm"
    release_sizes="release wasm: $(stat -c %s "$release_wasm") bytes raw, $(gzip -9 -c "$release_wasm" | wc -c) bytes gzipped"
  else
    cat "$RUN_DIR/dry-run.log" >&2
    dry_run="FAILED"
  fi
fi

echo "== Workers host report =="
echo "test wasm: $wasm_raw bytes raw, $wasm_gz bytes gzipped (budget 1048576 gzipped)"
[[ -n "$release_sizes" ]] && echo "$release_sizes"
echo "wrangler dev start to first 200: ${first_200_ms} ms"
echo "GET /products/{id} x200 sequential: $latency"
echo "contract suite inside workerd: passed"
echo "end-to-end scenarios: $scenarios"
echo "wrangler deploy --dry-run: $dry_run"

[[ "$scenarios" == "passed" ]] || fail "end-to-end scenarios $scenarios (tests/ crate: cargo test -p tests)"
[[ "$dry_run" != "FAILED" ]] || fail "wrangler deploy --dry-run"
(( wasm_gz <= 1048576 )) || fail "the gzipped wasm is over 1 MB"
echo "workers: 1 passed, 0 failed"
