#!/usr/bin/env bash
# Checks the built images (deploy/build-images.sh): no shell or package manager, only the
# files we put in, numeric user 65532:65532, the registry Dockerfile's runtime settings,
# fn-serve and fn-train <= 12 MB uncompressed, and the binary starts inside its image as that
# user with a read-only root. Prints `N passed, N failed`; exits non-zero on a failure.
set -uo pipefail
FEDGE_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$FEDGE_ROOT/deploy/lib.sh"
tag="${FEDGE_IMAGE_TAG:-local}"
passed=0
failed=0
check() {
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); echo "  ok   $name"
  else failed=$((failed + 1)); echo "  FAIL $name"; fi
}
trap 'echo "$passed passed, $failed failed"; [ $failed -eq 0 ]' EXIT
require_docker || { failed=1; exit 1; }

files_of() { # the image's file list, from a created (never started) container
  local c
  c=$(docker create "$1") || return 1
  docker export "$c" | tar -t | sed 's|/$||' | sort
  docker rm "$c" >/dev/null
}
expected_files() {
  printf '%s\n' .dockerenv data dev dev/console dev/pts dev/shm etc etc/group etc/hostname \
    etc/hosts etc/mtab etc/passwd etc/resolv.conf home home/nonroot proc sys tmp "$1" | sort
}
config_is() { # config_is IMAGE FIELD VALUE
  [ "$(docker image inspect -f "{{json .Config.$2}}" "$1")" = "$3" ]
}
# The Dockerfile's ENTRYPOINT/USER, as JSON, to compare with the image.
dockerfile_entrypoint() {
  awk '/^FROM/ { keep = ($2 ~ /distroless/) } keep && /^ENTRYPOINT/ { sub(/^ENTRYPOINT[[:space:]]+/, ""); print }' \
    "$FEDGE_ROOT/deploy/$1/Dockerfile" | python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read()), separators=(",", ":")))'
}
dockerfile_env_has() { # every ENV of the distroless stage is in the image
  local want
  want=$(awk '/^FROM/ { keep = ($2 ~ /distroless/) } keep && /^ENV/ { for (i = 2; i <= NF; i++) print $i }' \
    "$FEDGE_ROOT/deploy/$1/Dockerfile")
  local env
  env=$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$2")
  local w
  for w in $want; do grep -qx "$w" <<<"$env" || return 1; done
}
starts() { # the binary answers --version inside its image, as 65532, root read-only
  docker run --rm --read-only --cap-drop ALL --security-opt no-new-privileges:true \
    --entrypoint "/$1" "$2" --version 2>&1 | grep -q "^$1 "
}

for s in fn-serve fn-train aggregator; do
  img="fedge/$s:$tag"
  echo "$img"
  check "$s: image exists" docker image inspect "$img" >/dev/null
  check "$s: only the binary, passwd/group, /tmp, /home/nonroot, /data (no shell, no package manager)" \
    diff <(files_of "$img") <(expected_files "$s")
  check "$s: user 65532:65532" config_is "$img" User '"65532:65532"'
  check "$s: entrypoint as in deploy/$s/Dockerfile" config_is "$img" Entrypoint "$(dockerfile_entrypoint "$s")"
  check "$s: env as in deploy/$s/Dockerfile" dockerfile_env_has "$s" "$img"
  check "$s: starts in its image as 65532 with a read-only root" starts "$s" "$img"
  size=$(docker image inspect -f '{{.Size}}' "$img")
  gz=$(docker save "$img" | gzip -9 | wc -c)
  echo "   size: $size B uncompressed, $gz B as docker save | gzip -9"
  if [ "$s" != aggregator ]; then
    check "$s: <= 12 MB uncompressed" test "$size" -le 12000000
  fi
done
