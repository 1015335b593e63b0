#!/usr/bin/env bash
# Builds the Worker: cargo (profile release-wasm, wasm32) -> wasm-bindgen --target module -> wasm-opt -Oz, plus the JS entry,
# into <repo>/target/worker-host/<flavour>/ ("release", or "testkit" with --features testkit), which `main` in
# wrangler.toml points at. With STOREFRONT_WORKER_NAMES=1 the flavour is "profile": the same build with the
# function names kept (cargo without `strip`, in target/profile-wasm so the release wasm is not rebuilt, and
# wasm-opt -g), for scripts/profile-worker.sh. wrangler runs it through [build]; when cargo's wasm and the entry are unchanged it
# reuses the previous output, so `wrangler dev` starts fast.
# Usage: functions/worker-host/build.sh [--features testkit]
# Needs the tools of scripts/workers-tools.sh (it sources their environment file).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS="${STOREFRONT_TOOLS:-$HOME/.cache/storefront}"
# shellcheck source=/dev/null
source "$TOOLS/workers-env.sh" || { echo "build.sh: run scripts/workers-tools.sh first" >&2; exit 1; }
# shellcheck source=functions/worker-host/package.sh
source "$ROOT/functions/worker-host/package.sh"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
FLAVOUR="release"
[[ "$*" == *testkit* ]] && FLAVOUR="testkit"
NAMES=()
if [[ "${STOREFRONT_WORKER_NAMES:-0}" == "1" ]]; then
  FLAVOUR="profile"
  TARGET_DIR="$ROOT/target/profile-wasm"
  export CARGO_TARGET_DIR="$TARGET_DIR" CARGO_PROFILE_RELEASE_WASM_STRIP=false
  NAMES=(-g)
fi
OUT="$ROOT/target/worker-host/$FLAVOUR"
WASM="$TARGET_DIR/wasm32-unknown-unknown/release-wasm/worker_host.wasm"
ENTRY="$ROOT/functions/worker-host/js/entry.mjs"
# shellcheck disable=SC2086
cargo build --manifest-path "$ROOT/Cargo.toml" -p worker-host --profile release-wasm --target wasm32-unknown-unknown \
  $STOREFRONT_BUILD_STD_ARGS "$@" >&2
# One cargo output serves both flavours, so the stamp records which wasm (by content) each output was made from.
STAMP="$(sha256sum "$WASM" "$ENTRY" | sha256sum | cut -c1-64)"
if [[ -f "$OUT/.stamp" && "$(cat "$OUT/.stamp")" == "$STAMP" ]]; then
  echo "build.sh: $OUT is up to date" >&2
  exit 0
fi
package_worker "$WASM" "$OUT" "${NAMES[@]}"
echo "$STAMP" > "$OUT.tmp/.stamp"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
echo "build.sh: built $OUT" >&2
