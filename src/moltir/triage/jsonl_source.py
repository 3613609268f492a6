"""Events of the JSONL transcripts (2026.1.29 ... 2026.7.35), streamed a line at a time.

The session id is the file name (``<sessionId>.jsonl``); the session key and channel come from the
``sessions.json`` index beside it (``{"<sessionKey>": {"sessionId", "channel", "lastChannel", ...}}``,
as 2026.1.29 writes it: checked in a harness home).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from moltir.triage.events import Context, Event, Source, events_of
from moltir.triage.jsonlines import NOT_JSON, json_lines
from moltir.triage.sources import CaseFile


def session_index(case_dir: Path, index: CaseFile | None) -> dict[str, tuple[str, str, str]]:
    """sessionId -> (session key, channel, account) from a copied ``sessions.json`` ({} when absent or
    unreadable). The account is ``lastAccountId`` (2026.1.29 also writes ``origin.accountId``)."""
    if index is None:
        return {}
    try:
        data = json.loads((case_dir / index.path).read_bytes())
    except (OSError, ValueError):
        return {}
    out: dict[str, tuple[str, str, str]] = {}
    for key, entry in data.items() if isinstance(data, dict) else ():
        if isinstance(entry, dict) and isinstance(entry.get("sessionId"), str):
            channel = entry.get("lastChannel") or entry.get("channel") or ""
            origin = entry.get("origin")
            origin = origin if isinstance(origin, dict) else {}
            account = entry.get("lastAccountId") or origin.get("accountId") or ""
            out[entry["sessionId"]] = (str(key), str(channel), str(account))
    return out


def jsonl_events(case_dir: Path, f: CaseFile, index: dict[str, tuple[str, str, str]]) -> Iterator[Event]:
    """Every event of one copied JSONL transcript, in file order."""
    session_id = f.path.rsplit("/", 1)[-1].removesuffix(".jsonl")
    key, channel, account = index.get(session_id, ("", "", ""))
    ctx = Context(session_id=session_id, agent_id=f.agent_id, session_key=key, channel=channel, account=account)
    with open(case_dir / f.path, "rb") as fh:
        for lineno, record in json_lines(fh):
            source = Source(f.path, f.sha256, line=lineno)
            if record is NOT_JSON:
                yield Event(kind="undecoded", time="", session_id=session_id, source=source, agent_id=f.agent_id,
                            text="line is not JSON (truncated or damaged record)")
                continue
            yield from events_of(record, ctx, source)
