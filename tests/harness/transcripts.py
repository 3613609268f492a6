"""One real agent turn through a running gateway, and where each release wrote it.

* JSONL (``Facts.sqlite_state`` False: 2026.1.29 ... 2026.7.35):
  ``<state>/agents/main/sessions/<sessionId>.jsonl`` (+ ``sessions.json`` index). From 2026.5.28
  the same folder also gets ``<sessionId>.trajectory.jsonl`` (a runtime trace, schema
  "openclaw-trajectory") and ``<sessionId>.trajectory-path.json``: not transcripts, left out.
* SQLite (2026.8.2, 2026.9.6): ``<state>/agents/main/agent/openclaw-agent.sqlite`` (+ ``-wal``/
  ``-shm``), table ``transcript_events`` (``session_id, seq, event_json, ...``); JSONL is
  legacy-only there (2026.8.2 refuses to start while a legacy ``sessions.json`` is present).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from tests.harness.home import OpenClawHome

AGENT_ID = "main"
TURN_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class Transcripts:
    kind: str                  # "jsonl" | "sqlite" (Facts.sqlite_state)
    paths: tuple[Path, ...]    # the transcript files (sqlite: the DB; its -wal/-shm sit beside it)
    agent_dir: Path            # agents/main
    reply: str                 # what the fake model answered (appears in the transcript)
    stdout: str                # `openclaw agent --json` output

    def contains(self, text: str) -> bool:
        """Whether ``text`` is in the transcript (reads the live SQLite DB read-only)."""
        if self.kind == "jsonl":
            return any(text in p.read_text(encoding="utf-8") for p in self.paths)
        return any(text in row for row in sqlite_events(self.paths[0]))


def sqlite_events(db: Path) -> list[str]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        return [str(r[0]) for r in conn.execute("SELECT event_json FROM transcript_events ORDER BY session_id, seq")]


def find_transcripts(state_dir: Path, sqlite_state: bool) -> tuple[str, tuple[Path, ...]]:
    agent_dir = state_dir / "agents" / AGENT_ID
    if sqlite_state:
        db = agent_dir / "agent" / "openclaw-agent.sqlite"
        return "sqlite", (db,) if db.exists() else ()
    return "jsonl", tuple(sorted(p for p in (agent_dir / "sessions").glob("*.jsonl")
                                 if not p.name.endswith(".trajectory.jsonl")))


def run_agent_turn(home: OpenClawHome, message: str = "hello") -> Transcripts:
    """``openclaw agent --agent main --message MESSAGE --json`` through the running gateway."""
    proc = home.run_openclaw("agent", "--agent", AGENT_ID, "--message", message, "--json",
                             timeout=TURN_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"openclaw agent exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    kind, paths = find_transcripts(home.state_dir, home.release.facts.sqlite_state)
    result = Transcripts(kind=kind, paths=paths, agent_dir=home.state_dir / "agents" / AGENT_ID,
                         reply=home.llm.reply, stdout=proc.stdout)
    if not paths or not result.contains(home.llm.reply):
        raise RuntimeError(f"the agent turn left no transcript with the fake reply under {result.agent_dir} "
                           f"(model requests: {len(home.llm.requests)}); stdout tail:\n{proc.stdout[-1500:]}")
    return result


def jsonl_messages(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
