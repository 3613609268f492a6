"""The click layer: parse, confirm, render. No logic lives here.

The group and the console entry point are here; the options and the install they select in
:mod:`~moltir.cli.options`, error handling at the edge in :mod:`~moltir.cli.edge`, the lazy group in
:mod:`~moltir.cli.group`, what commands print in :mod:`~moltir.cli.render`, and the commands by
family: :mod:`~moltir.cli.run` (contain, restore, drill), :mod:`~moltir.cli.info` (status, doctor),
:mod:`~moltir.cli.runbooks` (runbook, journal); evidence, fleet, token and the drill subcommands load
lazily.

Imports stay light at module level (click only) so ``moltir --help`` starts fast; the engine,
psutil, keyring and json5 load when a command runs.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from moltir import __version__
from moltir.cli.edge import handle_errors
from moltir.cli.group import EXIT_HELP, LazyGroup
from moltir.cli.info import doctor, status
from moltir.cli.options import (
    INSTALL_OPTIONS,
    _check_free_text,
    get_install,
    install_options,
    json_option,
    run_options,
)
from moltir.cli.render import run_errors
from moltir.cli.run import contain, drill, restore
from moltir.cli.runbooks import journal, journal_verify, runbook, runbook_list, runbook_show, runbook_validate
from moltir.errors import EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["EXIT_HELP", "INSTALL_OPTIONS", "LazyGroup", "_check_free_text", "cli", "contain", "doctor", "drill",
           "get_install", "handle_errors", "install_options", "journal", "journal_verify", "json_option", "main",
           "restore", "run_errors", "run_options", "runbook", "runbook_list", "runbook_show", "runbook_validate",
           "status"]


@click.group(cls=LazyGroup, lazy={
    "credentials": ("moltir.cli.credentials:credentials", "Every credential (fingerprints); --case: where leaked."),
    "evidence": ("moltir.cli.evidence:evidence", "List, verify, export evidence; custody notes."),
    "fleet": ("moltir.cli.fleet:fleet", "Many gateways: one report from the per-host results."),
    "harden": ("moltir.cli.harden:harden", "Lock the install down before anything goes wrong (--undo)."),
    "rotate": ("moltir.cli.rotate:rotate", "Rotate a credential (plan: how each one would be rotated)."),
    "token": ("moltir.cli.token:token", "Where the gateway reads its token: repin or unpin."),
    "trigger": ("moltir.cli.trigger:trigger", "Contain over SSH from a phone: the forced-command key."),
    "triage": ("moltir.cli.triage:triage", "Timeline, findings and verdicts from a sealed case."),
}, epilog=EXIT_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="moltir")
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON object (any command).")
@install_options
@click.pass_context
def cli(ctx: click.Context, /, as_json: bool, **install: Any) -> None:
    """moltir: incident response for a self-hosted OpenClaw gateway.

    \b
    moltir contain   stop the gateway, disable every DM path, rotate the gateway token
                     into the OS keyring, snapshot the evidence, run the deep audit
    moltir restore   undo containment from the case record, on the NEW token
    moltir drill     rotation drill: rotate, prove new token accepted and old refused
    moltir status    what the current case says
    """
    ctx.obj = {"install": {k: v for k, v in install.items() if v not in (None, False)}, "json": as_json}


for _command in (contain, restore, drill, status, doctor, runbook, journal):
    cli.add_command(_command)


def _json_requested(argv: list[str]) -> bool:
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def main() -> None:
    """The console entry point. Click's own usage errors follow moltir's rules too: one line on
    stderr, exit 2, and with ``--json`` one JSON object on stdout."""
    argv = sys.argv[1:]
    try:
        rv = cli.main(args=argv, prog_name="moltir", standalone_mode=False)
    except click.ClickException as exc:
        _usage_error(exc, argv)
    except click.Abort:
        if _json_requested(argv):
            from moltir.result import echo_json, error

            echo_json(exit_code=EXIT_INTERRUPTED, errors=[error("interrupted", "", EXIT_INTERRUPTED)],
                      command=" ".join(a for a in argv if not a.startswith("-"))[:60] or "moltir")
        click.echo("moltir: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(rv if isinstance(rv, int) else 0)


def _usage_error(exc: click.ClickException, argv: list[str]) -> NoReturn:
    """A click usage error: one line naming the command's help (and the JSON envelope with --json)."""
    code = exc.exit_code if exc.exit_code else EXIT_USAGE
    usage_ctx = getattr(exc, "ctx", None)
    path = usage_ctx.command_path if usage_ctx else "moltir"
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # a group named without its command
        group = usage_ctx.command if usage_ctx else None
        names = group.list_commands(usage_ctx) if isinstance(group, click.Group) and usage_ctx else []
        message = f"'{path}' needs a command" + (f": {', '.join(names)}" if names else "")
    else:
        message = " ".join(exc.format_message().split())
    hint = f"see '{path} --help'"
    if _json_requested(argv):
        from moltir.result import echo_json, error

        command = " ".join(path.split()[1:]) or "moltir"
        echo_json(exit_code=code, errors=[error(message, hint, code)], command=command)
    text = message.rstrip(".")
    click.echo(f"moltir: {text}{' ' if text.endswith(('?', '!')) else '. '}{hint}", err=True)
    sys.exit(code)
