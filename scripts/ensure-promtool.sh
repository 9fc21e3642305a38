#!/usr/bin/env bash
# promtool (Debian's prometheus package) checks the Prometheus config and runs the alert-rule unit
# tests. Best effort: without it those tests skip with a reason.
if command -v promtool >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ragd: installing promtool (Debian package prometheus)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
    >/dev/null 2>&1 || echo "ragd: promtool not installed; its tests will skip" >&2
fi
exit 0
