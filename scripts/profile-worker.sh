#!/usr/bin/env bash
# Where the Worker's time goes (a diagnostic, not a test and not a benchmark): builds the release Worker with its
# function names kept (functions/worker-host/build.sh with STOREFRONT_WORKER_NAMES=1, into target/worker-host/profile), runs it under `wrangler dev` on 127.0.0.1 with the demo catalog, and takes a CPU
# profile through the inspector while scripts/bench/profile-worker.mjs sends `GET /products/{id}` for 50 catalog
# ids in turn ($PROFILE_PATHS=404 sends `GET /bench/not-a-route` instead). Prints the tables of
# profile-worker.mjs and keeps the profile in target/worker-host/profile/last.cpuprofile, which Chrome's DevTools
# (Performance panel) opens. $PROFILE_REQUESTS (default 1000) requests are profiled after 50 unprofiled ones.
# The profiler slows the Worker about twofold and an attached inspector makes `console.log` dearer: compare
# shares between runs, and take latencies from scripts/bench-workers.sh.
# $PROFILE_WORKER=hono profiles the Hono baseline of scripts/bench-workers.sh (scripts/bench/hono) instead, the
# same way, on the D1 catalog the Storefront Worker seeded (the Storefront is stopped first), into
# last-hono.cpuprofile: the two profiles side by side say where the Storefront's extra time per request goes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

requests="${PROFILE_REQUESTS:-1000}"
[[ "$requests" =~ ^[1-9][0-9]*$ ]] || die "PROFILE_REQUESTS must be a whole number"
[[ "${PROFILE_WORKER:-storefront}" =~ ^(storefront|hono)$ ]] || die "PROFILE_WORKER is storefront (the default) or hono"
bash scripts/workers-tools.sh
# shellcheck source=/dev/null
source "$STOREFRONT_TOOLS/workers-env.sh"
out="$PWD/target/worker-host/profile"

say "building the release Worker with its function names"
STOREFRONT_WORKER_NAMES=1 bash functions/worker-host/build.sh

run=$(mktemp -d -t storefront-profile-worker.XXXXXX)
group=""
cleanup() {
  if [[ -n "$group" ]]; then
    kill -TERM -- "-$group" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$group" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$group" 2>/dev/null || true
  fi
  rm -rf "$run"
}
trap cleanup EXIT
wrangler_config_without_build "$run/wrangler.toml"
wrangler_config_without_build "$run/docs.toml" functions/docs/wrangler.toml
sed -i "s#^main = .*#main = \"$out/entry.mjs\"#" "$run/wrangler.toml"
printf 'STOREFRONT_SECRET=%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$run/dev.vars"
chmod 600 "$run/dev.vars"
export XDG_CONFIG_HOME="$run/xdg" WRANGLER_SEND_METRICS=false WRANGLER_LOG_PATH="$run/logs" CLOUDFLARE_CF_FETCH_ENABLED=false NO_COLOR=1
# As in scripts/bench-workers.sh: wrangler's local observability (a trace store written on every request) off.
export X_LOCAL_OBSERVABILITY=false
port=$(free_port)
inspector=$(free_port "$port")
say "starting wrangler dev on 127.0.0.1:$port (inspector on 127.0.0.1:$inspector)"
(cd "$run" && exec setsid "$WRANGLER_BIN" dev --config "$run/wrangler.toml" --config "$run/docs.toml" --ip 127.0.0.1 --port "$port" \
  --inspector-ip 127.0.0.1 --inspector-port "$inspector" --persist-to "$run/state" --test-scheduled \
  --show-interactive-dev-session=false --log-level warn --env-file "$run/dev.vars" --var DEMO_SEED:true) >"$run/wrangler.log" 2>&1 &
group=$!
wait_for_url "http://127.0.0.1:$port/health" 120 || { tail -30 "$run/wrangler.log" >&2; die "the Worker did not start"; }
housekeeping_cron=$(housekeeping_cron)
curl -sS --fail --max-time 300 -o /dev/null "http://127.0.0.1:$port/__scheduled?cron=${housekeeping_cron// /+}" || die "seeding failed"
if [[ "${PROFILE_PATHS:-}" == "404" ]]; then
  echo /bench/not-a-route >"$run/paths"
else
  curl -sS --fail "http://127.0.0.1:$port/products?limit=50" \
    | python3 -c 'import json, sys; print("\n".join("/products/" + item["id"] for item in json.load(sys.stdin)["items"]))' >"$run/paths" \
    || die "cannot list the demo catalog"
fi
profile="$out/last.cpuprofile"
if [[ "${PROFILE_WORKER:-storefront}" == "hono" ]]; then
  say "stopping the Storefront Worker; starting the Hono baseline on the catalog it seeded"
  kill -TERM -- "-$group" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 -- "-$group" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$group" 2>/dev/null || true
  mkdir -p "$run/hono"
  cp scripts/bench/hono/index.js scripts/bench/hono/wrangler.toml "$run/hono/"
  ln -s "$(hono_node_modules)" "$run/hono/node_modules"
  port=$(free_port)
  inspector=$(free_port "$port")
  (cd "$run/hono" && exec setsid "$WRANGLER_BIN" dev --config "$run/hono/wrangler.toml" --ip 127.0.0.1 --port "$port" \
    --inspector-ip 127.0.0.1 --inspector-port "$inspector" --persist-to "$run/state" \
    --show-interactive-dev-session=false --log-level warn) >"$run/hono.log" 2>&1 &
  group=$!
  wait_for_url "http://127.0.0.1:$port/health" 120 || { tail -30 "$run/hono.log" >&2; die "the Hono Worker did not start"; }
  profile="$out/last-hono.cpuprofile"
fi
say "profiling $requests requests"
node scripts/bench/profile-worker.mjs "$inspector" "$port" "$run/paths" "$requests" "$profile"
