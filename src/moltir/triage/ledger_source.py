"""Events of the audit ledger the snapshot exported (``evidence/ledger/audit_events.jsonl``), a line at a time.

One row of ``audit_events`` (2026.7.35+, :mod:`moltir.evidence.ledger`) becomes one ``ledger`` event: its
``kind`` (``agent_run``, ``tool_action``, ``message``), ``action``, ``status``, tool name, agent, session
and run, and ``occurred_at_utc``. The ledger holds metadata only (no arguments, no results, no message
text: docs/gateway/audit.md), so rules about commands or paths never match it; it is here for the
timeline (what ran, when, and how it ended, even where a transcript was edited or deleted; ``status``,
``run_id``, ``ledger_kind`` ... become timeline fields) and for rules on ``kind: "ledger"``, ``tool``,
``action``, ``session_key``. Its events are of kind ``ledger``, so a tool call the
transcript also records is not flagged twice by the ``tool_call`` rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from moltir.triage.events import Event, Source
from moltir.triage.jsonlines import json_lines
from moltir.triage.sources import CaseFile

# columns carried into the timeline as they are (the rest stays in the export)
_EXTRA: Final = ("ledger_kind", "status", "run_id", "direction", "error_code", "reason_code", "duration_ms",
                 "result_count", "message_outcome", "sequence")


def _str(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _event(row: dict[str, Any], source: Source) -> Event:
    row = {**row, "ledger_kind": row.get("kind")}
    what = " ".join(p for p in (_str(row, "kind"), _str(row, "action"), _str(row, "tool_name"),
                                _str(row, "status")) if p)
    extra = {k: row[k] for k in _EXTRA if row.get(k) is not None}
    return Event(kind="ledger", time=_str(row, "occurred_at_utc"), session_id=_str(row, "session_id"),
                 source=source, agent_id=_str(row, "agent_id"), session_key=_str(row, "session_key"),
                 channel=_str(row, "channel"), tool=_str(row, "tool_name"), call_id=_str(row, "tool_call_id"),
                 action=_str(row, "action")[:200], text=f"audit ledger: {what}", extra=extra)


def ledger_events(case_dir: Path, f: CaseFile) -> Iterator[Event]:
    """Every row of the exported ledger, in ``sequence`` order (the export's order)."""
    with open(case_dir / f.path, "rb") as fh:
        for lineno, row in json_lines(fh):
            source = Source(f.path, f.sha256, line=lineno)
            if not isinstance(row, dict):  # also NOT_JSON
                yield Event(kind="undecoded", time="", session_id="", source=source,
                            text="ledger line is not a JSON object")
                continue
            yield _event(row, source)
