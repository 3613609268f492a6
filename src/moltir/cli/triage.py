"""``moltir triage [CASE]``: what the assistant did, from a sealed case (exit 1 when something at or
above --min-level was found)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from moltir.cli import EXIT_HELP, get_install, handle_errors, install_options, json_option
from moltir.cli.evidence import resolve_case
from moltir.text import shown

LEVEL_CHOICES = ("informational", "low", "medium", "high", "critical")


@click.command("triage", epilog=EXIT_HELP)
@click.argument("case", required=False)
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False),
              help="Write the outputs here instead of CASE/triage/.")
@click.option("--rules", "rule_dirs", multiple=True, type=click.Path(path_type=Path, file_okay=False),
              help="A folder of *.json5 rule files to add to the shipped ones (repeatable).")
@click.option("--min-level", type=click.Choice(LEVEL_CHOICES), default="high", show_default=True,
              help="Findings at or above this level make the verdicts and exit 1.")
@json_option
@install_options
@click.pass_context
@handle_errors
def triage(ctx: click.Context, /, case: str | None, output: Path | None, rule_dirs: tuple[Path, ...],
           min_level: str, as_json: bool, **kw: Any) -> None:
    """Timeline, findings and per-session verdicts from a sealed evidence case.

    \b
    Verifies the case first (exit 5 if it fails), reads the copied transcripts
    (JSONL and SQLite), applies the rules and writes report.html, timeline.jsonl
    (Timesketch), timeline.csv and findings.json to CASE/triage/. Exit 0: nothing at or above
    --min-level; 1: findings (see the summary); 2: bad input; 5: evidence fails
    verification.
    """
    from moltir.commands.triage import run_triage

    folder = resolve_case(case, get_install(ctx, kw) if case is None else None)
    report = run_triage(folder, output=output, rule_dirs=rule_dirs, min_level=min_level)
    n = report["counts"]["at_or_above_min_level"]
    code = 1 if n else 0
    if as_json:
        from moltir.result import echo_json, error

        errors = [error(f"{n} finding(s) at or above {min_level}",
                        f"read {report['outputs']['findings.json']}", 1)] if n else []
        echo_json(report, exit_code=code, errors=errors)
        sys.exit(code)
    for line in summary_lines(report):
        click.echo(line)
    sys.exit(code)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The terminal summary: counts, verdicts, the top findings with their evidence, next steps."""
    c = report["counts"]
    out = [f"case {shown(report['case_dir'])}: evidence verified ({report['evidence']['files_checked']} files)",
           f"read {report['events']} events from {report['sources']['jsonl_files']} JSONL transcript(s) and "
           f"{report['sources']['sqlite_databases']} SQLite database(s); {report['sessions_seen']} session(s)"]
    if report.get("no_transcripts"):
        out.append("this case holds no transcripts (no JSONL session file, no agent database was copied): "
                   "nothing the assistant did can be shown; the containment steps are in report.html")
    if report["undecoded"]:
        out.append(f"warning: {report['undecoded']} record(s) could not be decoded (listed in the timeline)")
    verdicts = c["verdicts"]
    out.append(f"findings: {c['findings']} in all, {c['at_or_above_min_level']} at or above {report['min_level']}"
               f"; sessions LANDED {verdicts.get('LANDED', 0)}, ATTEMPTED {verdicts.get('ATTEMPTED', 0)}")
    for f in report["findings"][:10]:
        state = "LANDED" if f["landed"] else "attempted"
        ev = f["evidence"]
        where = f"line {ev['line']}" if "line" in ev else f"row {ev['row']['session_id']}#{ev['row']['seq']}"
        out.append(f"  [{f['level']}] {f['rule']} ({state}) {shown(f['summary'], 160)}")
        out.append(f"      evidence: {shown(ev['path'], 200)} {shown(where, 100)}")
        out.append(f"      next: {shown(f['remediation'], 300)}")
    if len(report["findings"]) > 10:
        out.append(f"  ... and {len(report['findings']) - 10} more in findings.json")
    out.append(f"outputs: {shown(report['output_dir'])} (report.html, timeline.jsonl for Timesketch, timeline.csv, "
               "findings.json)")
    if not report["findings"]:
        out.append(f"nothing at or above {report['min_level']} found")
    out.extend(_open_lines(report.get("containment") or {}))
    return out


def _open_lines(cont: dict[str, Any]) -> list[str]:
    """What remains open (the report's section of the same name, in one or two lines)."""
    todo = [f"step {shown(s['step'], 80)} of {shown(s['runbook'], 40)} failed" for s in cont.get("failed", ())]
    if cont.get("credentials_to_rotate"):
        todo.append(f"{len(cont['credentials_to_rotate'])} credential(s) of the case's inventory to rotate")
    if cont and not cont.get("restore_run"):
        todo.append("'moltir restore' not run yet")
    if not todo:
        return []
    return [f"containment: moltir ran {len(cont.get('changed', ()))} step(s); still open: "
            + "; ".join(todo) + " (see report.html)"]
