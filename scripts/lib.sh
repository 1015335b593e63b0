# Shared helpers for the project's scripts: logging, the tool cache, free ports, waiting for a URL, and the
# tally of test results. Sourced, never run.

STOREFRONT_TOOLS="${STOREFRONT_TOOLS:-$HOME/.cache/storefront}"
export STOREFRONT_TOOLS
mkdir -p "$STOREFRONT_TOOLS"

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

# free_port [TAKEN...]: a free TCP port on 127.0.0.1, none of the ports TAKEN (chosen earlier and not bound yet, so
# the system may offer them again).
free_port() {
  local port
  while :; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    [[ " $* " == *" $port "* ]] || break
  done
  printf '%s\n' "$port"
}

# wait_for_url URL SECONDS: polls until the URL answers 2xx, or fails.
wait_for_url() {
  local url=$1 limit=$2 start
  start=$(date +%s)
  until curl -sf -o /dev/null "$url"; do
    (( $(date +%s) - start < limit )) || return 1
    sleep 0.1
  done
}

# wrangler_config_without_build OUT [CONFIG]: a wrangler configuration (CONFIG, by default the Storefront Worker's
# wrangler.toml; the docs Worker's is functions/docs/wrangler.toml) less its [build] section (so that `wrangler dev`
# runs the release Worker already built instead of running cargo), with its main and directory paths made absolute
# for a file elsewhere, written to OUT. The benchmarks run the Workers from such files (the docs Worker's as a second
# --config, so the Storefront Worker's DOCS binding reaches it).
wrangler_config_without_build() {
  local config=${2:-wrangler.toml}
  awk -v root="$(cd "$(dirname "$config")" && pwd)" '
    /^\[/ { skip = ($0 == "[build]") }
    skip { next }
    /^(main|directory) = "/ { sub(/= "/, "= \"" root "/") }
    { print }
  ' "$config" >"$1"
}

# wrangler_inspector ATTACHED: whether the `wrangler dev` processes started after this call attach wrangler's DevTools
# inspector to their Worker (1, wrangler's default) or not (0, as in production, where nothing inspects a Worker).
# Attached, every console call of a Worker is also a DevTools protocol message to wrangler, about a millisecond of
# the machine's time (scripts/bench-workers.sh). wrangler has no flag for it; the switch is the one wrangler and
# Miniflare read to leave the inspector to VS Code's JavaScript debugger, VSCODE_INSPECTOR_OPTIONS, set here with
# no debugger behind it (and NODE_OPTIONS unset, so that Miniflare starts no debugger watchdog).
wrangler_inspector() {
  unset NODE_OPTIONS
  case "$1" in
    0) export VSCODE_INSPECTOR_OPTIONS='{}' ;;
    1) unset VSCODE_INSPECTOR_OPTIONS ;;
    *) die "wrangler_inspector takes 0 (detached) or 1 (attached), not $1" ;;
  esac
}

# check_wrangler_inspector NAME PORT: after a `wrangler dev` started with --inspector-port PORT answers, fails unless
# its inspector is in the state wrangler_inspector asked for, so that a wrangler that stopped honouring the switch
# fails the run instead of measuring the other way.
check_wrangler_inspector() {
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$2/json/version"; then
    [[ -z "${VSCODE_INSPECTOR_OPTIONS:-}" ]] || die "the $1 Worker's inspector answers on 127.0.0.1:$2 although it was detached"
  else
    [[ -n "${VSCODE_INSPECTOR_OPTIONS:-}" ]] || die "the $1 Worker's inspector does not answer on 127.0.0.1:$2 although it was attached"
  fi
}

# housekeeping_cron: the Worker's housekeeping cron schedule (HOUSEKEEPING_CRON in functions/worker-host/src/config.rs),
# whose tick seeds the demo catalog when DEMO_SEED is set; the benchmarks trigger it through `/__scheduled`.
housekeeping_cron() {
  local cron
  cron=$(sed -n 's/^pub(crate) const HOUSEKEEPING_CRON: &str = "\(.*\)";$/\1/p' functions/worker-host/src/config.rs)
  [[ -n "$cron" ]] || die "cannot read HOUSEKEEPING_CRON from functions/worker-host/src/config.rs"
  printf '%s\n' "$cron"
}

# hono_node_modules: installs hono (HONO_VERSION) from npm into $STOREFRONT_TOOLS/bench/hono once, never into the
# repository, and prints the path of its node_modules folder, for the Hono baseline Worker (scripts/bench/hono).
HONO_VERSION=4.13.19
hono_node_modules() {
  local tools="$STOREFRONT_TOOLS/bench/hono"
  if [[ "$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$tools/node_modules/hono/package.json" 2>/dev/null)" != "$HONO_VERSION" ]]; then
    say "installing hono $HONO_VERSION from npm into $tools" >&2
    command -v npm >/dev/null || die "npm not found: it is needed to install hono@$HONO_VERSION"
    mkdir -p "$tools"
    [[ -f "$tools/package.json" ]] || printf '{ "name": "storefront-bench-hono", "private": true }\n' >"$tools/package.json"
    (cd "$tools" && npm install --no-audit --no-fund --save-exact "hono@$HONO_VERSION" >&2) || die "npm install hono@$HONO_VERSION"
    grep -q "\"version\": \"$HONO_VERSION\"" "$tools/node_modules/hono/package.json" || die "npm did not install hono@$HONO_VERSION"
  fi
  printf '%s\n' "$tools/node_modules"
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

# run_tests LOG -- COMMAND...: runs a cargo test command, keeps its output in LOG for the tally, fails on failure.
run_tests() {
  local log=$1; shift; [ "$1" = "--" ] && shift
  "$@" 2>&1 | tee -a "$log"
  local status=${PIPESTATUS[0]}
  [ "$status" -eq 0 ] || die "tests failed: $*"
}

# tally LOG: the plain closing line summed over every 'test result:' line of LOG.
tally() {
  local log=$1
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?/) p += $i; if ($(i+1) ~ /^failed;?/) f += $i } }
       END { printf "%d passed, %d failed\n", p, f }' "$log"
}

# deploy_rustflags [without-layout]: the rustflags .cargo/config.toml gives the arm64 Lambda functions, one line;
# with `without-layout`, less the cold-start linker script (scripts/coldstart-layout.sh builds what it profiles so).
# The Lambda scripts build for this machine's triple with them, the paths made absolute (the hello-world of
# scripts/bench-lambda.sh builds from another folder).
deploy_rustflags() {
  python3 - "$PWD" "${1:-}" <<'PY' || die ".cargo/config.toml holds no rustflags for aarch64-unknown-linux-gnu"
import sys, tomllib
root, mode = sys.argv[1], sys.argv[2]
flags = tomllib.load(open(".cargo/config.toml", "rb"))["target"]["aarch64-unknown-linux-gnu"]["rustflags"]
out = []
for flag in flags:
    if flag.startswith("link-arg=-Wl,-T,"):
        if mode == "without-layout":
            out.pop()  # its "-C"
            continue
        flag = "link-arg=-Wl,-T," + root + "/" + flag[len("link-arg=-Wl,-T,"):]
    out.append(flag)
print(" ".join(out))
PY
}

# bench_404_event: an API Gateway v2 request for a path no function serves (the Lambda benchmark's HTTP event).
bench_404_event() {
  cat <<'JSON'
{"version":"2.0","routeKey":"$default","rawPath":"/bench/not-a-route","rawQueryString":"","headers":{"host":"bench.example"},"requestContext":{"accountId":"123456789012","apiId":"bench","domainName":"bench.example","http":{"method":"GET","path":"/bench/not-a-route","protocol":"HTTP/1.1","sourceIp":"192.0.2.1","userAgent":"bench"},"requestId":"bench","routeKey":"$default","stage":"$default","time":"21/Nov/2026:07:00:00 +0000","timeEpoch":1795158000000},"isBase64Encoded":false}
JSON
}

# template_functions: the function folders template.yaml deploys (its `CodeUri: functions/<name>` lines), in its
# order, one per line; dies when it names none.
template_functions() {
  local names
  names=$(sed -n 's|^      CodeUri: functions/\([a-z-]*\)$|\1|p' template.yaml)
  [[ -n "$names" ]] || die "template.yaml names no functions/ CodeUri"
  echo "$names"
}

# lambda_bench_env [VARIABLE=VALUE...] COMMAND...: runs COMMAND in an environment of only what a Lambda function is
# given (template.yaml), with dummy keys and every AWS endpoint at a closed 127.0.0.1 port, so nothing can reach AWS
# or 169.254.169.254; the SDK reads its endpoint partitions from the layer's file, as deployed.
lambda_bench_env() {
  env -i PATH="$PATH" HOME="$HOME" \
    AWS_ACCESS_KEY_ID=storefrontlocal AWS_SECRET_ACCESS_KEY=storefrontlocal AWS_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:9 AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9 \
    JOBS_QUEUE_URL=http://127.0.0.1:9/000000000000/jobs.fifo JOBS_DEAD_LETTER_QUEUE_URL=http://127.0.0.1:9/000000000000/jobs-dlq.fifo \
    AWS_LAMBDA_FUNCTION_NAME=bench AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_VERSION='$LATEST' \
    AWS_LAMBDA_LOG_LEVEL=error TABLE_NAME=bench STOREFRONT_SECRET=bench-only-secret-bench-only-secret-0123 \
    SMITHY_CLIENT_SDK_CUSTOM_PARTITION="$PWD/functions/lambda-host/layer/aws-partition.json" \
    "$@"
}
