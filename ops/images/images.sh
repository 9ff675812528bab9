#!/usr/bin/env bash
# Builds the project's container images with podman (Debian's package, no daemon, no Docker).
#
#   images.sh base    local Debian-based stand-ins for the official base images (no registry needed)
#   images.sh build [NAME...]   every image of the chart (or the NAMEd ones) from its Dockerfile; prints sizes
#   images.sh podman ARGS...   podman with this project's storage and runtime settings
#
# podman's storage lives in $IMAGES_HOME (default .tools/podman), not under /var/lib/containers,
# so `make clean` removes it. The vfs driver, runc and cgroupfs are what work on this machine's
# kernel (crun fails on its cgroup layout; overlay is not available to nested containers).
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGES_HOME=${IMAGES_HOME:-$PWD/.tools/podman}
IMAGE_TAG=${IMAGE_TAG:-dev}
# The Go release of the official golang image the retrieval worker's Dockerfile names.
GO_VERSION=$(sed -n 's/^ARG GO_IMAGE=golang://p' services/retrieval-go/Dockerfile)
UV_VERSION=${UV_VERSION:-0.13.9}
# Written by `base`, read by `build`: the build arguments that select the local base images.
LOCAL_BASES=$IMAGES_HOME/local-base-images.args
# Image name -> Dockerfile (the build context is always the repository root).
IMAGES=(
  "agent-worker services/agent-py/Dockerfile"
  "retrieval-worker services/retrieval-go/Dockerfile"
  "business-worker services/business-py/Dockerfile"
  "codec-server codec-server/server/Dockerfile"
  "model-server services/model-server/Dockerfile"
  "mcp-server services/mcp-server/Dockerfile"
  "approval-portal services/approval-portal/Dockerfile"
)

mkdir -p "$IMAGES_HOME/tmp"
export TMPDIR=$IMAGES_HOME/tmp  # buildah's copies of the build context

pod() {
  podman --root "$IMAGES_HOME/storage" --runroot "$IMAGES_HOME/run" --tmpdir "$IMAGES_HOME/libpod" \
    --storage-driver vfs --runtime runc --cgroup-manager cgroupfs "$@"
}

build_image() {  # build_image TAG DOCKERFILE CONTEXT [build args...]
  local tag=$1 file=$2 context=$3
  shift 3
  local started=$SECONDS
  pod build --isolation chroot --network host --format docker --layers=false \
    --ignorefile "$file.dockerignore" -f "$file" -t "$tag" "$@" "$context"
  echo "images: built $tag in $((SECONDS - started)) s"
}

base() {
  local work=$IMAGES_HOME/base
  local debian=localhost/durable-agents-base/debian-python:bookworm
  rm -rf "$work" && mkdir -p "$work/golang" "$work/uv"
  # Debian bookworm with Python 3.11 (the interpreter of python:3.11-slim, at /usr/bin), and the
  # CA certificates this machine trusts (an intercepting egress proxy's included), so that
  # builds reach PyPI and the Go module proxy from inside.
  mmdebstrap --quiet --variant=apt --include=python3.11,python-is-python3,ca-certificates \
    --customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share' \
    --customize-hook='chroot "$1" update-ca-certificates' \
    --customize-hook='chroot "$1" apt-get clean' \
    bookworm "$work/rootfs.tar" - < /etc/apt/sources.list.d/debian.sources
  pod import --change 'CMD ["python3"]' "$work/rootfs.tar" "$debian"
  rm "$work/rootfs.tar"

  # The Go toolchain from the module proxy; module zips carry no executable bits.
  local toolchain
  toolchain=$(GOFLAGS=-mod=mod go mod download -json "golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-amd64" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$toolchain" "$work/golang/go" && chmod -R u+w "$work/golang/go"
  chmod a+x "$work"/golang/go/bin/* "$work"/golang/go/pkg/tool/*/*
  pod build --isolation chroot --format docker -f ops/images/golang.Containerfile \
    --build-arg DEBIAN_IMAGE=$debian -t "localhost/durable-agents-base/golang:$GO_VERSION-bookworm" "$work/golang"

  pod build --isolation chroot --format docker -f ops/images/static.Containerfile \
    --build-arg DEBIAN_IMAGE=$debian -t localhost/durable-agents-base/static:bookworm-nonroot ops/images

  # uv as PyPI ships it (the same release the Makefile pins).
  python3 -m pip install --quiet --disable-pip-version-check --target "$work/uv/pip" "uv==$UV_VERSION"
  cp "$work/uv/pip/bin/uv" "$work/uv/uv"
  pod build --isolation chroot --format docker -f ops/images/uv.Containerfile \
    -t "localhost/durable-agents-base/uv:$UV_VERSION" "$work/uv"
  rm -rf "$work"

  cat > "$LOCAL_BASES" <<ARGS
--build-arg=PYTHON_IMAGE=$debian
--build-arg=UV_IMAGE=localhost/durable-agents-base/uv:$UV_VERSION
--build-arg=GO_IMAGE=localhost/durable-agents-base/golang:$GO_VERSION-bookworm
--build-arg=STATIC_IMAGE=localhost/durable-agents-base/static:bookworm-nonroot
ARGS
  pod images --filter reference='localhost/durable-agents-base/*'
}

build() {
  local args=()
  if [[ -f $LOCAL_BASES ]]; then
    echo "images: on the local base images of \`make base-images\` ($LOCAL_BASES; delete it for the official ones)"
    mapfile -t args < "$LOCAL_BASES"
  fi
  for image in "${IMAGES[@]}"; do
    read -r name file <<< "$image"
    [[ $# -eq 0 || " $* " == *" $name "* ]] || continue  # `build NAME...`: those images only
    build_image "durable-agents/$name:$IMAGE_TAG" "$file" . "${args[@]}"
  done
  pod image prune --force > /dev/null  # the build stages, untagged (vfs stores each in full)
  echo "images: sizes"
  pod images --filter reference='durable-agents/*' --format '{{.Repository}}:{{.Tag}}  {{.Size}}'
}

case ${1:-} in
  base) base ;;
  build) shift && build "$@" ;;
  podman) shift && pod "$@" ;;
  *) echo "usage: $0 base|build|podman ARGS..." >&2 && exit 2 ;;
esac
