"""Rules applied to the event stream, and a verdict per session.

A finding *landed* when what it flags took effect:

* a flagged tool call: it got a result that is not an error (``isError`` false and, for exec,
  ``details.exitCode`` 0 or absent);
* a flagged inbound message (role ``user``, e.g. a DM from a sender no allowlist names): the assistant
  answered it, i.e. a later event of the same session is an assistant message with text or a tool
  call. The stranger's words reached the model and it acted on them; when nothing followed (the run
  failed, the gateway stopped first) the message only reached the transcript;
* anything else (a config change, a log line, a tool result): never; it counts as attempted.

A session is LANDED when one of its counted findings landed, ATTEMPTED when something was flagged but
nothing flagged landed, CLEAN otherwise. Only findings at or above the chosen level count for
verdicts. Per session, moltir keeps counts, the flagged call ids, the flagged inbound messages not yet
answered, and the last inbound message (the entry point shown with the first finding); events
themselves are never kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from moltir.triage.events import SHOWN, Event
from moltir.triage.rules import Rule, level_rank

LANDED: Final = "LANDED"
ATTEMPTED: Final = "ATTEMPTED"
CLEAN: Final = "CLEAN"


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN] + f"… ({len(text)} characters; the evidence has all)"


@dataclass
class Finding:
    rule: Rule
    event: Event
    entry: dict[str, Any] | None  # the message that preceded the session's first finding
    result: dict[str, Any] | None = None  # the tool result: {"error": bool, "size", "source"}
    answer: dict[str, Any] | None = None  # a flagged inbound message: the assistant event that followed it

    @property
    def landed(self) -> bool:
        return (self.result is not None and not self.result["error"]) or self.answer is not None

    def to_json(self) -> dict[str, Any]:
        e = self.event
        return {"rule": self.rule.id, "level": self.rule.level, "title": self.rule.title,
                "description": self.rule.description, "remediation": self.rule.remediation,
                "time": e.time, "session_id": e.session_id, "agent_id": e.agent_id, "channel": e.channel,
                "session_key": e.session_key, "kind": e.kind, "tool": e.tool, "call_id": e.call_id,
                "command": _cut(e.command), "path": _cut(e.path), "url": _cut(e.url), "summary": e.summary(),
                "evidence": e.source.to_json(), "result": self.result, "answered_by": self.answer,
                "landed": self.landed, "entry_point": self.entry}


@dataclass(slots=True)
class _Session:
    agent_id: str = ""
    channel: str = ""
    session_key: str = ""
    events: int = 0
    last_inbound: dict[str, Any] | None = None
    entry: dict[str, Any] | None = None
    flagged: dict[str, list[Finding]] = field(default_factory=dict)  # call id -> findings
    unanswered: list[Finding] = field(default_factory=list)  # flagged inbound messages with no reply yet
    findings: list[Finding] = field(default_factory=list)

    def verdict(self, min_rank: int) -> str:
        counted = [f for f in self.findings if level_rank(f.rule.level) >= min_rank]
        if any(f.landed for f in counted):
            return LANDED
        return ATTEMPTED if counted else CLEAN


def _answers(event: Event) -> bool:
    """The assistant acted after an inbound message: it wrote text or called a tool."""
    return event.role == "assistant" and event.kind in ("message", "tool_call")


class Triage:
    """Feed events with :meth:`feed` (they pass through, tagged with their matching rules)."""

    def __init__(self, rules: Iterable[Rule], min_level: str) -> None:
        self.rules = list(rules)
        kinds = ("message", "tool_call", "tool_result", "undecoded")
        self._by_kind = {k: [r for r in self.rules if r.kind in (None, k)] for k in kinds}
        self.min_rank = level_rank(min_level)
        self.sessions: dict[tuple[str, str], _Session] = {}
        self.findings: list[Finding] = []
        self.events = 0
        self.undecoded = 0
        self._current: tuple[str, str] | None = None

    def feed(self, events: Iterable[Event]) -> Iterator[tuple[Event, list[Rule]]]:
        for event in events:
            self.events += 1
            yield event, self._one(event)

    def _close(self, key: tuple[str, str] | None) -> None:
        """The stream moved past a session (sources give one session's events together): a clean one
        keeps its counts only, so memory per session stays a few hundred bytes whatever the case size.
        (Were its events to come back later, its entry point would be the next inbound message.)"""
        s = self.sessions.get(key) if key is not None else None
        if s is not None and not s.findings:
            s.last_inbound = None

    def _one(self, event: Event) -> list[Rule]:
        key = (event.source.path, event.session_id)
        if key != self._current:
            self._close(self._current)
            self._current = key
        s = self.sessions.setdefault(key, _Session(event.agent_id, event.channel, event.session_key))
        s.events += 1
        if event.kind == "undecoded":
            self.undecoded += 1
        if event.kind == "message" and event.role == "user":
            s.last_inbound = {"time": event.time, "sender": event.sender, "channel": event.channel,
                              "text": event.text[:200], "evidence": event.source.to_json()}
        if event.kind == "tool_result" and event.call_id in s.flagged:
            result = {"error": bool(event.is_error), "size": event.size, "evidence": event.source.to_json()}
            for f in s.flagged.pop(event.call_id):
                f.result = result
        if s.unanswered and _answers(event):
            answer = {"kind": event.kind, "time": event.time, "evidence": event.source.to_json()}
            for f in s.unanswered:
                f.answer = answer
            s.unanswered.clear()
        fields = event.match_fields()
        hits = [r for r in self._by_kind.get(event.kind, self.rules) if r.matches(fields)]
        for rule in hits:
            if s.entry is None:
                s.entry = s.last_inbound
            finding = Finding(rule, event, s.entry)
            s.findings.append(finding)
            self.findings.append(finding)
            if event.kind == "tool_call" and event.call_id:
                s.flagged.setdefault(event.call_id, []).append(finding)
            elif event.kind == "message" and event.role == "user":
                s.unanswered.append(finding)
        return hits

    def counted(self) -> list[Finding]:
        """Findings at or above the minimum level, most severe first, then by time."""
        keep = [f for f in self.findings if level_rank(f.rule.level) >= self.min_rank]
        return sorted(keep, key=lambda f: (-level_rank(f.rule.level), f.event.time))

    def verdicts(self) -> list[dict[str, Any]]:
        """Every session that is not CLEAN, LANDED first."""
        out = []
        for (path, sid), s in self.sessions.items():
            verdict = s.verdict(self.min_rank)
            if verdict != CLEAN:
                out.append({"session_id": sid, "agent_id": s.agent_id, "channel": s.channel,
                            "session_key": s.session_key, "evidence_path": path, "verdict": verdict,
                            "events": s.events, "entry_point": s.entry,
                            "rules": sorted({f.rule.id for f in s.findings
                                             if level_rank(f.rule.level) >= self.min_rank})})
        return sorted(out, key=lambda v: (v["verdict"] != LANDED, v["session_id"]))
