#!/usr/bin/env bash
# `make compose-smoke`: bring the compose CPU profile up from the images `make containers` built, wait until
# every container is healthy, run scripts/containers/smoke.py against it (Korean and English questions through
# the gateway with the official openai client, the exact hit on repeat, every service's /metrics, Prometheus's
# targets), then take the stack down with its volumes. Its own project name (ragd-smoke) and host ports, so it
# never touches a stack named ragd. Grafana is left out (no Debian package to stand in for its image).
# Environment: PYTHON (a Python with openai and httpx; default .venv/bin/python), SMOKE_GATEWAY_PORT (18080),
# SMOKE_PROMETHEUS_PORT (19090), KEEP=1 leaves the stack up.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PROJECT=ragd-smoke
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON=python3
SERVICES=(gateway retriever guardrails generator redis chroma prometheus)
KEY="smoke-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

scripts/containers/engine.sh
for piece in gateway retriever guardrails generator chroma; do
  docker image inspect "ragd/$piece:${IMAGE_TAG:-0.1.0}" >/dev/null 2>&1 \
    || { echo "ragd: image ragd/$piece:${IMAGE_TAG:-0.1.0} missing: run make containers first" >&2; exit 1; }
done

ENV_FILE=$(mktemp /tmp/ragd-smoke-env.XXXXXX)
cat >"$ENV_FILE" <<ENV
COMPOSE_PROFILES=cpu
RAGD_GATEWAY_API_KEYS=$KEY:smoke:user
GF_SECURITY_ADMIN_PASSWORD=unused-$KEY
IMAGE_TAG=${IMAGE_TAG:-0.1.0}
GATEWAY_HOST_PORT=${SMOKE_GATEWAY_PORT:-18080}
PROMETHEUS_HOST_PORT=${SMOKE_PROMETHEUS_PORT:-19090}
ENV
compose() { docker compose -p "$PROJECT" --env-file "$ENV_FILE" -f docker-compose.yml \
  -f scripts/containers/smoke.compose.yml --profile cpu "$@"; }
finish() {
  status=$?
  if [[ $status -ne 0 ]]; then
    echo "ragd: compose smoke failed; the last log lines of each service:" >&2
    compose logs --tail 15 --no-color "${SERVICES[@]}" >&2 || true
  fi
  if [[ "${KEEP:-0}" != 1 ]]; then compose down -v --remove-orphans >/dev/null 2>&1 || true; fi
  rm -f "$ENV_FILE"
  exit $status
}
trap finish EXIT

start=$SECONDS
compose up -d --no-build --pull never "${SERVICES[@]}"
echo "ragd: waiting for ${#SERVICES[@]} containers to be healthy"
while true; do
  states=$(compose ps --format '{{.Service}}={{.Health}}' "${SERVICES[@]}")
  healthy=$(grep -c '=healthy$' <<<"$states" || true)
  [[ $healthy -eq ${#SERVICES[@]} ]] && break
  if grep -q '=unhealthy$' <<<"$states" || (( SECONDS - start > 900 )); then
    echo "ragd: not healthy: $(tr '\n' ' ' <<<"$states")" >&2; exit 1
  fi
  sleep 3
done
echo "ok   all ${#SERVICES[@]} containers healthy in $((SECONDS - start)) s"

"$PYTHON" scripts/containers/smoke.py --project "$PROJECT" \
  --gateway "http://127.0.0.1:${SMOKE_GATEWAY_PORT:-18080}" \
  --prometheus "http://127.0.0.1:${SMOKE_PROMETHEUS_PORT:-19090}" --key "$KEY"
docker stats --no-stream --format '{{.Name}}\t{{.MemUsage}}' $(compose ps -q) | sed 's/^/mem  /'
