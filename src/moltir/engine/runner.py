"""The runbook engine: plan -> lock -> execute in order -> verify -> result.

Every run belongs to a case. ``contain`` opens a case, or resumes the install's latest one
when it did not finish (crash, kill -9, a failed step): steps already verified done in that
case are skipped, so the run picks up at the first step not verified done. ``restore`` runs
in the case it undoes. ``--dry-run`` plans every step against a read-only case and touches
nothing: no case folder, no lock, no journal, no config, keyring or process change.

Step policy: a failing step aborts the run unless the runbook says ``on_failure: "continue"``;
either way the run's exit code is non-zero. The journal records run and step boundaries with
durations; the console gets the same events through structlog.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from moltir import actions, paths
from moltir.actions.base import Deferred, Plan, RunOptions, StepContext, StepResult
from moltir.engine.case import Case, latest_case_dir, new_case_id, remember_latest, same_dir
from moltir.engine.journal import Journal
from moltir.engine.lock import run_lock
from moltir.engine.runbook import Runbook, Step
from moltir.errors import EXIT_ENV, EXIT_INTERRUPTED, EXIT_OK, EXIT_STEP_FAILED, EXIT_USAGE, MoltirError, env_error
from moltir.openclaw import Install
from moltir.redaction import redact, redact_value


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


def _no_emit(event: str, fields: Mapping[str, Any]) -> None:
    return None


# ---- case lookup ----------------------------------------------------------------------------

#: case statuses of a contain case whose changes (if any) are still in place: not restored
UNRESTORED = ("open", "interrupted", "failed", "contained")


def case_status(case: Case) -> dict[str, Any]:
    """What the journal says about a case: status, per-runbook step states, timestamps."""
    records = Journal(case.journal_path).records() if case.journal_path.exists() else []
    runs: dict[str, dict[str, Any]] = {}
    roles: dict[str, str] = {}  # command (contain/restore/drill) -> the runbook it ran last
    for rec in records:
        rb = rec.get("runbook")
        if not isinstance(rb, str):
            continue
        run = runs.setdefault(rb, {"done": {}, "failed": {}, "started": None, "finished": None, "ok": None,
                                   "order": [], "changed": False})
        ev = rec.get("event")
        if ev == "run.start":
            run["order"] = list(rec.get("steps") or [])
            run["started"] = rec.get("ts")
            run["finished"] = None
            run["ok"] = None
            role = rec.get("role")
            roles[role if isinstance(role, str) and role else rb] = rb
        elif ev == "run.done":
            run["finished"] = rec.get("ts")
            run["ok"] = rec.get("status") in ("ok", "noop")
        elif ev == "step.done" and rec.get("verified"):
            run["done"][rec.get("step")] = rec.get("ts")
            run["failed"].pop(rec.get("step"), None)
        elif ev == "step.failed":
            run["failed"][rec.get("step")] = rec.get("error")
        if (ev in ("step.done", "step.applied") and rec.get("status") in CHANGED) or \
                (ev == "step.failed" and rec.get("applied")):
            run["changed"] = True
    kind = case.info.get("kind", "contain")
    status = "open"
    main = runs.get(roles.get(kind, kind)) or runs.get("contain")
    restore = runs.get(roles.get("restore", "restore"))
    if restore and restore["ok"]:
        status = "restored"
    elif restore and restore["finished"] is None and restore["started"]:
        status = "restore-interrupted"
    elif restore and restore["ok"] is False:
        status = "restore-failed"
    elif main and main["ok"]:
        status = "contained" if kind == "contain" else "done"
    elif main and main["ok"] is False:
        status = "failed"
    elif main and main["started"] and main["finished"] is None:
        status = "interrupted"
    return {"status": status, "runs": runs, "records": len(records)}


def find_latest(install: Install) -> Case | None:
    """The install's latest incident case (a drill never takes that place; see ``remember_latest``)."""
    folder = latest_case_dir(paths.installs_dir(install.env), install.key)
    return Case.open(folder) if folder else None


def continued_by(case: Case, install: Install) -> Case | None:
    """The install's latest case when it continues ``case`` (directly or through cases in
    between, each naming the one before in ``case.json`` ``continues``), else None.

    Decision: a case carried over by ``contain --new-case`` keeps its own journal (it stays
    evidence, and moltir never rewrites a case's records afterwards), so whether it is still
    contained is told from the case that continues it: ``moltir status`` of the earlier case
    says "continued by" or "restored by" that case, and ``moltir restore`` of it points there.
    """
    try:
        head = find_latest(install)
    except MoltirError:
        return None
    cur, seen = head, set()
    while cur is not None and not same_dir(cur.dir, case.dir):
        earlier = cur.info.get("continues")
        folder = earlier.get("dir") if isinstance(earlier, dict) else None
        if not isinstance(folder, str) or folder in seen:
            return None
        seen.add(folder)
        if same_dir(Path(folder), case.dir):
            return head
        try:
            cur = Case.open(Path(folder))
        except MoltirError:
            return None
    return None


def require_install(install: Install) -> None:
    """Refuse (exit 3, before any case or lock) an install that is not there at all.

    A state dir that does not exist and no config file is a mistyped ``--state-dir`` /
    ``--profile`` / ``OPENCLAW_STATE_DIR`` far more often than an install: running the
    runbook against it would open a case for nothing and report a gateway "already stopped".
    A config without its state dir (OpenClaw creates the state dir at first start) is an
    install, and so is a state dir without a config (the gateway runs on defaults).
    """
    if install.state_dir.exists() and not install.state_dir.is_dir():
        raise MoltirError(f"{install.state_dir} is a file, not a folder: an OpenClaw state dir is a folder",
                          hint="pass the folder that holds openclaw.json (--state-dir), or --config for the file; "
                               "nothing was changed", exit_code=EXIT_USAGE)
    if install.state_dir.exists() or install.config_path.exists():
        return
    raise env_error(f"no OpenClaw install at {install.state_dir}: the folder does not exist and there is no "
                    f"config at {install.config_path}",
                    "check --state-dir / --profile / --config (or OPENCLAW_STATE_DIR, OPENCLAW_PROFILE); "
                    "'moltir doctor' shows what moltir found; nothing was changed")


def existing_case(install: Install, *, case_dir: Path | None, new_case: bool, kind: str,
                  readonly: bool = False, notes: list[str] | None = None) -> Case | None:
    """The case a run of ``kind`` would work in if it started now, or None when it opens a new one.

    One rule for real runs and dry runs, so ``--dry-run`` plans against the case the run will
    use: ``--case-dir`` names it (a folder that is not a case must be new or empty: exit 2);
    ``contain`` resumes the install's latest contain case unless it is restored (a drill never
    counts); ``restore`` works in the latest case. Decision: a restore with no case at all is a
    no-op that says so (exit 0, like a second restore): nothing is contained, so there is
    nothing to undo; the message names where moltir looked, for a case kept elsewhere.
    """
    if case_dir is not None:
        if (case_dir / "case.json").is_file():
            return Case.open(case_dir, readonly=readonly)
        if kind == "restore" or (case_dir.exists() and (not case_dir.is_dir() or any(case_dir.iterdir()))):
            raise MoltirError(f"{case_dir} is not a moltir case (no case.json)",
                              hint="pass a case folder from 'moltir evidence list'" if kind == "restore"
                              else "choose a new or empty folder for --case-dir", exit_code=EXIT_USAGE)
        return None
    if kind == "restore":
        latest = find_latest(install)
        if latest is None:
            raise MoltirError(f"nothing to restore: moltir has no case for {install.state_dir} (it was never "
                              f"contained with the moltir state in {paths.moltir_home(install.env)})",
                              hint="if it was contained with another MOLTIR_HOME or --case-dir, pass --case-dir",
                              exit_code=EXIT_OK)
        return replace(latest, readonly=readonly)
    if kind == "contain" and not new_case:
        try:
            latest = _unrestored_contain_case(install)
            if latest is not None:
                return replace(latest, readonly=readonly)
        except MoltirError as exc:
            # Decision: a damaged case (journal or case.json edited/corrupted) never blocks containment:
            # the run opens a new case and says so; the damaged one stays as it is, as evidence.
            if notes is not None:
                notes.append(f"the latest case cannot be resumed ({exc.message}); opening a new case")
    return None


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


def open_case(runbook: Runbook, install: Install, *, case_dir: Path | None, new_case: bool,
              reason: str, kind: str, notes: list[str] | None = None,
              incident: str | None = None) -> tuple[Case, bool]:
    """The case this run belongs to, and whether it resumes an earlier run in it. ``incident``: the id
    shared by the cases of one ``--all-profiles`` run (recorded in a new case's ``case.json``)."""
    found = existing_case(install, case_dir=case_dir, new_case=new_case, kind=kind, notes=notes)
    if found is not None:
        return found, True
    cid = new_case_id()
    folder = case_dir if case_dir is not None else paths.cases_root(install.env) / cid
    carried = _still_contained(install) if kind == "contain" else None
    extra: dict[str, Any] = ({"continues": {"case_id": carried[0].info.get("case_id"), "dir": str(carried[0].dir),
                                            "sections": sorted(carried[1])}} if carried else {})
    if incident:
        extra["incident"] = incident
    case = Case.create(folder, kind=kind, install_info=install.describe(), reason=reason, case_id=cid,
                       extra=extra or None)
    if carried:
        earlier, sections = carried
        try:
            for name, data in sections.items():
                case.record_restore(name, data)
        except MoltirError as exc:
            raise case.abandon_new(exc) from None
        if notes is not None:
            notes.append(f"case {earlier.info.get('case_id')} is still contained (not restored): this new case "
                         f"carries its pre-incident record ({', '.join(sorted(sections))}), so 'moltir restore' "
                         "puts back what was there before that first containment")
    try:
        remember_latest(paths.installs_dir(install.env), install.key, case.dir, install.state_dir, kind=kind)
    except MoltirError as exc:  # e.g. disk full: no step ran, so no half-made case is left (exit 3)
        raise case.abandon_new(exc) from None
    return case, False


def _unrestored_contain_case(install: Install) -> Case | None:
    """The install's latest contain case when it is not restored (open, interrupted, failed or
    contained); raises MoltirError when that case is damaged."""
    latest = find_latest(install)
    if latest is None or latest.info.get("kind", "contain") != "contain":
        return None
    return latest if case_status(latest)["status"] in UNRESTORED else None


#: restore.json sections a new contain case takes over from a still-contained earlier case
CARRIED_SECTIONS = ("gateway", "dm_policy")


def _still_contained(install: Install) -> tuple[Case, dict[str, Any]] | None:
    """The install's latest contain case when it changed things and was not restored, with the
    restore.json sections a new contain case must carry.

    Decision: ``contain --new-case`` (or a new ``--case-dir``) while an earlier containment is still in
    place would otherwise record the contained state ("disabled", "gateway not running") as the
    pre-incident one, and 'moltir restore' of the new case would put nothing back while the real
    pre-incident values sat in the earlier case. The new case therefore starts with the earlier
    case's ``gateway`` and ``dm_policy`` records (write-once: the new run's own records only add
    paths seen for the first time) and names it in ``case.json`` (``continues``). The token record
    is not carried: the new case rotates again and proves its own previous token refused; restore
    never brings back any old token anyway. A damaged earlier case carries nothing.
    """
    try:
        latest = _unrestored_contain_case(install)
        if latest is None:
            return None
        data = latest.restore_data()
    except MoltirError:
        return None
    sections = {k: data[k] for k in CARRIED_SECTIONS if isinstance(data.get(k), dict)}
    return (latest, sections) if sections else None


def install_lock(install: Install, command: str) -> AbstractContextManager[None]:
    """The per-install run lock (exit 4 naming the holder); re-entrant within this process."""
    return run_lock(paths.locks_dir(install.env), install.key, str(install.state_dir), command,
                    anchor=install.state_dir)


# ---- planning -----------------------------------------------------------------------------

def _context(step: Step, runbook: Runbook, install: Install, case: Case, journal: Journal,
             options: RunOptions, shared: dict[str, Any]) -> StepContext:
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
        ctx = _context(step, runbook, install, ro_case, journal, replace(options, dry_run=True), shared)
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


# ---- execution ----------------------------------------------------------------------------

class Interrupted(BaseException):
    """Raised to stop a run; a BaseException so no action's ``except Exception`` swallows it."""


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


class _Warmer:
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
                action.warm(_context(step, self.runbook, self.install, self.case, Journal(None), options, shared))
            try:
                undo = action.prepare(_context(step, self.runbook, self.install, self.case, Journal(None),
                                               self.options, self.shared))
            except Exception:  # noqa: S112 -- not prepared: apply does it all
                continue
            if undo is not None:
                self.cleanups.append(undo)


class _Watch:
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


def _execute_locked(runbook: Runbook, install: Install, case: Case, options: RunOptions, *, resumed: bool,
                    emit: Emit, role: str) -> RunResult:
    journal = case.journal()
    previous = case_status(case)["runs"].get(runbook.name, {})
    done_before: dict[str, Any] = dict(previous.get("done", {})) if resumed else {}
    # exit 2 promises "nothing changed": not so once an earlier run of this runbook in the case changed things
    changed_before = bool(previous.get("changed")) if resumed else False
    regressed = _regressions(runbook, install, case, journal, options, done_before, emit)
    for step_id in regressed:
        done_before.pop(step_id)
    pending = [s for s in runbook.steps if s.id not in done_before]
    resumed_from = pending[0].id if (pending and done_before) else ""
    if not pending:
        msg = f"nothing to do: every step of '{runbook.name}' is already done in case {case.id}"
        journal.append("run.noop", runbook=runbook.name, case_id=case.id)
        earlier = tuple(StepOutcome(s.id, s.action, "done-earlier", f"done at {done_before.get(s.id)}")
                        for s in runbook.steps)
        return RunResult(runbook.name, "noop", EXIT_OK, case.id, str(case.dir), earlier, message=msg)

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
    shared: dict[str, Any] = {}
    outcomes: list[StepOutcome] = []
    watches: list[_Watch] = []
    exit_code = EXIT_OK
    status = "ok"
    aborted_at = ""
    warmer = _Warmer([], runbook, install, case, options)
    cleanups: list[Callable[[], None]] = []
    try:
        for step in runbook.steps:
            if step.id in done_before:
                outcomes.append(StepOutcome(step.id, step.action, "done-earlier",
                                            f"already done in this case at {done_before[step.id]}"))
                emit("step.skip", {"step": step.id, "action": step.action, "reason": "done earlier"})
                continue
            if aborted_at:
                outcomes.append(StepOutcome(step.id, step.action, "not-run", f"not run: {aborted_at} failed"))
                continue
            warmer.join()
            later = [s for s in runbook.steps[runbook.steps.index(step) + 1:] if s.id not in done_before]
            warmer = _Warmer(later, runbook, install, case, options, shared, cleanups)
            outcome, watch = _run_step(step, runbook, install, case, journal, options, shared, emit,
                                       waiting=warmer.start)
            outcomes.append(outcome)
            if watch is not None:
                watches.append(watch)
            if outcome.status == "failed":
                code = outcome.exit_code or EXIT_STEP_FAILED
                if code == EXIT_USAGE and (changed_before or any(o.status in CHANGED for o in outcomes)):
                    code = EXIT_STEP_FAILED  # exit 2 promises "nothing changed": earlier steps did change things
                exit_code = exit_code or code
                status = "failed"
                if step.on_failure == "abort":
                    aborted_at = step.id
        warmer.join()
        for watch in watches:
            final = _finish_watch(watch, runbook, journal, emit)
            outcomes[outcomes.index(watch.outcome)] = final
            if final.status == "failed":
                exit_code = exit_code or final.exit_code or EXIT_STEP_FAILED
                status = "failed"
    except (KeyboardInterrupt, Interrupted):
        # a background verification that already ended still counts: a resumed run need not redo its step
        for watch in watches:
            if not watch.thread.is_alive() and watch.outcome in outcomes:
                with contextlib.suppress(KeyboardInterrupt, Interrupted):
                    outcomes[outcomes.index(watch.outcome)] = _finish_watch(watch, runbook, journal, emit)
        journal.append("run.interrupted", runbook=runbook.name, case_id=case.id)
        emit("run.interrupted", {"runbook": runbook.name})
        return RunResult(runbook.name, "interrupted", EXIT_INTERRUPTED, case.id, str(case.dir), tuple(outcomes),
                         message=f"interrupted; run 'moltir {runbook.name}' again to resume",
                         resumed_from=resumed_from)
    finally:
        # preparations no step took (the step failed, was not reached, or the run was interrupted)
        warmer.join(timeout=10.0)
        for undo in cleanups:
            with contextlib.suppress(Exception):
                undo()
    message = _final_message(runbook, case, outcomes, status)
    journal.append("run.done", runbook=runbook.name, case_id=case.id, status=status, exit_code=exit_code)
    emit("run.done", {"runbook": runbook.name, "status": status, "message": message})
    return RunResult(runbook.name, status, exit_code, case.id, str(case.dir), tuple(outcomes), message=message,
                     resumed_from=resumed_from, regressed=tuple(regressed.items()))


def _regressions(runbook: Runbook, install: Install, case: Case, journal: Journal, options: RunOptions,
                 done_before: Mapping[str, Any], emit: Emit) -> dict[str, str]:
    """Steps this case did whose effect is gone (the gateway running again, a DM opened by hand):
    {step id: why}. They run again; the rest stay done (see ``Action.still_holds``)."""
    found: dict[str, str] = {}
    for step in runbook.steps:
        if step.id not in done_before:
            continue
        action = actions.load(step.action)()
        ctx = _context(step, runbook, install, replace(case, readonly=True), Journal(None), options, {})
        why = action.still_holds(ctx)
        if why:
            found[step.id] = why
            journal.append("step.regressed", runbook=runbook.name, step=step.id, action=step.action, reason=why)
            emit("step.regressed", {"step": step.id, "action": step.action, "reason": why})
    return found


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
    out: dict[str, str | None] = {}
    ro = replace(case, readonly=True)
    for step in rb.steps:
        if step.id not in done:
            continue
        action = actions.load(step.action)()
        ctx = _context(step, rb, install, ro, Journal(None), RunOptions(dry_run=True), {})
        try:
            out[step.id] = action.still_holds(ctx)
        except MoltirError as exc:
            out[step.id] = exc.one_line()
    return out


def _final_message(runbook: Runbook, case: Case, outcomes: list[StepOutcome], status: str) -> str:
    if status == "ok":
        return f"{runbook.name}: all {len(outcomes)} steps done (case {case.id})"
    failed = [o for o in outcomes if o.status == "failed"]
    names = ", ".join(f"{o.id} ({o.error})" for o in failed)
    if case.info.get("kind") == "drill":  # every drill is a fresh case: nothing to resume
        return (f"drill failed: {names}. Fix the cause and run 'moltir drill' again "
                f"(case {case.id}; 'moltir drill history' keeps the record)")
    return (f"{runbook.name} incomplete: {names}. Fix the cause and run 'moltir {runbook.name}' again: "
            f"it resumes at the first step not done (case {case.id})")


def _finish_watch(watch: _Watch, runbook: Runbook, journal: Journal, emit: Emit) -> StepOutcome:
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


def _run_step(step: Step, runbook: Runbook, install: Install, case: Case, journal: Journal,
              options: RunOptions, shared: dict[str, Any], emit: Emit,
              waiting: Callable[[], None] | None = None) -> tuple[StepOutcome, _Watch | None]:
    action = actions.load(step.action)()
    ctx = _context(step, runbook, install, case, journal, options, shared)
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
        # applied and checked once; verified done only when the watch passes (see _finish_watch)
        journal.append("step.applied", runbook=runbook.name, step=step.id, action=step.action,
                       status=result.status, summary=result.summary, duration_ms=ms, watching=deferred.description)
        return outcome, _Watch(step, outcome, deferred, start)
    journal.append("step.done", runbook=runbook.name, step=step.id, action=step.action, status=result.status,
                   summary=result.summary, details=dict(result.details), warnings=list(result.warnings),
                   duration_ms=ms, verified=True)
    return outcome, None
