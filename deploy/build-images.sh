#!/usr/bin/env bash
# Builds the three fedge images on this machine with no registry:
#   fedge/fn-serve:local, fedge/fn-train:local, fedge/aggregator:local
# 1. deploy/cargo-build.sh: static musl release binaries, built on the host (no cargo runs
#    inside docker);
# 2. per service, one layer `FROM scratch`-equivalent made with `docker import`: the binary,
#    /etc/passwd + /etc/group with the distroless users (root, nonroot 65532, nobody), an
#    empty /tmp (1777), /home/nonroot and /data (owned by 65532, for volumes). No shell, no
#    package manager, no libc.
# The image's runtime settings (ENV, USER, EXPOSE, WORKDIR, ENTRYPOINT, CMD) are read from
# the distroless stage of the service's registry Dockerfile (deploy/<service>/Dockerfile), so
# the offline image and the registry image start the same way.
#
# Usage: deploy/build-images.sh [service...]   (default: all three)
#   FEDGE_IMAGE_TAG (default `local`), FEDGE_SKIP_CARGO=1 to reuse built binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(fn-serve fn-train aggregator)
tag="${FEDGE_IMAGE_TAG:-local}"
target="$(deploy/cargo-build.sh --print-target)"

if [ "${FEDGE_SKIP_CARGO:-0}" != 1 ]; then
  pkgs=()
  for s in "${services[@]}"; do pkgs+=(-p "$s"); done
  deploy/cargo-build.sh "${pkgs[@]}"
fi

# The runtime lines of a Dockerfile's distroless stage, one `--change` argument each.
runtime_changes() {
  awk '
    /^[[:space:]]*#/ { next }
    { sub(/[[:space:]]+$/, "") }
    cont { line = line " " $0; if (line ~ /\\$/) { sub(/\\$/, "", line); next } cont = 0; emit(line); next }
    /^FROM[[:space:]]/ { keep = ($2 ~ /^gcr\.io\/distroless\//); next }
    !keep { next }
    /^(ENV|USER|EXPOSE|WORKDIR|ENTRYPOINT|CMD)[[:space:]]/ {
      line = $0
      if (line ~ /\\$/) { sub(/\\$/, "", line); cont = 1; next }
      emit(line); next
    }
    function emit(l) { gsub(/[[:space:]]+/, " ", l); out[n++] = l }
    END { for (i = 0; i < n; i++) print out[i] }
  ' "$1"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for s in "${services[@]}"; do
  bin="target/$target/release/$s"
  dockerfile="deploy/$s/Dockerfile"
  [ -x "$bin" ] || { echo "build-images: $bin is missing" >&2; exit 1; }
  if command -v file >/dev/null; then
    file "$bin" | grep -q "static" || { echo "build-images: $bin is not static" >&2; exit 1; }
  fi
  root="$work/$s"
  mkdir -p "$root/tmp" "$root/home/nonroot"
  chmod 1777 "$root/tmp"
  cp -r deploy/image/rootfs/. "$root/"
  install -m 0555 "$bin" "$root/$s"
  changes=()
  while IFS= read -r line; do changes+=(--change "$line"); done < <(runtime_changes "$dockerfile")
  # ENV lines of the form `ENV A=1 B=2` are split by import into separate settings too.
  # Everything root-owned, except /data: nonroot's, so that a named volume mounted there
  # (the aggregator's store) starts owned by 65532 (docker copies the mount point's owner).
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/$s.tar" .
  mkdir -p "$work/data-$s/data"
  tar --owner=65532 --group=65532 --numeric-owner --mtime=@0 -C "$work/data-$s" -rf "$work/$s.tar" data
  docker import "${changes[@]}" --message "fedge $s (deploy/build-images.sh)" "$work/$s.tar" "fedge/$s:$tag" >/dev/null
  size=$(docker image inspect -f '{{.Size}}' "fedge/$s:$tag")
  echo "fedge/$s:$tag  $(( size / 1000 )) kB uncompressed  (${changes[*]})"
done
