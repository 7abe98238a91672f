#!/usr/bin/env bash
# Builds the local control plane's binaries from Go modules and caches them by
# version under ${RUNG_CACHE:-~/.cache/rung}/bin/<component>-<version>/.
#
#   e2e/cluster/build.sh            build whatever is missing
#   e2e/cluster/build.sh --print    print the bin directory of each component
#   e2e/cluster/build.sh flagger    build only Flagger (the benchmarks' comparison)
#
# kube-apiserver & co. cannot be `go install`ed: k8s.io/kubernetes replaces its
# staging modules with local paths. We build them from a generated wrapper
# module that requires k8s.io/kubernetes and points every staging module at its
# published v0.<minor>.<patch> release instead. KServe's two
# controllers (`cmd/manager`, `cmd/llmisvc`) cannot be `go install`ed either (its
# go.mod has replace directives): we build them inside a writable copy of the
# module directory that `go mod download` made.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../versions.env
source "$here/../versions.env"
cache="${RUNG_CACHE:-$HOME/.cache/rung}"
export GOFLAGS="${GOFLAGS:-} -trimpath"
export CGO_ENABLED=0

k8s_bin="$cache/bin/kubernetes-$KUBERNETES_VERSION"
etcd_bin="$cache/bin/etcd-$ETCD_VERSION"
kwok_bin="$cache/bin/kwok-$KWOK_VERSION"
kserve_bin="$cache/bin/kserve-$KSERVE_VERSION"
flagger_bin="$cache/bin/flagger-$FLAGGER_VERSION"
if [[ "${1:-}" == "--print" ]]; then
  echo "$k8s_bin"; echo "$etcd_bin"; echo "$kwok_bin"; echo "$kserve_bin"; echo "$flagger_bin"
  exit 0
fi

log() { printf '[build] %s\n' "$*" >&2; }

build_kubernetes() {
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local missing=0
  for b in "${bins[@]}"; do [[ -x "$k8s_bin/$b" ]] || missing=1; done
  [[ $missing == 0 ]] && { log "kubernetes $KUBERNETES_VERSION cached"; return; }
  log "building kubernetes $KUBERNETES_VERSION (first build takes many minutes on 2 cores)"
  local work="$cache/build/kubernetes-$KUBERNETES_VERSION"
  rm -rf "$work"; mkdir -p "$work"
  local dir
  dir="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  local minor_patch="v0.${KUBERNETES_VERSION#v1.}"
  {
    echo "module rung.dev/localcluster/kubernetes"
    echo
    grep -E '^go [0-9.]+$' "$dir/go.mod"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    grep -E '=> \./staging/src/' "$dir/go.mod" | awk -v v="$minor_patch" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > "$work/go.mod"
  (cd "$work" && for b in "${bins[@]}"; do go get "k8s.io/kubernetes/cmd/$b@$KUBERNETES_VERSION"; done)
  local major minor ld="-s -w"
  major="${KUBERNETES_VERSION#v}"; major="${major%%.*}"
  minor="${KUBERNETES_VERSION#v*.}"; minor="${minor%%.*}"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$k8s_bin.tmp"
  (cd "$work" && go build -ldflags "$ld" -o "$k8s_bin.tmp/" \
      $(printf 'k8s.io/kubernetes/cmd/%s ' "${bins[@]}"))
  rm -rf "$k8s_bin"; mv "$k8s_bin.tmp" "$k8s_bin"
}

build_etcd() {
  [[ -x "$etcd_bin/etcd" ]] && { log "etcd $ETCD_VERSION cached"; return; }
  log "building etcd $ETCD_VERSION"
  local work="$cache/build/etcd-$ETCD_VERSION"
  rm -rf "$work"; mkdir -p "$work"
  cat > "$work/main.go" <<'GO'
// Command etcd runs the etcd server; a wrapper so that it builds from the
// published go.etcd.io/etcd/server/v3 module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$work" && go mod init rung.dev/localcluster/etcd >/dev/null 2>&1 \
     && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy \
     && mkdir -p "$etcd_bin.tmp" && go build -ldflags "-s -w" -o "$etcd_bin.tmp/etcd" .)
  rm -rf "$etcd_bin"; mv "$etcd_bin.tmp" "$etcd_bin"
}

build_kwok() {
  [[ -x "$kwok_bin/kwok" ]] && { log "kwok $KWOK_VERSION cached"; return; }
  log "building kwok $KWOK_VERSION"
  mkdir -p "$kwok_bin.tmp"
  GOBIN="$kwok_bin.tmp" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  rm -rf "$kwok_bin"; mv "$kwok_bin.tmp" "$kwok_bin"
}

# KServe's two controllers, each checked on its own (a cache that has one of them
# still gets the other): `manager` (InferenceServices & co.) and `llmisvc`
# (LLMInferenceServices), both built from one writable copy of the module.
build_kserve() {
  local cmds=() cmd
  for cmd in manager llmisvc; do [[ -x "$kserve_bin/$cmd" ]] || cmds+=("$cmd"); done
  [[ ${#cmds[@]} == 0 ]] && { log "kserve $KSERVE_VERSION cached"; return; }
  log "building kserve $KSERVE_VERSION: ${cmds[*]} (about 4 minutes on 2 cores with a cold Go cache)"
  local work="$cache/build/kserve-$KSERVE_VERSION" dir
  dir="$(cd "$cache" && go mod download -json "github.com/kserve/kserve@$KSERVE_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  # The module cache is read-only and go.mod's replace directives point at
  # paths inside the module, so build from a writable copy of it.
  if [[ -d "$work" ]]; then chmod -R u+w "$work"; rm -rf "$work"; fi
  mkdir -p "$(dirname "$work")"
  cp -r "$dir" "$work"
  chmod -R u+w "$work"
  rm -rf "$kserve_bin.tmp"; mkdir -p "$kserve_bin.tmp"
  (cd "$work" && go mod download \
     && for cmd in "${cmds[@]}"; do
          go build -ldflags "-s -w" -o "$kserve_bin.tmp/$cmd" "./cmd/$cmd" || exit 1
        done)
  mkdir -p "$kserve_bin"
  for cmd in "${cmds[@]}"; do mv "$kserve_bin.tmp/$cmd" "$kserve_bin/$cmd"; done
  rm -rf "$kserve_bin.tmp"
  rm -rf "$work"  # a 440 MB copy; the module cache keeps the original
}

# Flagger, for the benchmarks only (e2e/benchmarks/flagger.py runs it next to Rung).
# Its go.mod has no replace directive at v1.36.1, so `go install` builds it; the
# fallback builds inside a writable copy of the module, as for KServe.
build_flagger() {
  [[ -x "$flagger_bin/flagger" ]] && { log "flagger $FLAGGER_VERSION cached"; return; }
  log "building flagger $FLAGGER_VERSION (about 2 minutes on 2 cores)"
  rm -rf "$flagger_bin.tmp"; mkdir -p "$flagger_bin.tmp"
  if ! GOBIN="$flagger_bin.tmp" go install -ldflags "-s -w" \
      "github.com/fluxcd/flagger/cmd/flagger@$FLAGGER_VERSION"; then
    log "go install refused flagger; building from a writable copy of its module"
    local work="$cache/build/flagger-$FLAGGER_VERSION" dir
    dir="$(cd "$cache" && go mod download -json "github.com/fluxcd/flagger@$FLAGGER_VERSION" \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    if [[ -d "$work" ]]; then chmod -R u+w "$work"; rm -rf "$work"; fi
    mkdir -p "$(dirname "$work")"
    cp -r "$dir" "$work"
    chmod -R u+w "$work"
    (cd "$work" && go mod download \
       && go build -ldflags "-s -w" -o "$flagger_bin.tmp/flagger" ./cmd/flagger)
    rm -rf "$work"
  fi
  rm -rf "$flagger_bin"; mv "$flagger_bin.tmp" "$flagger_bin"
}

timed() {
  local t0; t0=$(date +%s)
  "$@"
  log "$* finished in $(( $(date +%s) - t0 ))s"
}

start=$(date +%s)
if [[ "${1:-}" == "flagger" ]]; then
  timed build_flagger
  exit 0
fi
timed build_etcd
timed build_kwok
timed build_kubernetes
timed build_kserve
log "done in $(( $(date +%s) - start ))s"
