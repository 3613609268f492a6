"""The rotation drills' history: one JSON line per drill in ``<moltir home>/drills/<install key>.jsonl``
(0600, appended with O_APPEND + fsync): when it started and finished, how long it took, the outcome and
exit code, the case, the token fingerprints (new, old: first 8 hex of SHA-256, never a token) and the
HTTP proof (400 new / 401 old). ``moltir drill`` appends through :func:`record_result` whatever the
outcome: a failed drill is history too."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltir import paths
from moltir.fsutil import ensure_private_dir, os_error
from moltir.redaction import redact

if TYPE_CHECKING:
    from moltir.openclaw import Install


def history_path(install: Install) -> Path:
    return paths.drills_dir(install.env) / f"{install.key}.jsonl"


def append(install: Install, record: Mapping[str, Any]) -> Path:
    path = history_path(install)
    ensure_private_dir(path.parent)
    line = redact(json.dumps(dict(record), sort_keys=True, ensure_ascii=False, default=str)) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise os_error(exc, f"writing the drill history {path}") from None
    return path


def _utc(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_record(install: Install, result: Any, *, finished: dt.datetime | None = None) -> dict[str, Any]:
    """A history record from the engine's ``RunResult`` of the drill runbook."""
    finished = finished or dt.datetime.now(dt.UTC)
    steps = list(getattr(result, "steps", ()))
    duration_ms = sum(int(getattr(s, "duration_ms", 0) or 0) for s in steps)
    record: dict[str, Any] = {
        "started_at": _utc(finished - dt.timedelta(milliseconds=duration_ms)),
        "finished_at": _utc(finished),
        "duration_ms": duration_ms,
        "outcome": "ok" if getattr(result, "exit_code", 1) == 0 else "failed",
        "exit_code": getattr(result, "exit_code", None),
        "case_id": getattr(result, "case_id", "") or None,
        "message": getattr(result, "message", ""),
        "openclaw": {"product": install.product, "version": install.version},
        "steps": [{"id": s.id, "action": s.action, "status": s.status, "error": s.error or None,
                   "duration_ms": s.duration_ms} for s in steps],
        "fingerprints": {},
        "proof": None,
    }
    for s in steps:
        details = getattr(s, "details", {}) or {}
        if s.action == "token.rotate":
            record["fingerprints"] = {"new": details.get("new_fingerprint"), "old": details.get("old_fingerprint")}
            record["mode"] = details.get("mode")
            record["route"] = details.get("route")
        if s.action == "token.verify" and "new_status" in details:
            record["proof"] = {"new_status": details.get("new_status"), "old_status": details.get("old_status")}
    return record


def record_result(install: Install, result: Any) -> dict[str, Any]:
    """Append the drill's outcome to the history (called by ``moltir drill``). Returns the record."""
    record = build_record(install, result)
    append(install, record)
    return record


def read_history(install: Install) -> list[dict[str, Any]]:
    path = history_path(install)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise os_error(exc, f"reading {path}") from None
    out = []
    for line in lines:
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict):
                out.append(item)
    return out


def render_history(records: Sequence[Mapping[str, Any]]) -> str:
    if not records:
        return "no drills yet: run 'moltir drill'"
    rows = []
    for r in records:
        fps = r.get("fingerprints") or {}
        proof = r.get("proof") or {}
        old_status = proof.get("old_status") if proof else None
        proof_text = (f"new {proof.get('new_status')} / old {old_status if old_status is not None else 'not tested'}"
                      if proof else "-")
        row = (f"{r.get('finished_at', '?'):<21} {r.get('outcome', '?'):<7} "
               f"{(r.get('duration_ms') or 0) / 1000:>6.1f} s  token {fps.get('old') or '?'} -> "
               f"{fps.get('new') or '?'}  proof {proof_text}  case {r.get('case_id') or '-'}")
        if r.get("outcome") != "ok":  # why it failed: the failed step's error, else the run's message
            steps = r.get("steps") or []
            why = next((str(s.get("error")) for s in steps if isinstance(s, Mapping) and s.get("error")),
                       str(r.get("message") or ""))
            row += f"\n    exit {r.get('exit_code')}: {why[:300]}"
        rows.append(row)
    return "\n".join(rows)
