"""``moltir contain``, ``moltir restore`` and ``moltir drill``: parse, confirm, render; the run itself
is :mod:`moltir.commands.run`'s (``--all-profiles``: :mod:`moltir.commands.profiles`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from moltir.cli.edge import handle_errors
from moltir.cli.group import EXIT_HELP, LazyGroup
from moltir.cli.options import get_install, install_args, run_options
from moltir.errors import EXIT_INTERRUPTED, EXIT_USAGE, MoltirError


def notify_option(fn: Any) -> Any:
    """``--notify URL`` (repeatable; ``@FILE`` reads URLs one a line): see moltir.commands.notifying."""
    return click.option("--notify", "notify", multiple=True, metavar="URL|@FILE",
                        help="Send one message per state change here: ntfy://HOST/TOPIC, an http(s) JSON "
                             "webhook, or an Apprise URL (repeatable; @FILE: URLs one a line).")(fn)


def command_line(argv: Sequence[str]) -> str:
    """The command line as the lock and the journal record it: a ``--notify`` URL (which may hold a key)
    becomes ``<url>``; ``@FILE`` stays."""
    out: list[str] = ["moltir"]
    masked = False
    for arg in argv:
        if masked:
            out.append(arg if arg.startswith("@") else "<url>")
        elif arg.startswith("--notify="):
            value = arg.split("=", 1)[1]
            out.append(arg if value.startswith("@") else "--notify=<url>")
        else:
            out.append(arg)
        masked = arg == "--notify" and not masked
    return " ".join(out)


def _run_runbook(ctx: click.Context, kind: str, default_runbook: str, kw: dict[str, Any],
                 new_case: bool = False, extra: dict[str, Any] | None = None,
                 trigger: dict[str, Any] | None = None) -> None:
    """contain / restore / drill: parse, confirm, render; the run itself is moltir.commands.run's."""
    from moltir import engine, log
    from moltir.actions.base import RunOptions
    from moltir.cli.render import render_run
    from moltir.commands import run as runner
    from moltir.engine import runbook
    from moltir.text import shown

    log.configure(verbose=kw["verbose"], quiet=kw["as_json"])
    install = get_install(ctx, kw)
    rb = runbook.load(runbook.resolve(kw["runbook_path"] or default_runbook))
    engine.require_install(install)
    options = RunOptions(dry_run=kw["dry_run"], force=kw["force"],
                         allow_insecure_keyring=kw["allow_insecure_keyring"], clean_env=kw["clean_env"],
                         revoke_devices=kw["revoke_devices"], reason=kw["reason"],
                         reopen_open=kw.get("reopen_open") or "open", **(extra or {}))

    def note(text: str) -> None:
        click.echo(f"warning: {shown(text, 2000)}", err=True)

    for line in install.notes:
        note(line)
    req = runner.Request(kind, rb, options, case_dir=kw["case_dir"], new_case=new_case,
                         command=command_line(sys.argv[1:]), notify=tuple(kw.get("notify") or ()),
                         trigger=trigger)
    if kw["dry_run"]:
        result = runner.plan(install, req, note)
        render_run(result, kw["as_json"])
        if result.exit_code:
            click.echo(f"moltir: {shown(result.message, 4000)}", err=True)
            sys.exit(result.exit_code)
        return
    result = runner.run(install, req, confirm=_confirmation(kind, kw, len(rb.steps)), note=note, emit=log.emit)
    render_run(result, kw["as_json"])
    if result.exit_code:
        sys.exit(result.exit_code)


def _confirmation(kind: str, kw: dict[str, Any], steps: int) -> Callable[[Sequence[str]], None]:
    """The run's confirmation: shown what the run will do (a heading, one line per step, the restore
    notes), it asks at a terminal, or takes --yes; it raises to refuse."""
    from moltir.text import shown

    def confirm(lines: Sequence[str]) -> None:
        if kw["yes"]:
            if not kw["as_json"]:
                for line in lines[1 + steps:]:  # the restore notes (warnings about reopening)
                    click.echo(shown(line.strip(), 2000), err=True)
            return
        if not sys.stdin.isatty():
            raise MoltirError("refusing to run without confirmation: stdin is not a terminal",
                              hint=f"add --yes to run 'moltir {kind}' unattended, or --dry-run to see the plan",
                              exit_code=EXIT_USAGE)
        for line in lines:
            click.echo(shown(line, 2000), err=True)
        try:
            proceed = click.confirm("Proceed?", default=False, err=True)
        except click.Abort:  # Ctrl-C or end of input at the prompt
            raise MoltirError("interrupted at the confirmation; nothing was changed",
                              exit_code=EXIT_INTERRUPTED) from None
        if not proceed:
            raise MoltirError("cancelled; nothing was changed", exit_code=EXIT_USAGE)

    return confirm


def _all_profiles(ctx: click.Context, kind: str, kw: dict[str, Any]) -> None:
    """``--all-profiles``: every install moltir finds, in parallel (moltir.commands.profiles)."""
    from moltir.cli import cli
    from moltir.commands import profiles
    from moltir.openclaw.deployments import all_installs

    args = install_args(ctx, kw)
    if kw.get("notify"):
        raise MoltirError("--notify cannot be combined with --all-profiles yet", hint="run one install at a time "
                          "with --notify, or drop --notify", exit_code=EXIT_USAGE)
    if any(args.get(k) for k in ("profile", "dev", "state_dir", "config", "user")):
        raise MoltirError("--all-profiles acts on every install: it cannot be combined with --profile, --dev, "
                          "--state-dir, --config or --user", hint="drop one of them", exit_code=EXIT_USAGE)
    installs = all_installs(os.environ, openclaw_bin=args.get("openclaw_bin"))
    if kw.get("dry_run"):
        code = 0
        for inst in installs:
            click.echo(f"== {inst.state_dir}")
            args_one = [sys.argv[0], kind, "--dry-run", "--state-dir", str(inst.state_dir),
                        "--config", str(inst.config_path)]
            try:
                cli.main(args=args_one[1:], standalone_mode=False, obj=None)
            except SystemExit as exc:
                code = code or int(exc.code or 0)
        sys.exit(code)
    profiles.run_all(kind, kind, kw, installs)


@click.command(epilog=EXIT_HELP)
@click.option("--new-case", is_flag=True, help="Open a new case instead of resuming the last unfinished one.")
@click.option("--all-profiles", is_flag=True, help="Contain every install found (each profile; as root, "
              "every system unit's too), in parallel: one case each, one incident id.")
@run_options
@notify_option
@click.pass_context
@handle_errors
def contain(ctx: click.Context, /, new_case: bool, all_profiles: bool, **kw: Any) -> None:
    """Contain an incident: gateway down, DMs off, new token, evidence, audit.

    Resumes the install's last unfinished case (after a crash or a failed step) at the
    first step not verified done; --new-case starts fresh.
    """
    if all_profiles:
        if new_case:
            raise MoltirError("--new-case cannot be combined with --all-profiles", exit_code=EXIT_USAGE)
        _all_profiles(ctx, "contain", kw)
        return
    _run_runbook(ctx, "contain", "contain", kw, new_case=new_case)


@click.command(epilog=EXIT_HELP)
@click.option("--all-profiles", is_flag=True, help="Restore every install found that has a case to restore.")
@click.option("--reopen-open", type=click.Choice(["open", "pairing", "allowlist", "disabled"]), default="open",
              show_default=True, help="What a DM policy that was 'open' (anyone may write) goes back to.")
@run_options
@notify_option
@click.pass_context
@handle_errors
def restore(ctx: click.Context, /, all_profiles: bool, **kw: Any) -> None:
    """Undo containment from the case record: DM policies back, gateway up on the NEW token."""
    if all_profiles:
        _all_profiles(ctx, "restore", kw)
        return
    _run_runbook(ctx, "restore", "restore", kw)


@click.group(cls=LazyGroup, invoke_without_command=True, lazy={
    "history": ("moltir.cli.drill:history", "Past drills: when, how long, outcome."),
    "schedule": ("moltir.cli.drill:schedule", "Install, remove or show the drill schedule."),
}, epilog=EXIT_HELP)
@run_options
@notify_option
@click.pass_context
@handle_errors
def drill(ctx: click.Context, /, **kw: Any) -> None:
    """Rotation drill: rotate the token, prove new accepted / old refused, record it.

    \b
    moltir drill                      run the drill now (gateway must be running)
    moltir drill history              past drills
    moltir drill schedule install     run it every week/day (systemd timer / LaunchAgent)
    """
    if ctx.invoked_subcommand is None:
        _run_runbook(ctx, "drill", "drill", kw, new_case=True)
