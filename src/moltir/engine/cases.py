"""Which case a run works in: the case's status as its journal tells it, the install's latest
case, the case a run resumes or the new one it opens (carrying a still-contained case's
pre-incident record), the install checks made before any case exists, and the per-install lock."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from moltir import paths
from moltir.engine.case import Case, latest_case_dir, new_case_id, remember_latest, same_dir
from moltir.engine.journal import Journal
from moltir.engine.lock import run_lock
from moltir.engine.results import CHANGED
from moltir.engine.runbook import Runbook
from moltir.errors import EXIT_OK, EXIT_USAGE, MoltirError, env_error
from moltir.openclaw import Install

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
        must_exist = kind in ("restore", "harden-undo")
        if must_exist or (case_dir.exists() and (not case_dir.is_dir() or any(case_dir.iterdir()))):
            raise MoltirError(f"{case_dir} is not a moltir case (no case.json)",
                              hint="pass a case folder from 'moltir evidence list'" if must_exist
                              else "choose a new or empty folder for --case-dir", exit_code=EXIT_USAGE)
        return None
    if kind == "harden-undo":
        return _harden_case(install, readonly)
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


def open_case(runbook: Runbook, install: Install, *, case_dir: Path | None, new_case: bool,
              reason: str, kind: str, notes: list[str] | None = None,
              incident: str | None = None, trigger: Mapping[str, Any] | None = None) -> tuple[Case, bool]:
    """The case this run belongs to, and whether it resumes an earlier run in it. ``incident``: the id
    shared by the cases of one ``--all-profiles`` run; ``trigger``: what started it (``moltir trigger
    run``: source, via, client); both recorded in a new case's ``case.json``."""
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
    if trigger:
        extra["trigger"] = dict(trigger)
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


def _harden_case(install: Install, readonly: bool) -> Case:
    """The install's latest harden case (``moltir harden --undo`` without a case)."""
    folder = latest_case_dir(paths.installs_dir(install.env), install.key, kind="harden")
    if folder is None:
        raise MoltirError(f"nothing to undo: moltir has no harden case for {install.state_dir}",
                          hint="pass the case folder: 'moltir harden --undo CASE'", exit_code=EXIT_OK)
    return Case.open(folder, readonly=readonly)


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

