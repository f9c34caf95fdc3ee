#!/usr/bin/env bash
# fedge beside ONNX Runtime, PyTorch and TensorFlow-Keras on the Table 1 CNN, one thread
# each, on one pinned core, in one run. From the repository root:
#
#   bash benches/peers/run.sh            # CORE=1 ROUNDS=3 by default
#
# 1. builds `peer_bench` (bench profile: release speed, thin LTO);
# 2. creates target/peers/venv from PyPI (onnxruntime, numpy, safetensors, onnx; then
#    torch and tensorflow-cpu, each optional: a peer that fails to install is printed as
#    MISSING, the run goes on);
# 3. exports our model and test images (`peer_bench export`), checks every peer reproduces
#    our probabilities on the same weights, and times all of them in alternating rounds
#    pinned to core $CORE (`peers.py`), printing medians and ratios fedge / peer.
set -euo pipefail
cd "$(dirname "$0")/../.."

CORE="${CORE:-1}"
ROUNDS="${ROUNDS:-3}"
OUT=target/peers
VENV="$OUT/venv"
PY="$VENV/bin/python"

echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs);" \
  "flags: $(grep -m1 -o -w -E 'avx2|fma|avx512f' /proc/cpuinfo | sort -u | xargs)"

echo "== build peer_bench"
cargo build --profile bench -p benches --bin peer_bench
BIN=target/release/peer_bench

if [ ! -x "$PY" ]; then
  echo "== venv $VENV"
  python3 -m venv "$VENV"
fi
if ! "$PY" -c 'import onnxruntime, onnx, numpy, safetensors' 2>/dev/null; then
  "$VENV/bin/pip" install -q onnxruntime onnx numpy safetensors
fi
for peer in torch:torch tensorflow:tensorflow-cpu; do
  module="${peer%%:*}" package="${peer#*:}"
  if ! "$PY" -c "import $module" 2>/dev/null; then
    echo "== pip install $package (optional)"
    "$VENV/bin/pip" install -q "$package" || echo "   $package did not install: that peer is reported MISSING"
  fi
done

echo "== export"
FEDGE_THREADS=1 "$BIN" export "$OUT/data"

echo "== time (taskset -c $CORE, $ROUNDS rounds)"
FEDGE_THREADS=1 OMP_NUM_THREADS=1 taskset -c "$CORE" \
  "$PY" benches/peers/peers.py --data "$OUT/data" --peer-bench "$BIN" --rounds "$ROUNDS" \
  --json "$OUT/medians.json"
