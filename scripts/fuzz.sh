#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time; zero panics or the script fails.
#
#   scripts/fuzz.sh            # 60 s per target
#   FUZZ_SECONDS=300 scripts/fuzz.sh segment_payload
#
# cargo-fuzz drives libFuzzer with nightly-only rustc flags. The machine has one stable toolchain, so
# RUSTC_BOOTSTRAP=1 lets stable accept them. No sanitizer (`-s none`): the parsers are safe Rust, so
# what we look for is panics, overflows and runaway allocation; ASan would only slow the runs down.
# `--dev`: an unoptimised build (with overflow checks) compiles the service's ~450 crates in about half the
# time of a release one on 2 cores; it runs fewer inputs per second.
# New inputs that reach new code are added to fuzz/corpus/<target> (kept in the repository; run
# `cargo fuzz cmin <target>` before committing a grown corpus). A crash is saved in fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/the-eye-target}/fuzz}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s"
  # -rss_limit_mb: a body reader that inflated a bomb would exceed it; -max_len: bodies up to 64 KiB.
  status=0
  cargo fuzz run --dev -s none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=512 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)|panicked|ERROR|SUMMARY' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "$target failed: the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
