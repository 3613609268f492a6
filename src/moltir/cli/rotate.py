"""``moltir rotate plan``: how moltir would rotate each credential of the install (changes nothing)."""

from __future__ import annotations

from typing import Any

import click

from moltir.cli import handle_errors, install_options, json_option
from moltir.cli.options import get_install
from moltir.errors import usage_error


@click.command()
@click.argument("what", metavar="plan")
@json_option
@install_options
@click.pass_context
@handle_errors
def rotate(ctx: click.Context, /, what: str, as_json: bool, **kw: Any) -> None:
    """Rotation: 'moltir rotate plan' lists each credential with how moltir would rotate it."""
    from moltir.commands import rotate as cmd

    if what != "plan":
        raise usage_error(f"moltir rotate does not rotate {what!r} yet", "run 'moltir rotate plan'")
    report = cmd.plan_report(get_install(ctx, kw))
    if as_json or (ctx.find_root().obj or {}).get("json"):
        from moltir.result import echo_json

        echo_json(report)
        return
    click.echo(cmd.render_plan(report))
