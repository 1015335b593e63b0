# Sourced by functions/worker-host/build.sh and scripts/bench/rust-floor/build.sh, after scripts/workers-tools.sh's
# environment file: the steps that turn cargo's wasm32 output into a Worker wrangler can run, the same for both.
#
# package_worker WASM OUT [WASM_OPT_ARGS...]: wasm-bindgen --target module, wasm-opt -Oz (with WASM_OPT_ARGS, such
# as -g) and the JavaScript entry (js/entry.mjs), written to OUT.tmp; the caller moves it to OUT.
package_worker() {
  local wasm=$1 out=$2
  shift 2
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  "$WASM_BINDGEN_BIN" "$wasm" --out-dir "$out.tmp" \
    --out-name index --target module --no-typescript \
    --experimental-reset-state-function --force-enable-abort-handler
  # wrangler imports .wasm as a WebAssembly.Module; wasm-bindgen's module target writes a source-phase import.
  sed -i 's/^import source /import /' "$out.tmp/index.js"
  "$WASM_OPT_BIN" -Oz "$@" --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-exception-handling \
    "$out.tmp/index_bg.wasm" -o "$out.tmp/index_bg.opt.wasm"
  mv "$out.tmp/index_bg.opt.wasm" "$out.tmp/index_bg.wasm"
  cp "$(dirname "${BASH_SOURCE[0]}")/js/entry.mjs" "$out.tmp/entry.mjs"
}
