"""triage's further sources on small sealed cases: the audit ledger the snapshot exported."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from moltir import evidence
from moltir.cli import cli
from moltir.engine.case import Case
from moltir.openclaw import discover

# audit_events as 2026.9.6 creates it (dist/openclaw-state-db-read-connection-*.mjs), the columns used here
LEDGER = ("CREATE TABLE audit_events (sequence INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, "
          "occurred_at INTEGER NOT NULL, kind TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL, "
          "agent_id TEXT, session_key TEXT, session_id TEXT, run_id TEXT, tool_call_id TEXT, tool_name TEXT, "
          "direction TEXT, channel TEXT)")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _seal(tmp_path: Path, state: Path) -> Path:
    home = state.parent
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {"HOME": str(home), "TMPDIR": str(tmp_path / "tmp"), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "MOLTIR_HOME": os.environ["MOLTIR_HOME"]}
    install = discover(env=env)
    c = Case.create(tmp_path / "case", kind="contain", install_info=install.describe(), reason="unit")
    src = evidence.resolve_roots(install, journal=False)
    src = dataclasses.replace(src, roots=tuple(r for r in src.roots if str(r.path).startswith(str(tmp_path))))
    evidence.snapshot(c, install, c.journal(), sources=src, gateway_running=False, progress=False,
                      collect_journal=False)
    return c.dir


def _triage(*args: str) -> tuple[int, dict[str, Any]]:
    res = CliRunner().invoke(cli, ["triage", *args, "--json"])
    return res.exit_code, json.loads(res.stdout)


def _timeline(case: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (case / "triage" / "timeline.jsonl").read_text().splitlines()]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state = tmp_path / "home" / ".openclaw"
    _write(state / "openclaw.json", "{ gateway: { mode: 'local' } }\n")
    return state


def test_the_exported_ledger_is_a_triage_source(tmp_path: Path, state: Path) -> None:
    db = state / "state" / "openclaw.sqlite"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute(LEDGER)
    conn.executemany("INSERT INTO audit_events (event_id, occurred_at, kind, action, status, agent_id, session_key, "
                     "session_id, run_id, tool_call_id, tool_name, channel) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                     [("e1", 1_796_126_400_000, "agent_run", "run", "succeeded", "main", "agent:main:main", "s1",
                       "r1", None, None, "telegram"),
                      ("e2", 1_796_126_401_000, "tool_action", "exec", "succeeded", "main", "agent:main:main", "s1",
                       "r1", "c1", "exec", None)])
    conn.commit()
    conn.close()
    case = _seal(tmp_path, state)
    code, data = _triage(str(case))
    assert code == 0, data
    report = data["data"]
    assert report["sources"]["ledger_exports"] == 1 and report["events"] == 2
    sha = next(f["sha256"] for f in json.loads((case / "manifest.json").read_text())["files"]
               if f["path"] == "evidence/ledger/audit_events.jsonl")
    rows = [r for r in _timeline(case) if r["kind"] == "ledger"]
    assert [(r["source_line"], r.get("tool")) for r in rows] == [(1, None), (2, "exec")]
    exec_row = rows[1]
    assert exec_row["datetime"] == "2026-12-01T12:00:01+00:00" and exec_row["status"] == "succeeded"
    assert exec_row["source_path"] == "evidence/ledger/audit_events.jsonl" and exec_row["source_sha256"] == sha
    assert exec_row["message"] == "audit ledger: tool_action exec exec succeeded"
    assert rows[0]["channel"] == "telegram" and rows[0]["ledger_kind"] == "agent_run"


def test_a_case_without_a_ledger_has_no_ledger_source(tmp_path: Path, state: Path) -> None:
    case = _seal(tmp_path, state)
    code, data = _triage(str(case))
    assert code == 0 and data["data"]["sources"]["ledger_exports"] == 0
