"""Before a run changes anything: every pending step's preflight (the environment can finish the
run), and the read-only plan of every step that ``--dry-run`` shows."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from moltir import actions
from moltir.actions.base import Plan, RunOptions, StepContext
from moltir.engine.case import Case
from moltir.engine.cases import case_status
from moltir.engine.journal import Journal
from moltir.engine.results import PlannedStep
from moltir.engine.runbook import Runbook, Step
from moltir.errors import MoltirError
from moltir.openclaw import Install


def step_context(step: Step, runbook: Runbook, install: Install, case: Case, journal: Journal,
                 options: RunOptions, shared: dict[str, Any]) -> StepContext:
    """What an action sees of one step of a run (also for planning, warming and re-checking)."""
    return StepContext(install=install, case=case, journal=journal, params=dict(step.params), step_id=step.id,
                       runbook=runbook.name, timeout_s=step.timeout_s, options=options, shared=shared)


def plan_run(runbook: Runbook, install: Install, case: Case, options: RunOptions, *,
             resumed: bool = False) -> list[PlannedStep]:
    """Plan every step with no side effects (the case is read-only, the journal writes nothing).

    ``resumed``: the run would continue ``case``; a step verified done there whose effect still holds
    is planned as done earlier (the real run skips it), one whose effect is gone as running again."""
    ro_case = replace(case, readonly=True)
    journal = Journal(None)
    shared: dict[str, Any] = {"dry_run": True}
    planned: list[PlannedStep] = []
    done: Mapping[str, Any] = {}
    if resumed:
        with contextlib.suppress(MoltirError):
            done = case_status(case)["runs"].get(runbook.name, {}).get("done", {})
    for step in runbook.steps:
        action = actions.load(step.action)()
        ctx = step_context(step, runbook, install, ro_case, journal, replace(options, dry_run=True), shared)
        why = action.still_holds(ctx) if step.id in done else None
        if step.id in done and why is None:
            planned.append(PlannedStep(step, Plan(f"done earlier in case {case.id} at {done[step.id]}; still "
                                                  "holds: the run skips it", already_done=True)))
            continue
        try:
            plan = action.plan(ctx)
            if why is not None:
                plan = replace(plan, warnings=(*plan.warnings, f"done earlier in case {case.id}, but {why}: "
                                                               "the run does it again"))
            planned.append(PlannedStep(step, plan))
        except MoltirError as exc:
            planned.append(PlannedStep(step, None, exc.one_line(), exc.exit_code))
    return planned



def preflight(runbook: Runbook, install: Install, options: RunOptions, case: Case | None = None) -> None:
    """Every still-pending step's :meth:`~moltir.actions.base.Action.preflight`, before the case is
    opened and before the first step: an environment that cannot finish the run (no usable keyring
    for ``token.rotate``) is refused with its exit code (3) while nothing has changed, instead of
    after ``contain`` stopped the gateway and edited the config. Steps already verified done in
    ``case`` (the case the run resumes) are not checked again. When a step that is not the first
    is refused, the hint also says how to run the steps before it without it (an operator who
    cannot fix the keyring in the middle of an incident can still stop the gateway)."""
    done = set(case_status(case)["runs"].get(runbook.name, {}).get("done", {})) if case is not None else set()
    pending = [s for s in runbook.steps if s.id not in done]
    for i, step in enumerate(pending):
        try:
            actions.load(step.action)().preflight(install, step.params, options)
        except MoltirError as exc:
            hint = exc.hint
            if i > 0:
                hint += (f"{'; ' if hint else ''}or run without it: copy the runbook ('moltir runbook show "
                         f"{runbook.name}'), drop step '{step.id}' and pass --runbook")
            raise MoltirError(f"{exc.message.rstrip('.')} (needed by step '{step.id}'; nothing was changed)",
                              hint=hint, exit_code=exc.exit_code) from None

