#!/usr/bin/env bash
# Builds the Rust floor Worker of scripts/bench-workers.sh (BENCH_RUST_FLOOR=1; src/lib.rs says what it is) exactly as
# functions/worker-host/build.sh builds the Storefront Worker: cargo with the workspace's `release-wasm` profile for
# wasm32, then functions/worker-host/package.sh (wasm-bindgen, wasm-opt -Oz, the Storefront's JavaScript entry). The crate
# is composed in <target>/rust-floor/crate from src/ here, the workspace's [profile.release] and
# [profile.release-wasm] verbatim, and the workspace's Cargo.lock (so `worker` and wasm-bindgen are the Storefront's
# versions); the Worker is written to <repo>/target/worker-host/rust-floor/. Needs scripts/workers-tools.sh's tools.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
TOOLS="${STOREFRONT_TOOLS:-$HOME/.cache/storefront}"
# shellcheck source=/dev/null
source "$TOOLS/workers-env.sh" || { echo "rust-floor/build.sh: run scripts/workers-tools.sh first" >&2; exit 1; }
# shellcheck source=functions/worker-host/package.sh
source "$ROOT/functions/worker-host/package.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CRATE="$CARGO_TARGET_DIR/rust-floor/crate"
OUT="$ROOT/target/worker-host/rust-floor"
worker_version=$(awk '/^name = "worker"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$ROOT/Cargo.lock")
[[ -n "$worker_version" ]] || { echo "rust-floor/build.sh: Cargo.lock holds no worker crate" >&2; exit 1; }
mkdir -p "$CRATE/src"
{
  cat <<EOF
[package]
name = "rust-floor"
version = "0.0.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
worker = { version = "=$worker_version", default-features = false, features = ["d1"] }

[workspace]

EOF
  awk '/^\[profile\.(release|release-wasm)\]$/ { on = 1; print; next } /^\[/ { on = 0 } on' "$ROOT/Cargo.toml"
} >"$CRATE/Cargo.toml.new"
cmp -s "$CRATE/Cargo.toml.new" "$CRATE/Cargo.toml" 2>/dev/null && rm "$CRATE/Cargo.toml.new" || mv "$CRATE/Cargo.toml.new" "$CRATE/Cargo.toml"
cmp -s "$ROOT/scripts/bench/rust-floor/src/lib.rs" "$CRATE/src/lib.rs" 2>/dev/null || cp "$ROOT/scripts/bench/rust-floor/src/lib.rs" "$CRATE/src/lib.rs"
[[ -f "$CRATE/Cargo.lock" ]] || cp "$ROOT/Cargo.lock" "$CRATE/Cargo.lock"
# shellcheck disable=SC2086
cargo build --manifest-path "$CRATE/Cargo.toml" --profile release-wasm --target wasm32-unknown-unknown $STOREFRONT_BUILD_STD_ARGS >&2
package_worker "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release-wasm/rust_floor.wasm" "$OUT"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
echo "rust-floor/build.sh: built $OUT" >&2
