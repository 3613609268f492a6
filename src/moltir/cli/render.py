"""What the commands print: a run's result (text, or the JSON envelope with one error per failed
step), the status and doctor reports, a journal check, runbooks. Config values, step ids and reasons
are shown with control characters escaped, never sent raw."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click


def run_errors(result: Any) -> list[dict[str, Any]]:
    """The envelope's errors of a runbook run: one per failed step (its one-line error), or the run's
    message when it ended non-zero another way (interrupted)."""
    from moltir.engine.execution import resume_command
    from moltir.result import error

    failed = [s for s in result.steps if s.status == "failed"]
    hint = (f"run 'moltir {resume_command(result.runbook)}' again: it resumes at the first step not done"
            if result.runbook != "drill" else "fix the cause and run 'moltir drill' again")
    out = [error(f"step '{s.id}' ({s.action}): {s.error}", hint, s.exit_code or result.exit_code) for s in failed]
    if not out and result.exit_code:
        out = [error(result.message, "", result.exit_code)]
    return out


def render_run(result: Any, as_json: bool) -> None:
    """A run's result (``engine.RunResult``): the JSON envelope, or the plan / the outcome as text."""
    if as_json:
        from moltir.result import echo_json

        echo_json(result.to_json(), exit_code=result.exit_code, errors=run_errors(result))
        return
    from moltir.text import shown

    lines: list[str] = []
    _render_text(result, lines.append)
    if result.runbook == "contain" and result.status != "dry-run" and result.case_dir:
        from moltir.commands.credentials import next_steps, render_next_steps

        steps = next_steps(Path(result.case_dir))
        if steps is not None:
            lines += render_next_steps(steps)
    for line in lines:  # config values, step ids, reasons: control characters shown escaped, never sent raw
        click.echo("\n".join(shown(part, 4000) for part in str(line).split("\n")))


def render_runs(results: Sequence[Any], as_json: bool) -> int:
    """Runs that make one command (``restore --hardened``: the restore, then harden): ONE envelope, the
    first run's with the next ones under ``then``; the exit code the first failing run ended with."""
    code = next((r.exit_code for r in results if r.exit_code), 0)
    if as_json:
        from moltir.result import echo_json

        data = results[0].to_json()
        data["then"] = [r.to_json() for r in results[1:]]
        echo_json(data, exit_code=code, errors=[e for r in results for e in run_errors(r)])
        return code
    for result in results:
        render_run(result, False)
    return code


def _render_text(result: Any, out: Callable[[str], None]) -> None:
    if result.status == "dry-run":
        out(f"Plan for '{result.runbook}' (dry run: nothing will be changed)")
        for i, p in enumerate(result.plans, 1):
            _render_planned(i, p, out)
        out(result.message)
        return
    if result.status == "noop":
        out(result.message)
        return
    out("")
    out(result.message)
    if result.case_dir:
        out(f"case folder: {result.case_dir}")


def _render_planned(i: int, p: Any, out: Callable[[str], None]) -> None:
    """One step of a dry run's plan (``engine.PlannedStep``): its summary, changes, warnings, diff."""
    head = f"{i}. {p.step.id} ({p.step.action})"
    if p.error:
        out(f"{head}: cannot plan: {p.error}")
        return
    assert p.plan is not None
    tag = " [already done]" if p.plan.already_done else ("" if p.plan.simulated else " [not simulated]")
    out(f"{head}: {p.plan.summary}{tag}")
    for c in p.plan.changes:
        arrow = (f": {c.before} -> {c.after}" if c.before is not None and c.after is not None else
                 f": {c.after if c.after is not None else c.before}" if (c.before or c.after) else "")
        out(f"     {c.kind:<8} {c.target}{arrow}{('  ' + c.detail) if c.detail else ''}")
    for w in p.plan.warnings:
        out(f"     warning: {w}")
    if p.plan.diff:
        out("\n".join("     " + ln for ln in p.plan.diff.rstrip("\n").splitlines()))


def render_status(report: dict[str, Any], *, damaged: bool, as_json: bool) -> None:
    """``moltir status``: the case report (``moltir.commands.status``); a damaged case is an error."""
    if as_json:
        from moltir.result import echo_json, error

        errors = [error(f"the case record is damaged: {report.get('error') or 'the journal chain is broken'}",
                        "'moltir contain' opens a new case; keep this one as evidence", 5)] if damaged else []
        echo_json(report, exit_code=5 if damaged else 0, errors=errors)
    else:
        from moltir.commands import status as status_mod

        click.echo(status_mod.render(report))


def render_doctor(report: dict[str, Any], as_json: bool) -> None:
    """``moltir doctor``: what was found; every problem is an error in the JSON envelope."""
    if as_json:
        from moltir.result import echo_json, error

        echo_json(report, exit_code=0 if report["ok"] else 3,
                  errors=[error(f"{c['check']}: {c['detail']}", "", 3) for c in report["checks"]
                          if c["level"] == "problem"])
    else:
        from moltir.commands import doctor as doctor_mod

        click.echo(doctor_mod.render(report))


def render_journal_check(case: Any, report: Any, as_json: bool) -> None:
    """``moltir journal verify``: the chain's head and length, or each problem (on stderr)."""
    if as_json:
        from moltir.result import echo_json, error

        echo_json({"case_id": case.id, "journal": str(case.journal_path), "records": report.records,
                   "head": report.head, "problems": list(report.problems)}, exit_code=0 if report.ok else 5,
                  errors=[error(p, "treat the case as tampered with or damaged", 5) for p in report.problems])
        return
    if report.ok:
        click.echo(f"{case.journal_path}: ok, {report.records} records, head {report.head[:16]}")
        return
    for problem in report.problems:
        click.echo(f"{case.journal_path}: {problem}", err=True)


def runbook_json(loaded: Any) -> dict[str, Any]:
    return {"name": loaded.name, "description": loaded.description, "source": loaded.source,
            "steps": [{"id": s.id, "action": s.action, "with": dict(s.params), "on_failure": s.on_failure,
                       "timeout_s": s.timeout_s, "description": s.description or None} for s in loaded.steps]}


def render_runbooks(loaded: list[Any], as_json: bool) -> None:
    """``moltir runbook list``."""
    if as_json:
        from moltir.result import echo_json

        echo_json({"runbooks": [{"name": r.name, "description": r.description, "source": r.source,
                                 "steps": [s.id for s in r.steps]} for r in loaded]})
        return
    for r in loaded:
        click.echo(f"{r.name:<10} {r.description}")


def render_runbook(loaded: Any, as_json: bool) -> None:
    """``moltir runbook show``: every step with its parameters."""
    if as_json:
        from moltir.result import echo_json

        echo_json(runbook_json(loaded))
        return
    click.echo(f"{loaded.name}: {loaded.description}\nsource: {loaded.source}")
    for i, s in enumerate(loaded.steps, 1):
        extra = f" timeout_s={s.timeout_s:g}" if s.timeout_s else ""
        click.echo(f"{i}. {s.id}: {s.action} {json.dumps(dict(s.params))} on_failure={s.on_failure}{extra}")


def render_valid_runbook(path: Path, loaded: Any, as_json: bool) -> None:
    """``moltir runbook validate`` of a runbook that loaded."""
    if as_json:
        from moltir.result import echo_json

        echo_json(runbook_json(loaded))
        return
    click.echo(f"{path}: ok ({len(loaded.steps)} steps)")
