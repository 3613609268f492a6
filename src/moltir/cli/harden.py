"""``moltir harden`` and ``moltir harden --undo [CASE]``: parse, confirm, render; the run is
:mod:`moltir.commands.run`'s, with the ``harden`` / ``harden-undo`` runbooks."""

from __future__ import annotations

from typing import Any

import click

from moltir.cli.edge import handle_errors
from moltir.cli.group import EXIT_HELP
from moltir.cli.options import get_install, run_options
from moltir.errors import usage_error


def _check_ids(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """--allow-from / --deny-tool values: plain, printable, short; never the '*' wildcard."""
    for value in values:
        if not value or len(value) > 200 or not value.isprintable() or value.strip() != value:
            raise click.BadParameter(f"{value[:40]!r} is not a plain id (printable, no spaces around it, at "
                                     "most 200 characters); nothing was changed")
        if value == "*":
            raise click.BadParameter("'*' would let anyone DM the bot again; pass the sender ids to allow")
    return values


@click.command(epilog=EXIT_HELP)
@click.argument("case", required=False)
@click.option("--undo", is_flag=True, help="Put back the config bytes and file modes of a harden case "
              "(CASE: a case folder or id; default: the latest harden case).")
@click.option("--allow-from", multiple=True, metavar="ID", callback=_check_ids,
              help="Open DMs become an allowlist of these sender ids (repeat); default: pairing.")
@click.option("--deny-tool", multiple=True, metavar="NAME", callback=_check_ids,
              help="Tools to deny (repeat; replaces the default exec, browser, gateway).")
@run_options
@click.pass_context
@handle_errors
def harden(ctx: click.Context, /, case: str | None, undo: bool, allow_from: tuple[str, ...],
           deny_tool: tuple[str, ...], **kw: Any) -> None:
    """Lock the install down: DMs not open, groups on allowlist and mention, private files,
    loopback bind, no insecure Control UI auth, risky tools denied; checked by the real audit.

    \b
    moltir harden --dry-run           the plan and the exact config diff; changes nothing
    moltir harden                     do it (a new case records everything it changes)
    moltir harden --undo [CASE]       put back the config bytes and file modes exactly
    """
    from moltir.cli.run import _run_runbook

    if case is not None and not undo:
        raise usage_error(f"unexpected argument {case[:60]!r}: a CASE goes with --undo",
                          "run 'moltir harden --undo CASE'; nothing was changed")
    if undo:
        if allow_from or deny_tool:
            raise usage_error("--allow-from and --deny-tool do not go with --undo", "drop them; nothing was changed")
        if case is not None:
            from moltir.cli.evidence import resolve_case

            if kw["case_dir"] is not None:
                raise usage_error("give the case once: CASE or --case-dir", "drop one; nothing was changed")
            kw["case_dir"] = resolve_case(case, get_install(ctx, kw))
        _run_runbook(ctx, "harden-undo", "harden-undo", kw)
        return
    _run_runbook(ctx, "harden", "harden", kw, new_case=True,
                 extra={"allow_from": allow_from, "deny_tools": deny_tool})
