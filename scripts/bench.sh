#!/usr/bin/env bash
# The one benchmark command (not a test): runs the four benchmarks in turn and joins what they wrote into one
# markdown report, ${1:-target/bench.md} (git ignores target/), with the cost of each request at the providers'
# published prices and the issue's budgets judged on this run's figures (scripts/bench/report.py):
# - scripts/bench-lambda.sh: every Lambda function's init, first and warm invocation, cold total, peak memory and
#   binary size against a hello-world built the same way, and one product read on DynamoDB Local against the same
#   read in Python 3 on boto3;
# - scripts/bench-workers.sh: the release Worker against a Hono Worker, each under its own `wrangler dev` on one
#   D1 file (product read and a 404, latency and CPU per request), start to first 200, wasm size; then the same against the Rust floor, the smallest
#   workers-rs Worker doing the same read (BENCH_RUST_FLOOR=1), in a section of its own;
# - scripts/bench-local.sh: the local host's requests per second and latency under load (oha, drill);
# - scripts/bench-search.sh: the search on 10,000 products on each host.
# Each part installs what it needs and fails loudly; each part's own file stays in target/bench/.
# Run it on a quiet machine: anything else busy shows in the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

out="${1:-target/bench.md}"
parts=target/bench
mkdir -p "$parts" "$(dirname "$out")"
started=$(date +%s)
bash scripts/bench-lambda.sh "$parts/lambda.md"
bash scripts/bench-workers.sh "$parts/workers.md"
# The Rust floor in the Storefront's place (what workers-rs alone costs a request), a section of the Workers part.
BENCH_RUST_FLOOR=1 BENCH_SKIP_BUILD=1 bash scripts/bench-workers.sh "$parts/workers-floor.md"
{ echo; cat "$parts/workers-floor.md"; } >>"$parts/workers.md"
bash scripts/bench-local.sh "$parts/local.md"
bash scripts/bench-search.sh "$parts/search.md"
# Every function's MemorySize: the template's Globals (no function overrides it; checked here).
memory=$(sed -n 's/^[[:space:]]*MemorySize:[[:space:]]*\([0-9][0-9]*\)[[:space:]]*$/\1/p' template.yaml | sort -u)
[[ "$memory" =~ ^[0-9]+$ ]] || die "template.yaml must give every function one MemorySize, found: ${memory:-none}"
python3 scripts/bench/report.py "$parts/lambda.md" "$parts/workers.md" "$parts/local.md" "$memory" "$parts/search.md" >"$out.tmp"
echo >>"$out.tmp"
echo "The whole run took $(( $(date +%s) - started )) s." >>"$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
say "written to $out"
