"""``moltir contain``, ``moltir restore`` and ``moltir drill``: parse, confirm, render; the run itself
is :mod:`moltir.commands.run`'s (``--all-profiles``: :mod:`moltir.commands.profiles`)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
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


_CHECK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")


def accept_risk_ids(given: Sequence[str]) -> tuple[str, ...]:
    """``--accept-risk`` values: audit check ids (``channels.telegram.dm.open``); anything else exit 2."""
    from moltir.text import shown

    for value in given:
        if not _CHECK_ID.fullmatch(value):
            raise MoltirError(f"--accept-risk {shown(value, 80)!r} is not a security audit check id",
                              hint="pass the id restore names, e.g. --accept-risk channels.telegram.dm.open "
                                   "('moltir restore --dry-run' lists them)", exit_code=EXIT_USAGE)
    return tuple(dict.fromkeys(given))


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


def _request(kind: str, runbook_name: str, kw: dict[str, Any], new_case: bool = False,
             extra: dict[str, Any] | None = None, own_case: bool = False,
             trigger: dict[str, Any] | None = None) -> Any:
    """The ``moltir.commands.run.Request`` of one run, from the parsed options."""
    from moltir.actions.base import RunOptions
    from moltir.commands import run as runner
    from moltir.engine import runbook

    rb = runbook.load(runbook.resolve(runbook_name))
    options = RunOptions(dry_run=kw["dry_run"], force=kw["force"],
                         allow_insecure_keyring=kw["allow_insecure_keyring"], clean_env=kw["clean_env"],
                         revoke_devices=kw["revoke_devices"], reason=kw["reason"],
                         reopen_open=kw.get("reopen_open") or "open", **(extra or {}))
    return runner.Request(kind, rb, options, case_dir=None if own_case else kw["case_dir"],
                          new_case=new_case, command=command_line(sys.argv[1:]),
                          notify=tuple(kw.get("notify") or ()), trigger=trigger,
                          accept_risk=accept_risk_ids(kw.get("accept_risk") or ()))


def _run_runbook(ctx: click.Context, kind: str, default_runbook: str, kw: dict[str, Any],
                 new_case: bool = False, extra: dict[str, Any] | None = None,
                 trigger: dict[str, Any] | None = None) -> None:
    """contain / restore / drill: parse, confirm, render; the run itself is moltir.commands.run's."""
    from moltir import engine, log
    from moltir.cli.render import render_run
    from moltir.commands import run as runner
    from moltir.text import shown

    log.configure(verbose=kw["verbose"], quiet=kw["as_json"])
    install = get_install(ctx, kw)
    req = _request(kind, kw["runbook_path"] or default_runbook, kw, new_case, extra, trigger=trigger)
    rb = req.runbook
    engine.require_install(install)

    def note(text: str) -> None:
        click.echo(f"warning: {shown(text, 2000)}", err=True)

    for line in install.notes:
        note(line)
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


def _restore_hardened(ctx: click.Context, kw: dict[str, Any]) -> None:
    """``restore --hardened``: the restore, then ``moltir harden`` (its plan in the confirmation)."""
    from moltir import engine, log
    from moltir.cli.render import render_runs
    from moltir.commands import run as runner
    from moltir.text import shown

    log.configure(verbose=kw["verbose"], quiet=kw["as_json"])
    install = get_install(ctx, kw)
    harden = replace(_request("harden", "harden", kw, new_case=True, own_case=True), notify=(), accept_risk=())
    closes = tuple(str(s.params.get("setting")) for s in harden.runbook.steps if s.action == "harden.config")
    restore = replace(_request("restore", kw["runbook_path"] or "restore", kw), hardened=closes)
    engine.require_install(install)

    def note(text: str) -> None:
        click.echo(f"warning: {shown(text, 2000)}", err=True)

    for line in install.notes:
        note(line)
    preview = runner.harden_preview(install, harden)
    if kw["dry_run"]:
        results = [runner.plan(install, restore, note), runner.plan(install, harden, note)]
    else:
        confirm = _confirmation("restore", kw, len(restore.runbook.steps))
        first, second = runner.run_hardened(install, replace(restore, preview=preview), harden, confirm=confirm,
                                            note=note, emit=log.emit)
        results = [first] if second is None else [first, second]
    code = render_runs(results, kw["as_json"])
    if code:
        sys.exit(code)


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


def _all_profiles(ctx: click.Context, kind: str, kw: dict[str, Any], default_runbook: str = "") -> None:
    """``--all-profiles``: every install moltir finds, in parallel (moltir.commands.profiles)."""
    from moltir.cli import cli
    from moltir.commands import profiles
    from moltir.openclaw.deployments import all_installs

    args = install_args(ctx, kw)
    accept_risk_ids(kw.get("accept_risk") or ())  # a malformed id: exit 2 before anything
    if any(args.get(k) for k in ("profile", "dev", "state_dir", "config", "user")):
        raise MoltirError("--all-profiles acts on every install: it cannot be combined with --profile, --dev, "
                          "--state-dir, --config or --user", hint="drop one of them", exit_code=EXIT_USAGE)
    installs = all_installs(os.environ, openclaw_bin=args.get("openclaw_bin"))
    if kw.get("dry_run"):
        code = 0
        for inst in installs:
            click.echo(f"== {inst.state_dir}")
            args_one = [sys.argv[0], kind, "--dry-run", "--state-dir", str(inst.state_dir),
                        "--config", str(inst.config_path),
                        *(["--level", "pause"] if default_runbook == "pause" else []),
                        *(a for r in kw.get("accept_risk") or () for a in ("--accept-risk", r)),
                        *(a for u in kw.get("notify") or () for a in ("--notify", u))]
            try:
                cli.main(args=args_one[1:], standalone_mode=False, obj=None)
            except SystemExit as exc:
                code = code or int(exc.code or 0)
        sys.exit(code)
    profiles.run_all(kind, default_runbook or kind, kw, installs)


@click.command(epilog=EXIT_HELP)
@click.option("--new-case", is_flag=True, help="Open a new case instead of resuming the last unfinished one.")
@click.option("--all-profiles", is_flag=True, help="Contain every install found (each profile; as root, "
              "every system unit's too), in parallel: one case each, one incident id.")
@click.option("--level", type=click.Choice(["full", "pause"]), default="full", show_default=True,
              help="full: the contain runbook (gateway down). pause: the pause runbook (gateway back on a new "
                   "token with DMs off, exec denied, elevated tools and cron off).")
@run_options
@notify_option
@click.pass_context
@handle_errors
def contain(ctx: click.Context, /, new_case: bool, all_profiles: bool, level: str, **kw: Any) -> None:
    """Contain an incident: gateway down, DMs off, new token, evidence, audit.

    Resumes the install's last unfinished case (after a crash or a failed step) at the
    first step not verified done; --new-case starts fresh. --level pause keeps the bot
    visible but harmless; 'moltir restore' undoes either level.
    """
    default_runbook = "pause" if level == "pause" else "contain"
    if all_profiles:
        if new_case:
            raise MoltirError("--new-case cannot be combined with --all-profiles", exit_code=EXIT_USAGE)
        _all_profiles(ctx, "contain", kw, default_runbook)
        return
    _run_runbook(ctx, "contain", default_runbook, kw, new_case=new_case)


@click.command(epilog=EXIT_HELP)
@click.option("--all-profiles", is_flag=True, help="Restore every install found that has a case to restore.")
@click.option("--reopen-open", type=click.Choice(["open", "pairing", "allowlist", "disabled"]), default="open",
              show_default=True, help="What a DM policy that was 'open' (anyone may write) goes back to.")
@click.option("--hardened", is_flag=True, help="Run 'moltir harden' right after the restore (its plan is "
              "shown with the restore's; 'moltir harden --undo' reverts it).")
@click.option("--accept-risk", "accept_risk", multiple=True, metavar="CHECK-ID",
              help="Restore a setting the security audit flags as CHECK-ID (e.g. an open DM policy: "
                   "channels.telegram.dm.open); without it such a restore is refused (repeatable).")
@run_options
@notify_option
@click.pass_context
@handle_errors
def restore(ctx: click.Context, /, all_profiles: bool, hardened: bool, **kw: Any) -> None:
    """Undo containment from the case record: DM policies back, gateway up on the NEW token."""
    if all_profiles:
        if hardened:
            raise MoltirError("--hardened cannot be combined with --all-profiles",
                              hint="restore each profile with --profile NAME --hardened", exit_code=EXIT_USAGE)
        _all_profiles(ctx, "restore", kw)
        return
    if hardened:
        _restore_hardened(ctx, kw)
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
