"""``moltir fleet report``: one table from the per-host results of a fleet run (Ansible or an ssh loop).

A thin click shell over :mod:`moltir.commands.fleet`, which reads the results and renders the report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from moltir.cli import EXIT_HELP, handle_errors, json_option
from moltir.errors import EXIT_FLEET_INCOMPLETE, usage_error

RESULTS_HELP = """\b
RESULTS are files or folders (a folder: the files in it), in any of these forms:
  moltir's own --json output, one file per host named after it (the ssh loop:
    ssh web1 moltir contain --yes --json > results/web1.json)
  the moltir.openclaw playbooks' results (-e moltir_results_dir=DIR: DIR/HOST.contain.json)
  Ansible's tree callback folder (ansible all -m moltir.openclaw.status -t DIR)
  the ansible.posix.json / ansible.posix.jsonl callbacks' output
A later result of the same host and profile overrides what it carries: give them oldest first."""


@click.group("fleet", epilog=EXIT_HELP)
def fleet() -> None:
    """Many gateways: one report from the per-host results (Ansible, or a plain ssh loop).

    \b
    ansible-playbook moltir.openclaw.contain -e moltir_results_dir=results/
    moltir fleet report results/ --inventory hosts.ini
    """


@fleet.command("report", epilog=RESULTS_HELP + "\n\n" + EXIT_HELP)
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--inventory", type=click.Path(path_type=Path), metavar="FILE",
              help="The hosts that should have reported (an Ansible INI inventory, 'ansible-inventory --list' "
                   "JSON, or one host per line): those without a result are listed under 'did not report'.")
@click.option("--markdown", is_flag=True, help="Print the report as Markdown (for an incident ticket).")
@json_option
@handle_errors
def report(results: tuple[Path, ...], inventory: Path | None, markdown: bool, as_json: bool) -> None:
    """One row per host and profile: state, contained?, token fingerprint, credentials, findings, evidence
    archive hash; the hosts that did not report.

    Exit 0 when every host reported and none failed or was unreachable; 6 when one did not (the report is
    printed in full all the same); 2 on unreadable input.
    """
    from moltir.commands import fleet as fleet_mod

    if as_json and markdown:
        raise usage_error("--json and --markdown cannot be combined", "choose one output form")
    hosts = fleet_mod.read_inventory(inventory) if inventory is not None else None
    merged = fleet_mod.merge(results, hosts)
    code = fleet_mod.exit_code(merged)
    if as_json:
        from moltir.result import echo_json

        echo_json(merged, exit_code=code, errors=_errors(merged, fleet_mod.problems(merged)))
    elif markdown:
        click.echo(fleet_mod.render_markdown(merged), nl=False)
    else:
        click.echo(fleet_mod.render_text(merged), nl=False)
    if code:
        sys.exit(code)


def _errors(merged: dict[str, Any], problems: list[str]) -> list[dict[str, Any]]:
    """The envelope's errors: one per host that failed or was unreachable, one for the hosts that did not
    report."""
    from moltir.result import error

    out = [error(line, "fix the cause on that host and run the playbook (or moltir) there again; "
                       "--limit HOST runs it on that host only", EXIT_FLEET_INCOMPLETE) for line in problems]
    if merged.get("missing"):
        out.append(error(f"did not report: {', '.join(merged['missing'])}",
                         "check that Ansible reaches them ('ansible HOST -m ping') and run the playbook again "
                         "with --limit", EXIT_FLEET_INCOMPLETE))
    return out
