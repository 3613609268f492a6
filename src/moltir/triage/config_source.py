"""Per-key changes of security-relevant config keys across the copied backup ring.

The snapshot copies the active config and OpenClaw's own copies beside it (evidence RULES: ``.bak``,
``.bak.1`` ... ``.bak.4``, ``.last-good``, ``.pre-update``, ``.clobbered.<time>``, ``.rejected.<time>``).
Decisions:

* **Order**: the versions of one config are ordered by the modification time the copy kept (the
  snapshot gives every copy its source's mtime), the active config last; each version is compared with
  the one before it. A ``.rejected.*`` copy (a write that failed validation) or a ``.clobbered.*`` one
  (an external edit ``doctor`` repaired) is in that order too: a change it shows may never have been
  live, and the event names the file so a reader can tell.
* **Keys**: a flattened key (``channels.telegram.accounts.ops.allowFrom``) is security-relevant when one
  of its segments is in :data:`SECURITY_SEGMENTS` (DM and group policy, allow-lists, bind, auth, tools,
  exec, the Control UI, hooks, cron, sandbox, elevated). Lists are compared whole.
* **Secrets**: a value under a secret-named key (token, password, apiKey ...) is never shown: the event
  says ``<secret>`` (changed or not). Other values are shown as compact JSON, bounded.
* **Citation**: the newer file (path, manifest SHA-256) and the 1-based line where the key's last
  segment first appears in it (best effort: JSON5 keeps no positions; absent when the key was removed).
* A version that does not parse becomes an ``undecoded`` event naming it; the next one is compared
  with the last that did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from moltir.openclaw.json5edit import reference_parse
from moltir.redaction import SECRET_KEY_RE
from moltir.triage.events import Event, Source
from moltir.triage.sources import CaseFile

SECURITY_SEGMENTS: Final = frozenset({
    "dmPolicy", "dm", "policy", "allowFrom", "groupPolicy", "groupAllowFrom", "bind", "auth", "tools", "exec",
    "controlUi", "hooks", "cron", "sandbox", "elevated", "trustedProxies", "tailscale", "remote",
})
_SHOWN: Final = 300
_MISSING: Final = object()


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif prefix:
        yield prefix, value


def _relevant(key: str) -> bool:
    return any(seg in SECURITY_SEGMENTS for seg in key.split("."))


def _show(key: str, value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if SECRET_KEY_RE.search(key.rsplit(".", 1)[-1]):
        return "<secret>"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _line_of(text: str, key: str) -> int | None:
    last = key.rsplit(".", 1)[-1]
    pat = re.compile(r"""(^|[{,\s])["']?""" + re.escape(last) + r"""["']?\s*:""")
    for n, line in enumerate(text.splitlines(), start=1):
        if pat.search(line):
            return n
    return None


def _time(case_dir: Path, f: CaseFile) -> str:
    from datetime import UTC, datetime

    try:
        ns = (case_dir / f.path).stat().st_mtime_ns
    except OSError:
        return ""
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def _load(case_dir: Path, f: CaseFile) -> tuple[dict[str, Any] | None, str]:
    try:
        text = (case_dir / f.path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return None, f"cannot read: {exc.strerror}"
    value, err = reference_parse(text)
    if err is not None or not isinstance(value, dict):
        return None, text
    return {k: v for k, v in _flatten(value) if _relevant(k)}, text


def _ordered(case_dir: Path, versions: list[tuple[CaseFile, str]]) -> list[CaseFile]:
    def key(item: tuple[CaseFile, str]) -> tuple[int, int]:
        f, suffix = item
        try:
            mtime = (case_dir / f.path).stat().st_mtime_ns
        except OSError:
            mtime = 0
        return (1 if suffix == "" else 0, mtime)

    return [f for f, _ in sorted(versions, key=key)]


def config_events(case_dir: Path, versions: list[tuple[CaseFile, str]]) -> Iterator[Event]:
    """The changes of one config's security-relevant keys, version after version (oldest first)."""
    before: dict[str, Any] | None = None
    for f in _ordered(case_dir, versions):
        keys, text = _load(case_dir, f)
        if keys is None:
            yield Event(kind="undecoded", time=_time(case_dir, f), session_id="", source=Source(f.path, f.sha256),
                        text="config copy does not parse as JSON5")
            continue
        if before is not None:
            yield from _diff(before, keys, f, text, _time(case_dir, f))
        before = keys


def _diff(old: Mapping[str, Any], new: Mapping[str, Any], f: CaseFile, text: str, when: str) -> Iterator[Event]:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if a == b:
            continue
        change = "added" if a is _MISSING else "removed" if b is _MISSING else "changed"
        shown_old, shown_new = _show(key, a), _show(key, b)
        line = _line_of(text, key) if b is not _MISSING else None
        yield Event(kind="config_change", time=when, session_id="", source=Source(f.path, f.sha256, line=line),
                    path=key, action=change, text=f"config {key} {change}: {shown_old} -> {shown_new}",
                    extra={"config_key": key, "old_value": shown_old, "new_value": shown_new})
