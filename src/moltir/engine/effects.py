"""Whether what a case did still holds (``Action.still_holds``): a resumed run does a step again
whose effect is gone, and ``moltir status`` shows each done step's effect as it is now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from moltir import actions
from moltir.actions.base import RunOptions
from moltir.engine.case import Case
from moltir.engine.cases import case_status
from moltir.engine.journal import Journal
from moltir.engine.plan import step_context
from moltir.engine.results import Emit
from moltir.engine.runbook import Runbook
from moltir.errors import MoltirError
from moltir.openclaw import Install


def regressions(runbook: Runbook, install: Install, case: Case, journal: Journal, options: RunOptions,
                done_before: Mapping[str, Any], emit: Emit) -> dict[str, str]:
    """Steps this case did whose effect is gone (the gateway running again, a DM opened by hand):
    {step id: why}. They run again; the rest stay done (see ``Action.still_holds``)."""
    found: dict[str, str] = {}
    for step in runbook.steps:
        if step.id not in done_before:
            continue
        action = actions.load(step.action)()
        ctx = step_context(step, runbook, install, replace(case, readonly=True), Journal(None), options, {})
        why = action.still_holds(ctx)
        if why:
            found[step.id] = why
            journal.append("step.regressed", runbook=runbook.name, step=step.id, action=step.action, reason=why)
            emit("step.regressed", {"step": step.id, "action": step.action, "reason": why})
    return found


def with_case_release(install: Install, records: Sequence[Mapping[str, Any]]) -> Install:
    """``install``, told the release the case's runs recorded when nothing tells it now.

    ``sudo moltir status --user NAME`` often finds no ``openclaw`` binary (root's PATH is not the
    user's) and so no release: the capability table then answers for an unknown release (Discord's
    nested ``dm.policy``, say), and the re-check would call an effect the user's run made on a known
    release gone. The release the run itself saw (its ``run.start`` record) is the better answer."""
    if install.caps.release is not None:
        return install
    for rec in reversed(records):
        seen = rec.get("openclaw") if rec.get("event") == "run.start" else None
        version = seen.get("version") if isinstance(seen, Mapping) else None
        if isinstance(version, str) and version:
            return replace(install, release_hint=(version, f"the case's journal (run.start at {rec.get('ts')})"))
    return install


def check_effects(case: Case, install: Install, runbook_name: str = "contain") -> dict[str, str | None]:
    """For ``moltir status``: each step of ``runbook_name`` verified done in ``case``, re-checked now
    the way a resumed run checks it (``Action.still_holds``): {step id: None (holds) | why it no
    longer does}. Read-only. The runbook is the one the case's last run of it loaded (its recorded
    source), else the shipped one."""
    from moltir.engine import runbook as rbmod

    records = Journal(case.journal_path).records() if case.journal_path.exists() else []
    source = next((r.get("source") for r in reversed(records)
                   if r.get("event") == "run.start" and r.get("runbook") == runbook_name), None)
    try:
        rb = rbmod.load(Path(source)) if isinstance(source, str) and Path(source).is_file() \
            else rbmod.load(rbmod.resolve(runbook_name))
    except MoltirError:
        return {}
    done = case_status(case)["runs"].get(runbook_name, {}).get("done", {})
    install = with_case_release(install, records)
    out: dict[str, str | None] = {}
    ro = replace(case, readonly=True)
    for step in rb.steps:
        if step.id not in done:
            continue
        action = actions.load(step.action)()
        ctx = step_context(step, rb, install, ro, Journal(None), RunOptions(dry_run=True), {})
        try:
            out[step.id] = action.still_holds(ctx)
        except MoltirError as exc:
            out[step.id] = exc.one_line()
    return out

