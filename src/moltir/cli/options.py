"""The options every command shares (the install selection, ``--json``, the runbook runners'
options) and the install they select."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

INSTALL_OPTIONS = ("profile", "dev", "state_dir", "config", "openclaw_bin", "user")


def install_options(fn: F) -> F:
    """The same install-selection options on the group and on every command."""
    fn = click.option("--user", "user", metavar="NAME",
                      help="Act on this user's install (as root: e.g. the user of an OpenClaw system unit).")(fn)
    fn = click.option("--openclaw-bin", metavar="PATH", help="The openclaw (or clawdbot) binary.")(fn)
    fn = click.option("--config", metavar="PATH", help="OpenClaw config file (default: from the state dir).")(fn)
    fn = click.option("--state-dir", metavar="DIR", help="OpenClaw state dir (default ~/.openclaw).")(fn)
    fn = click.option("--dev", is_flag=True, default=None, help="Act on the 'dev' profile.")(fn)
    fn = click.option("--profile", metavar="NAME", help="OpenClaw profile (like 'openclaw --profile').")(fn)
    return fn


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON object.")(fn)


def install_args(ctx: click.Context, given: dict[str, Any]) -> dict[str, Any]:
    """The install options of the command, over those given to ``moltir`` itself."""
    base = dict((ctx.find_root().obj or {}).get("install", {}))
    for key in INSTALL_OPTIONS:
        if given.get(key) not in (None, False):
            base[key] = given[key]
    return base


def get_install(ctx: click.Context, given: dict[str, Any]) -> Any:
    from moltir.openclaw import discover
    from moltir.openclaw.deployments import select_env

    args = install_args(ctx, given)
    explicit = any(args.get(k) for k in ("profile", "dev", "state_dir", "config"))
    env, openclaw_bin, note = select_env(args.get("user"), explicit=explicit, base=os.environ,
                                         openclaw_bin=args.get("openclaw_bin"))
    if note:
        click.echo(f"moltir: {note}", err=True)
    return discover(profile=args.get("profile"), dev=bool(args.get("dev")), state_dir=args.get("state_dir"),
                    config=args.get("config"), openclaw_bin=openclaw_bin, env=env)


def _check_free_text(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from moltir.text import MAX_REASON

    if value and len(value) > MAX_REASON:
        raise click.BadParameter(f"{len(value)} characters: at most {MAX_REASON}; put a longer account in a "
                                 "file and name it here")
    return value


def run_options(fn: F) -> F:
    opts = [
        click.option("--runbook", "runbook_path", metavar="NAME|PATH", help="Run another runbook."),
        click.option("--dry-run", is_flag=True, help="Show the plan and the config diff; change nothing."),
        click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (required without a TTY)."),
        click.option("--case-dir", type=click.Path(path_type=Path), help="Folder of the case (default: "
                     "$XDG_STATE_HOME/moltir/cases/<case-id>)."),
        click.option("--reason", default="", callback=_check_free_text,
                     help="Why: recorded in the case (at most 2000 characters)."),
        click.option("--force", is_flag=True, help="Override safety refusals (conflicts, non-latest case)."),
        click.option("--allow-insecure-keyring", is_flag=True, help="Accept a plaintext/null keyring backend."),
        click.option("--clean-env", is_flag=True, help="Remove a stale OPENCLAW_GATEWAY_TOKEN from <state>/.env."),
        click.option("--revoke-devices", is_flag=True, help="Revoke paired device tokens too."),
        click.option("-v", "--verbose", is_flag=True, help="More detail on stderr."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return json_option(install_options(fn))
