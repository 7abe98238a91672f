#!/usr/bin/env bash
# Builds the operator image from the repository's Dockerfile with buildah, without a Docker
# engine and without a container registry, into an OCI archive:
#
#   e2e/image/build.sh                 -> build/rung-<version>.oci.tar   (what `make image` runs)
#   PYTHON_IMAGE=docker.io/library/python:3.11-slim e2e/image/build.sh   (a base from a registry)
#   e2e/image/build.sh --print         print the archive's path
#
# The base (the Dockerfile's PYTHON_IMAGE) is, unless PYTHON_IMAGE is given, made here from
# Debian packages with mmdebstrap: Debian $IMAGE_DEBIAN_SUITE's python3 (3.11), its venv
# module, passwd (groupadd, useradd), CA certificates and libstdc++ (grpcio's wheel needs it),
# nothing else (no apt, no perl, no docs). It is cached
# as an OCI archive under ${RUNG_CACHE:-~/.cache/rung}/image/, keyed by a hash of this recipe,
# so only the first build pays for it.
#
# RUN steps use buildah's chroot isolation: no OCI runtime or cgroup is needed to build. The
# host's CA bundle is passed to pip as the build secret `ca-bundle` (a TLS-inspecting proxy
# needs it; it is not stored in the image). Output goes to build/image.log.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../versions.env
source "$root/e2e/versions.env"
cache="${RUNG_CACHE:-$HOME/.cache/rung}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -1)"
archive="${IMAGE_ARCHIVE:-$root/build/rung-$version.oci.tar}"
if [[ "${1:-}" == "--print" ]]; then
  echo "$archive"
  exit 0
fi
mkdir -p "$root/build" "$cache/image"
logfile="$root/build/image.log"
: >"$logfile"

log() { printf '[image] %s\n' "$*" >&2; }
fail() {
  log "$1; the last lines of $logfile:"
  tail -n 30 "$logfile" >&2
  exit 1
}
mb() { echo "$(($(stat -c %s "$1") / 1000000)) MB"; }

# --- the base: Debian's python3 as an OCI archive, cached by the hash of its recipe --------
suite="${IMAGE_DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
sources=(
  "deb $mirror $suite main"
  "deb $mirror $suite-updates main"
  "deb $security_mirror $suite-security main"
)
mmdebstrap_args=(
  --variant=essential
  --include=python3,python3-venv,passwd,ca-certificates,libstdc++6
  # merged /usr without the usrmerge package (which pulls in perl)
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*'
)
base_containerfile=$'FROM scratch\nADD rootfs.tar /\nCMD ["python3"]\n'

build_base() {
  local recipe hash base tmp
  recipe="$(declare -p suite sources mmdebstrap_args base_containerfile)"
  hash="$(printf '%s' "$recipe" | sha256sum | cut -c1-16)"
  base="$cache/image/python-$suite-$hash.oci.tar"
  if [[ -s "$base" ]]; then
    log "base: Debian $suite python3, cached at $base"
    echo "$base"
    return
  fi
  log "base: Debian $suite python3 with mmdebstrap (once; cached by recipe hash $hash)"
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  mmdebstrap --quiet "${mmdebstrap_args[@]}" "$suite" "$tmp/rootfs.tar" "${sources[@]}" \
    >>"$logfile" 2>&1 || fail "mmdebstrap failed"
  printf '%s' "$base_containerfile" >"$tmp/Containerfile"
  buildah bud --quiet --isolation chroot -f "$tmp/Containerfile" -t "localhost/rung-python:$hash" \
    "$tmp" >>"$logfile" 2>&1 || fail "the base image build failed"
  buildah push --quiet "localhost/rung-python:$hash" \
    "oci-archive:$base.partial:rung-python:$suite-$hash" >>"$logfile" 2>&1 ||
    fail "writing the base archive failed"
  buildah rmi "localhost/rung-python:$hash" >>"$logfile" 2>&1 || true
  mv "$base.partial" "$base"
  log "base: $base ($(mb "$base"))"
  echo "$base"
}

if [[ -z "${PYTHON_IMAGE:-}" ]]; then
  PYTHON_IMAGE="oci-archive:$(build_base)"
fi

# --- the operator image ---------------------------------------------------------------------
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
secret=()
[[ -s "$ca_bundle" ]] && secret=(--secret "id=ca-bundle,src=$ca_bundle")
tag="localhost/rung:$version"
log "building $tag from Dockerfile on $PYTHON_IMAGE"
# --layers: the dependency layer is reused while pyproject.toml is unchanged; --force-rm: no
# working container is left behind by a failed step.
buildah bud --layers --force-rm --isolation chroot "${secret[@]}" \
  --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" -f "$root/Dockerfile" -t "$tag" "$root" \
  >>"$logfile" 2>&1 || fail "buildah bud failed"
rm -f "$archive"
buildah push --quiet "$tag" "oci-archive:$archive.partial:rung:$version" >>"$logfile" 2>&1 ||
  fail "writing $archive failed"
mv "$archive.partial" "$archive"
# The final image lives in the archive; only the builder's layers stay in buildah's storage.
buildah rmi "$tag" >>"$logfile" 2>&1 || true
log "$archive ($(mb "$archive"), image rung:$version)"
