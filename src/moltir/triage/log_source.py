"""Auth, pairing and connection events from the copied gateway file logs and unit journal.

The gateway's file logs (``/tmp/openclaw/openclaw-<date>.log``, ``<state>/logs/*.log``, ``logging.file``)
are tslog JSON lines in 2026.1.29 and 2026.9.6 alike: ``{"0": "{\\"subsystem\\":\\"gateway\\"}", "1": <text or
object>, "2": <text>, "_meta": {"date": ISO-8601, "logLevelName": ...}}`` (seen in harness homes of both);
the journal export (``evidence/journald/<unit>.json``) has one JSON object per line with the console
text in ``MESSAGE``. Only lines that say something about who reached the gateway become events (kind
``log``), with ``action``:

* ``device_paired``: ``device pairing approved device=<id> role=<role>`` (or ``auto-approved``), logged
  by both releases' gateways (dist: ``logGateway.info(`device pairing approved ...`)``);
* ``device_change``: a device token rotated or revoked, a device pairing removed;
* ``pairing_request``: a channel sender asked to pair (2026.9.6 logs ``telegram pairing request`` with
  ``senderUserId``; seen in a harness home after a DM from a stranger under ``dmPolicy: "pairing"``);
* ``inbound_message``: ``Inbound message telegram:<sender> -> <bot> (direct, N chars)`` (2026.9.6);
* ``auth_failure``: by keyword (unauthorized, authentication failed, invalid token/password, token
  mismatch, handshake timeout, rate limited): wording differs across releases, so this one is a
  search, not a parse.

Other lines are not events (the timeline stays about who reached the gateway). Each event cites the
log (path, manifest SHA-256) and its line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from moltir.triage.events import Event, Source
from moltir.triage.sources import CaseFile

MAX_LINE: Final = 1 << 16  # a longer line is read in part (the prefix is classified)
_PATTERNS: Final = (
    ("device_paired", re.compile(r"device pairing (?:auto-)?approved device=(?P<device>\S+) role=(?P<role>\S+)")),
    ("device_change", re.compile(r"device token (?:rotated|revoked) device=(?P<device>\S+)|device pairing removed "
                                 r"device=(?P<device2>\S+)")),
    ("pairing_request", re.compile(r"\bpairing request\b", re.I)),
    ("inbound_message", re.compile(r"Inbound message (?P<channel>[\w-]+):(?P<sender>\S+) -> ")),
    ("auth_failure", re.compile(r"unauthori[sz]ed|auth(?:entication)? (?:failed|rejected|denied)|invalid (?:token|"
                                r"password)|token mismatch|handshake timeout|rate[- ]limited", re.I)),
)
_ISO: Final = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)")


def _parts(record: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(subsystem, text, object fields) of a tslog record."""
    sub = record.get("0")
    try:
        meta = json.loads(sub) if isinstance(sub, str) and sub.startswith("{") else {}
    except ValueError:
        meta = {}
    subsystem = str(meta.get("subsystem") or meta.get("module") or sub or "") if isinstance(meta, dict) else ""
    texts: list[str] = []
    fields: dict[str, Any] = {}
    for key in ("1", "2", "3"):
        value = record.get(key)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            fields.update(value)
    return subsystem, " ".join(texts), fields


def _line(raw: bytes) -> tuple[str, str, str, dict[str, Any]]:
    """(time, subsystem, text, fields) of one log or journal line."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if isinstance(record, dict) and "MESSAGE" in record:  # journalctl -o json
        message = record.get("MESSAGE")
        text = message if isinstance(message, str) else ""
        m = _ISO.match(text)
        return (m.group(1) if m else ""), str(record.get("SYSLOG_IDENTIFIER") or ""), text, {}
    if isinstance(record, dict):
        meta = record.get("_meta")
        when = meta.get("date") if isinstance(meta, dict) else record.get("time")
        subsystem, body, fields = _parts(record)
        return (when if isinstance(when, str) else ""), subsystem, body, fields
    m = _ISO.match(text)
    return (m.group(1) if m else ""), "", text, {}


def _event(f: CaseFile, lineno: int, raw: bytes) -> Event | None:
    when, subsystem, text, fields = _line(raw)
    for action, rx in _PATTERNS:
        m = rx.search(text)
        if m is None:
            continue
        groups = {k: v for k, v in m.groupdict().items() if v}
        sender = str(groups.get("sender") or fields.get("senderUserId") or fields.get("senderId") or "")
        channel = groups.get("channel") or subsystem.split("-", 1)[0].split("/", 1)[0]
        extra = {"subsystem": subsystem, **({"device": groups.get("device") or groups.get("device2")}
                                            if groups.get("device") or groups.get("device2") else {}),
                 **({"device_role": groups["role"]} if "role" in groups else {})}
        return Event(kind="log", time=when, session_id="", source=Source(f.path, f.sha256, line=lineno),
                     channel=channel if action in ("pairing_request", "inbound_message") else "",
                     sender=sender, sender_id=sender, action=action, text=text[:2000], extra=extra)
    return None


def log_events(case_dir: Path, f: CaseFile) -> Iterator[Event]:
    """The auth, pairing and connection events of one copied log or journal export, in file order."""
    with open(case_dir / f.path, "rb") as fh:
        for lineno, raw in enumerate(iter(lambda: fh.readline(MAX_LINE), b""), start=1):
            if raw.strip():
                event = _event(f, lineno, raw)
                if event is not None:
                    yield event
            while raw and not raw.endswith(b"\n"):  # the rest of an over-long line: same line number
                raw = fh.readline(MAX_LINE)
