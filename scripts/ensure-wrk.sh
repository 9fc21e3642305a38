#!/usr/bin/env bash
# wrk (Debian package) drives the gateway benchmark's HTTP load: a C load generator leaves the two
# cores to the servers being measured. Best effort: without it the benchmark falls back to an httpx
# load generator, which takes CPU from the servers and lowers both throughputs (the run records
# which tool it used).
if command -v wrk >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ragd: installing wrk (Debian package wrk)" >&2
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk \
    || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk)) \
    >/dev/null 2>&1 || echo "ragd: wrk not installed; the gateway benchmark uses httpx" >&2
fi
exit 0
