"""triage's verdict for a stranger's DM and the DM policy check's sources (issue 17's gaps)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from moltir.triage.events import Event, Source
from moltir.triage.policy import Policies
from moltir.triage.rules import load_rules
from moltir.triage.sources import CaseFile, Catalog, SqliteCopy
from moltir.triage.verdicts import Triage


def _ev(kind: str, role: str, line: int, sid: str = "s1", **kw: Any) -> Event:
    return Event(kind=kind, role=role, time=f"2026-12-01T10:00:{line:02d}Z", session_id=sid,
                 source=Source("evidence/fs/x/s1.jsonl", "0" * 64, line=line), channel="telegram", **kw)


def _stranger(line: int, sid: str = "s1") -> Event:
    return _ev("message", "user", line, sid, text="hi bot", sender="444", sender_id="444", account="alerts",
               allowed=True, allowlisted=False)


def _run(events: list[Event]) -> Triage:
    t = Triage(load_rules(), "high")
    for _ in t.feed(events):
        pass
    return t


@pytest.mark.parametrize(("after", "verdict"), [
    ([_ev("message", "assistant", 2, text="hello stranger")], "LANDED"),  # the agent answered in text
    ([_ev("tool_call", "assistant", 2, tool="read", call_id="c1", path="/tmp/x")], "LANDED"),  # it acted
    ([], "ATTEMPTED"),  # nothing followed: the run failed or the gateway stopped first
    ([_ev("message", "assistant", 2, sid="s2", text="hello")], "ATTEMPTED"),  # an answer in another session
    ([_ev("tool_result", "toolResult", 2, tool="read", call_id="c0", size=1)], "ATTEMPTED"),  # not the assistant
])
def test_a_strangers_dm_lands_when_the_assistant_answered(after: list[Event], verdict: str) -> None:
    t = _run([_stranger(1), *after])
    (f,) = [f for f in t.findings if f.rule.id == "dm-outside-allowlist"]
    assert f.landed is (verdict == "LANDED")
    v = {s["session_id"]: s["verdict"] for s in t.verdicts()}
    assert v["s1"] == verdict and "s2" not in v
    doc = f.to_json()
    if verdict == "LANDED":
        assert doc["answered_by"]["evidence"]["line"] == 2 and doc["answered_by"]["kind"] == after[0].kind
    else:
        assert doc["answered_by"] is None and doc["landed"] is False


def test_every_unanswered_dm_before_the_reply_lands_and_a_later_one_waits() -> None:
    t = _run([_stranger(1), _stranger(2), _ev("message", "assistant", 3, text="hi"), _stranger(4)])
    found = [f for f in t.findings if f.rule.id == "dm-outside-allowlist"]
    assert [f.landed for f in found] == [True, True, False]
    assert t.verdicts()[0]["verdict"] == "LANDED"


# --- who counts as allowed: SQLite pairing approvals (2026.8.1 on) and $include'd channel sections -----------

# as 2026.8.2 and 2026.9.6 create it (dist/pairing-store-sqlite-*, openclaw-state-db-*: CREATE TABLE IF NOT EXISTS)
PAIRING_DDL = ("CREATE TABLE channel_pairing_allow_entries (channel_key TEXT NOT NULL, account_id TEXT NOT NULL, "
               "entry TEXT NOT NULL, sort_order INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
               "PRIMARY KEY (channel_key, account_id, entry)) STRICT")
ORIGIN = "evidence/fs/home/u/.openclaw"  # where the copied state dir lives in a case


def _state_db(path: Path, approved: list[tuple[str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute(PAIRING_DDL)
    conn.executemany("INSERT INTO channel_pairing_allow_entries VALUES (?, ?, ?, 0, 0)", approved)
    conn.commit()
    conn.close()


def _case(tmp: Path, version: str | None, config: str = '{ channels: { telegram: { dmPolicy: "pairing" } } }',
          files: dict[str, str] | None = None) -> tuple[Path, Catalog]:
    case = tmp / "case"
    (case / ORIGIN).mkdir(parents=True)
    (case / "case.json").write_text(json.dumps({"openclaw": {"product": "openclaw", "version": version}}))
    (case / ORIGIN / "openclaw.json").write_text(config)
    for rel, text in (files or {}).items():
        (case / rel).parent.mkdir(parents=True, exist_ok=True)
        (case / rel).write_text(text)
    cat = Catalog(policy_config=CaseFile(f"{ORIGIN}/openclaw.json", "0" * 64, ""),
                  policy_origin=f"{ORIGIN}/openclaw.json")
    return case, cat


@pytest.mark.parametrize("version", ["2026.9.6", "2026.8.2", None])
def test_pairing_approvals_in_the_sqlite_state_store_count(tmp_path: Path, version: str | None) -> None:
    case, cat = _case(tmp_path, version)
    _state_db(case / ORIGIN / "state" / "openclaw.sqlite", [("telegram", "default", "111"),
                                                             ("telegram", "ops", "telegram:222")])
    cat.state_dbs = [SqliteCopy(CaseFile(f"{ORIGIN}/state/openclaw.sqlite", "0" * 64, ""))]
    before = sorted(p.name for p in (case / ORIGIN / "state").iterdir())
    p = Policies.load(case, cat)
    assert p.judge("telegram", "default", "111") == (True, True)
    assert p.judge("telegram", "ops", "222") == (True, True)
    assert p.judge("telegram", "OPS", "222") == (True, True)  # OpenClaw lower-cases the account id
    assert p.judge("telegram", "alerts", "222") == (False, False)  # an approval counts for its account only
    assert p.judge("telegram", "", "111") == (True, True)  # no account: "default"
    # the store was read: a sender it does not name is not allowlisted (not "unknown")
    assert p.judge("telegram", "default", "444") == (False, False)
    assert sorted(p.name for p in (case / ORIGIN / "state").iterdir()) == before  # no -shm/-wal beside the copy


def test_the_release_decides_which_pairing_store_is_in_force(tmp_path: Path) -> None:
    leftover = {f"{ORIGIN}/credentials/telegram-allowFrom.json": '{"version": 1, "allowFrom": ["333"]}'}
    case, cat = _case(tmp_path, "2026.9.6", files=leftover)
    cat.pairing_stores = [("telegram", CaseFile(f"{ORIGIN}/credentials/telegram-allowFrom.json", "0" * 64, ""))]
    _state_db(case / ORIGIN / "state" / "openclaw.sqlite", [("telegram", "default", "111")])
    cat.state_dbs = [SqliteCopy(CaseFile(f"{ORIGIN}/state/openclaw.sqlite", "0" * 64, ""))]
    p = Policies.load(case, cat)  # 2026.9.6 keeps approvals in SQLite: a JSON file left behind is not in force
    assert p.judge("telegram", "default", "333") == (False, False)
    assert p.judge("telegram", "default", "111") == (True, True)
    (case / "case.json").write_text(json.dumps({"openclaw": {"product": "openclaw", "version": "2026.7.35"}}))
    p = Policies.load(case, cat)  # a file-store release: the JSON file, not the table
    assert p.judge("telegram", "default", "333") == (True, True)
    assert p.judge("telegram", "default", "111") == (False, False)


def test_a_sqlite_release_without_the_table_leaves_pairing_unknown(tmp_path: Path) -> None:
    case, cat = _case(tmp_path, "2026.9.6")
    assert Policies.load(case, cat).judge("telegram", "default", "444") == (None, None)  # no state db copied
    db = case / ORIGIN / "state" / "openclaw.sqlite"
    db.parent.mkdir()
    sqlite3.connect(db).close()  # a database without the table
    cat.state_dbs = [SqliteCopy(CaseFile(f"{ORIGIN}/state/openclaw.sqlite", "0" * 64, ""))]
    assert Policies.load(case, cat).judge("telegram", "default", "444") == (None, None)


INCLUDING = '{ channels: { $include: "./channels.json5" } }'
CHANNELS = ('{ telegram: { dmPolicy: "allowlist", allowFrom: ["111"],\n'
            '  accounts: { alerts: { $include: "a/alerts.json5" } } } }')
ALERTS = '{ dmPolicy: "open" }'


def test_included_channel_sections_are_resolved_from_the_case(tmp_path: Path) -> None:
    case, cat = _case(tmp_path, "2026.9.6", INCLUDING, {f"{ORIGIN}/channels.json5": CHANNELS,
                                                        f"{ORIGIN}/a/alerts.json5": ALERTS})
    p = Policies.load(case, cat)
    assert p.judge("telegram", "default", "111") == (True, True)
    assert p.judge("telegram", "default", "444") == (False, False)
    assert p.judge("telegram", "alerts", "444") == (True, False)  # the nested include: open


def test_a_preimage_config_takes_the_included_files_preimages(tmp_path: Path) -> None:
    # containment edited channels.json5 (disabled); its bytes before the edit are in preimage/
    case, cat = _case(tmp_path, "2026.9.6", INCLUDING, {
        f"{ORIGIN}/channels.json5": '{ telegram: { dmPolicy: "disabled" } }', f"{ORIGIN}/a/alerts.json5": ALERTS,
        "preimage/openclaw.json": INCLUDING, "preimage/channels.json5": CHANNELS})
    cat.policy_config = CaseFile("preimage/openclaw.json", "0" * 64, "")
    p = Policies.load(case, cat)
    assert p.judge("telegram", "alerts", "444") == (True, False)  # alerts.json5 has no preimage: its copy
    assert p.judge("telegram", "default", "111") == (True, True)


@pytest.mark.parametrize("files", [
    {},  # the included file was not copied
    {f"{ORIGIN}/channels.json5": "{ not json5"},
    {f"{ORIGIN}/channels.json5": '{ telegram: { $include: "../.openclaw/channels.json5" } }'},  # circular
])
def test_an_include_that_cannot_be_resolved_leaves_the_answer_unknown(tmp_path: Path, files: dict[str, str]) -> None:
    case, cat = _case(tmp_path, "2026.9.6", INCLUDING, files)
    assert Policies.load(case, cat).judge("telegram", "default", "111") == (None, None)


def test_an_include_may_not_lead_out_of_the_case(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json5"
    outside.write_text('{ telegram: { dmPolicy: "open" } }')
    case, cat = _case(tmp_path, "2026.9.6", INCLUDING)
    (case / ORIGIN / "channels.json5").symlink_to(outside)
    assert Policies.load(case, cat).judge("telegram", "default", "444") == (None, None)


def test_a_sealed_case_with_an_included_channel_and_sqlite_approvals(tmp_path: Path) -> None:
    """The whole path: the snapshot copies the include and the state database, the catalog finds them,
    the timeline and findings say who was allowed."""
    from tests.unit.test_triage_sources import _jsonl_dm, _seal, _timeline, _triage, _write

    state = tmp_path / "home" / ".openclaw"
    _write(state / "openclaw.json", INCLUDING)
    _write(state / "channels.json5", '{ telegram: { dmPolicy: "pairing" } }')
    _state_db(state / "state" / "openclaw.sqlite", [("telegram", "default", "111111111")])
    sessions = state / "agents" / "main" / "sessions"
    _write(sessions / "s-ok.jsonl", _jsonl_dm("[Telegram Op id:111111111 2026-12-01 10:01 UTC] hello") + "\n")
    _write(sessions / "s-x.jsonl", _jsonl_dm("[Telegram Eve id:444444444 2026-12-01 10:02 UTC] hi") + "\n")
    case = _seal(tmp_path, state)
    code, data = _triage(str(case))
    assert code == 1, data
    rows = {r["session_id"]: r for r in _timeline(case) if r["kind"] == "message"}
    assert (rows["s-ok"]["allowed"], rows["s-ok"]["allowlisted"]) == (True, True), rows
    assert (rows["s-x"]["allowed"], rows["s-x"]["allowlisted"]) == (False, False), rows
    found = [f["session_id"] for f in data["data"]["findings"] if f["rule"] == "dm-outside-allowlist"]
    assert found == ["s-x"]


def test_one_json_lines_reader_numbers_lines_as_the_file_does() -> None:
    from moltir.triage.jsonlines import NOT_JSON, json_lines

    lines = [b'{"a": 1}\n', b"\n", b"   \n", b'{"trunc\n', b"\xff\xfe\n", b"[1]"]
    assert list(json_lines(lines)) == [(1, {"a": 1}), (4, NOT_JSON), (5, NOT_JSON), (6, [1])]
