#!/usr/bin/env bash
# `make containers`: every ragd image, built on a machine without Docker Hub (docs/deploy.md, "Containers on a
# machine without Docker Hub"). Starts the engine if none runs, builds the debootstrap base image, stand-ins for
# the third-party images compose runs (redis, prometheus) when they are absent, and the five ragd images, with
# torch from a loopback index. Docker's layer cache makes a second run rebuild only what changed.
#   scripts/containers/build.sh [PIECE...]        (default: chroma gateway generator guardrails retriever)
# Environment: IMAGE_TAG (0.1.0), RAGD_BASE_IMAGE (ragd-local/python:3.11-bookworm), BUILDER (legacy|buildkit;
# buildkit needs a docker CLI with BuildKit: buildx, or Debian's 20.10 CLI at /usr/bin/docker),
# TORCH_INDEX_PORT (18931).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
HERE=scripts/containers
TAG="${IMAGE_TAG:-0.1.0}"
BASE="${RAGD_BASE_IMAGE:-ragd-local/python:3.11-bookworm}"
BUILDER="${BUILDER:-legacy}"
PIECES=("$@")
[[ ${#PIECES[@]} -gt 0 ]] || PIECES=(chroma gateway generator guardrails retriever)

"$HERE/engine.sh"
RAGD_BASE_IMAGE="$BASE" "$HERE/base-image.sh" "$BASE"

build() {  # build DOCKERFILE TAG [docker build args...]
  local file=$1 tag=$2; shift 2
  local start=$SECONDS
  if [[ "$BUILDER" == buildkit ]]; then
    if docker buildx version >/dev/null 2>&1; then
      docker buildx build --load --progress=plain -f "$file" -t "$tag" "$@" . >".containers/build-${tag//[\/:]/_}.log" 2>&1
    else
      DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain -f "$file" -t "$tag" "$@" . \
        >".containers/build-${tag//[\/:]/_}.log" 2>&1
    fi
  else
    DOCKER_BUILDKIT=0 docker build -f "$file" -t "$tag" "$@" . >".containers/build-${tag//[\/:]/_}.log" 2>&1
  fi || { echo "ragd: building $tag failed; see .containers/build-${tag//[\/:]/_}.log" >&2; tail -20 \
          ".containers/build-${tag//[\/:]/_}.log" >&2; return 1; }
  echo "ragd: built $tag in $((SECONDS - start)) s" >&2
}

# Stand-ins for the third-party images, only where the compose file's image is not already there.
for pair in "redis:redis" "prometheus:prom/prometheus"; do
  name=${pair%%:*} repo=${pair#*:}
  image=$(grep -oE "image: ${repo}:[^[:space:]]+" docker-compose.yml | head -1 | cut -d' ' -f2)
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    build "$HERE/standins/$name.Dockerfile" "$image" --build-arg BASE_IMAGE="$BASE"
  fi
done

PORT="${TORCH_INDEX_PORT:-18931}"
trap '"$HERE/torch-index.sh" stop' EXIT
for piece in "${PIECES[@]}"; do
  args=(--build-arg PYTHON_IMAGE="$BASE")
  if grep -q '^ARG TORCH_INDEX' "deploy/$piece/Dockerfile"; then
    url=$("$HERE/torch-index.sh" start "$PORT")
    args+=(--network host --build-arg TORCH_INDEX="$url")
  fi
  build "deploy/$piece/Dockerfile" "ragd/$piece:$TAG" "${args[@]}"
done
docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E '^ragd/|^redis:|^prom/' | sort
