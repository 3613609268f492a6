"""``moltir credentials``: every credential the install holds (fingerprints only); with ``--case``,
where each one appears in the sealed evidence, ranked "rotate these first"."""

from __future__ import annotations

from typing import Any

import click

from moltir.cli import handle_errors, install_options, json_option
from moltir.cli.options import get_install


@click.command()
@click.option("--case", "case", metavar="CASE", help="Search this case's sealed evidence (a folder, a case id "
              "or a unique prefix) for every credential it can resolve; read-only.")
@json_option
@install_options
@click.pass_context
@handle_errors
def credentials(ctx: click.Context, /, case: str | None, as_json: bool, **kw: Any) -> None:
    """Every credential: where it lives, how it is stored, its fingerprint, who can revoke it."""
    from moltir.commands import credentials as cmd

    if case is not None:
        from moltir.cli.evidence import resolve_case

        folder = resolve_case(case, None if "/" in case else get_install(ctx, kw))
        report = cmd.case_report(folder)
    else:
        report = cmd.inventory_report(get_install(ctx, kw))
    if as_json or (ctx.find_root().obj or {}).get("json"):
        from moltir.result import echo_json

        echo_json(report)
        return
    click.echo(cmd.render(report))
