#!/usr/bin/env bash
# make demo: a sandbox OpenClaw home with the real 2026.9.6 gateway (fake Telegram, private
# keyring), then moltir doctor / contain / status / evidence verify / restore against it.
# The work is in tests/harness/demo.py (same code as the test fixtures); this wrapper adds a
# safety net so an interrupted demo still leaves no process running.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || { echo "demo: run 'make demo' (it creates .venv first)" >&2; exit 3; }
cleanup() { "$py" -m tests.harness.leftovers --under "$PWD/sandbox" --quiet || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
"$py" -m tests.harness.demo "$@"
