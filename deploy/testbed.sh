#!/usr/bin/env bash
# The paper's testbed in containers, one command: builds the images if missing, writes the
# three nodes' shards (engine's IID split, seed 0), starts deploy/compose.yaml, runs 5
# rounds of the default recipe (1 local epoch, batch 64, Adam 1e-3, FedAvg), classifies
# MNIST's test set through fn-serve, prints the round table, and tears everything down
# (also on Ctrl-C and on failure).
#
#   MNIST_DIR=/path/to/mnist deploy/testbed.sh
# Env: FEDGE_ROUNDS (5), FEDGE_SHARD_LIMIT (all 20,000 per node), FEDGE_KEEP=1 (leave it up),
#      FEDGE_PROJECT (compose project name, default fedge-testbed), FEDGE_BUILD_IMAGES=1.
set -euo pipefail
FEDGE_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$FEDGE_ROOT/deploy/lib.sh"
: "${MNIST_DIR:?set MNIST_DIR to the MNIST folder (IDX files)}"
MNIST_DIR="$(cd "$MNIST_DIR" && pwd)"
export MNIST_DIR
rounds="${FEDGE_ROUNDS:-5}"
export FEDGE_PROJECT="${FEDGE_PROJECT:-fedge-testbed}"

require_docker
ensure_images
work="$(mktemp -d)"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ $rc -ne 0 ] && [ -n "$(compose ps -q 2>/dev/null)" ]; then
    echo "--- last log lines (failure) ---"; compose logs --tail 20 2>/dev/null | tail -60
  fi
  teardown
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s.%N)
write_shards "$work/shards" "${FEDGE_SHARD_LIMIT:-}"
export FEDGE_SHARDS="$work/shards"
export_tokens
export FEDGE_AGG_PORT="${FEDGE_AGG_PORT:-$(free_port)}"
export FEDGE_SERVE_PORT="${FEDGE_SERVE_PORT:-$(free_port)}"
agg="http://127.0.0.1:$FEDGE_AGG_PORT"
serve="http://127.0.0.1:$FEDGE_SERVE_PORT"

echo "fedge testbed: 3 fn-train (1 CPU / 200 MiB), fn-serve (0.4 CPU / 100 MiB), aggregator; $rounds round(s)"
compose up -d --quiet-pull 2>/dev/null || compose up -d
"${FEDGE_HTTP[@]}" wait "$agg/healthz" --timeout 60
for s in edge-1 edge-2 edge-3; do
  "${FEDGE_HTTP[@]}" wait "http://$(address_of "$s"):8080/readyz" --timeout 60
done
echo "containers up, shards loaded in $(since "$t0") s"
compose ps

first=$(curl -fsS -XPOST -H "Authorization: Bearer $FEDGE_OPERATOR_TOKEN" -H 'content-type: application/json' -d "{\"rounds\":$rounds}" "$agg/v1/rounds" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["first_round"])')
last=$((first + rounds - 1))
"${FEDGE_HTTP[@]}" rounds "$agg" --until "$last" --since $((first - 2))
acc=$(curl -fsS "$agg/v1/rounds" | python3 -c 'import json,sys; h=json.load(sys.stdin); print(h[-1]["global"]["accuracy"])')
version=$(curl -fsS "$agg/v1/rounds" | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["version"])')
"${FEDGE_HTTP[@]}" classify "$serve" "$MNIST_DIR" --version "$version" --expect-accuracy "$acc"
echo "memory (cgroup): now / peak since start / limit"
for id in $(compose ps -q); do
  "${FEDGE_HTTP[@]}" memory "$id"
done
echo "total: $(since "$t0") s"
