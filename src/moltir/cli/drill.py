"""``moltir drill history`` and ``moltir drill schedule install|remove|status``.

Thin click shells over :mod:`moltir.commands.drills`. ``moltir drill`` itself (running the drill runbook)
is the CLI's; these are mounted under it. Install options given to ``moltir drill`` (or to
``moltir``) select the install, as they do for every command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from moltir.cli import get_install, handle_errors, install_options, json_option
from moltir.result import echo_json


def _install(ctx: click.Context, kw: dict[str, Any]) -> Any:
    given: dict[str, Any] = {}
    parent = ctx.parent
    chain = []
    while parent is not None:
        chain.append(parent)
        parent = parent.parent
    for c in reversed(chain):
        given.update({k: v for k, v in c.params.items() if v not in (None, False)})
    given.update({k: v for k, v in kw.items() if v not in (None, False)})
    return get_install(ctx, given)


@click.command("history")
@click.option("--limit", type=int, default=20, show_default=True, help="Show at most this many (newest).")
@json_option
@install_options
@click.pass_context
@handle_errors
def history(ctx: click.Context, /, limit: int, as_json: bool, **kw: Any) -> None:
    """Past drills of this install: when, how long, outcome, token fingerprints, proof."""
    from moltir.commands import drills

    install = _install(ctx, kw)
    records = drills.read_history(install)[-limit:] if limit > 0 else drills.read_history(install)
    if as_json:
        echo_json({"install": str(install.state_dir), "history": str(drills.history_path(install)),
                   "drills": records})
    else:
        click.echo(drills.render_history(records))


@click.group("schedule")
def schedule() -> None:
    """Run the drill unattended: a systemd user timer (Linux), a LaunchAgent (macOS) or cron."""


@schedule.command("install")
@click.option("--every", default="weekly", show_default=True, metavar="daily|weekly|CRON",
              help="When: daily (03:17), weekly (Monday 03:17) or a 5-field cron expression.")
@click.option("--print", "print_only", is_flag=True, help="Print the crontab line instead of installing anything.")
@click.option("--no-activate", is_flag=True, help="Write the files but do not enable/load them.")
@click.option("--notify", "notify", multiple=True, metavar="URL|@FILE",
              help="Each scheduled drill notifies here (as 'moltir drill --notify'); kept in a 0600 file.")
@json_option
@install_options
@click.pass_context
@handle_errors
def schedule_install(ctx: click.Context, /, every: str, print_only: bool, no_activate: bool,
                     notify: tuple[str, ...], as_json: bool, **kw: Any) -> None:
    """Write (and enable) the drill schedule for this install."""
    from moltir.commands import drills

    install = _install(ctx, kw)
    urls = _checked(install, notify)
    drills.cron_fields(every)  # a bad --every is refused before the URLs are kept
    drills.store_notify(install, urls)
    if print_only:
        line = drills.crontab_line(install, drills.cron_fields(every), drills.moltir_command())
        # the line appends to <moltir home>/drills/<key>.log: cron's shell cannot open it (and so never
        # runs the drill) while that folder does not exist, so it is created now (0700, moltir's own)
        from moltir import paths
        from moltir.fsutil import ensure_private_dir

        ensure_private_dir(paths.drills_dir(install.env))
        if as_json:
            echo_json({"line": line})
        else:
            click.echo(line)
        return
    result = drills.install_schedule(install, every, activate=not no_activate)
    if as_json:
        echo_json(result.to_json())
        return
    if result.kind == "cron":
        click.echo(result.line)
    for path in result.files:
        click.echo(f"wrote {path}")
    if result.activated:
        click.echo("enabled: " + "; ".join(result.commands))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


def _checked(install: Any, notify: tuple[str, ...]) -> list[str]:
    """Each --notify URL (``@FILE`` read now) with its target; a refused one is refused now, not at 03:17."""
    from moltir import notify as targets
    from moltir.commands import notifying

    urls: list[str] = []
    for value in notify:
        urls.extend(targets.read_list(Path(value[1:]).expanduser()) if value.startswith("@") else [value])
    notifying.check_targets(install, urls)
    return list(dict.fromkeys(urls))


@schedule.command("remove")
@json_option
@install_options
@click.pass_context
@handle_errors
def schedule_remove(ctx: click.Context, /, as_json: bool, **kw: Any) -> None:
    """Disable the drill schedule and delete its files."""
    from moltir.commands import drills

    removed = drills.remove_schedule(_install(ctx, kw))
    if as_json:
        echo_json({"removed": removed})
    elif removed:
        click.echo("\n".join(f"removed {p}" for p in removed))
    else:
        click.echo("no drill schedule installed for this install")


@schedule.command("status")
@json_option
@install_options
@click.pass_context
@handle_errors
def schedule_status(ctx: click.Context, /, as_json: bool, **kw: Any) -> None:
    """Is a drill scheduled, when, and how did the last one go."""
    from moltir.commands import drills

    status = drills.schedule_status(_install(ctx, kw))
    if as_json:
        echo_json(status)
        return
    if not status["installed"]:
        click.echo("no drill schedule installed (moltir drill schedule install --every weekly)")
    else:
        click.echo(f"scheduled: {status['schedule'] or '?'} (timer {status['timer'] or 'unknown'})")
        for f in status["files"]:
            click.echo(f"  {f}")
    last = status["last_drill"]
    click.echo(f"drills so far: {status['drills']}" + (f"; last {last.get('finished_at')} {last.get('outcome')}"
                                                        if last else ""))
    if last and last.get("outcome") != "ok":
        sys.exit(1)


@click.group("drill")
def drill_commands() -> None:
    """Drill history and schedule (mounted under 'moltir drill' by the CLI)."""


drill_commands.add_command(history)
drill_commands.add_command(schedule)
