"""``moltir status``: the install's latest case, told from its journal.

While another moltir run holds the install's lock, the journal of its case looks like an
interrupted run (no ``run.done`` yet): the status then says ``running`` and names the run
(pid, command, start time) instead of telling the user to resume it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moltir import engine, paths
from moltir.engine.case import Case
from moltir.engine.journal import Journal, verify_chain
from moltir.engine.lock import current_holder
from moltir.errors import MoltirError
from moltir.openclaw import Install
from moltir.text import shown

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
    "continued": "contained, and continued by a later case (see below): 'moltir restore' restores that one",
    "restored-by-later-case": "restored, by the later case that continued this one (see below)",
    "damaged": "DAMAGED: a case record was edited or corrupted (see below); 'moltir contain' opens a new case",
    "regressed": "contained on record, but NOT NOW: an effect no longer holds (see below); run 'moltir contain' "
                 "again",
    "audited": "done: this run only audited, nothing was contained",
}
# actions that only look (audit, copy evidence): a contain run that did nothing else contained nothing
ONLY_LOOKING = frozenset({"audit.run", "evidence.snapshot", "credentials.inventory"})


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
    effects, outcomes = _effect_times(case)
    holder = current_holder(paths.locks_dir(install.env), install.key)
    if holder is not None:
        # a run in progress looks "interrupted" in the journal until it ends: say what it is
        report["running"] = holder
        if st["status"] in ("open", "interrupted", "restore-interrupted"):
            st["status"] = "running"
    head = engine.continued_by(case, install) if case_dir else None
    if head is not None:
        try:
            head_status = engine.case_status(head)["status"]
        except MoltirError:
            head_status = "damaged"
        report["continued_by"] = {"case_id": head.id, "dir": str(head.dir), "status": head_status}
        if head_status == "restored" and st["status"] in engine.UNRESTORED:
            st["status"] = "restored-by-later-case"
        elif st["status"] in ("contained", "interrupted", "failed", "open"):
            st["status"] = "continued"  # a later case took over: this one is not what is pending
    if st["status"] == "contained" and not _contained_anything(case):
        st["status"] = "audited"
    holds: dict[str, str | None] = {}
    if st["status"] in ("contained", "failed", "interrupted") and info.get("kind", "contain") == "contain":
        holds = engine.check_effects(case, install, "contain")
        # {step id: {holds, now}}, not {step id: text}: a step id like "rotate-token" names no secret,
        # but as the key of a string it would be redacted like one (redaction.SECRET_KEY_RE)
        report["effects"] = {sid: {"holds": why is None, "now": "verified now" if why is None else f"gone: {why}"}
                             for sid, why in holds.items()}
        if st["status"] == "contained" and any(why is not None for why in holds.values()):
            st["status"] = "regressed"
    report.update(case={"id": case.id, "dir": str(case.dir), "kind": info.get("kind"),
                        "opened_at": info.get("opened_at"), "reason": info.get("reason") or None,
                        "operator": info.get("operator")},
                  status=st["status"],
                  runs={name: _run_report(r, effects.get(name, {}), outcomes.get(name, {}))
                        for name, r in st["runs"].items()})
    from moltir.commands.credentials import next_steps

    steps = next_steps(case.dir)
    if steps is not None:
        report["credentials"] = steps
    if verify:
        chain = verify_chain(case.journal_path)
        report["journal"] = {"ok": chain.ok, "records": chain.records, "head": chain.head,
                             "problems": list(chain.problems)}
    return report


def _contained_anything(case: Case) -> bool:
    """Whether the case's contain run did more than look (an audit, an evidence copy)."""
    records = Journal(case.journal_path).records() if case.journal_path.exists() else []
    return any(r.get("event") in ("step.done", "step.applied") and r.get("runbook") is not None
               and isinstance(r.get("action"), str) and r.get("action") not in ONLY_LOOKING for r in records)


def _effect_times(case: Case) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """runbook -> step -> when each verified step took effect.

    A step whose check goes on in the background (``gateway.stop`` watches that the gateway stays
    down while the next steps run) is journaled ``step.applied`` when it acted and ``step.done``
    (verified) only when the watch ends, after the later steps: its time is the ``step.applied``
    one, when the gateway actually went down, not the end of the deep audit.
    """
    records = Journal(case.journal_path).records() if case.journal_path.exists() else []
    applied: dict[tuple[str, str], str] = {}
    out: dict[str, dict[str, str]] = {}
    statuses: dict[str, dict[str, str]] = {}  # runbook -> step -> done | already | skipped | forced
    for rec in records:
        rb, step, ts = rec.get("runbook"), rec.get("step"), rec.get("ts")
        if not isinstance(rb, str) or not isinstance(step, str) or not isinstance(ts, str):
            continue
        ev = rec.get("event")
        if ev == "step.start":
            applied.pop((rb, step), None)  # a new attempt: an earlier attempt's time no longer counts
        elif ev == "step.applied":
            applied[(rb, step)] = ts
        elif ev == "step.done" and rec.get("verified"):
            out.setdefault(rb, {})[step] = applied.pop((rb, step), ts)
            statuses.setdefault(rb, {})[step] = str(rec.get("status") or "done")
    return out, statuses


def _run_report(run: dict[str, Any], effects: dict[str, str], outcomes: dict[str, str]) -> dict[str, Any]:
    """One run for the report. Decision: ``steps`` lists every step in runbook order, each where it
    belongs: done with the time it took effect, failed with its error, or not done; a step verified
    in the background or a failed step that did not abort the run (``on_failure: continue``, e.g. a
    snapshot on a full disk) is not moved to the end. ``steps_done`` (runbook order) and
    ``steps_failed`` stay for scripts. A done step that changed nothing says how it ended
    (``already``, ``skipped``: e.g. restore's start-gateway leaving a gateway stopped)."""
    done = {sid: effects.get(sid, ts) for sid, ts in run["done"].items()}
    failed: dict[str, Any] = dict(run["failed"])
    order = list(run["order"]) + [sid for sid in [*done, *failed] if sid not in run["order"]]
    steps: list[dict[str, Any]] = []
    for sid in dict.fromkeys(order):
        if sid in done:
            steps.append({"id": sid, "state": "done", "at": done[sid], "status": outcomes.get(sid, "done")})
        elif sid in failed:
            steps.append({"id": sid, "state": "failed", "error": failed[sid]})
        else:
            steps.append({"id": sid, "state": "not done"})
    return {"started": run["started"], "finished": run["finished"], "ok": run["ok"],
            "steps": steps, "steps_done": {s["id"]: s["at"] for s in steps if s["state"] == "done"},
            "steps_failed": failed}


def render(report: dict[str, Any]) -> str:
    inst = report["install"]
    product = inst.get("product") or ("clawdbot" if inst.get("generation") == "clawdbot" else "openclaw")
    lines = [f"install: {inst['state_dir']} ({product} {inst.get('version') or 'release unknown'})"]
    case = report.get("case")
    if not case:
        lines.append("no case yet for this install (nothing has been contained)")
        return "\n".join(shown(ln, 4000) for ln in lines)
    lines.append(f"case:    {case['id']}" + (f"  opened {case['opened_at']}" if case.get("opened_at") else "")
                 + (f"  reason: {case['reason']}" if case.get("reason") else ""))
    lines.append(f"folder:  {case['dir']}")
    lines.append(f"status:  {_WORDS.get(report['status'], report['status'])}")
    if report.get("continued_by"):
        later = report["continued_by"]
        lines.append(f"continued by: case {later['case_id']} ({later['status']}), {later['dir']}")
    if report.get("running"):
        run = report["running"]
        lines.append(f"running: pid {run.get('pid')}, '{run.get('command')}' since {run.get('started_at')}")
    effects = report.get("effects") or {}
    for name, run in report.get("runs", {}).items():
        state = "ok" if run["ok"] else ("failed" if run["ok"] is False else "unfinished")
        lines.append(f"{name}: {state}, started {run['started']}" +
                     (f", finished {run['finished']}" if run["finished"] else ""))
        for step in run["steps"]:
            if step["state"] == "done":
                how = step.get("status", "done")
                icon = {"skipped": "-", "forced": "!"}.get(how, "✓")  # as the run printed it
                now = (effects.get(step["id"]) or {}).get("now") if name == "contain" else None
                held = f"  [{now}]" if now else ("  [recorded]" if name == "contain" and effects else "")
                if now and now.startswith("gone"):
                    icon = "✗"
                lines.append(f"  {icon} {step['id']}  {step['at']}" + (f"  ({how})" if how != "done" else "")
                             + held)
            elif step["state"] == "failed":
                lines.append(f"  ✗ {step['id']}  {step['error']}")
            else:
                lines.append(f"  · {step['id']}  not done")
    if report.get("credentials"):
        from moltir.commands.credentials import render_next_steps

        lines += render_next_steps(report["credentials"])
    if report.get("error"):
        lines.append(f"error:   {report['error']}")
    if "journal" in report:
        j = report["journal"]
        lines.append(f"journal: {'hash chain intact' if j['ok'] else 'BROKEN'} ({j['records']} records)")
        lines.extend(f"  {p}" for p in j["problems"])
    return "\n".join(shown(ln, 4000) for ln in lines)
