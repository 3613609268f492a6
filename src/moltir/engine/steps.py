"""One step of a run: plan, apply and verify it with the journal records around it; a deferred
verification watched in a thread while the next steps run; the next steps' warm-up done while a
step waits."""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from moltir import actions
from moltir.actions.base import Deferred, RunOptions, StepResult
from moltir.engine.case import Case
from moltir.engine.journal import Journal
from moltir.engine.plan import step_context
from moltir.engine.results import Emit, StepOutcome
from moltir.engine.runbook import Runbook, Step
from moltir.errors import EXIT_STEP_FAILED, MoltirError
from moltir.openclaw import Install
from moltir.redaction import redact


class Interrupted(BaseException):
    """Raised to stop a run; a BaseException so no action's ``except Exception`` swallows it."""


class Warmer:
    """The next steps' ``Action.warm``, in one background thread, started when a step says it is
    waiting (``ctx.waiting()``: gateway.stop during the gateway's drain) and joined before the next
    step starts, so no step ever runs beside its own warm-up. Read-only contexts, errors ignored."""

    def __init__(self, steps: list[Step], runbook: Runbook, install: Install, case: Case,
                 options: RunOptions, shared: dict[str, Any] | None = None,
                 cleanups: list[Callable[[], None]] | None = None) -> None:
        self.steps, self.runbook, self.install, self.options = steps, runbook, install, options
        self.case = replace(case, readonly=True)
        self.shared = shared if shared is not None else {}
        self.cleanups = cleanups if cleanups is not None else []
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None and self.steps:
            self.thread = threading.Thread(target=self._run, name="warm", daemon=True)
            self.thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        shared: dict[str, Any] = {"dry_run": True, "warm": True}
        options = replace(self.options, dry_run=True)
        for step in self.steps:
            action = actions.load(step.action)()
            with contextlib.suppress(Exception):  # a cache not warmed: the step does the work itself
                action.warm(step_context(step, self.runbook, self.install, self.case, Journal(None), options,
                                         shared))
            try:
                undo = action.prepare(step_context(step, self.runbook, self.install, self.case, Journal(None),
                                                   self.options, self.shared))
            except Exception:  # noqa: S112 -- not prepared: apply does it all
                continue
            if undo is not None:
                self.cleanups.append(undo)


class Watch:
    """A step's deferred verification, running in a thread while the next steps run."""

    def __init__(self, step: Step, outcome: StepOutcome, deferred: Deferred, started: float) -> None:
        self.step, self.outcome, self.deferred, self.started = step, outcome, deferred, started
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"verify-{step.id}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.deferred.check()
        except BaseException as exc:  # reported by the engine thread on join
            self.error = exc


def finish_watch(watch: Watch, runbook: Runbook, journal: Journal, emit: Emit) -> StepOutcome:
    """Wait for a deferred verification; journal the step as verified done, or as failed."""
    watch.thread.join()
    step, outcome = watch.step, watch.outcome
    ms = int((time.monotonic() - watch.started) * 1000)
    exc = watch.error
    if exc is None:
        journal.append("step.done", runbook=runbook.name, step=step.id, action=step.action, status=outcome.status,
                       summary=outcome.summary, details=dict(outcome.details), warnings=list(outcome.warnings),
                       duration_ms=outcome.duration_ms, verified=True, watched=watch.deferred.description,
                       watched_ms=ms)
        return outcome
    if isinstance(exc, MoltirError):
        error, code = exc.one_line(), exc.exit_code
    else:
        error = f"internal error while checking that {watch.deferred.description} ({type(exc).__name__})"
        code = EXIT_STEP_FAILED
        journal.append("step.error", runbook=runbook.name, step=step.id, action=step.action,
                       error=redact(f"{type(exc).__name__}: {exc}"),
                       traceback=redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))
    journal.append("step.failed", runbook=runbook.name, step=step.id, action=step.action, error=error,
                   exit_code=code, duration_ms=outcome.duration_ms, applied=True, result=outcome.summary,
                   watched=watch.deferred.description)
    emit("step.failed", {"step": step.id, "action": step.action, "error": error})
    return replace(outcome, status="failed", error=error, exit_code=code)


def run_step(step: Step, runbook: Runbook, install: Install, case: Case, journal: Journal,
             options: RunOptions, shared: dict[str, Any], emit: Emit,
             waiting: Callable[[], None] | None = None) -> tuple[StepOutcome, Watch | None]:
    """Plan, apply and verify ``step``, journalling each boundary; a failure is an outcome, not an
    exception (an interruption propagates). With a deferred verification, the ``Watch`` on it."""
    action = actions.load(step.action)()
    ctx = step_context(step, runbook, install, case, journal, options, shared)
    if waiting is not None:
        ctx.waiting = waiting
    start = time.monotonic()
    journal.append("step.start", runbook=runbook.name, step=step.id, action=step.action,
                   params=dict(step.params), timeout_s=step.timeout_s)
    emit("step.start", {"step": step.id, "action": step.action})
    result: StepResult | None = None
    try:
        plan = action.plan(ctx)
        journal.append("step.plan", runbook=runbook.name, step=step.id, summary=plan.summary,
                       already_done=plan.already_done, changes=len(plan.changes))
        result = action.apply(ctx)
        deferred = action.verify(ctx, result)
    except MoltirError as exc:
        ms = int((time.monotonic() - start) * 1000)
        journal.append("step.failed", runbook=runbook.name, step=step.id, action=step.action,
                       error=exc.one_line(), exit_code=exc.exit_code, duration_ms=ms,
                       applied=result is not None, result=result.summary if result else None)
        emit("step.failed", {"step": step.id, "action": step.action, "error": exc.one_line()})
        return StepOutcome(step.id, step.action, "failed", result.summary if result else "", {}, ms,
                           exc.one_line(), exc.exit_code), None
    except (KeyboardInterrupt, Interrupted):
        journal.append("step.interrupted", runbook=runbook.name, step=step.id)
        raise
    except Exception as exc:  # a bug: traceback to the journal, one line to the user
        ms = int((time.monotonic() - start) * 1000)
        tb = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        journal.append("step.error", runbook=runbook.name, step=step.id, action=step.action,
                       error=f"{type(exc).__name__}: {redact(str(exc))}", traceback=tb, duration_ms=ms)
        line = f"internal error in {step.action} ({type(exc).__name__}); traceback in {case.journal_path}"
        emit("step.failed", {"step": step.id, "action": step.action, "error": line})
        return StepOutcome(step.id, step.action, "failed", "", {}, ms, line, EXIT_STEP_FAILED), None
    ms = int((time.monotonic() - start) * 1000)
    outcome = StepOutcome(step.id, step.action, result.status, result.summary, result.details, ms,
                          warnings=result.warnings)
    emit("step.done", {"step": step.id, "action": step.action, "status": result.status,
                       "summary": result.summary, "duration_ms": ms, "warnings": list(result.warnings)})
    if deferred is not None:
        # applied and checked once; verified done only when the watch passes (see finish_watch)
        journal.append("step.applied", runbook=runbook.name, step=step.id, action=step.action,
                       status=result.status, summary=result.summary, duration_ms=ms, watching=deferred.description)
        return outcome, Watch(step, outcome, deferred, start)
    journal.append("step.done", runbook=runbook.name, step=step.id, action=step.action, status=result.status,
                   summary=result.summary, details=dict(result.details), warnings=list(result.warnings),
                   duration_ms=ms, verified=True)
    return outcome, None
