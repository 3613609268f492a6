"""Errors at the edge: a command's ``MoltirError`` becomes its message and exit code (and, with
``--json``, the JSON envelope); Ctrl-C exits 130; anything else prints one line and where the
traceback went."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from moltir.cli.options import F
from moltir.errors import EXIT_INTERRUPTED, EXIT_STEP_FAILED, MoltirError


def _fail(exc: MoltirError, as_json: bool) -> None:
    from moltir.result import echo_json, error

    if exc.exit_code == 0:  # "nothing to do" outcomes: say so, succeed
        if as_json:
            echo_json({"status": "noop", "message": exc.one_line()})
        else:
            click.echo(exc.one_line())
        sys.exit(0)
    if as_json:
        echo_json(exit_code=exc.exit_code, errors=[error(exc.message, exc.hint, exc.exit_code)])
    from moltir.text import shown

    click.echo(f"moltir: {shown(exc.one_line(), 4000)}", err=True)
    sys.exit(exc.exit_code)


def handle_errors(fn: F) -> F:
    """Catch MoltirError at the edge; anything else prints one line and where the traceback went."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "as_json" in kwargs and _root_json():  # `moltir --json CMD` means `moltir CMD --json`
            kwargs["as_json"] = True
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except MoltirError as exc:
            _fail(exc, as_json)
        except KeyboardInterrupt:
            _interrupted(as_json)
        except BrokenPipeError:
            # stdout closed early (e.g. `moltir ... | head`): stop quietly, as the Python docs advise
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_STEP_FAILED)
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort):
            raise
        except Exception as exc:
            _crashed(exc, as_json)
        return None

    return wrapper  # type: ignore[return-value]


def _interrupted(as_json: bool) -> NoReturn:
    if as_json:
        from moltir.result import echo_json, error

        echo_json(exit_code=EXIT_INTERRUPTED, errors=[error("interrupted", "", EXIT_INTERRUPTED)])
    click.echo("moltir: interrupted", err=True)
    sys.exit(EXIT_INTERRUPTED)


def _crashed(exc: Exception, as_json: bool) -> NoReturn:
    where = _write_crash_log(exc)
    line = f"internal error ({type(exc).__name__}); the traceback is in {where}. Please report it."
    if as_json:
        from moltir.result import echo_json, error

        echo_json(exit_code=EXIT_STEP_FAILED, errors=[error(line, "", EXIT_STEP_FAILED)])
    click.echo(f"moltir: {line}", err=True)
    sys.exit(EXIT_STEP_FAILED)


def _root_json() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and (ctx.find_root().obj or {}).get("json"))


def _write_crash_log(exc: BaseException) -> str:
    import datetime as dt
    import traceback

    from moltir.paths import moltir_home
    from moltir.redaction import redact

    text = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    path: Path | None = None
    try:
        folder = moltir_home() / "crash"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"crash-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return str(path)
    except OSError:
        if path is not None:  # e.g. disk full: no empty crash log left behind
            with contextlib.suppress(OSError):
                path.unlink()
        return "(could not write a crash log)"
