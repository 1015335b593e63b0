#!/usr/bin/env bash
# Makes sure the wasm32-unknown-unknown standard library is available, as ../shared/TOOLCHAIN.md describes:
# rustup's target first; where that fails, Debian's rustc-web with build-std. Prints the cargo prefix to use
# (an empty line for plain cargo, or the RUSTC/RUSTC_BOOTSTRAP settings for the fallback).
set -euo pipefail
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then echo ""; exit 0; fi
if rustup target add wasm32-unknown-unknown >&2; then echo ""; exit 0; fi
echo "rustup could not add wasm32-unknown-unknown; falling back to Debian's rustc-web with build-std" >&2
if ! [ -x /usr/bin/rustc ] || ! dpkg -s rust-web-src >/dev/null 2>&1; then
  apt-get update >&2 && apt-get install -y rustc-web rust-web-src lld >&2 || { echo "could not install rustc-web" >&2; exit 1; }
fi
echo "RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld BUILD_STD=1"
