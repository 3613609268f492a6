"""The triage event model: one transcript record becomes zero or more :class:`Event`.

Transcript records are the same in both generations (checked against transcripts the real
gateways 2026.1.29 and 2026.9.6 wrote through the harness, tests/integration/test_triage_real.py):
one JSON object per JSONL line or per ``transcript_events.event_json`` row, ``{"type": "message",
"timestamp": ISO-8601, "message": {...}}`` where ``message.role`` is ``user``, ``assistant`` or
``toolResult``. An assistant message's ``content`` holds ``{"type": "toolCall", "id", "name",
"arguments": {...}}`` items; a tool result has ``toolCallId``, ``toolName``, ``content`` and
``isError`` (exec results add ``details.exitCode``). Other record types (``session``,
``model_change``, ``custom`` ...) are not events here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

# Characters of a message, a tool result or a tool call's arguments (as JSON) kept for matching. A
# command, path or URL is matched whole (padding a command past a bound must not hide its pipe); the
# outputs shorten what they show (:data:`SHOWN`).
MAX_TEXT: Final = 1 << 20
SHOWN: Final = 4096

# Argument names that carry what a tool acts on (read/write/edit: path or file_path; web_fetch: url;
# exec: command; gateway (2026.1.29) / openclaw (2026.9.6): action).
_PATH_KEYS: Final = ("path", "file_path", "filePath", "file")
_URL_KEYS: Final = ("url", "targetUrl", "href")


@dataclass(frozen=True)
class Source:
    """Where an event came from: the evidence path (relative to the case), the manifest's SHA-256 of
    that file, and a JSONL line number (1-based) or a SQLite row (session_id, seq)."""

    path: str
    sha256: str
    line: int | None = None
    session_id: str | None = None
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "sha256": self.sha256}
        if self.line is not None:
            out["line"] = self.line
        if self.seq is not None:
            out["row"] = {"session_id": self.session_id, "seq": self.seq}
        return out

    def cite(self) -> str:
        if self.line is None and self.seq is None:
            return self.path
        where = f"line {self.line}" if self.line is not None else f"row {self.session_id}#{self.seq}"
        return f"{self.path} {where}"


_TEXT_FIELDS: Final = ("time", "agent_id", "session_key", "channel", "account", "role", "sender", "sender_id", "tool",
                       "call_id", "command", "path", "url", "action", "text", "credential")


@dataclass(frozen=True)
class Event:
    kind: str  # message | tool_call | tool_result | undecoded
    time: str  # ISO 8601 as recorded ("" when the record has none)
    session_id: str
    source: Source
    agent_id: str = ""
    session_key: str = ""
    channel: str = ""
    role: str = ""
    sender: str = ""
    tool: str = ""
    call_id: str = ""
    command: str = ""
    path: str = ""
    url: str = ""
    action: str = ""
    text: str = ""
    size: int | None = None
    is_error: bool | None = None
    account: str = ""  # the channel account an inbound message came through (when the record says)
    sender_id: str = ""  # the sender's channel id alone (``sender`` may add a name)
    allowed: bool | None = None  # the DM policy in force admitted the sender (moltir.triage.policy)
    allowlisted: bool | None = None  # an allowlist names the sender (config allowFrom or pairing approval)
    credential: str = ""  # credentials whose value a tool result holds: "id (fingerprint)", never the value
    extra: Mapping[str, Any] = field(default_factory=dict)

    def _build_fields(self) -> dict[str, Any]:
        d = self.__dict__
        out: dict[str, Any] = {"kind": self.kind, "session_id": self.session_id}
        for key in _TEXT_FIELDS:
            value = d[key]
            if value:
                out[key] = value
        if self.size is not None:
            out["size"] = self.size
        for key in ("is_error", "allowed", "allowlisted"):
            if d[key] is not None:
                out[key] = d[key]
        d["_fields_cache"] = out  # computed once per event (the instance is frozen: its fields never change)
        return out

    def fields(self) -> dict[str, Any]:
        """The event's fields as rules and the timeline see them (empty ones left out; a copy)."""
        return dict(self.match_fields())

    def match_fields(self) -> dict[str, Any]:
        """The same, not copied (computed once per event): for rules, which only read it."""
        cached: dict[str, Any] | None = self.__dict__.get("_fields_cache")
        return cached if cached is not None else self._build_fields()

    def summary(self) -> str:
        """One line saying what happened (not escaped: callers escape for a terminal)."""
        if self.kind == "tool_call":
            what = self.command or self.path or self.url or self.action or self.text
            return f"{self.tool}: {what}"[:300]
        if self.kind == "tool_result":
            state = "error" if self.is_error else "ok"
            held = f"; holds the value of {self.credential}" if self.credential else ""
            return f"{self.tool} result ({state}, {self.size or 0} bytes{held})"
        if self.kind == "message":
            who = f"{self.role}" + (f" {self.sender}" if self.sender else "")
            return f"{who}: {self.text}"[:300]
        return self.text[:300]


@dataclass(frozen=True)
class Context:
    """What every event of one transcript shares."""

    session_id: str
    agent_id: str = ""
    session_key: str = ""
    channel: str = ""
    account: str = ""


def _bounded(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text[:MAX_TEXT]


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict) and c.get("type") == "text")
    return ""


def _first(args: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = args.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _tool_call(item: Mapping[str, Any], base: dict[str, Any]) -> Event:
    args = item.get("arguments")
    if isinstance(args, str):  # some providers keep the raw JSON string
        try:
            args = json.loads(args)
        except ValueError:
            args = {"raw": args}
    args = args if isinstance(args, dict) else {}
    name, extra = str(item.get("name") or ""), {}
    if name == "tool_call" and isinstance(args.get("id"), str) and isinstance(args.get("args"), dict):
        # 2026.9.6 calls deferred tools (web_fetch, browser, automations ...) through the tool_call tool:
        # {"id": "<tool name or search result id>", "args": {...}} (docs/tools/tool-search.md; seen in
        # a transcript the real 2026.9.6 gateway wrote): the event names the tool called.
        name, args, extra = args["id"], args["args"], {"via": "tool_call"}
    command = args.get("command") if isinstance(args.get("command"), str) else ""
    return Event(kind="tool_call", tool=name, call_id=str(item.get("id") or ""),
                 command=str(command), path=_first(args, _PATH_KEYS), url=_first(args, _URL_KEYS),
                 action=_first(args, ("action",))[:200], text=_bounded(args), extra=extra, **base)


def _is_error(msg: Mapping[str, Any]) -> bool:
    if msg.get("isError") is True:
        return True
    details = msg.get("details")
    code = details.get("exitCode") if isinstance(details, dict) else None
    return isinstance(code, int) and code != 0


def _sender(msg: Mapping[str, Any]) -> str:
    """Who sent a user message, where the record says: ``__openclaw.senderId`` (2026.9.6 writes
    ``{senderIdentity, senderId, senderName, ...}`` for channel senders: dist/channel-server-*.mjs) or
    ``senderIsOwner: true`` (seen on a CLI turn of the real 2026.9.6 gateway). 2026.1.29 records neither."""
    meta = msg.get("__openclaw")
    if isinstance(meta, dict):
        if isinstance(meta.get("senderId"), str | int):
            name = meta.get("senderName")
            return f"{meta['senderId']}" + (f" ({name})" if isinstance(name, str) and name else "")
        if meta.get("senderIsOwner") is True:
            return "owner"
    return ""


# 2026.1.29 writes no sender metadata; the text of an inbound channel message starts with an envelope
# "[Telegram Eve (@eve) id:444444444 2026-12-07 04:06 UTC] hello" (seen in a transcript the real
# 2026.1.29 gateway wrote for a DM through the harness's fake Telegram).
_ENVELOPE: Final = re.compile(r"^\[(?P<channel>[A-Za-z][\w-]*) [^\]\n]*?\bid:(?P<id>[^\s\]]+)")


def _sender_meta(msg: Mapping[str, Any], text: str) -> tuple[str, str, str]:
    """(sender id, account, channel) of an inbound message, where the record says ("" where not)."""
    meta = msg.get("__openclaw")
    if isinstance(meta, dict) and isinstance(meta.get("senderId"), str | int):
        ident, transport = meta.get("senderIdentity"), meta.get("transport")
        ident = ident if isinstance(ident, dict) else {}
        transport = transport if isinstance(transport, dict) else {}
        account, channel = ident.get("accountId"), transport.get("channel") or ident.get("pluginId")
        return (str(meta["senderId"]), account if isinstance(account, str) else "",
                channel if isinstance(channel, str) else "")
    m = _ENVELOPE.match(text) if msg.get("role") == "user" else None
    return (m.group("id"), "", m.group("channel").lower()) if m else ("", "", "")


def events_of(record: object, ctx: Context, source: Source) -> Iterator[Event]:
    """The events of one transcript record (nothing for records that are not messages)."""
    if not isinstance(record, dict) or record.get("type") != "message":
        return
    msg = record.get("message")
    if not isinstance(msg, dict):
        return
    base: dict[str, Any] = {"time": str(record.get("timestamp") or ""), "session_id": ctx.session_id,
                            "source": source, "agent_id": ctx.agent_id, "session_key": ctx.session_key,
                            "channel": ctx.channel}
    role = str(msg.get("role") or "")
    content = msg.get("content")
    if role == "toolResult":
        text = _content_text(content)
        data = text.encode("utf-8", "surrogatepass")
        yield Event(kind="tool_result", role=role, tool=str(msg.get("toolName") or ""),
                    call_id=str(msg.get("toolCallId") or ""), size=len(data), is_error=_is_error(msg),
                    text=text[:MAX_TEXT], extra={"content_sha256": hashlib.sha256(data).hexdigest()}, **base)
        return
    text = _content_text(content)
    if text:
        sender_id, account, channel = _sender_meta(msg, text)
        if channel and not base["channel"]:
            base = {**base, "channel": channel}
        sender = _sender(msg) or sender_id
        yield Event(kind="message", role=role, sender=sender, sender_id=sender_id,
                    account=account or ctx.account if sender_id else "", text=text[:MAX_TEXT], **base)
    if isinstance(content, list):
        for item in content:
            if isinstance(item, dict) and item.get("type") == "toolCall":
                yield _tool_call(item, {**base, "role": role})
