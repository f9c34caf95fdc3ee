# Shared by deploy/testbed.sh, deploy/tests/faults.sh and deploy/bench-coldstart.sh (sourced).
# Needs: FEDGE_ROOT (repository root). Provides the compose command, shard writing, tokens,
# container addresses and a bounded teardown.

FEDGE_TARGET="$("$FEDGE_ROOT/deploy/cargo-build.sh" --print-target)"
FEDGE_HTTP=(python3 "$FEDGE_ROOT/deploy/fedge_http.py")

# `docker compose` (v2) where installed, else docker-compose (v1.29).
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  COMPOSE=(docker-compose)
fi

require_docker() {
  if ! docker info >/dev/null 2>&1; then
    echo "deploy: the Docker engine is not reachable (docker info failed)" >&2
    return 1
  fi
}

# The images, built when missing (or always with FEDGE_BUILD_IMAGES=1).
ensure_images() {
  local s missing=()
  for s in fn-serve fn-train aggregator; do
    docker image inspect "fedge/$s:${FEDGE_IMAGE_TAG:-local}" >/dev/null 2>&1 || missing+=("$s")
  done
  if [ "${FEDGE_BUILD_IMAGES:-0}" = 1 ]; then missing=(fn-serve fn-train aggregator); fi
  if [ ${#missing[@]} -gt 0 ]; then "$FEDGE_ROOT/deploy/build-images.sh" "${missing[@]}"; fi
}

# write_shards DIR [LIMIT]: node-0..2 under DIR, the engine's IID split with seed 0.
write_shards() {
  local tool="$FEDGE_ROOT/target/$FEDGE_TARGET/release/examples/write_shards"
  [ -x "$tool" ] || "$FEDGE_ROOT/deploy/cargo-build.sh" -p engine --example write_shards
  "$tool" --mnist-dir "$MNIST_DIR" --clients 3 --partition iid --seed 0 --out "$1" \
    ${2:+--limit "$2"} >/dev/null
  chmod -R a+rX "$1"
}

# Seconds since a `date +%s.%N` stamp.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

new_token() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

export_tokens() {
  FEDGE_TOKEN_EDGE_1="$(new_token)"; FEDGE_TOKEN_EDGE_2="$(new_token)"; FEDGE_TOKEN_EDGE_3="$(new_token)"
  # POST/DELETE /v1/rounds need the operator token (not a client's).
  FEDGE_OPERATOR_TOKEN="$(new_token)"
  export FEDGE_TOKEN_EDGE_1 FEDGE_TOKEN_EDGE_2 FEDGE_TOKEN_EDGE_3 FEDGE_OPERATOR_TOKEN
}

# A free loopback port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

compose() { "${COMPOSE[@]}" -f "$FEDGE_ROOT/deploy/compose.yaml" -p "$FEDGE_PROJECT" "$@"; }

# The container of a compose service, and its address on the project's network (the host
# reaches bridge addresses directly: used for the unpublished fn-train ports).
container_of() { compose ps -q "$1"; }
address_of() {
  docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container_of "$1")"
}

# Everything of the project goes: containers, network, volume (unless FEDGE_KEEP=1).
teardown() {
  if [ "${FEDGE_KEEP:-0}" = 1 ]; then
    echo "FEDGE_KEEP=1: leaving project $FEDGE_PROJECT up (remove: ${COMPOSE[*]} -p $FEDGE_PROJECT -f deploy/compose.yaml down -v)"
    return 0
  fi
  # `down` interpolates the file too: the required variables need some value.
  FEDGE_TOKEN_EDGE_1="${FEDGE_TOKEN_EDGE_1:-x}" FEDGE_TOKEN_EDGE_2="${FEDGE_TOKEN_EDGE_2:-x}" \
    FEDGE_TOKEN_EDGE_3="${FEDGE_TOKEN_EDGE_3:-x}" FEDGE_OPERATOR_TOKEN="${FEDGE_OPERATOR_TOKEN:-x}" \
    FEDGE_SHARDS="${FEDGE_SHARDS:-/nonexistent}" MNIST_DIR="${MNIST_DIR:-/nonexistent}" \
    timeout 120 "${COMPOSE[@]}" -f "$FEDGE_ROOT/deploy/compose.yaml" -p "$FEDGE_PROJECT" \
    down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
}
