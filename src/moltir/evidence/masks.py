"""Masked secrets in the tool results of a transcript: a secret the model provider was sent.

Releases from 2026.4.29 (capability ``transcript_masks``) mask secrets when they *write* a transcript
message, not before the model sees it: the tool result went to the model provider with the value, the
transcript keeps a mask. The mask is OpenClaw's ``maskToken`` (2026.9.6 ``dist/redact-B5EGyLvV.mjs``;
the same in 2026.4.29 ``dist/redact-vz8FmIJK.js``, 2026.5.28, 2026.7.35, 2026.8.2): a value of 18
characters or more becomes its first 6 characters, ``…`` (U+2026) and its last 4
(``sk-fak…cret``); a shorter one becomes ``***``. The transcript record is the one every release
writes (``{"type": "message", "timestamp": ISO-8601, "message": {"role": "toolResult", ...}}``, a JSONL
line or a ``transcript_events`` row; 2026.9.6 ``dist/transcript-redact-CcOcbRyc.mjs``
``redactTranscriptMessage``, applied by ``redactTranscriptMessageForStorage``).

A mask names 10 characters of the value, so it is tied to a credential whose value has that first 6 and
last 4 (every credential that does: two keys of one provider could share them; a mask that could be any
other secret of that shape is as likely, the report says "matches"). A mask of no known credential is an
*unattributed* exposure: something secret-shaped was sent. ``***`` masks are not recorded: they cannot be
told from ordinary text (markdown, separators) and name no credential. Nothing of the mask is written
anywhere (its 10 characters are part of the secret): a hit carries the place, the time and the tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

HOW: Final = "masked in a tool result (sent to the model provider)"
MIN_LEN: Final = 18  # OpenClaw's DEFAULT_REDACT_MIN_LENGTH: shorter values become "***"
KEEP_START: Final = 6  # DEFAULT_REDACT_KEEP_START
KEEP_END: Final = 4
ELLIPSIS: Final = "\u2026"
MARKERS: Final = (ELLIPSIS.encode("utf-8"), b"\\u2026")  # raw (as OpenClaw writes it) or JSON-escaped
# a span outside any known credential's mask: token characters either side of the ellipsis, not in a
# word (or right after "bot": Telegram's bot<token> URL form keeps the "bot")
_CHARS: Final = r"[A-Za-z0-9_\-.:+/=]"
_SPAN: Final = re.compile(rf"(?:(?<![A-Za-z0-9])|(?<=bot)){_CHARS}{{{KEEP_START}}}{ELLIPSIS}{_CHARS}{{{KEEP_END}}}"
                          r"(?![A-Za-z0-9_\-])")


def mask_of(value: str) -> str | None:
    """The mask OpenClaw writes for ``value`` (None: under 18 characters, written as ``***``)."""
    if len(value) < MIN_LEN:
        return None
    return value[:KEEP_START] + ELLIPSIS + value[-KEEP_END:]


@dataclass(frozen=True)
class MaskedHit:
    ids: tuple[str, ...]  # the credentials whose mask it is (empty: unattributed)
    time: str
    tool: str


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _time(record: Mapping[str, Any], msg: Mapping[str, Any], fallback: str) -> str:
    stamp = record.get("timestamp")
    if isinstance(stamp, str) and stamp:
        return stamp
    ms = msg.get("timestamp")
    if isinstance(ms, int | float) and not isinstance(ms, bool) and 0 < ms < 1e15:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return fallback


def masked_spans(data: bytes, masks: Mapping[str, Iterable[str]], fallback_time: str = "") -> list[MaskedHit]:
    """The masked spans of one transcript record (JSON bytes) when it is a tool result: one hit per
    distinct mask, tied to the ids in ``masks`` (mask -> credential ids) it equals."""
    if not any(m in data for m in MARKERS):
        return []
    try:
        record = json.loads(data)
    except ValueError:
        return []
    msg = record.get("message") if isinstance(record, dict) and record.get("type") == "message" else None
    if not isinstance(msg, dict) or msg.get("role") != "toolResult":
        return []
    text = "\n".join(_strings(msg))
    hits: list[MaskedHit] = []
    when, tool = _time(record, msg, fallback_time), str(msg.get("toolName") or "")
    known = set()
    for mask, ids in masks.items():
        if mask in text:
            known.add(mask)
            hits.append(MaskedHit(tuple(sorted(ids)), when, tool))
    if any(m.group(0) not in known for m in _SPAN.finditer(text)):
        hits.append(MaskedHit((), when, tool))
    return hits
