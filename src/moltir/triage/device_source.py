"""Paired devices from the copied device store (``<state>/devices/paired.json``, 2026.1.x ... 2026.7.x).

2026.1.29 keeps ``{"<deviceId>": {deviceId, publicKey, displayName, platform, clientId, clientMode, role,
roles, scopes, remoteIp, tokens, createdAtMs, approvedAtMs}}`` (dist/infra/device-pairing.js,
``approveDevicePairing``). Each device becomes one ``device`` event at its ``approvedAtMs`` with
``action: "paired"`` and a text ``device <id> paired: role=<role> roles=<...> client=<clientId>/<mode>
remote=<remoteIp or none>``; its ``tokens`` are never read out. The event cites the file and the line
where the device's id first appears. 2026.8.1 on keep devices in SQLite: not read here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moltir.triage.events import Event, Source
from moltir.triage.sources import CaseFile


def _iso(ms: object) -> str:
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        try:
            return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return ""
    return ""


def _text(device_id: str, d: Mapping[str, Any]) -> str:
    roles = d.get("roles")
    roles = roles if isinstance(roles, list) else []
    client = f"{d.get('clientId') or '?'}/{d.get('clientMode') or '?'}"
    remote = d.get("remoteIp") if isinstance(d.get("remoteIp"), str) and d.get("remoteIp") else "none"
    return (f"device {device_id} paired: role={d.get('role') or 'unknown'} roles={','.join(map(str, roles))} "
            f"client={client} remote={remote}")[:1000]


def device_events(case_dir: Path, f: CaseFile) -> Iterator[Event]:
    """One event per paired device of a copied ``devices/paired.json``."""
    try:
        raw = (case_dir / f.path).read_text(encoding="utf-8", errors="replace")
        data = json.loads(raw)
    except (OSError, ValueError):
        yield Event(kind="undecoded", time="", session_id="", source=Source(f.path, f.sha256),
                    text="device store is not JSON")
        return
    lines = raw.splitlines()
    for device_id, d in data.items() if isinstance(data, dict) else ():
        if not isinstance(d, dict):
            continue
        needle = json.dumps(str(device_id))
        line = next((n for n, text in enumerate(lines, start=1) if needle in text), None)
        yield Event(kind="device", time=_iso(d.get("approvedAtMs")), session_id="",
                    source=Source(f.path, f.sha256, line=line), action="paired", text=_text(str(device_id), d),
                    extra={"device": str(device_id), "device_role": str(d.get("role") or ""),
                           "remote_ip": str(d.get("remoteIp") or "")})
