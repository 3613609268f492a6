"""Prove that nothing a test run (or the demo) started is still running; kill what is.

    python -m tests.harness.leftovers --run-id ID [--under DIR ...] [--state-dir DIR ...]

A process counts as the run's when its environment carries ``MOLTIR_TEST_RUN_ID=ID`` (the harness
passes it on to every gateway, keyring daemon and moltir child it starts), or when its HOME,
TMPDIR, OPENCLAW_STATE_DIR or DBUS_SESSION_BUS_ADDRESS lies under one of ``--under``, or it belongs
to one of ``--state-dir``. Exit 0 when none is left; 1 after killing the ones that were.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psutil
from tests.harness.procs import describe, kill_procs, processes_for

RUN_ID_VAR = "MOLTIR_TEST_RUN_ID"
WATCHED_VARS = ("HOME", "TMPDIR", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "DBUS_SESSION_BUS_ADDRESS")


def run_processes(run_id: str | None, roots: list[Path]) -> list[psutil.Process]:
    prefixes = [os.path.realpath(r) + os.sep for r in roots]
    me, uid, found = os.getpid(), os.getuid(), []
    for proc in psutil.process_iter(["pid", "uids", "status"]):
        try:
            if proc.pid == me or proc.info["uids"].real != uid or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if run_id and env.get(RUN_ID_VAR) == run_id:
            found.append(proc)
            continue
        values = [env.get(v, "").replace("unix:path=", "").split(",")[0] for v in WATCHED_VARS]
        if any(v and any((os.path.realpath(v) + os.sep).startswith(p) for p in prefixes) for v in values):
            found.append(proc)
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--run-id", default=os.environ.get(RUN_ID_VAR))
    ap.add_argument("--under", action="append", type=Path, default=[])
    ap.add_argument("--state-dir", action="append", type=Path, default=[])
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    procs = {p.pid: p for p in run_processes(args.run_id, args.under)}
    if args.state_dir:
        procs.update({p.pid: p for p in processes_for(*args.state_dir)})
    if not procs:
        if not args.quiet:
            print("leftover check: no gateway, node, dbus-daemon or gnome-keyring-daemon process survived")
        return 0
    left = list(procs.values())
    print(f"leftover check: FAILED, still running: {describe(left)}; killing them", file=sys.stderr)
    kill_procs(left)
    return 1


if __name__ == "__main__":
    sys.exit(main())
