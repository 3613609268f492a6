#!/usr/bin/env bash
# `make bench`: every benchmark side by side with its baseline; regenerates bench/RESULTS.md.
# Needs what `make test` prepared: .venv, node + both openclaw releases under .cache/, and
# dbus-daemon + gnome-keyring-daemon for the private Secret Service. Arguments go to bench.run
# (e.g. bench/run.sh --quick, bench/run.sh --only coldstart,json5).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  echo "bench: no .venv (run 'make venv' or 'make test' first)" >&2
  exit 3
fi
if [ ! -x .cache/openclaw-2026.9.6/node_modules/.bin/openclaw ]; then
  echo "bench: openclaw 2026.9.6 is not installed under .cache/ (run 'make deps' or 'make test' first)" >&2
  exit 3
fi
for tool in dbus-daemon gnome-keyring-daemon sha256sum; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (run 'make deps' as root)" >&2; exit 3; }
done
exec "$PY" -m bench.run "$@"
