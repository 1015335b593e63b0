#!/usr/bin/env bash
# The API's outside clients the test tiers drive every host with: the official MCP Python SDK (`mcp` 2.x), the
# OpenAPI fuzzer schemathesis, and headless Chromium for the docs page.
#
# Usage: scripts/api-clients.sh install   # installs what is missing (idempotent)
#        scripts/api-clients.sh env       # installs what is missing, then prints `export` lines:
#                                         #   STOREFRONT_MCP_PYTHON, STOREFRONT_SCHEMATHESIS, STOREFRONT_CHROMIUM
#
# The Python packages go into one venv in the tool cache outside the repository
# (${STOREFRONT_TOOLS:-$HOME/.cache/storefront}/clients), skipped when the pinned versions are already there;
# Chromium comes from Debian's packages. A failed install fails the script: nothing is skipped silently.
set -euo pipefail

MCP_VERSION="2.3.0"
SCHEMATHESIS_VERSION="4.32.5"

tools="${STOREFRONT_TOOLS:-$HOME/.cache/storefront}/clients"
venv="$tools/venv"

die() { echo "api-clients: ERROR: $*" >&2; exit 1; }
say() { echo "api-clients: $*" >&2; }

install_venv() {
    local want="mcp==$MCP_VERSION schemathesis==$SCHEMATHESIS_VERSION"
    local marker="$venv/.storefront-installed"
    if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
        return 0
    fi
    say "installing $want into $venv"
    rm -rf "$venv"
    mkdir -p "$tools"
    python3 -m venv "$venv" || die "python3 -m venv failed (install python3-venv)"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want || die "pip install $want failed"
    echo "$want" >"$marker"
}

chromium_bin() {
    command -v chromium || command -v chromium-browser || true
}

install_chromium() {
    [[ -n "$(chromium_bin)" ]] && return 0
    say "installing Chromium from Debian's packages"
    if ! apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
        apt-get update >/dev/null || die "apt-get update failed"
        apt-get install -y --no-install-recommends chromium >/dev/null || die "apt-get install chromium failed"
    fi
    [[ -n "$(chromium_bin)" ]] || die "Chromium is still missing after apt-get install chromium"
}

case "${1:-}" in
    install)
        install_venv
        install_chromium
        ;;
    env)
        install_venv
        install_chromium
        echo "export STOREFRONT_MCP_PYTHON='$venv/bin/python'"
        echo "export STOREFRONT_SCHEMATHESIS='$venv/bin/st'"
        echo "export STOREFRONT_CHROMIUM='$(chromium_bin)'"
        ;;
    *)
        die "usage: $0 install|env"
        ;;
esac
