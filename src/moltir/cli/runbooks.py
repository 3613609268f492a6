"""``moltir runbook list|show|validate`` and ``moltir journal verify``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from moltir.cli.edge import handle_errors
from moltir.cli.options import get_install, install_options, json_option
from moltir.errors import EXIT_USAGE, MoltirError


@click.group()
def runbook() -> None:
    """List, show and validate runbooks."""


@runbook.command("list")
@json_option
@handle_errors
def runbook_list(as_json: bool) -> None:
    """The shipped runbooks."""
    from moltir.cli.render import render_runbooks
    from moltir.engine import runbook as rb

    render_runbooks([rb.load(rb.resolve(name)) for name in rb.shipped_names()], as_json)


@runbook.command("show")
@click.argument("name")
@json_option
@handle_errors
def runbook_show(name: str, as_json: bool) -> None:
    """The steps of a runbook (shipped name or path)."""
    from moltir.cli.render import render_runbook
    from moltir.engine import runbook as rb

    render_runbook(rb.load(rb.resolve(name)), as_json)


@runbook.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
@handle_errors
def runbook_validate(path: Path, as_json: bool) -> None:
    """Check a runbook file; errors name the file, line and key (exit 2)."""
    from moltir.cli.render import render_valid_runbook
    from moltir.engine import runbook as rb

    render_valid_runbook(path, rb.load(rb.resolve(str(path))), as_json)


@click.group()
def journal() -> None:
    """Check a case's journal."""


@journal.command("verify")
@click.option("--case-dir", type=click.Path(path_type=Path), help="The case (default: the latest).")
@json_option
@install_options
@click.pass_context
@handle_errors
def journal_verify(ctx: click.Context, /, case_dir: Path | None, as_json: bool, **kw: Any) -> None:
    """Verify the journal's hash chain (exit 5 when broken)."""
    from moltir import engine
    from moltir.cli.render import render_journal_check
    from moltir.engine.case import Case
    from moltir.engine.journal import verify_chain

    case = Case.open(case_dir) if case_dir else engine.find_latest(get_install(ctx, kw))
    if case is None:
        raise MoltirError("no case found for this install", hint="pass --case-dir", exit_code=EXIT_USAGE)
    report = verify_chain(case.journal_path)
    render_journal_check(case, report, as_json)
    if not report.ok:
        sys.exit(5)
