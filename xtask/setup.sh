#!/bin/sh
# Installs what the build and the tests need, idempotently: Debian's chromium, chromedriver and
# xmllint (via apt-get, when missing), the wasm32 Rust target, the wasm-bindgen CLI at exactly
# the version of the wasm-bindgen crate in Cargo.lock, and the npm packages (`npm ci`).
# Each step is skipped when what it installs is already there.
set -eu
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------------------
missing=""
command -v xmllint >/dev/null 2>&1 || missing="$missing libxml2-utils"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
if [ -n "$missing" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { say "need root to apt-get install$missing"; exit 1; }
    sudo="sudo"
  fi
  say "installing$missing"
  $sudo apt-get update -q
  # shellcheck disable=SC2086 # the list is meant to split into words
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi

# --- Rust: wasm32 target and the wasm-bindgen CLI ---------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
# Cargo.lock pins the crate; the CLI must be the same version or the glue will not match.
wanted=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$wanted" ]; then
  say "Cargo.lock names no wasm-bindgen version: run 'cargo generate-lockfile'"
  exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$wanted" ]; then
  say "installing wasm-bindgen-cli $wanted (found: ${have:-none}); this compiles for a few minutes"
  # --locked first for the CLI's own tested dependency set; some of its locked versions can be
  # missing from a registry mirror, so fall back to a fresh resolution of the same CLI version.
  # The first attempt's output is kept aside and shown only if the fallback fails too.
  log=$(mktemp)
  if ! cargo install --quiet wasm-bindgen-cli --version "$wanted" --locked 2>"$log"; then
    say "the locked install could not resolve here (expected where the registry lacks one of its pinned versions); installing wasm-bindgen-cli $wanted with a fresh resolution"
    if ! cargo install --quiet wasm-bindgen-cli --version "$wanted"; then
      say "both installs failed; the locked one said:"
      cat "$log" >&2
      rm -f "$log"
      exit 1
    fi
  fi
  rm -f "$log"
fi

# --- npm packages ------------------------------------------------------------------------------
stamp=node_modules/.setup-stamp
lock_sum=$(cksum < package-lock.json)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  printf '%s\n' "$lock_sum" > "$stamp"
fi
