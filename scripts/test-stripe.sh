#!/usr/bin/env bash
# The Stripe tier of the tests: the Stripe payment adapter (`shared::adapters::stripe`, feature `stripe`) against
# localstripe, a stateful fake of Stripe's API from PyPI, plus the adapter's own recording-server tests. localstripe
# is installed once into a venv under $STOREFRONT_TOOLS (skipped when the pinned version is there), started on a
# free port and stopped by PID on exit, whatever happens. It listens on every interface (it has no host flag);
# only 127.0.0.1 is ever sent traffic, and nothing reaches Stripe. It never skips: STRIPE_API_BASE is always set,
# and a test that reports itself skipped fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

LOCALSTRIPE_VERSION="1.15.10"

started=$(now_ms)
log=$(mktemp -t storefront-stripe-tests.XXXXXX)
tools="$STOREFRONT_TOOLS/stripe"
venv="$tools/venv-localstripe"
state=$(mktemp -d -t storefront-stripe.XXXXXX)
localstripe_pid=""
cleanup() {
  if [[ -n "$localstripe_pid" ]] && kill -0 "$localstripe_pid" 2>/dev/null; then
    kill "$localstripe_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$localstripe_pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$localstripe_pid" 2>/dev/null || true
  fi
  rm -rf "$state"
  # localstripe keeps its store in this fixed file whatever TMPDIR says; it is this run's.
  [[ -n "$localstripe_pid" ]] && rm -f /tmp/localstripe.pickle
  # The tier's test output was tallied at its end and is in this run's own output too.
  rm -f "$log"
}
trap cleanup EXIT

say "localstripe $LOCALSTRIPE_VERSION (installed once into $venv)"
marker="$venv/.storefront-installed"
want="localstripe==$LOCALSTRIPE_VERSION"
if [[ ! -f "$marker" || "$(cat "$marker")" != "$want" ]]; then
  rm -rf "$venv"
  mkdir -p "$tools"
  python3 -m venv "$venv" || die "python3 -m venv failed (install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$want" || die "pip install $want failed"
  echo "$want" >"$marker"
fi

say "localstripe on 127.0.0.1"
port=$(free_port)
# --from-scratch: no state from an earlier run (localstripe also writes its store to /tmp/localstripe.pickle).
"$venv/bin/localstripe" --port "$port" --from-scratch >"$state/localstripe.log" 2>&1 &
localstripe_pid=$!
# The one route that answers 200 without a key.
wait_for_url "http://127.0.0.1:$port/js.stripe.com/v3/" 30 \
  || { cat "$state/localstripe.log" >&2; die "localstripe did not answer on 127.0.0.1:$port"; }
echo "localstripe $LOCALSTRIPE_VERSION on 127.0.0.1:$port (pid $localstripe_pid)"

# The workspace lint in scripts/test builds no feature that enables this module, so it is linted here.
say "the Stripe adapter linted (clippy, warnings are errors)"
cargo clippy -p shared --features stripe --all-targets -- -D warnings

say "the Stripe adapter's tests (cargo test -p shared --features stripe)"
STRIPE_API_BASE="http://127.0.0.1:$port" \
  run_tests "$log" -- cargo test -p shared --features stripe --lib -- adapters::stripe --nocapture
if grep -q '!!!! SKIPPED' "$log"; then die "a Stripe adapter test skipped although STRIPE_API_BASE was set"; fi
kill -0 "$localstripe_pid" 2>/dev/null || { cat "$state/localstripe.log" >&2; die "localstripe exited during the tests"; }
grep -q 'POST /v1/payment_intents' "$state/localstripe.log" || die "localstripe's log shows no payment intent: the tests did not reach it"

say "the local host with --payments stripe against localstripe (the local-host binary built with --features stripe)"
cargo build -p local-host --features stripe
STRIPE_API_BASE="http://127.0.0.1:$port" STOREFRONT_LOCAL_HOST_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/local-host" \
  run_tests "$log" -- cargo test -p tests --test it -- stripe_host:: --nocapture
if grep -q '!!!! SKIPPED' "$log"; then die "the local host's Stripe scenario skipped although its variables were set"; fi

say "Stripe tier done in $(( ($(now_ms) - started) / 1000 )) s"
tally "$log"
