#!/usr/bin/env bash
# fn-serve benchmarks (issue 4 targets), on 127.0.0.1 with a real load generator (wrk),
# the service under ../shared/tools/run-limited --cpus 0.4 --memory 100M.
#
#   fn-serve/bench/run.sh            # from the repository root; needs root (cgroups)
#
# Env: BENCH_OUT (default /tmp/fn-serve-bench), BENCH_PORT (18080), BENCH_DURATION (30 s,
# the sustained-load run), COLD_RUNS (21), CARGO_TARGET_DIR, MNIST_DIR.
# Installs wrk with apt-get when it is missing. CI does not run this script.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export MNIST_DIR=${MNIST_DIR:-$ROOT/../shared/data/mnist}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${BENCH_OUT:-/tmp/fn-serve-bench}
PORT=${BENCH_PORT:-18080}
DURATION=${BENCH_DURATION:-30}
COLD_RUNS=${COLD_RUNS:-21}
RL=$ROOT/../shared/tools/run-limited
LIMITS=(--cpus 0.4 --memory 100M)
mkdir -p "$OUT"
: > "$OUT/server.log"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }

CARGO_TARGET_DIR=$TARGET cargo build --release -p fn-serve --bin fn-serve
BIN=$TARGET/release/fn-serve
FIX=$OUT/fixtures
# Fixtures in the dev profile (engine and deps are opt-level 3 there): no second LTO link.
[ -f "$FIX/b10k_u8.bin" ] || CARGO_TARGET_DIR=$TARGET cargo run -q -p fn-serve --example bench_fixtures -- "$FIX"
COLD=$OUT/coldstart
rustc -O --edition 2024 "$ROOT/fn-serve/examples/coldstart.rs" -o "$COLD"

export MODEL_URI=$FIX/model.safetensors FEDGE_POLL_SECONDS=0 FEDGE_CACHE_DIR=$OUT/cache
export RUST_LOG=fn_serve=warn
URL=http://127.0.0.1:$PORT

SERVER=""
start_server() { # $1: run-limited report file
  PORT=$PORT "$RL" "${LIMITS[@]}" --report "$1" -- "$BIN" >/dev/null 2>>"$OUT/server.log" &
  SERVER=$!
  for _ in $(seq 1 500); do
    curl -fs "$URL/v2/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.01
  done
  echo "server did not become ready" >&2; exit 1
}
stop_server() {
  kill -TERM "$SERVER"; wait "$SERVER" || true
}
server_pid() { pgrep -P "$SERVER" -x fn-serve | head -1; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
json_field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2"; }
wrk_run() { # $1 body file, $2 threads, $3 connections, $4 seconds, $5 output
  BODY=$1 wrk -t"$2" -c"$3" -d"$4"s --latency -s "$ROOT/fn-serve/bench/post.lua" "$URL" > "$5"
}
pct() { awk -v p="$1" '$1 == p {print $2}' "$2"; }
rps() { awk '/^Requests\/sec/ {print $2}' "$1"; }
errors() { # non-2xx + socket errors
  local n s
  n=$(awk '/Non-2xx/ {print $NF}' "$1"); s=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8+$10}' "$1")
  echo $(( ${n:-0} + ${s:-0} ))
}

echo "== cold start: spawn -> first 200 OK of a one-image V2 request ($COLD_RUNS runs)"
# (a) the process alone, moved into a cgroup v2 with the same limits right after spawn;
# (b) wrapped in run-limited, whose own start-up (a bash script, cgroup setup) counts too;
# (c) no limits.
CGS=""
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  CG=/sys/fs/cgroup/fn-serve-cold-$$
  mkdir "$CG" && echo "40000 100000" > "$CG/cpu.max" && echo $((100 * 1024 * 1024)) > "$CG/memory.max" && CGS=$CG
elif [ -d /sys/fs/cgroup/cpu ] && [ -d /sys/fs/cgroup/memory ]; then
  C1=/sys/fs/cgroup/cpu/fn-serve-cold-$$; M1=/sys/fs/cgroup/memory/fn-serve-cold-$$
  mkdir "$C1" "$M1" && echo 100000 > "$C1/cpu.cfs_period_us" && echo 40000 > "$C1/cpu.cfs_quota_us" \
    && echo $((100 * 1024 * 1024)) > "$M1/memory.limit_in_bytes" && CGS=$C1:$M1
fi
if [ -n "$CGS" ]; then
  COLD_CGROUP=$CGS PORT=$PORT "$COLD" "$COLD_RUNS" "$PORT" "$FIX/one.json" -- "$BIN" \
    | tee "$OUT/cold-cgroup.txt" | tail -1
  sleep 0.2; rmdir ${CGS//:/ } 2>/dev/null || true
else
  echo "no writable cgroup: skipped" > "$OUT/cold-cgroup.txt"
fi
"$COLD" "$COLD_RUNS" "$PORT" "$FIX/one.json" -- \
  env PORT="$PORT" "$RL" "${LIMITS[@]}" -- "$BIN" 2>/dev/null | tee "$OUT/cold-limited.txt" | tail -1
"$COLD" "$COLD_RUNS" "$PORT" "$FIX/one.json" -- \
  env PORT="$PORT" "$BIN" 2>/dev/null | tee "$OUT/cold-bare.txt" | tail -1

echo "== idle RSS, warm latency, sustained load (one server under the limits)"
start_server "$OUT/load.json"
PID=$(server_pid)
IDLE_START=$(rss_kib "$PID")
curl -fs -o /dev/null -H 'content-type: application/json' --data-binary @"$FIX/one.json" "$URL/v2/models/mnist/infer"
# Warm latency of a request that finds the server idle (paced below the quota): what a
# caller of a warm pod sees. The wrk runs after it are closed loops that keep the 0.4 CPU
# quota saturated, so their tails measure CFS throttling as much as the request itself.
paced() { # $1 body file, $2 count, $3 pause (s), $4 output: one curl time_total per line
  for _ in $(seq 1 "$2"); do
    curl -fs -o /dev/null -w '%{time_total}\n' -H 'content-type: application/json' \
      --data-binary @"$1" "$URL/v2/models/mnist/infer"
    sleep "$3"
  done > "$4"
}
paced "$FIX/one.json" 200 0.02 "$OUT/paced-1img.txt"
paced "$FIX/b500.json" 15 0.7 "$OUT/paced-500img.txt"
wrk_run "$FIX/one.json" 1 1 10 "$OUT/wrk-1img.txt"
wrk_run "$FIX/b500.json" 1 1 10 "$OUT/wrk-500img.txt"
wrk_run "$FIX/one.json" 2 32 "$DURATION" "$OUT/wrk-32c.txt"
sleep 1
IDLE_AFTER=$(rss_kib "$PID")
stop_server
LOAD_THROTTLED=$(json_field throttled_ms "$OUT/load.json")

echo "== 10,000 images in one request: FP32 JSON, then UINT8 binary (fresh server each)"
start_server "$OUT/mem-json.json"
J_STATUS=$(curl -s -o "$OUT/resp-10k.json" -w '%{http_code} %{time_total}' -H 'content-type: application/json' \
  --data-binary @"$FIX/b10k.json" "$URL/v2/models/mnist/infer")
stop_server
start_server "$OUT/mem-bin.json"
B_STATUS=$(curl -s -o "$OUT/resp-10k.bin" -w '%{http_code} %{time_total}' -H 'content-type: application/octet-stream' \
  -H "inference-header-content-length: $(cat "$FIX/b10k_u8.hlen")" --data-binary @"$FIX/b10k_u8.bin" "$URL/v2/models/mnist/infer")
stop_server

ms_pcts() { # p50 / p99 / max in ms of a file of seconds, one per line
  sort -n "$1" | awk '{a[NR] = $1 * 1000} END {
    i50 = int(NR * 0.5); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
    printf "p50 %.2f ms, p99 %.2f ms, max %.2f ms", a[i50], a[i99], a[NR] }'
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
{
  echo "fn-serve bench $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, limits: ${LIMITS[*]}"
  echo "cold start (cgroup 0.4 CPU/100M): $(tail -1 "$OUT/cold-cgroup.txt")"
  echo "cold start (run-limited):  $(tail -1 "$OUT/cold-limited.txt")"
  echo "cold start (no limits):    $(tail -1 "$OUT/cold-bare.txt")"
  echo "idle RSS: $((IDLE_START / 1024)) MiB after start ($IDLE_START KiB), $((IDLE_AFTER / 1024)) MiB after the load runs ($IDLE_AFTER KiB)"
  echo "1 image, paced 20 ms apart (200): $(ms_pcts "$OUT/paced-1img.txt")"
  echo "500 images, paced 0.7 s apart (15): $(ms_pcts "$OUT/paced-500img.txt")"
  echo "1 image, 1 connection, 10 s: p50 $(pct 50% "$OUT/wrk-1img.txt") p99 $(pct 99% "$OUT/wrk-1img.txt") $(rps "$OUT/wrk-1img.txt") req/s, errors $(errors "$OUT/wrk-1img.txt")"
  echo "500 images, 1 connection, 10 s: p50 $(pct 50% "$OUT/wrk-500img.txt") p99 $(pct 99% "$OUT/wrk-500img.txt") $(rps "$OUT/wrk-500img.txt") req/s, errors $(errors "$OUT/wrk-500img.txt")"
  echo "1 image, 32 connections, ${DURATION} s: $(rps "$OUT/wrk-32c.txt") req/s, p50 $(pct 50% "$OUT/wrk-32c.txt") p99 $(pct 99% "$OUT/wrk-32c.txt"), errors $(errors "$OUT/wrk-32c.txt"), throttled $LOAD_THROTTLED ms"
  echo "10,000 images FP32 JSON ($(( $(stat -c %s "$FIX/b10k.json") / 1048576 )) MiB body): HTTP ${J_STATUS% *} in ${J_STATUS#* } s, peak $(mib "$(json_field peak_memory "$OUT/mem-json.json")") MiB, oom_kills $(json_field oom_kills "$OUT/mem-json.json")"
  echo "10,000 images UINT8 binary: HTTP ${B_STATUS% *} in ${B_STATUS#* } s, peak $(mib "$(json_field peak_memory "$OUT/mem-bin.json")") MiB, oom_kills $(json_field oom_kills "$OUT/mem-bin.json")"
} | tee "$OUT/summary.txt"
