"""``moltir rotate plan`` (how each credential would be rotated; changes nothing) and ``moltir rotate
CREDENTIAL-ID [--from-stdin]`` (the new value from a hidden prompt or stdin, never argv)."""

from __future__ import annotations

import re
import sys
from typing import Any

import click

from moltir.cli import handle_errors, install_options, json_option
from moltir.cli.group import EXIT_HELP
from moltir.cli.options import get_install
from moltir.errors import usage_error

MAX_VALUE = 4096
CRED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,255}$")


def _one_token(value: str, what: str) -> str:
    if not value:
        raise usage_error(f"the {what} is empty", "give the new credential; nothing changed")
    if len(value) > MAX_VALUE or not value.isprintable() or any(c.isspace() for c in value):
        raise usage_error(f"the {what} is not one printable token (no spaces, at most 4096 characters)",
                          "give the credential exactly as the issuer shows it; nothing changed")
    return value


def _new_value(from_stdin: bool, management: str | None = None) -> tuple[str, str | None]:
    """The new value: all of stdin (surrounding whitespace dropped) or a hidden prompt typed twice. When
    ``--revoke-old`` needs a management key (``management`` says which): stdin's second line, or a hidden
    prompt after the new value."""
    if from_stdin:
        text = sys.stdin.read(2 * MAX_VALUE + 2).strip()
        lines = text.splitlines() if management else [text]
        if management and len(lines) != 2:
            raise usage_error(f"--revoke-old needs {management}: stdin holds the new value on its first line "
                              "and that key on its second", "give both lines; nothing changed")
        value, admin = lines[0].strip(), lines[1].strip() if management else None
    elif sys.stdin.isatty():
        value = click.prompt("new value (hidden)", hide_input=True, confirmation_prompt=True, err=True).strip()
        admin = click.prompt(f"{management} (hidden)", hide_input=True, err=True).strip() if management else None
    else:
        raise usage_error("no terminal to ask for the new value", "pipe it in with --from-stdin; nothing changed")
    return _one_token(value, "new value"), _one_token(admin, "management key") if admin is not None else None


@click.command(epilog=EXIT_HELP)
@click.argument("what", metavar="plan|CREDENTIAL-ID")
@click.option("--from-stdin", is_flag=True, help="Read the new value from stdin (else a hidden prompt).")
@click.option("--revoke-old", is_flag=True, help="After the rotation: revoke the old value through the issuer's "
              "API where moltir can (Slack auth.revoke; Matrix logout; OpenRouter: a management key, OpenAI: an "
              "admin key, on stdin's second line or a hidden prompt), else print the steps and wait until the "
              "issuer refuses it.")
@click.option("--no-wait", is_flag=True, help="With --revoke-old: check the old value once, do not wait.")
@click.option("--wait-timeout", type=click.FloatRange(1, 86400), default=600.0, show_default=True,
              help="With --revoke-old: how long to wait for the old value to be refused (seconds).")
@click.option("--allow-insecure-keyring", is_flag=True, help="Accept a plaintext/null keyring backend.")
@json_option
@install_options
@click.pass_context
@handle_errors
def rotate(ctx: click.Context, /, what: str, from_stdin: bool, revoke_old: bool, no_wait: bool,
           wait_timeout: float, allow_insecure_keyring: bool, as_json: bool, **kw: Any) -> None:
    """Rotate a credential: 'moltir rotate plan' says how each one would be rotated;
    'moltir rotate ID' validates a new value at the issuer, stores it, makes the gateway re-read it.
    """
    from moltir.commands import rotate as cmd

    as_json = as_json or bool((ctx.find_root().obj or {}).get("json"))
    install = get_install(ctx, kw)
    if what == "plan":
        if from_stdin:
            raise usage_error("--from-stdin goes with a CREDENTIAL-ID, not plan", "drop it; nothing changed")
        report = cmd.plan_report(install)
        if as_json:
            from moltir.result import echo_json

            echo_json(report)
            return
        click.echo(cmd.render_plan(report))
        return
    if no_wait and not revoke_old:
        raise usage_error("--no-wait goes with --revoke-old", "add --revoke-old or drop --no-wait; nothing changed")
    _rotate_one(install, what, from_stdin, allow_insecure_keyring, as_json,
                {"revoke_old": revoke_old, "wait": not no_wait, "wait_timeout_s": wait_timeout})


def _rotate_one(install: Any, cred_id: str, from_stdin: bool, allow_insecure: bool, as_json: bool,
                revoke: dict[str, Any]) -> None:
    from moltir import engine, log
    from moltir.actions.base import RunOptions
    from moltir.cli.render import render_run
    from moltir.commands import rotate as cmd
    from moltir.text import shown

    if not CRED_ID.match(cred_id):
        raise usage_error(f"{shown(cred_id, 80)} is not a credential id", "'moltir rotate plan' lists the ids")
    engine.require_install(install)
    management = cmd.management_key_needed(install, cred_id) if revoke["revoke_old"] else None
    value, admin = _new_value(from_stdin, management)
    log.configure(verbose=False, quiet=as_json)

    def note(text: str) -> None:
        click.echo(f"warning: {shown(text, 2000)}", err=True)

    result = cmd.run_rotation(install, cred_id, value, RunOptions(allow_insecure_keyring=allow_insecure),
                              command=f"moltir rotate {cred_id}", note=note, emit=log.emit, management_key=admin,
                              **revoke)
    render_run(result, as_json)
    if result.exit_code:
        sys.exit(result.exit_code)
