#!/usr/bin/env bash
# Fault tests against real containers (the testbed of deploy/compose.yaml, with small shards
# and short timeouts from deploy/testbed/faults.json). Each test asserts outcomes; the script
# prints `N passed, N failed` and exits non-zero if any check failed. Everything it starts is
# removed on exit (trap), also on Ctrl-C; every wait is bounded.
#
#   MNIST_DIR=/path/to/mnist deploy/tests/faults.sh
# Env: FEDGE_FAULT_SHARD (examples per node, 4000), FEDGE_KEEP=1 (leave it up),
#      FEDGE_SKIP_BUILD=1 (use the images as they are; otherwise they are built if missing).
set -uo pipefail
FEDGE_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$FEDGE_ROOT/deploy/lib.sh"
: "${MNIST_DIR:?set MNIST_DIR to the MNIST folder (IDX files)}"
MNIST_DIR="$(cd "$MNIST_DIR" && pwd)"
export MNIST_DIR
export FEDGE_PROJECT="${FEDGE_PROJECT:-fedge-faults-$$}"
export FEDGE_AGG_CONFIG="$FEDGE_ROOT/deploy/testbed/faults.json"

passed=0
failed=0
check() { # check NAME CONDITION-COMMAND...
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); echo "  ok   $name"
  else failed=$((failed + 1)); echo "  FAIL $name"; fi
}
py() { python3 -c "$@"; }

require_docker || { echo "0 passed, 1 failed"; exit 1; }
set -e
ensure_images
set +e
work="$(mktemp -d)"
cleanup() {
  trap - EXIT INT TERM
  if [ $failed -gt 0 ]; then
    echo "--- last log lines ---"; compose logs --tail 15 2>/dev/null | tail -80
  fi
  teardown
  rm -rf "$work"
}
trap 'cleanup; echo "$passed passed, $failed failed"; [ $failed -eq 0 ]' EXIT
trap 'failed=$((failed + 1)); exit 130' INT TERM

write_shards "$work/shards" "${FEDGE_FAULT_SHARD:-4000}" || { failed=$((failed + 1)); exit 1; }
export FEDGE_SHARDS="$work/shards"
export_tokens
export FEDGE_AGG_PORT="$(free_port)" FEDGE_SERVE_PORT="$(free_port)"
agg="http://127.0.0.1:$FEDGE_AGG_PORT"
serve="http://127.0.0.1:$FEDGE_SERVE_PORT"
net="${FEDGE_PROJECT}_fedge"

# ---- helpers ---------------------------------------------------------------------------
ready() { "${FEDGE_HTTP[@]}" wait "http://$(address_of "$1"):8080/readyz" --timeout "${2:-60}" >/dev/null 2>&1; }
start_round() {
  curl -fsS -m 10 -XPOST -H "Authorization: Bearer $FEDGE_OPERATOR_TOKEN" -H 'content-type: application/json' -d '{"rounds":1}' "$agg/v1/rounds" |
    py 'import json,sys; print(json.load(sys.stdin)["first_round"])'
}
# The record of round $1 once written (bounded), as JSON.
wait_record() {
  "${FEDGE_HTTP[@]}" rounds "$agg" --until "$1" --since $(($1 - 1)) --quiet --allow-failed --timeout "${2:-240}" >"$work/round-$1.txt" || return 1
  curl -fsS -m 10 "$agg/v1/rounds" | py "import json,sys; print(json.dumps(next(r for r in json.load(sys.stdin) if r['round']==$1)))"
}
# field EXPR < record: a Python expression over `r` (the record).
field() { py "import json,sys; r=json.load(sys.stdin); print(($1))"; }
client_status() { field "next(c['status'] for c in r['clients'] if c['client_id']=='$1')"; }
# Until $1's fn-train is training (fn_train_job_running 1), bounded.
wait_training() {
  local url="http://$(address_of "$1"):8080/metrics" i
  for i in $(seq 1 300); do
    [ "$("${FEDGE_HTTP[@]}" metric "$url" fn_train_job_running 2>/dev/null)" = 1 ] && return 0
    sleep 0.05
  done
  return 1
}
# The store's latest model parses as safetensors holding the table1 CNN and is version $1.
latest_valid() {
  curl -fsS -m 10 -D "$work/h" -o "$work/m" "$agg/v1/models/mnist/latest" || return 1
  grep -qi "^x-model-version: $1"$'\r' "$work/h" || return 1
  py "import json,struct,sys
b=open('$work/m','rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n])
assert len([k for k in h if k!='__metadata__'])>=8, h.keys()
end=max(v['data_offsets'][1] for k,v in h.items() if k!='__metadata__'); assert 8+n+end==len(b)"
}
latest_valid_either() { latest_valid "$1" || latest_valid "$2"; }
every_version_readable() { # every completed round's version is in the store
  local v
  for v in $(curl -fsS -m 10 "$agg/v1/rounds" | py 'import json,sys; print(" ".join(str(r["version"]) for r in json.load(sys.stdin) if r["version"] is not None))'); do
    curl -fsS -m 10 -o /dev/null "$agg/v1/models/mnist/versions/$v" || return 1
  done
}
latest_version() { curl -fsS -m 10 "$agg/v1/rounds" | py 'import json,sys; print(max(r["version"] for r in json.load(sys.stdin) if r["version"] is not None))'; }
serve_metric() { "${FEDGE_HTTP[@]}" metric "$serve/metrics" "$1"; }
predicts() {
  "${FEDGE_HTTP[@]}" classify "$serve" "$MNIST_DIR" --batch 2000 --timeout 30 >/dev/null 2>&1
}
inspect_ok() { # not OOM-killed, never restarted, still running
  [ "$(docker inspect -f '{{.State.OOMKilled}} {{.RestartCount}} {{.State.Running}}' "$(container_of "$1")")" = "false 0 true" ]
}

# ---- up --------------------------------------------------------------------------------
echo "faults: project $FEDGE_PROJECT, shards of ${FEDGE_FAULT_SHARD:-4000} examples"
t0=$(date +%s.%N)
compose up -d >/dev/null 2>&1 || { compose up -d; failed=$((failed + 1)); exit 1; }
check "aggregator answers on its published port" "${FEDGE_HTTP[@]}" wait "$agg/healthz" --timeout 60
for s in edge-1 edge-2 edge-3; do check "$s ready with its shard" ready "$s"; done
check "fn-serve resolves http://aggregator:8080 by service name and loads v0" \
  "${FEDGE_HTTP[@]}" classify "$serve" "$MNIST_DIR" --version 0 --batch 5000 --timeout 60
r=$(start_round); rec=$(wait_record "$r")
check "round $r with all three nodes" test "$(field "r['status'],sum(c['status']=='accepted' for c in r['clients'])" <<<"$rec")" = "('completed', 3)"

# ---- 1. docker kill an edge node mid-round ---------------------------------------------
echo "1. docker kill edge-2 mid-round"
v=$(latest_version)
r=$(start_round)
check "edge-2 is training" wait_training edge-2
docker kill "$(container_of edge-2)" >/dev/null
rec=$(wait_record "$r")
check "round $r completes with the other two" test "$(field "r['status'],sum(c['status']=='accepted' for c in r['clients'])" <<<"$rec")" = "('completed', 2)"
check "edge-2 is recorded as failed (or timed out)" py "import sys; sys.exit(0 if '$(client_status edge-2 <<<"$rec")' in ('failed','timeout') else 1)"
check "the global model v$((v + 1)) is valid" latest_valid $((v + 1))
check "its accuracy is recorded (> 50 %)" test "$(field "r['global']['accuracy'] > 0.5" <<<"$rec")" = True
docker start "$(container_of edge-2)" >/dev/null
check "edge-2 ready again after docker start" ready edge-2
r=$(start_round); rec=$(wait_record "$r")
check "edge-2 takes part in round $r" test "$(client_status edge-2 <<<"$rec")" = accepted

# ---- 1b. below the minimum -------------------------------------------------------------
echo "1b. docker kill edge-1 and edge-3 mid-round (1 of 3 left, min_fit_clients 2)"
v=$(latest_version)
r=$(start_round)
check "edge-1 is training" wait_training edge-1
docker kill "$(container_of edge-1)" "$(container_of edge-3)" >/dev/null
rec=$(wait_record "$r")
check "round $r fails cleanly" test "$(field "r['status'], r['version'], bool(r['failure'])" <<<"$rec")" = "('failed', None, True)"
check "the global model stays v$v and valid" latest_valid "$v"
docker start "$(container_of edge-1)" "$(container_of edge-3)" >/dev/null
check "edge-1 ready again" ready edge-1
check "edge-3 ready again" ready edge-3

# ---- 2. network partition of an edge node ----------------------------------------------
echo "2. docker network disconnect edge-3 mid-round"
timeout_s=$(py "import json; print(json.load(open('$FEDGE_AGG_CONFIG'))['settings']['client_timeout_secs'])")
r=$(start_round)
check "edge-3 is training" wait_training edge-3
c3=$(container_of edge-3)
docker network disconnect "$net" "$c3"
t=$(date +%s.%N)
rec=$(wait_record "$r" 150)
took=$(since "$t")
check "round $r ends within the client timeout (${took} s <= ${timeout_s} + 10 s)" \
  py "import sys; sys.exit(0 if $took <= $timeout_s + 10 else 1)"
check "round $r completes with edge-1 and edge-2" test "$(field "r['status'],sorted(c['client_id'] for c in r['clients'] if c['status']=='accepted')" <<<"$rec")" = "('completed', ['edge-1', 'edge-2'])"
check "edge-3 is recorded as timed out or failed" py "import sys; sys.exit(0 if '$(client_status edge-3 <<<"$rec")' in ('timeout','failed') else 1)"
docker network connect --alias edge-3 "$net" "$c3"
check "edge-3 reachable again after reconnect" ready edge-3
r=$(start_round); rec=$(wait_record "$r")
check "edge-3 takes part in round $r" test "$(client_status edge-3 <<<"$rec")" = accepted

# ---- 3. docker kill the aggregator mid-round -------------------------------------------
echo "3. docker kill the aggregator mid-round, start it again on the same volume"
v=$(latest_version)
n_before=$(curl -fsS -m 10 "$agg/v1/rounds" | py 'import json,sys; print(len(json.load(sys.stdin)))')
r=$(start_round)
check "edge-1 is training" wait_training edge-1
ca=$(container_of aggregator)
docker kill "$ca" >/dev/null
# 4. (with the store down) fn-serve keeps serving and reports the failure.
fails0=$(serve_metric fn_serve_model_load_failures_total)
sleep 3
fails1=$(serve_metric fn_serve_model_load_failures_total)
check "store down: fn-serve still predicts" predicts
check "store down: fn_serve_model_load_failures_total rises ($fails0 -> $fails1)" test "${fails1:-0}" -gt "${fails0:-0}"
check "store down: fn-serve still serves v$v" test "$(serve_metric fn_serve_model_version)" = "$v"
check "store down: fn-serve logs the failure" bash -c "docker logs --since 5s '$(container_of fn-serve)' 2>&1 | grep -q 'model refresh failed'"
docker start "$ca" >/dev/null
check "aggregator back on the same volume" "${FEDGE_HTTP[@]}" wait "$agg/healthz" --timeout 60
check "no version lost: latest is v$v or v$((v + 1)), valid" latest_valid_either "$v" $((v + 1))
check "every recorded version is readable" every_version_readable
check "history not truncated (>= $n_before records)" test "$(curl -fsS -m 10 "$agg/v1/rounds" | py 'import json,sys; print(len(json.load(sys.stdin)))')" -ge "$n_before"
# The killed round's jobs may still run on the nodes: wait until they are idle.
for s in edge-1 edge-2 edge-3; do
  for i in $(seq 1 200); do
    [ "$("${FEDGE_HTTP[@]}" metric "http://$(address_of $s):8080/metrics" fn_train_job_running 2>/dev/null)" = 0 ] && break
    sleep 0.1
  done
done
v=$(latest_version)
r=$(start_round); rec=$(wait_record "$r")
check "the restarted aggregator runs round $r -> v$((v + 1))" test "$(field "r['status'], r['version']" <<<"$rec")" = "('completed', $((v + 1)))"
check "v$((v + 1)) is valid" latest_valid $((v + 1))
check "store back: fn-serve picks up v$((v + 1))" "${FEDGE_HTTP[@]}" classify "$serve" "$MNIST_DIR" --version $((v + 1)) --batch 5000 --timeout 30

# ---- 5. fn-serve: 10,000-image requests in 100 MiB -------------------------------------
echo "5. fn-serve (0.4 CPU / 100 MiB): 10,000-image requests"
big() { "${FEDGE_HTTP[@]}" big "$serve" "$MNIST_DIR" "$@"; }
out=$(big --format json-fp32); echo "   json-fp32 x1: $out"
check "one 10,000-image FP32 JSON request: 200" test "$(py "import json; print(json.loads('$out')['statuses'])")" = "{'200': 1}"
out=$(big --format binary-u8); echo "   binary-u8 x1: $out"
check "one 10,000-image UINT8 binary request: 200" test "$(py "import json; print(json.loads('$out')['statuses'])")" = "{'200': 1}"
out=$(big --format json-fp32 --concurrent 32 --timeout 240); echo "   json-fp32 x32: $out"
check "32 concurrent: some answered 200, the rest shed with 503" \
  py "import json,sys; s=json.loads('$out')['statuses']; sys.exit(0 if s.get('200',0)>=1 and s.get('503',0)>=1 and s.get('200',0)+s.get('503',0)==32 else 1)"
check "fn-serve not OOM-killed, not restarted, running" inspect_ok fn-serve
check "fn-serve still predicts after the burst" predicts
echo "faults: $(since "$t0") s"
