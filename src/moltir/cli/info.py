"""``moltir status`` and ``moltir doctor``: what the current case says, and what install moltir
finds with every problem and its fix."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from moltir.cli.edge import handle_errors
from moltir.cli.options import get_install, install_options, json_option


@click.command()
@click.option("--case-dir", type=click.Path(path_type=Path), help="Show this case instead of the latest.")
@click.option("--verify", is_flag=True, help="Also check the journal's hash chain.")
@click.option("--all-profiles", is_flag=True, help="Every install found, one block each.")
@json_option
@install_options
@click.pass_context
@handle_errors
def status(ctx: click.Context, /, case_dir: Path | None, verify: bool, all_profiles: bool, as_json: bool,
           **kw: Any) -> None:
    """The current case: open / contained / restored, which steps are done, since when."""
    from moltir.cli.render import render_status
    from moltir.commands import status as status_mod

    if all_profiles:
        from moltir.commands.profiles import status_all
        from moltir.openclaw.deployments import all_installs

        sys.exit(status_all(all_installs(os.environ), as_json))
    install = get_install(ctx, kw)
    report = status_mod.build(install, case_dir, verify=verify)
    damaged = report.get("status") == "damaged" or (verify and report.get("journal", {}).get("ok") is False)
    render_status(report, damaged=damaged, as_json=as_json)
    if damaged:
        sys.exit(5)


@click.command()
@json_option
@install_options
@click.pass_context
@handle_errors
def doctor(ctx: click.Context, /, as_json: bool, **kw: Any) -> None:
    """What install moltir finds, and every problem with its fix."""
    from moltir.cli.render import render_doctor
    from moltir.commands import doctor as doctor_mod

    install = get_install(ctx, kw)
    report = doctor_mod.build(install)
    render_doctor(report, as_json)
    if not report["ok"]:
        sys.exit(3)
