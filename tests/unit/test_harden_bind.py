"""harden's bind step and paired devices / nodes seen from non-loopback addresses, in the layout each
release keeps them (2026.1.29: ``devices/paired.json``, ``nodes/paired.json``; 2026.9.6: the
``device_pairing_paired`` table of ``state/openclaw.sqlite``)."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

from moltir.actions.harden import HardenConfig
from moltir.actions.harden.settings import bind_edits
from moltir.openclaw.paired_devices import is_loopback, seen_remote

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tests.unit.releasefix import CURRENT, EARLY  # noqa: E402
from tests.unit.test_harden import Env  # noqa: E402

# the columns 2026.9.6 creates (dist/openclaw-state-db-*.mjs), those moltir reads among them
SCHEMA_9_6 = ("CREATE TABLE device_pairing_paired (device_id TEXT NOT NULL PRIMARY KEY, public_key TEXT NOT NULL, "
              "display_name TEXT, remote_ip TEXT, tokens_json TEXT, created_at_ms INTEGER NOT NULL, "
              "approved_at_ms INTEGER NOT NULL) STRICT")


def _files(state: Path, device_ip: str, node_ip: str | None = None) -> None:
    (state / "devices").mkdir()
    devices = {"dev-1": {"deviceId": "dev-1", "remoteIp": "127.0.0.1"},
               "dev-2": {"deviceId": "dev-2", "remoteIp": device_ip}}
    (state / "devices" / "paired.json").write_text(json.dumps(devices))
    if node_ip:
        (state / "nodes").mkdir()
        nodes = {"node-\x1b[31m": {"nodeId": "n", "remoteIp": node_ip}}
        (state / "nodes" / "paired.json").write_text(json.dumps(nodes))


def _sqlite(state: Path, rows: list[tuple[str, str | None]]) -> None:
    (state / "state").mkdir()
    conn = sqlite3.connect(state / "state" / "openclaw.sqlite")
    conn.execute(SCHEMA_9_6)
    conn.executemany("INSERT INTO device_pairing_paired VALUES (?, 'pk', NULL, ?, '{}', 1, 1)", rows)
    conn.commit()
    conn.close()


def test_loopback_addresses() -> None:
    assert all(is_loopback(a) for a in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "[::1]", "localhost"))
    assert not any(is_loopback(a) for a in ("192.168.1.20", "100.64.0.7", "fe80::1", "example.org"))


def test_files_store_devices_and_nodes(tmp_path: Path) -> None:
    _files(tmp_path, "192.168.1.20", "10.0.0.5")
    seen = seen_remote(tmp_path, "files")
    assert [(s.kind, s.address) for s in seen] == [("device", "192.168.1.20"), ("node", "10.0.0.5")]
    assert seen_remote(tmp_path, "sqlite") == []  # a 2026.9.6 install does not read the old files


def test_sqlite_store(tmp_path: Path) -> None:
    _sqlite(tmp_path, [("d-local", "127.0.0.1"), ("d-lan", "192.168.1.9"), ("d-none", None)])
    assert [(s.ident, s.address) for s in seen_remote(tmp_path, "sqlite")] == [("d-lan", "192.168.1.9")]
    (tmp_path / "state" / "openclaw.sqlite").write_bytes(b"not a database")
    assert seen_remote(tmp_path, "sqlite") == []  # unreadable: nothing seen, no crash


def test_bind_refused_with_the_reason_unless_forced() -> None:
    data = {"gateway": {"bind": "lan"}}
    out = bind_edits(data, force=False, remote=["paired device d was seen connecting from 192.168.1.9"])
    assert "192.168.1.9" in out.refusal and "--force" in out.refusal
    forced = bind_edits(data, force=True, remote=["paired device d was seen connecting from 192.168.1.9"])
    assert not forced.refusal and forced.paths == {("gateway", "bind"): "loopback"} and forced.notes


def test_harden_bind_step_reads_the_release_store(tmp_path: Path) -> None:
    (tmp_path / "early").mkdir()
    (tmp_path / "current").mkdir()
    early = Env(tmp_path / "early", release=EARLY)
    _files(early.state, "192.168.1.20", "10.0.0.5")
    plan = HardenConfig().plan(early.ctx(HardenConfig(), dry=True, setting="bind"))
    assert plan.summary == "bind: refused" and "192.168.1.20" in plan.warnings[0]
    assert "\x1b" not in plan.warnings[0]  # a node id is shown escaped, never raw
    result = HardenConfig().apply(early.ctx(HardenConfig(), setting="bind"))
    assert result.status == "skipped" and early.config.read_bytes() == early.original
    current = Env(tmp_path / "current", release=CURRENT)
    _sqlite(current.state, [("d-lan", "192.168.1.9")])
    plan = HardenConfig().plan(current.ctx(HardenConfig(), dry=True, setting="bind"))
    assert "paired device d-lan was seen connecting from 192.168.1.9" in plan.warnings[0]
    forced = HardenConfig().apply(current.ctx(HardenConfig(), force=True, setting="bind"))
    assert forced.status == "done" and 'bind: "loopback"' in current.config.read_text()
