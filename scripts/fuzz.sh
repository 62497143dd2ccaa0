#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time (default 60 s each), growing
# fuzz/corpus/<target>/ and then minimising it (cargo fuzz cmin). A crash stops the
# script with the input in fuzz/artifacts/<target>/: fix it, add a regression test and
# copy the input into the corpus (the stable replay tests then keep it fixed).
#   scripts/fuzz.sh [seconds-per-target] [target...]
# Stable toolchain: cargo-fuzz needs nightly flags, enabled with RUSTC_BOOTSTRAP=1.
# FUZZ_SANITIZER=address|none (default none: the code under test has no unsafe and
# the build is much faster; use address for a deeper run).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
sanitizer="${FUZZ_SANITIZER:-none}"
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -s "$sanitizer"
for t in "${targets[@]}"; do
  printf '==> fuzzing %s for %ss\n' "$t" "$secs"
  mkdir -p "corpus/$t"
  cargo fuzz run -s "$sanitizer" "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192
  # cmin renames every input it keeps to its SHA-1: keep the hand-written seeds (any name
  # that is not 40 hex digits; some replay tests check them by name) under their names.
  seeds="$(mktemp -d)"
  find "corpus/$t" -maxdepth 1 -type f -regextype posix-extended ! -regex '.*/[0-9a-f]{40}' \
    -exec cp {} "$seeds/" \;
  cargo fuzz cmin -s "$sanitizer" "$t" "corpus/$t" -- -max_len=8192 >/dev/null 2>&1 || true
  for s in "$seeds"/*; do
    [ -e "$s" ] || continue
    rm -f "corpus/$t/$(sha1sum "$s" | cut -c1-40)"
    cp "$s" "corpus/$t/"
  done
  rm -rf "$seeds"
done
