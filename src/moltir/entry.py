"""The console entry point, as small as it can be: Ctrl-C at any moment -- even while Python is still
importing moltir, the first ~150 ms -- ends with ``moltir: interrupted`` and exit 130, never a
traceback (:func:`moltir.cli.main` handles it from there on)."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from moltir.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        try:
            sys.stderr.write("moltir: interrupted\n")
            sys.stderr.flush()
        finally:
            raise SystemExit(130) from None
