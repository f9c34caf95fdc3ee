#!/usr/bin/env bash
# Cold start of the images, beside the same binaries as bare processes: for fn-serve and
# fn-train, >= 20 runs each of `docker run -d` (image present, as on a Knative node that has
# pulled it) with the testbed's limits and hardening, timed from the command to the first
# successful response: a one-image prediction (fn-serve, the model a local file) or a 200
# from /readyz with the 20,000-image shard loaded (fn-train). Also the memory after that
# first response (container: cgroup usage; process: RSS).
#
#   MNIST_DIR=/path/to/mnist deploy/bench-coldstart.sh        (RUNS=21)
set -euo pipefail
FEDGE_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$FEDGE_ROOT/deploy/lib.sh"
: "${MNIST_DIR:?set MNIST_DIR}"
MNIST_DIR="$(cd "$MNIST_DIR" && pwd)"
runs="${RUNS:-21}"
require_docker
ensure_images
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
bin="$FEDGE_ROOT/target/$FEDGE_TARGET/release"
write_shards "$work/shards" 20000
train="$bin/examples/train_mnist"
[ -x "$train" ] || "$FEDGE_ROOT/deploy/cargo-build.sh" -p engine --example train_mnist
mkdir -p "$work/model"
MNIST_DIR="$MNIST_DIR" "$train" --epochs 1 --train-limit 1280 --threads 1 \
  --save "$work/model/model.safetensors" >/dev/null
chmod -R a+rX "$work"

port=$(free_port)
hardening=(--user 65532:65532 --read-only --cap-drop ALL --security-opt no-new-privileges:true)
bench() { "${FEDGE_HTTP[@]}" coldstart --runs "$runs" --port "$port" --mnist-dir "$MNIST_DIR" "$@"; }
json() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@"; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "fn-serve, first one-image V2 prediction:"
printf '  container (0.4 CPU / 100 MiB): '
bench --container --path /v2/models/mnist/infer --predict --cmd "$(json docker run -d --rm "${hardening[@]}" \
  --cpus 0.4 --memory 100m --memory-swap 100m --tmpfs /tmp:size=8m,mode=1777 \
  -v "$work/model:/model:ro" -e MODEL_URI=/model/model.safetensors -e FEDGE_POLL_SECONDS=0 \
  -p "127.0.0.1:$port:8080" fedge/fn-serve:local)"
printf '  bare process (no limits):       '
bench --path /v2/models/mnist/infer --predict --cmd "$(json env PORT="$port" \
  MODEL_URI="$work/model/model.safetensors" FEDGE_POLL_SECONDS=0 FEDGE_CACHE_DIR="$work/cache" "$bin/fn-serve")"
echo "fn-train, first 200 from /readyz (20,000-image shard loaded):"
printf '  container (1 CPU / 200 MiB):    '
bench --container --path /readyz --cmd "$(json docker run -d --rm "${hardening[@]}" \
  --cpus 1 --memory 200m --memory-swap 200m --tmpfs /tmp:size=16m,mode=1777 \
  -v "$work/shards/node-0:/data/shard:ro" -e FEDGE_SHARD_DIR=/data/shard \
  -p "127.0.0.1:$port:8080" fedge/fn-train:local)"
printf '  bare process (no limits):       '
bench --path /readyz --cmd "$(json env PORT="$port" FEDGE_SHARD_DIR="$work/shards/node-0" "$bin/fn-train")"
