#!/usr/bin/env bash
# A PEP 503 package index on loopback holding torch (CPU, cp311) and its own dependencies, for the images
# that install torch with `--index-url "$TORCH_INDEX"` where the PyTorch index is not reachable. The host's
# pip finds the torch wheel on local disk (or on its configured index) and the dependencies on PyPI.
#   scripts/containers/torch-index.sh start PORT   # fills .containers/torch-index once, serves it, prints URL
#   scripts/containers/torch-index.sh stop
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR="$ROOT/.containers/torch-index"
PIDFILE="$ROOT/.containers/torch-index.pid"
TORCH=$(grep -oE '"torch==[^"]+"' "$ROOT/pyproject.toml" | head -1 | tr -d '"')
PYTHON="${PYTHON:-python3}"

fill() {
  [[ -f "$DIR/.complete" ]] && return 0
  rm -rf "$DIR" && mkdir -p "$DIR/files"
  echo "ragd: collecting $TORCH (cp311, manylinux x86_64) and its dependencies into $DIR" >&2
  "$PYTHON" -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
    --dest "$DIR/files" "$TORCH" >&2
  "$PYTHON" - "$DIR" <<'PY'
import html, re, sys
from pathlib import Path
root = Path(sys.argv[1]); simple = root / "simple"
by_project: dict[str, list[str]] = {}
for wheel in sorted((root / "files").glob("*.whl")):
    name = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
    by_project.setdefault(name, []).append(wheel.name)
for name, files in by_project.items():
    (simple / name).mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="../../files/{html.escape(f)}">{html.escape(f)}</a><br>\n' for f in files)
    (simple / name / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
(simple / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "".join(
    f'<a href="{n}/">{n}</a><br>\n' for n in sorted(by_project)) + "</body></html>\n")
PY
  touch "$DIR/.complete"
}

case "${1:-}" in
  start)
    PORT="${2:?port}"
    fill
    "$0" stop
    "$PYTHON" -m http.server --bind 127.0.0.1 --directory "$DIR" "$PORT" >/dev/null 2>&1 &
    echo $! > "$PIDFILE"
    for _ in $(seq 50); do
      "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/simple/torch/', timeout=1)" \
        2>/dev/null && { echo "http://127.0.0.1:$PORT/simple"; exit 0; }
      sleep 0.2
    done
    echo "ragd: the torch index did not answer on 127.0.0.1:$PORT" >&2; exit 1 ;;
  stop)
    if [[ -f "$PIDFILE" ]]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi ;;
  *) echo "usage: $0 start PORT | stop" >&2; exit 2 ;;
esac
