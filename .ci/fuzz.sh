#!/usr/bin/env bash
# Fuzz budget for CI: builds the fuzz/ targets with libFuzzer on the stable toolchain and
# runs each for a fixed time. A crash fails CI and leaves its input in
# fuzz/artifacts/<target>/ (turn it into a regression test in the crate's own suite).
#
# cargo-fuzz itself needs nightly only for -Zsanitizer; libFuzzer's coverage
# instrumentation is the stable -Cpasses=sancov-module plus LLVM flags, set here by hand
# (the flags cargo-fuzz passes, minus the sanitizer). Budget: FUZZ_SECONDS per target
# (default 20).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
TARGETS=(idx weights serve_request cloudevents train_request update history)

export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares \
  -Cdebug-assertions -Coverflow-checks -Ccodegen-units=16"
# Own target dir: these flags would invalidate the main build's cache.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-target}"

# With an explicit --target, RUSTFLAGS reach only the target's crates, not the build
# scripts and proc macros (which would not link without libFuzzer), as cargo-fuzz does.
HOST="$(rustc -vV | sed -n 's/^host: //p')"
start=$(date +%s)
cargo build --profile fuzz --bins --target "$HOST"
echo "fuzz: build took $(( $(date +%s) - start )) s"

for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "== fuzz $t (${SECONDS_PER_TARGET} s)"
  "$CARGO_TARGET_DIR/$HOST/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" "corpus/$t" "${seeds[@]}" 2>&1 \
    | grep -aE '^(Done [0-9]+ runs|stat::new_units_added|==[0-9]+==|SUMMARY|.*panicked|.*Test unit written)' || true
  if [ -n "$(ls -A "artifacts/$t")" ]; then
    echo "fuzz: $t found a crash: $(ls "artifacts/$t")" >&2
    exit 1
  fi
done
echo "fuzz: done in $(( $(date +%s) - start )) s"
