"""What moltir changed during containment, and what remains open, from the case itself.

Read from the case's ``journal.jsonl`` (verified with the rest of the case before triage reads it;
streamed a line at a time) and its credentials inventory (``evidence/credentials/inventory.json``,
when the contain runbook ran ``credentials.inventory``). Nothing is inferred from the live install:
this is what the case records.

* **changed**: every step the journal records as done (``step.done``) or failed (``step.failed``), in
  journal order: when, which runbook and step, the action and moltir's own one-line summary (the
  journal holds fingerprints only, never a secret: moltir.redaction runs before a record is written).
* **open**: a failed step that no later run completed; the credentials of the inventory still to
  rotate (the gateway token counts as rotated once a ``token.rotate`` step is done; every other
  credential stays open, since moltir cannot tell from the case whether its provider revoked it);
  ``restore`` not yet run (no ``restore`` run finished ``ok`` in the journal). Findings are listed by
  the report itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from moltir.openclaw.credentials import CASE_INVENTORY

SUMMARY_CHARS: Final = 600
_STEP_EVENTS: Final = ("step.done", "step.failed")


def _journal(case_dir: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The step records (done/failed) and, per runbook, the status of its last finished run."""
    steps: list[dict[str, Any]] = []
    runs: dict[str, str] = {}
    try:
        fh = open(case_dir / "journal.jsonl", "rb")  # noqa: SIM115
    except OSError:
        return steps, runs
    with fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            event = rec.get("event")
            if event in _STEP_EVENTS:
                summary = rec.get("summary") if event == "step.done" else rec.get("error")
                steps.append({"time": str(rec.get("ts") or ""), "runbook": str(rec.get("runbook") or ""),
                              "step": str(rec.get("step") or ""), "action": str(rec.get("action") or ""),
                              "status": "failed" if event == "step.failed" else str(rec.get("status") or "done"),
                              "summary": str(summary or "")[:SUMMARY_CHARS]})
            elif event == "run.done":
                runs[str(rec.get("runbook") or "")] = str(rec.get("status") or "")
    return steps, runs


def _inventory(case_dir: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((case_dir / CASE_INVENTORY).read_bytes())
    except (OSError, ValueError):
        return []
    items = data.get("credentials") if isinstance(data, dict) else None
    keep = ("id", "kind", "provider", "storage", "location", "fingerprint")
    return [{k: str(c[k]) for k in keep if isinstance(c.get(k), str | int)}
            for c in items or () if isinstance(c, dict)]


def containment(case_dir: Path) -> dict[str, Any]:
    """``{"changed": [step...], "open": {"failed_steps", "credentials", "restore_run"}, "inventory": bool}``."""
    steps, runs = _journal(case_dir)
    done = {(s["runbook"], s["step"]) for s in steps if s["status"] != "failed"}
    failed = [s for s in steps if s["status"] == "failed" and (s["runbook"], s["step"]) not in done]
    token_rotated = any(s["action"] == "token.rotate" and s["status"] != "failed" for s in steps)
    inventory = _inventory(case_dir)
    still = [c for c in inventory if not (token_rotated and c.get("kind") == "gateway_token")]
    return {"changed": [s for s in steps if s["status"] != "failed"], "failed": failed,
            "inventory": (case_dir / CASE_INVENTORY).exists(), "credentials_to_rotate": still,
            "token_rotated": token_rotated, "restore_run": runs.get("restore") == "ok"}
