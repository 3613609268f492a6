"""``moltir trigger setup`` (print the forced-command ``authorized_keys`` line and a phone recipe) and
``moltir trigger run`` (what that line runs): thin shells over :mod:`moltir.commands.trigger`."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path
from typing import Any

import click

from moltir.cli.drill import _install
from moltir.cli.edge import handle_errors
from moltir.cli.options import install_options, json_option
from moltir.cli.run import notify_option
from moltir.result import echo_json


@click.group("trigger")
def trigger() -> None:
    """Contain over SSH from a phone, not through the chat channel.

    \b
    moltir trigger setup --source phone --key phone.pub   print the authorized_keys line
    """


@trigger.command("setup")
@click.option("--source", default="phone", show_default=True, metavar="NAME",
              help="Who pulls this trigger: recorded in the case (letters, digits, . _ @ -; at most 64).")
@click.option("--key", "key_path", type=click.Path(path_type=Path), metavar="PUBKEY-FILE",
              help="The phone's SSH public key (without it the line has a placeholder to replace).")
@notify_option
@json_option
@install_options
@click.pass_context
@handle_errors
def setup(ctx: click.Context, /, source: str, key_path: Path | None, notify: tuple[str, ...], as_json: bool,
          **kw: Any) -> None:
    """Print an authorized_keys line that can only run 'moltir contain', and a phone recipe.

    Nothing is written but, with --notify, the URLs (to a 0600 file the line names).
    """
    from moltir.commands import notifying
    from moltir.commands import trigger as trig
    from moltir.commands.drill_schedule import moltir_command

    trig.check_source(source)
    public_key = trig.read_public_key(key_path) if key_path is not None else trig.PLACEHOLDER
    install = _install(ctx, kw)
    notify_file = None
    if notify:
        notifying.check_targets(install, notify)  # refused now, not when the phone pulls the trigger
        notify_file = trig.store_notify(install, source, list(notify))
    command = trig.forced_command(install, source, moltir_command(), os.environ, notify_file)
    line = trig.authorized_keys_line(command, public_key)
    recipe = trig.recipe(getpass.getuser(), socket.getfqdn() or "this-host", source)
    if as_json:
        echo_json({"line": line, "complete": key_path is not None, "source": source,
                   "notify_file": str(notify_file) if notify_file else None, "recipe": recipe})
        return
    click.echo(line)
    click.echo("")
    if key_path is None:
        click.echo("Replace the placeholder key with the phone's public key (or run again with --key FILE).")
    for step in recipe:
        click.echo(f"- {step}")


@trigger.command("run")
@click.option("--source", required=True, metavar="NAME", help="Who pulled the trigger (from 'trigger setup').")
@notify_option
@json_option
@install_options
@click.pass_context
@handle_errors
def run(ctx: click.Context, /, source: str, notify: tuple[str, ...], as_json: bool, **kw: Any) -> None:
    """The forced command of the trigger key: contain, and nothing else.

    Refuses any command the SSH client asked for but nothing or 'contain' (SSH_ORIGINAL_COMMAND).
    """
    from moltir.cli.run import _run_runbook
    from moltir.commands import trigger as trig

    trig.check_original(os.environ)
    trig.check_source(source)
    record = trig.trigger_record(source, os.environ)
    opts = {"runbook_path": None, "dry_run": False, "yes": True, "case_dir": None, "reason": trig.reason(record),
            "force": False, "allow_insecure_keyring": False, "clean_env": False, "revoke_devices": False,
            "verbose": False, "notify": notify, "as_json": as_json}
    _run_runbook(ctx, "contain", "contain", {**kw, **opts}, trigger=record)
