#!/usr/bin/env bash
# fn-train benchmarks (figures recorded in BENCHMARKS.md, section "fn-train"):
#  1. one local epoch over a 20,000-image shard, batch 64, table1 CNN, inside
#     run-limited --cpus 1 --memory 200M: peak memory and samples/s, against the engine's
#     own training throughput (engine/examples/train_mnist) under the same limits;
#  2. cold start to ready (spawn -> /readyz 200), median of N runs;
#  3. warm vs cold response time of POST /train for 1..E epochs (the paper's Figure 6).
#
#   fn-train/bench/run.sh [--quick]     (from the repository root; needs root for run-limited)
# Env: MNIST_DIR (default ../shared/data/mnist), CARGO_TARGET_DIR (default target),
#      SECTIONS ("1 2 3"), SHARD_N (20000), REPS (3), COLD_RUNS (21), FIG6_SHARD_N (2000), FIG6_EPOCHS (10).
set -euo pipefail
cd "$(dirname "$0")/../.."
export MNIST_DIR="${MNIST_DIR:-$(cd ../shared/data/mnist && pwd)}"
TARGET="${CARGO_TARGET_DIR:-target}"
SHARD_N="${SHARD_N:-20000}"
COLD_RUNS="${COLD_RUNS:-21}"
FIG6_SHARD_N="${FIG6_SHARD_N:-2000}"
FIG6_EPOCHS="${FIG6_EPOCHS:-10}"
REPS="${REPS:-3}"
SECTIONS="${SECTIONS:-1 2 3}"
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
if [ "${1:-}" = "--quick" ]; then SHARD_N=2000; COLD_RUNS=5; FIG6_SHARD_N=500; FIG6_EPOCHS=2; REPS=1; fi
LIMITS=(--cpus 1 --memory 200M)
RUN_LIMITED=../shared/tools/run-limited
WORK="$(mktemp -d /tmp/fn-train-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

echo "== build (release)"
cargo build --release -p fn-train -p engine --bin fn-train --example fn_train_bench --example train_mnist
BIN="$TARGET/release/fn-train"
TOOL="$TARGET/release/examples/fn_train_bench"
ENGINE="$TARGET/release/examples/train_mnist"

echo "== data: first $SHARD_N MNIST training images as raw IDX"
"$TOOL" make-shard --n "$SHARD_N" --out "$WORK/shard"
"$TOOL" make-shard --n "$FIG6_SHARD_N" --out "$WORK/shard-fig6"
"$TOOL" make-request --epochs 1 --out "$WORK/req1.json"

# Throughput is compared on the same shard, back to back, REPS times alternating (the
# machine is shared: wall-clock samples/s moves with the neighbours' load, so samples per
# CPU-second of the training thread, read from /proc/thread-self/schedstat by both
# programs, is printed beside it).
engine_run() {
  "$RUN_LIMITED" "${LIMITS[@]}" --report "$WORK/engine.json" -- \
    "$ENGINE" --epochs 1 --batch-size 64 --train-limit "$SHARD_N" --threads 1 --quiet \
    | grep -E "^trained" | sed 's/^/engine:   /'
  cat "$WORK/engine.json"; echo
}
fn_train_run() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PORT=$port FEDGE_SHARD_DIR="$WORK/shard" RUST_LOG=fn_train=info \
    "$RUN_LIMITED" "${LIMITS[@]}" --report "$WORK/fn-train.json" -- "$BIN" > "$WORK/fn-train.log" 2>&1 &
  local rl=$!
  for _ in $(seq 1 2000); do
    curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break; sleep 0.01
  done
  curl -sf -H 'content-type: application/json' -H 'accept: application/json' \
    --data-binary @"$WORK/req1.json" "http://127.0.0.1:$port/train" > "$WORK/reply.json"
  kill -TERM "$rl"; wait "$rl" || true
  python3 - "$WORK/reply.json" "$WORK/fn-train.log" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, s = r["num_examples"], r["train_seconds"]
cpu = next((json.loads(l).get("train_cpu_seconds") for l in open(sys.argv[2])
            if '"training job finished"' in l), None)
per_cpu = f"; job thread {cpu:.2f} CPU-s, {n/cpu:.0f} samples per CPU-second" if cpu else ""
print(f"fn-train: {n} examples, 1 epoch in {s:.2f} s ({n/s:.0f} samples/s){per_cpu}; "
      f"loss {r['epochs'][0]['loss']:.4f} acc {r['epochs'][0]['accuracy']:.4f}")
PY
  cat "$WORK/fn-train.json"; echo
}
want 1 && echo "== 1. one epoch over $SHARD_N images, batch 64, table1 CNN, inside ${LIMITS[*]}: engine vs fn-train x $REPS"
want 1 && for _ in $(seq 1 "$REPS"); do engine_run; fn_train_run; done

if want 2; then
echo "== 2. cold start to ready ($SHARD_N-image shard), $COLD_RUNS runs"
"$TOOL" cold-start --bin "$BIN" --shard "$WORK/shard" --runs "$COLD_RUNS"

fi
if want 3; then
echo "== 3. warm vs cold POST /train, 1..$FIG6_EPOCHS epochs, $FIG6_SHARD_N-image shard"
"$TOOL" figure6 --bin "$BIN" --shard "$WORK/shard-fig6" --max-epochs "$FIG6_EPOCHS"
fi
