"""Paired devices and nodes and the address each was last seen connecting from (read-only).

Where the installed release keeps them (capability ``state_store``), checked in the packages:

* ``files`` (to 2026.7.x): ``<state>/devices/paired.json`` and ``<state>/nodes/paired.json``, objects
  keyed by device / node id whose entries carry ``remoteIp`` (2026.1.29
  ``dist/infra/device-pairing.js`` and ``dist/infra/node-pairing.js``: ``pairedPath:
  path.join(dir, "paired.json")``, ``remoteIp: pending.remoteIp``);
* ``sqlite`` (2026.8.1 on): table ``device_pairing_paired`` (``device_id``, ``remote_ip``, ...) in
  ``<state>/state/openclaw.sqlite`` (2026.9.6 ``dist/openclaw-state-db-*.mjs``: ``CREATE TABLE IF NOT
  EXISTS device_pairing_paired (... remote_ip TEXT ...)``), opened read-only.

Used by harden's bind step: a device or node seen from a non-loopback address needs the wider bind.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Seen:
    kind: str  # "device" | "node"
    ident: str
    address: str


def is_loopback(address: str) -> bool:
    host = address.strip().strip("[]")
    if host.startswith("::ffff:"):
        host = host[len("::ffff:"):]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _from_file(path: Path, kind: str) -> list[Seen]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    return [Seen(kind, str(key), entry["remoteIp"]) for key, entry in data.items()
            if isinstance(entry, dict) and isinstance(entry.get("remoteIp"), str) and entry["remoteIp"]]


def _from_sqlite(db: Path) -> list[Seen]:
    if not db.is_file():
        return []
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return []
    try:
        rows = conn.execute("SELECT device_id, remote_ip FROM device_pairing_paired "
                            "WHERE remote_ip IS NOT NULL AND remote_ip != ''").fetchall()
    except sqlite3.Error:  # no such table (a store from another release), locked
        return []
    finally:
        conn.close()
    return [Seen("device", str(device), str(ip)) for device, ip in rows]


def seen_remote(state_dir: Path, store: str) -> list[Seen]:
    """Paired devices and nodes last seen from a non-loopback address. ``store``: the capability's
    answer ("files" or "sqlite"); anything else reads both."""
    found: list[Seen] = []
    if store != "sqlite":
        found += _from_file(state_dir / "devices" / "paired.json", "device")
        found += _from_file(state_dir / "nodes" / "paired.json", "node")
    if store != "files":
        found += _from_sqlite(state_dir / "state" / "openclaw.sqlite")
    return [s for s in found if not is_loopback(s.address)]
