"""triage's verdict for a stranger's DM and the DM policy check's sources (issue 17's gaps)."""

from __future__ import annotations

from typing import Any

import pytest

from moltir.triage.events import Event, Source
from moltir.triage.rules import load_rules
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
