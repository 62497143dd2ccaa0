#!/usr/bin/env bash
# Installs what the tests need, builds the guest fixtures (cached by source hash), then runs
# formatting and lint checks and every test of the workspace with nextest.
# Works non-interactively (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

apt_install() {
  if command -v apt-get >/dev/null 2>&1; then
    log "installing $* with apt-get"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing $* and no apt-get to install it" >&2; exit 1
  fi
}

command -v node >/dev/null 2>&1 || apt_install nodejs npm
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv python3-pip
# Process runtimes: Debian's interpreters, pip for dependency builds, the sandbox tools.
[ -x /usr/bin/python3 ] && /usr/bin/python3 -m pip --version >/dev/null 2>&1 || apt_install python3 python3-pip
[ -x /usr/bin/node ] || apt_install nodejs npm
command -v bwrap >/dev/null 2>&1 || apt_install bubblewrap
command -v slirp4netns >/dev/null 2>&1 || apt_install slirp4netns
# The node-ric fixture (npm aws-lambda-ric) builds curl, aws-lambda-cpp and a node addon.
for tool in cmake autoreconf automake libtoolize make g++; do
  command -v "$tool" >/dev/null 2>&1 || { apt_install cmake autoconf automake libtool make g++; break; }
done
# The Lambda-compatible API e2e test drives a node with boto3 and the AWS CLI (PyPI).
if ! python3 -c 'import boto3' >/dev/null 2>&1 || ! command -v aws >/dev/null 2>&1; then
  log "installing boto3 and awscli"
  python3 -m pip install -q boto3 awscli || python3 -m pip install -q --break-system-packages boto3 awscli
fi
# schemathesis (PyPI) drives the OpenAPI document against a node (e2e_schemathesis).
if ! command -v schemathesis >/dev/null 2>&1; then
  log "installing schemathesis"
  python3 -m pip install -q schemathesis || python3 -m pip install -q --break-system-packages schemathesis
fi
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || { log "adding wasm32-wasip2"; rustup target add wasm32-wasip2; }
command -v cargo-nextest >/dev/null 2>&1 || { log "installing cargo-nextest"; cargo install --locked cargo-nextest; }

log "building guest fixtures"
tests/fixtures/build.sh

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo nextest"
cargo nextest run --workspace --locked --profile ci "$@"
