"""Executing a runbook: lock -> execute in order -> verify -> result.

Every run belongs to a case (:mod:`moltir.engine.cases`). ``contain`` opens a case, or resumes the
install's latest one when it did not finish (crash, kill -9, a failed step): steps already verified
done in that case are skipped, so the run picks up at the first step not verified done (a step whose
effect is gone runs again, :mod:`moltir.engine.effects`). ``restore`` runs in the case it undoes.
``--dry-run`` plans every step against a read-only case and touches nothing
(:mod:`moltir.engine.plan`).

Step policy: a failing step aborts the run unless the runbook says ``on_failure: "continue"``;
either way the run's exit code is non-zero. The journal records run and step boundaries with
durations; the console gets the same events through structlog.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from moltir.actions.base import RunOptions
from moltir.engine.case import Case
from moltir.engine.cases import case_status, install_lock
from moltir.engine.effects import regressions
from moltir.engine.journal import Journal
from moltir.engine.results import CHANGED, Emit, RunResult, StepOutcome
from moltir.engine.runbook import Runbook, Step
from moltir.engine.steps import Interrupted, Warmer, Watch, finish_watch, run_step
from moltir.errors import EXIT_ENV, EXIT_INTERRUPTED, EXIT_OK, EXIT_STEP_FAILED, EXIT_USAGE, MoltirError
from moltir.openclaw import Install


def _no_emit(event: str, fields: Mapping[str, Any]) -> None:
    return None


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """During a run, SIGTERM (``kill``, a service manager, a closing terminal) stops it like Ctrl-C:
    the step in progress cleans up (child processes, temp files, an incomplete evidence marker),
    the journal records ``run.interrupted`` and the run exits 130, resumable."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)



def execute(runbook: Runbook, install: Install, case: Case, options: RunOptions, *, resumed: bool,
            emit: Emit = _no_emit, command: str = "", role: str = "") -> RunResult:
    """Run ``runbook`` in ``case`` under the install's lock.

    ``role`` is the command that runs it (contain, restore, drill; default: the runbook's
    name): a copied runbook with another name still counts as that command's run in
    ``moltir status`` and for restore.
    """
    with install_lock(install, command or runbook.name), _sigterm_interrupts():
        return _execute_locked(runbook, install, case, options, resumed=resumed, emit=emit,
                               role=role or runbook.name)


@dataclass
class _Prior:
    """What earlier runs of this runbook in the case left (nothing when the run does not resume)."""

    done: dict[str, Any]  # step id -> when it was verified done (and still holds)
    changed: bool  # an earlier run changed something
    regressed: dict[str, str]  # step id -> why its effect is gone (it runs again)


def _prior(runbook: Runbook, install: Install, case: Case, journal: Journal, options: RunOptions,
           resumed: bool, emit: Emit) -> _Prior:
    previous = case_status(case)["runs"].get(runbook.name, {})
    done_before: dict[str, Any] = dict(previous.get("done", {})) if resumed else {}
    # exit 2 promises "nothing changed": not so once an earlier run of this runbook in the case changed things
    changed_before = bool(previous.get("changed")) if resumed else False
    regressed = regressions(runbook, install, case, journal, options, done_before, emit)
    for step_id in regressed:
        done_before.pop(step_id)
    return _Prior(done_before, changed_before, regressed)


def _execute_locked(runbook: Runbook, install: Install, case: Case, options: RunOptions, *, resumed: bool,
                    emit: Emit, role: str) -> RunResult:
    journal = case.journal()
    prior = _prior(runbook, install, case, journal, options, resumed, emit)
    pending = [s for s in runbook.steps if s.id not in prior.done]
    resumed_from = pending[0].id if (pending and prior.done) else ""
    if not pending:
        return _noop(runbook, case, journal, prior.done)
    _start(runbook, install, case, journal, options, role, resumed_from, emit)
    run = _Run(runbook, install, case, journal, options, emit, prior)
    try:
        run.run_steps()
        run.finish_watches()
    except (KeyboardInterrupt, Interrupted):
        run.settle_watches()
        journal.append("run.interrupted", runbook=runbook.name, case_id=case.id)
        emit("run.interrupted", {"runbook": runbook.name})
        return RunResult(runbook.name, "interrupted", EXIT_INTERRUPTED, case.id, str(case.dir),
                         tuple(run.outcomes),
                         message=f"interrupted; run 'moltir {resume_command(runbook.name)}' again to resume",
                         resumed_from=resumed_from)
    finally:
        run.release()
    message = _final_message(runbook, case, run.outcomes, run.status)
    journal.append("run.done", runbook=runbook.name, case_id=case.id, status=run.status, exit_code=run.exit_code)
    emit("run.done", {"runbook": runbook.name, "status": run.status, "message": message})
    return RunResult(runbook.name, run.status, run.exit_code, case.id, str(case.dir), tuple(run.outcomes),
                     message=message, resumed_from=resumed_from, regressed=tuple(prior.regressed.items()))


def _noop(runbook: Runbook, case: Case, journal: Journal, done_before: Mapping[str, Any]) -> RunResult:
    """Every step is already done in this case: journalled, nothing run."""
    msg = f"nothing to do: every step of '{runbook.name}' is already done in case {case.id}"
    journal.append("run.noop", runbook=runbook.name, case_id=case.id)
    earlier = tuple(StepOutcome(s.id, s.action, "done-earlier", f"done at {done_before.get(s.id)}")
                    for s in runbook.steps)
    return RunResult(runbook.name, "noop", EXIT_OK, case.id, str(case.dir), earlier, message=msg)


def _start(runbook: Runbook, install: Install, case: Case, journal: Journal, options: RunOptions, role: str,
           resumed_from: str, emit: Emit) -> None:
    """The run's first journal record (``run.start``) and event."""
    run_fields = {"runbook": runbook.name, "role": role, "case_id": case.id, "pid": os.getpid(),
                  "source": runbook.source, "steps": [s.id for s in runbook.steps],
                  "resumed_from": resumed_from or None, "openclaw": install.describe(),
                  "reason": options.reason or None}
    try:
        journal.append("run.start", **run_fields)
    except MoltirError as exc:
        # Decision: a journal that cannot take its first line of this run (disk full) means no
        # step ran, so nothing changed: exit 3 like a case that cannot be opened. The case stays
        # (its case.json and any carried restore record are whole; a torn journal tail is
        # recovered on the next run), and the next run of the same command resumes it.
        code = EXIT_ENV if exc.exit_code == EXIT_STEP_FAILED else exc.exit_code
        raise MoltirError(f"{exc.message.rstrip('.')}; no step ran and nothing was changed",
                          hint=f"{exc.hint + '; ' if exc.hint else ''}then run the command again: it continues "
                               f"in case {case.id}", exit_code=code) from None
    emit("run.start", run_fields)


class _Run:
    """One run's steps in order and what they leave: the outcomes, the exit code and status, the
    background verifications still running, the next steps' warm-up and the preparations to undo."""

    def __init__(self, runbook: Runbook, install: Install, case: Case, journal: Journal, options: RunOptions,
                 emit: Emit, prior: _Prior) -> None:
        self.runbook, self.install, self.case, self.journal = runbook, install, case, journal
        self.options, self.emit, self.prior = options, emit, prior
        self.shared: dict[str, Any] = {}
        self.outcomes: list[StepOutcome] = []
        self.watches: list[Watch] = []
        self.exit_code = EXIT_OK
        self.status = "ok"
        self.aborted_at = ""
        self.cleanups: list[Callable[[], None]] = []
        self.warmer = Warmer([], runbook, install, case, options)

    def run_steps(self) -> None:
        for step in self.runbook.steps:
            if step.id in self.prior.done:
                self.outcomes.append(StepOutcome(step.id, step.action, "done-earlier",
                                                 f"already done in this case at {self.prior.done[step.id]}"))
                self.emit("step.skip", {"step": step.id, "action": step.action, "reason": "done earlier"})
                continue
            if self.aborted_at:
                self.outcomes.append(StepOutcome(step.id, step.action, "not-run", f"not run: {self.aborted_at} failed"))
                continue
            self._run_one(step)
        self.warmer.join()

    def _run_one(self, step: Step) -> None:
        """Run ``step``, with the later steps' warm-up ready to start while it waits."""
        self.warmer.join()
        steps = self.runbook.steps
        later = [s for s in steps[steps.index(step) + 1:] if s.id not in self.prior.done]
        self.warmer = Warmer(later, self.runbook, self.install, self.case, self.options, self.shared, self.cleanups)
        outcome, watch = run_step(step, self.runbook, self.install, self.case, self.journal, self.options,
                                  self.shared, self.emit, waiting=self.warmer.start)
        self.outcomes.append(outcome)
        if watch is not None:
            self.watches.append(watch)
        if outcome.status == "failed":
            code = outcome.exit_code or EXIT_STEP_FAILED
            if code == EXIT_USAGE and (self.prior.changed or any(o.status in CHANGED for o in self.outcomes)):
                code = EXIT_STEP_FAILED  # exit 2 promises "nothing changed": earlier steps did change things
            self.exit_code = self.exit_code or code
            self.status = "failed"
            if step.on_failure == "abort":
                self.aborted_at = step.id

    def finish_watches(self) -> None:
        """Wait for every background verification; a failed one fails its step and the run."""
        for watch in self.watches:
            final = finish_watch(watch, self.runbook, self.journal, self.emit)
            self.outcomes[self.outcomes.index(watch.outcome)] = final
            if final.status == "failed":
                self.exit_code = self.exit_code or final.exit_code or EXIT_STEP_FAILED
                self.status = "failed"

    def settle_watches(self) -> None:
        """On interruption: a background verification that already ended still counts (a resumed run
        need not redo its step)."""
        for watch in self.watches:
            if not watch.thread.is_alive() and watch.outcome in self.outcomes:
                with contextlib.suppress(KeyboardInterrupt, Interrupted):
                    self.outcomes[self.outcomes.index(watch.outcome)] = finish_watch(watch, self.runbook,
                                                                                     self.journal, self.emit)

    def release(self) -> None:
        """Undo the preparations no step took (the step failed, was not reached, or the run was
        interrupted)."""
        self.warmer.join(timeout=10.0)
        for undo in self.cleanups:
            with contextlib.suppress(Exception):
                undo()


def _final_message(runbook: Runbook, case: Case, outcomes: list[StepOutcome], status: str) -> str:
    if status == "ok":
        return f"{runbook.name}: all {len(outcomes)} steps done (case {case.id})"
    failed = [o for o in outcomes if o.status == "failed"]
    names = ", ".join(f"{o.id} ({o.error})" for o in failed)
    if case.info.get("kind") == "drill":  # every drill is a fresh case: nothing to resume
        return (f"drill failed: {names}. Fix the cause and run 'moltir drill' again "
                f"(case {case.id}; 'moltir drill history' keeps the record)")
    return (f"{runbook.name} incomplete: {names}. Fix the cause and run 'moltir {resume_command(runbook.name)}' again: "
            f"it resumes at the first step not done (case {case.id})")


def resume_command(runbook_name: str) -> str:
    """The moltir command that runs (and resumes) a shipped runbook: its name, except ``pause``."""
    return "contain --level pause" if runbook_name == "pause" else runbook_name
