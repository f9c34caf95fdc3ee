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
#      SHARD_N (20000), COLD_RUNS (21), FIG6_SHARD_N (2000), FIG6_EPOCHS (10).
set -euo pipefail
cd "$(dirname "$0")/../.."
export MNIST_DIR="${MNIST_DIR:-$(cd ../shared/data/mnist && pwd)}"
TARGET="${CARGO_TARGET_DIR:-target}"
SHARD_N="${SHARD_N:-20000}"
COLD_RUNS="${COLD_RUNS:-21}"
FIG6_SHARD_N="${FIG6_SHARD_N:-2000}"
FIG6_EPOCHS="${FIG6_EPOCHS:-10}"
if [ "${1:-}" = "--quick" ]; then SHARD_N=2000; COLD_RUNS=5; FIG6_SHARD_N=500; FIG6_EPOCHS=2; fi
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

echo "== 1a. engine throughput, $SHARD_N images, 1 epoch, batch 64, inside ${LIMITS[*]}"
"$RUN_LIMITED" "${LIMITS[@]}" --report "$WORK/engine.json" -- \
  "$ENGINE" --epochs 1 --batch-size 64 --train-limit "$SHARD_N" --quiet | grep -E "trained|test"
cat "$WORK/engine.json"

echo "== 1b. fn-train: one round of 1 epoch over the $SHARD_N-image shard inside ${LIMITS[*]}"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$PORT FEDGE_SHARD_DIR="$WORK/shard" RUST_LOG=warn \
  "$RUN_LIMITED" "${LIMITS[@]}" --report "$WORK/fn-train.json" -- "$BIN" > "$WORK/fn-train.log" 2>&1 &
RL=$!
for _ in $(seq 1 2000); do
  curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null && break; sleep 0.01
done
curl -sf -H 'content-type: application/json' -H 'accept: application/json' \
  --data-binary @"$WORK/req1.json" "http://127.0.0.1:$PORT/train" > "$WORK/reply.json"
kill -TERM "$RL"; wait "$RL" || true
python3 - "$WORK/reply.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, s = r["num_examples"], r["train_seconds"]
print(f"fn-train: {n} examples, 1 epoch in {s:.2f} s = {n/s:.0f} samples/s; "
      f"loss {r['epochs'][0]['loss']:.4f} acc {r['epochs'][0]['accuracy']:.4f}")
PY
cat "$WORK/fn-train.json"
grep -c '"level"' "$WORK/fn-train.log" > /dev/null || true

echo "== 2. cold start to ready ($SHARD_N-image shard), $COLD_RUNS runs"
"$TOOL" cold-start --bin "$BIN" --shard "$WORK/shard" --runs "$COLD_RUNS"

echo "== 3. warm vs cold POST /train, 1..$FIG6_EPOCHS epochs, $FIG6_SHARD_N-image shard"
"$TOOL" figure6 --bin "$BIN" --shard "$WORK/shard-fig6" --max-epochs "$FIG6_EPOCHS"
