#!/bin/sh
# What deploy/cargo-build.sh needs beyond a Rust toolchain, installed if missing: the musl
# target's standard library (rustup) and a musl C compiler (Debian's musl-tools, for the C
# and assembly inside `ring`, which ureq's TLS pulls into the engine). Idempotent; CI runs it.
set -eu
target="$("$(dirname "$0")/cargo-build.sh" --print-target)"
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi
if ! command -v x86_64-linux-musl-gcc >/dev/null; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq musl-tools >/dev/null
fi
