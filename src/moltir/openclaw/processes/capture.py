"""Run a command and capture its output, leaving no process of its session behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any


def run_capture(argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str],
                cwd: str | None = None, run_as: tuple[int, int] | None = None) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run(capture_output=True, timeout=…)`` that leaves nothing behind.

    On timeout ``subprocess.run`` kills only the direct child. The ``openclaw`` CLI is a
    respawn wrapper whose real CLI is its child, and some CLI commands never exit (openclaw
    issues #35609, #62400: one spins at 90 % CPU), so that child would live on, orphaned. Here
    the command gets its own session and the whole session is killed, on timeout and on Ctrl-C
    (a session of its own gets no signal from the terminal). On timeout it raises
    ``subprocess.TimeoutExpired`` carrying what the command wrote (``output``, ``stderr``);
    ``OSError`` when it cannot start. Output is bytes: callers decide how to decode it.
    ``run_as`` (uid, gid): run it as that user, no supplementary groups (root acting on another
    user's install: files the CLI creates stay that user's).
    """
    who: dict[str, Any] = ({"user": run_as[0], "group": run_as[1], "extra_groups": []}
                           if run_as is not None else {})
    proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **who)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stdout, stderr = _end_session(proc)
        raise subprocess.TimeoutExpired(list(argv), timeout_s, output=stdout, stderr=stderr) from None
    except BaseException:
        _end_session(proc)
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, stdout, stderr)


def _end_session(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """SIGKILL ``proc``'s whole session and return what it wrote; bounded, since a process that
    left the session could hold the pipes open (then nothing is returned after 5 s)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        return b"", b""
