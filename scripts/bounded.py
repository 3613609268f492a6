#!/usr/bin/env python3
"""Run one command with a hard time bound, a heartbeat and a post-mortem; used by ensure-deps.sh.

    bounded.py --timeout S --what TEXT [--stdout FILE] [--heartbeat S] [--kill-grace S] -- COMMAND...

Why not coreutils ``timeout``: twice a CI run sat for its whole 90 minutes inside
"installing openclaw@2026.1.29" and printed nothing, although that install was already under
``timeout 1200``. Whatever held it (the install, the ``--version`` check after it, a process
left holding a ``$(...)`` pipe, or one stuck in uninterruptible sleep that no signal ends),
this wrapper guarantees three things coreutils ``timeout`` does not:

- a heartbeat line every ``--heartbeat`` seconds naming every process of the command with its
  state, kernel wait channel and age, so a CI log shows where a stall sits;
- at the deadline, the same listing, then SIGTERM and SIGKILL to the command's whole session,
  and if a process still does not die (state D), it is named and abandoned: the caller gets
  exit 124 either way, within seconds of the deadline;
- the command's stdout can go to a file (``--stdout``), so no grandchild keeps a shell's
  ``$(...)`` pipe open after the command itself has ended.

Exit status: the command's own, 124 on timeout, 127 when it cannot be started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time

KILL_GRACE_S = 10.0
REAP_WAIT_S = 20.0


def _say(what: str, msg: str) -> None:
    print(f"bounded: [{what}] {msg}", file=sys.stderr, flush=True)


def _session_procs(sid: int) -> list[tuple[int, str]]:
    """Every live process of session ``sid``: (pid, a line with pid, state, wait channel, age, argv)."""
    procs: list[tuple[int, str]] = []
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
    except OSError:
        uptime = 0.0
    for entry in os.listdir("/proc"):  # noqa: PTH208 (names only, thousands of them)
        if not entry.isdigit():
            continue
        base = f"/proc/{entry}"
        try:
            with open(f"{base}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) != sid:  # fields: state ppid pgrp session ...
                continue
            try:
                with open(f"{base}/wchan", encoding="ascii", errors="replace") as f:
                    wchan = f.read().strip() or "-"
            except OSError:
                wchan = "?"
            with open(f"{base}/cmdline", "rb") as fb:
                argv = fb.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            age = uptime - int(fields[19]) / ticks if uptime else 0.0
            procs.append((int(entry), f"pid {entry} ppid {fields[1]} state {fields[0]} wchan {wchan} "
                                      f"age {age:.0f}s: {argv[:160]}"))
        except (OSError, ValueError, IndexError):
            continue
    return procs


def _report(what: str, sid: int, head: str) -> None:
    procs = _session_procs(sid)
    _say(what, f"{head}; {len(procs)} process(es):")
    for _, line in procs:
        print(f"    {line}", file=sys.stderr, flush=True)


def _signal_session(sid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, sig)  # the command is its session's and process group's leader
    for pid, _ in _session_procs(sid):  # members that moved to another process group
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--what", required=True)
    ap.add_argument("--stdout", help="write the command's stdout to this file")
    ap.add_argument("--heartbeat", type=float, default=120.0)
    ap.add_argument("--kill-grace", type=float, default=KILL_GRACE_S,
                    help="seconds between SIGTERM and SIGKILL")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command")
    out = open(args.stdout, "wb") if args.stdout else None  # noqa: SIM115
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                start_new_session=True)
    except OSError as exc:
        _say(args.what, f"cannot start {cmd[0]}: {exc}")
        return 127
    finally:
        if out is not None:
            out.close()
    start = time.monotonic()
    deadline = start + args.timeout
    next_beat = start + args.heartbeat
    while True:
        now = time.monotonic()
        try:
            rc = proc.wait(timeout=max(0.05, min(deadline, next_beat) - now))
        except subprocess.TimeoutExpired:
            pass
        else:
            if _session_procs(proc.pid):  # nothing may outlive the command and hold a pipe
                _report(args.what, proc.pid, f"exited {rc} but left processes behind; ending them")
                _signal_session(proc.pid, signal.SIGKILL)
            return rc
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_beat:
            _report(args.what, proc.pid, f"still running after {now - start:.0f}s")
            next_beat = now + args.heartbeat
    _report(args.what, proc.pid, f"did not finish in {args.timeout:.0f}s")
    _signal_session(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=args.kill_grace)
    except subprocess.TimeoutExpired:
        _signal_session(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=REAP_WAIT_S)
        except subprocess.TimeoutExpired:
            _report(args.what, proc.pid, "still alive after SIGKILL (uninterruptible sleep?); abandoned")
    return 124


if __name__ == "__main__":
    sys.exit(main())
