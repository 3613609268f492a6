"""What a run produces: each step's outcome, each step's plan (``--dry-run``), the run's result
(its JSON form is the ``--json`` output of contain, restore and drill), and the progress callback."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moltir.actions.base import Plan
from moltir.engine.runbook import Step
from moltir.redaction import redact_value


@dataclass(frozen=True)
class StepOutcome:
    id: str
    action: str
    status: str  # done | already | skipped | forced | failed | done-earlier | not-run | planned
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    duration_ms: int = 0
    error: str = ""
    exit_code: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    plan: Plan | None
    error: str = ""
    exit_code: int = 0  # the exit code the run would end with at this step (error set)


@dataclass(frozen=True)
class RunResult:
    runbook: str
    status: str  # ok | failed | interrupted | dry-run | noop
    exit_code: int
    case_id: str = ""
    case_dir: str = ""
    steps: tuple[StepOutcome, ...] = ()
    plans: tuple[PlannedStep, ...] = ()
    message: str = ""
    resumed_from: str = ""
    regressed: tuple[tuple[str, str], ...] = ()  # (step id, why): done earlier, effect gone, run again

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "runbook": self.runbook, "status": self.status, "exit_code": self.exit_code,
            "case_id": self.case_id, "case_dir": self.case_dir, "message": self.message,
            "resumed_from": self.resumed_from or None, "regressed": dict(self.regressed),
            "steps": [{"id": s.id, "action": s.action, "status": s.status, "summary": s.summary,
                       "details": dict(s.details), "duration_ms": s.duration_ms, "error": s.error or None,
                       "warnings": list(s.warnings)} for s in self.steps],
        }
        if self.plans:
            out["plan"] = [{"id": p.step.id, "action": p.step.action, "error": p.error or None,
                            "summary": p.plan.summary if p.plan else None,
                            "already_done": p.plan.already_done if p.plan else None,
                            "simulated": p.plan.simulated if p.plan else None,
                            "changes": [c.__dict__ for c in p.plan.changes] if p.plan else [],
                            "diff": p.plan.diff if p.plan else "",
                            "warnings": list(p.plan.warnings) if p.plan else []} for p in self.plans]
        redacted: dict[str, Any] = redact_value(None, out)
        return redacted


Emit = Callable[[str, Mapping[str, Any]], None]
CHANGED = ("done", "forced")  # step statuses that changed something (not "already", "skipped")
