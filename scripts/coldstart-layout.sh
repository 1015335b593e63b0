#!/usr/bin/env bash
# Regenerates functions/lambda-host/coldstart.ld, the linker script that lays out together the code every Lambda
# function runs at a cold start (a maintenance command, not a test; run it after a dependency upgrade or a change
# to what the functions do at init, and commit the result).
#
# Why: a cold start is dominated by page faults, not instructions. The code a function runs from exec to its
# first answer is a few hundred KB of functions spread over a 7 MB binary; each fault maps one 64 KB window
# (the kernel's fault-around), so the product function touched 65 such windows of code against 15 once that code
# sat together, and its cold total fell by about 0.15 ms (scripts/bench-lambda.sh).
#
# How: builds every function of template.yaml for this machine's triple with the deploy rustflags of
# .cargo/config.toml (less the script itself) and the release profile unstripped, into target/coldstart-layout;
# runs each under callgrind for its init and first invocations (scripts/bench/coldstart_layout.py, on 127.0.0.1,
# with dummy keys and closed endpoints as in the benchmark) and writes one input-section pattern per function
# that ran. The patterns carry no hash, so the same file lays out the arm64 build cargo-lambda deploys;
# scripts/bench-lambda.sh reports how much of the binary it gathered.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

command -v valgrind >/dev/null || die "valgrind is needed (Debian: apt-get install valgrind)"
out=functions/lambda-host/coldstart.ld
functions=$(template_functions)
packages=()
for name in $functions; do packages+=(-p "$name"); done

host=$(rustc -vV | sed -n 's/^host: //p')
deploy_flags=$(deploy_rustflags without-layout)
say "unstripped release builds for $host with: $deploy_flags"
export "CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$host")_RUSTFLAGS=$deploy_flags"
target_dir=target/coldstart-layout
CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR="$target_dir" cargo build --release --target "$host" "${packages[@]}" --features aws --bins

events=.cache/aws/coldstart-layout
mkdir -p "$events"
bench_404_event >"$events/event.json"
echo '{"Records":[]}' >"$events/sqs-event.json"
say "callgrind on every function's cold start"
# Every function gets every queue URL template.yaml gives any of them, so that each builds all it builds when deployed.
queues=http://127.0.0.1:9/000000000000
# shellcheck disable=SC2086
lambda_bench_env ORDERS_QUEUE_URL=$queues/orders.fifo ORDERS_DEAD_LETTER_QUEUE_URL=$queues/orders-dlq.fifo \
  PRIVACY_QUEUE_URL=$queues/privacy.fifo PRIVACY_DEAD_LETTER_QUEUE_URL=$queues/privacy-dlq.fifo python3 scripts/bench/coldstart_layout.py "$out" "$target_dir/$host/release" template.yaml \
  "$events/event.json" "$events/sqs-event.json" events/schedule.json $functions
say "wrote $out"
