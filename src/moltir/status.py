"""``moltir status``: the install's latest case, told from its journal.

While another moltir run holds the install's lock, the journal of its case looks like an
interrupted run (no ``run.done`` yet): the status then says ``running`` and names the run
(pid, command, start time) instead of telling the user to resume it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moltir import engine, paths
from moltir.case import Case
from moltir.errors import MoltirError
from moltir.journal import verify_chain
from moltir.lock import current_holder
from moltir.openclaw import Install

_WORDS = {
    "running": "RUNNING: a moltir run is working on this case right now",
    "open": "open (no run finished yet)",
    "interrupted": "INTERRUPTED: a run stopped mid-way; run 'moltir contain' to resume it",
    "failed": "containment INCOMPLETE: a step failed; fix it and run 'moltir contain' again",
    "contained": "contained",
    "restored": "restored",
    "restore-failed": "restore INCOMPLETE: run 'moltir restore' again after fixing the cause",
    "restore-interrupted": "restore INTERRUPTED: run 'moltir restore' again to resume",
    "done": "done",
    "damaged": "DAMAGED: a case record was edited or corrupted (see below); 'moltir contain' opens a new case",
}


def build(install: Install, case_dir: Path | None, *, verify: bool = False) -> dict[str, Any]:
    case = Case.open(case_dir) if case_dir else engine.find_latest(install)
    report: dict[str, Any] = {"install": install.describe()}
    if case is None:
        report.update(case=None, status="none")
        return report
    try:
        st = engine.case_status(case)
        info = case.info
    except MoltirError as exc:  # a damaged journal or case.json: say so, with the chain check (exit 5)
        chain = verify_chain(case.journal_path)
        report.update(case={"id": case.dir.name, "dir": str(case.dir)}, status="damaged", error=exc.one_line(),
                      runs={}, journal={"ok": False, "records": chain.records, "head": chain.head,
                                        "problems": list(chain.problems) or [exc.message]})
        return report
    holder = current_holder(paths.locks_dir(install.env), install.key)
    if holder is not None:
        # a run in progress looks "interrupted" in the journal until it ends: say what it is
        report["running"] = holder
        if st["status"] in ("open", "interrupted", "restore-interrupted"):
            st["status"] = "running"
    report.update(case={"id": case.id, "dir": str(case.dir), "kind": info.get("kind"),
                        "opened_at": info.get("opened_at"), "reason": info.get("reason") or None,
                        "operator": info.get("operator")},
                  status=st["status"],
                  runs={name: {"started": r["started"], "finished": r["finished"], "ok": r["ok"],
                               "steps_done": _in_order(r["done"], r["order"]), "steps_failed": r["failed"]}
                        for name, r in st["runs"].items()})
    if verify:
        chain = verify_chain(case.journal_path)
        report["journal"] = {"ok": chain.ok, "records": chain.records, "head": chain.head,
                             "problems": list(chain.problems)}
    return report


def _in_order(done: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """Steps in runbook order (a step verified in the background is journaled out of order)."""
    rank = {sid: i for i, sid in enumerate(order)}
    return dict(sorted(done.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def render(report: dict[str, Any]) -> str:
    inst = report["install"]
    lines = [f"install: {inst['state_dir']} ({inst['generation']}, openclaw {inst['version'] or '?'})"]
    case = report.get("case")
    if not case:
        lines.append("no case yet for this install (nothing has been contained)")
        return "\n".join(lines)
    lines.append(f"case:    {case['id']}" + (f"  opened {case['opened_at']}" if case.get("opened_at") else "")
                 + (f"  reason: {case['reason']}" if case.get("reason") else ""))
    lines.append(f"folder:  {case['dir']}")
    lines.append(f"status:  {_WORDS.get(report['status'], report['status'])}")
    if report.get("running"):
        run = report["running"]
        lines.append(f"running: pid {run.get('pid')}, '{run.get('command')}' since {run.get('started_at')}")
    for name, run in report.get("runs", {}).items():
        state = "ok" if run["ok"] else ("failed" if run["ok"] is False else "unfinished")
        lines.append(f"{name}: {state}, started {run['started']}" +
                     (f", finished {run['finished']}" if run["finished"] else ""))
        for step, ts in run["steps_done"].items():
            lines.append(f"  ✓ {step}  {ts}")
        for step, err in run["steps_failed"].items():
            lines.append(f"  ✗ {step}  {err}")
    if report.get("error"):
        lines.append(f"error:   {report['error']}")
    if "journal" in report:
        j = report["journal"]
        lines.append(f"journal: {'hash chain intact' if j['ok'] else 'BROKEN'} ({j['records']} records)")
        lines.extend(f"  {p}" for p in j["problems"])
    return "\n".join(lines)
