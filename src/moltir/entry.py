"""The console entry point, as small as it can be: Ctrl-C at any moment -- even while Python is still
importing moltir, the first ~150 ms, or in the few lines pip's generated ``moltir`` script runs
between importing this module and calling :func:`main` -- ends with ``moltir: interrupted`` and
exit 130, never a traceback (:func:`moltir.cli.main` handles it from there on).

From the moment this module is imported until :func:`main` starts, SIGINT ends the process at once
with that line; :func:`main` then restores Python's own handler (a KeyboardInterrupt the runs catch
to journal ``run.interrupted`` and clean up)."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _before_main(signum: int, frame: FrameType | None) -> None:
    try:
        os.write(2, b"moltir: interrupted\n")
    finally:
        os._exit(130)


signal.signal(signal.SIGINT, _before_main)


def main() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from moltir.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        try:
            sys.stderr.write("moltir: interrupted\n")
            sys.stderr.flush()
        finally:
            raise SystemExit(130) from None
