"""Running a runbook for ``contain``, ``restore`` and ``drill``: the orchestration between the CLI
(which parses, confirms and renders) and the engine.

* :func:`plan` -- ``--dry-run``: the case the run would use, every step planned read-only, and the
  same refusals the run would meet (preflight, an unwritable moltir home), as a RunResult whose
  exit code is the one the run would end with;
* :func:`run` -- under the install's lock: the restore checks, every pending step's preflight, the
  confirmation (a callback the CLI supplies), the case, the run; a drill's outcome goes to its
  history, a failed restore's message says what state the install is in.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from moltir import engine, paths
from moltir.actions.base import RunOptions
from moltir.commands import notifying, restore_risk
from moltir.engine.case import Case
from moltir.engine.runbook import Runbook
from moltir.errors import EXIT_ENV, EXIT_INTERRUPTED, EXIT_STEP_FAILED, MoltirError

Confirm = Callable[[Sequence[str]], None]  # shown the lines describing the run; raises to refuse
Note = Callable[[str], None]


@dataclass(frozen=True)
class Request:
    kind: str  # contain | restore | drill (the command, whatever the runbook is named)
    runbook: Runbook
    options: RunOptions
    case_dir: Path | None = None
    new_case: bool = False
    command: str = ""  # the command line, recorded in the lock and the journal
    preview: tuple[str, ...] = ()  # more lines for the confirmation (restore --hardened: the harden plan)
    notify: tuple[str, ...] = ()  # --notify URLs (or @FILE): see moltir.commands.notifying
    trigger: dict[str, Any] | None = None  # moltir trigger run: recorded in a new case's case.json
    accept_risk: tuple[str, ...] = ()  # restore --accept-risk CHECK-ID: see moltir.commands.restore_risk
    hardened: tuple[str, ...] = ()  # restore --hardened: the settings the harden run after it closes


def plan(install: Any, req: Request, note: Note) -> engine.RunResult:
    """``--dry-run``: plan every step against the case the run would use; touches nothing."""
    notifying.check_targets(install, req.notify)  # a refused --notify URL is refused by the dry run too
    dry_notes: list[str] = []
    existing = engine.existing_case(install, case_dir=req.case_dir, new_case=req.new_case, kind=req.kind,
                                    readonly=True, notes=dry_notes)
    for line in dry_notes:  # e.g. a damaged case the run would not resume: said now, as the run would
        note(line)
    case = existing if existing is not None else Case(req.case_dir or Path("(new case)"), readonly=True)
    plans = engine.plan_run(req.runbook, install, case, req.options, resumed=existing is not None)
    home_problem = paths.unwritable(req.case_dir if req.case_dir is not None else paths.cases_root(install.env))
    # Decision: a dry run exits with the code the run would end with when a step cannot be planned
    # (2 malformed config, 3 read-only config / no keyring ...), so a script (or a scared user) can
    # tell "this would work" from "this would stop half-way" by the exit code.
    blocked = next((p for p in plans if p.error or (p.plan and p.plan.fails)), None)
    problem: tuple[str, str, int] | None = None
    if blocked is not None and blocked.plan is not None:
        why = blocked.plan.warnings[-1] if blocked.plan.warnings else blocked.plan.summary  # the refusal: last
        problem = (blocked.step.id, why, blocked.plan.fails)
    elif blocked is not None:
        problem = (blocked.step.id, blocked.error, blocked.exit_code or EXIT_STEP_FAILED)
    if problem is None and home_problem is not None and existing is None:
        problem = ("preflight", f"the case folder cannot be created: {home_problem} (set MOLTIR_HOME or "
                                "--case-dir to a writable folder)", EXIT_ENV)
    if problem is None:
        try:
            engine.preflight(req.runbook, install, req.options, existing)
        except MoltirError as exc:
            problem = ("preflight", exc.one_line(), exc.exit_code)
    if req.kind == "restore" and existing is not None:
        found, missing = _risk_check(install, req, existing, note)
        for line in restore_risk.preview_lines(found, req.accept_risk):
            note(line)
        if problem is None and missing:
            refused = restore_risk.refusal(found, missing, existing.id)
            problem = ("preflight", refused.one_line(), refused.exit_code)
    message = "dry run: nothing was changed"
    if problem is not None:
        message += (f"; the run would stop at step '{problem[0]}': {problem[1]}" if problem[0] != "preflight"
                    else f"; the run would be refused: {problem[1]}")
    return engine.RunResult(req.runbook.name, "dry-run", problem[2] if problem else 0,
                            case.id if existing else "", str(case.dir), plans=tuple(plans), message=message)


def run(install: Any, req: Request, *, confirm: Confirm, note: Note, emit: engine.Emit) -> engine.RunResult:
    """The run itself (see the module doc). ``confirm`` is called with what the run will do and raises
    to refuse; ``note`` shows a warning; ``emit`` gets the progress events (and ``--notify`` the
    state changes, :mod:`moltir.commands.notifying`)."""
    notifier = notifying.Notifier(notifying.check_targets(install, req.notify), req.kind, install.key, note)
    try:
        return _run(install, req, confirm=confirm, note=note, emit=notifier.wrap(emit), notifier=notifier)
    except MoltirError as exc:  # a drill refused or stopped before its outcome (lock, keyring): a failed drill
        notifier.refused(exc)
        raise


def _run(install: Any, req: Request, *, confirm: Confirm, note: Note, emit: engine.Emit,
         notifier: notifying.Notifier) -> engine.RunResult:
    # The lock comes first: what restore checks and which case a run resumes are only true while no
    # other moltir run changes them (a second run exits 4 naming the holder).
    with engine.install_lock(install, req.command or req.kind):
        restore_notes: list[str] = []
        accepted: list[str] = []
        if req.kind == "restore":  # refuse a doubtful case (or an unaccepted risk) before asking anything
            restore_notes, accepted = _restore_preflight(install, req, note)
        try:  # every pending step's environment check (a usable keyring), before anything changes
            engine.preflight(req.runbook, install, req.options,
                             engine.existing_case(install, case_dir=req.case_dir, new_case=req.new_case,
                                                  kind=req.kind))
        except MoltirError as exc:
            if req.kind == "drill":  # a drill refused up front is history too (a scheduled one above all)
                record_drill(install, engine.RunResult(req.runbook.name, "failed", exc.exit_code,
                                                       message=exc.one_line()))
            raise
        confirm([f"moltir {req.kind} will act on {install.state_dir} ({install.product} "
                 f"{install.version or 'release unknown'}):",
                 *(f"  {s.id:<18} {s.action}" for s in req.runbook.steps),
                 *(f"  {line}" for line in restore_notes), *req.preview])
        case_notes: list[str] = []
        case, resumed = engine.open_case(req.runbook, install, case_dir=req.case_dir, new_case=req.new_case,
                                         reason=req.options.reason, kind=req.kind, notes=case_notes,
                                         trigger=req.trigger)
        for line in case_notes:
            note(line)
        if accepted:  # restore --accept-risk: the check ids it was told to accept, before any change
            case.journal().append("risk.accepted", check_ids=accepted)
        if req.trigger:  # a resumed case too: what started this run, in the journal
            case.journal().append("trigger", **req.trigger)
        result = engine.execute(req.runbook, install, case, req.options, resumed=resumed, emit=emit,
                                command=req.command, role=req.kind)
        notifier.finish(result, case)
    if req.kind == "drill":
        record_drill(install, result)
    if req.kind == "restore" and result.exit_code not in (0, EXIT_INTERRUPTED):
        result = _explain_partial_restore(case, result)
    return result


def _restore_preflight(install: Any, req: Request, note: Note) -> tuple[list[str], list[str]]:
    """Refuse a restore of a doubtful case (unless --force) or one that would put back a setting the audit
    flags without its ``--accept-risk`` (the refusal journalled in the case); return what this runbook will
    change and the risks accepted."""
    checks = importlib.import_module("moltir.commands.restore_checks")
    case = engine.existing_case(install, case_dir=req.case_dir, new_case=False, kind="restore")
    assert case is not None  # existing_case raises when there is none to restore
    notes: list[str] = list(checks.preflight(case, install, force=req.options.force))
    risk_lines, accepted = refuse_unaccepted_risk(install, req, case, note)
    return [*notes, *checks.describe_restore(case, req.runbook, install, req.options.reopen_open),
            *risk_lines], accepted


def refuse_unaccepted_risk(install: Any, req: Request, case: Case, note: Note) -> tuple[list[str], list[str]]:
    """Raise (exit 2, ``restore.refused`` in the case's journal) when the restore would put back a setting
    the audit flags whose check id ``--accept-risk`` did not name; else (the risk lines for the preview,
    the check ids accepted)."""
    found, missing = _risk_check(install, req, case, note)
    if missing:
        case.journal().append("restore.refused", reason="risk not accepted", check_ids=missing,
                              command=req.command or "restore")
        raise restore_risk.refusal(found, missing, case.id)
    return (restore_risk.preview_lines(found, req.accept_risk),
            [c for c in restore_risk.needed(found) if c in req.accept_risk])


def _risk_check(install: Any, req: Request, case: Case, note: Note) -> tuple[list[restore_risk.Risk], list[str]]:
    """(what restore would bring back that the audit flags, the check ids not accepted); a warning for each
    ``--accept-risk`` not needed. A case already restored has nothing to put back: no risk."""
    from moltir.engine.cases import case_status

    if case_status(case)["status"] == "restored":
        return [], []
    found = restore_risk.risks(case.restore_data(), dm_check=install.caps.audit_open_dm_check,
                               reopen_open=req.options.reopen_open, hardened=req.hardened,
                               restores_dms=any(s.action == "dm_policy.restore" for s in req.runbook.steps))
    for extra in restore_risk.unused(found, req.accept_risk):
        note(f"--accept-risk {extra}: this restore puts back no setting the audit flags as {extra}; ignored")
    return found, restore_risk.unaccepted(found, req.accept_risk)


def _explain_partial_restore(case: Any, result: engine.RunResult) -> engine.RunResult:
    checks = importlib.import_module("moltir.commands.restore_checks")
    failed = next((s for s in result.steps if s.status == "failed"), None)
    if failed is None:
        return result
    return replace(result, message=checks.partial_failure_message(case, failed.id))


def record_drill(install: Any, result: engine.RunResult) -> None:
    from moltir.commands import drills

    drills.record_result(install, result)


def harden_preview(install: Any, harden: Request) -> tuple[str, ...]:
    """``restore --hardened``: what the harden run after the restore will change, planned now.

    Decision: the plan is computed on the config as it is before the restore (the restore has not run
    yet), so it is exact for what restore does not touch (file modes, bind, Control UI auth, tools) and
    says so for the DM and group policies restore puts back: an ``open`` one is set to ``pairing``
    (``allowlist`` with the sender ids) right after it is restored."""
    plans = engine.plan_run(harden.runbook, install, Case(Path("(new case)"), readonly=True), harden.options)
    lines = ["then 'moltir harden' in a case of its own ('moltir harden --undo' reverts it):",
             "  (planned on the current config; DM and group policies restore puts back are hardened after it)"]
    for p in plans:
        what = p.error or (p.plan.summary if p.plan else "")
        lines.append(f"  {p.step.id:<18} {what}")
        for line in (p.plan.diff.splitlines() if p.plan and not p.plan.already_done else []):
            lines.append(f"    {line}")
    return tuple(lines)


def run_hardened(install: Any, restore: Request, harden: Request, *, confirm: Confirm, note: Note,
                 emit: engine.Emit) -> tuple[engine.RunResult, engine.RunResult | None]:
    """``restore --hardened``: the restore, then (only when it ended with exit 0, "nothing left to do"
    included) the harden runbook in a new harden case, without asking again (the restore's
    confirmation showed its plan). A case already restored is refused before anything (exit 0, nothing
    to restore): run 'moltir harden' then."""
    first = run(install, restore, confirm=confirm, note=note, emit=emit)
    if first.exit_code != 0:
        return first, None
    return first, run(install, harden, confirm=lambda _lines: None, note=note, emit=emit)
