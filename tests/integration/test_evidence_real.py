"""evidence.snapshot end to end: real gateway (2026.9.6 and 2026.1.29), real transcripts, real CLI.

The snapshot runs through ``moltir contain --runbook <one-step runbook>`` in a child process,
exactly as a user would run it, against the harness's isolated home after a real agent turn.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness.clawdbot import ClawdbotHome
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.transcripts import Transcripts

SNAPSHOT_RUNBOOK = """// one step: the evidence snapshot
{ name: "contain", steps: [ { id: "snapshot", action: "evidence.snapshot" } ] }
"""


def _env(home: OpenClawHome) -> dict[str, str]:
    return {**home.env, "MOLTIR_HOME": str(home.root / "moltir-home")}


def _moltir(home: OpenClawHome, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=_env(home), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=home.root)


def _snapshot(home: OpenClawHome, case_dir: Path) -> subprocess.CompletedProcess[str]:
    rb = home.root / "snapshot.json5"
    rb.write_text(SNAPSHOT_RUNBOOK)
    return _moltir(home, "contain", "--runbook", str(rb), "--case-dir", str(case_dir), "--yes")


def _manifest(case_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((case_dir / "manifest.json").read_text())
    return data


def _by_source(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["source"]: f for f in manifest["files"]}


def _transcript_text_from_copy(case_dir: Path, manifest: dict[str, Any], tr: Transcripts, scratch: Path) -> str:
    """What the COPY says: JSONL bytes, or the copied SQLite db (+ its -wal) opened in a scratch dir."""
    files = _by_source(manifest)
    if tr.kind == "jsonl":
        return "".join((case_dir / files[str(p)]["path"]).read_text() for p in tr.paths)
    scratch.mkdir()
    db = tr.paths[0]
    for suffix in ("", "-wal"):
        entry = files.get(str(db) + suffix)
        if entry is not None:
            shutil.copyfile(case_dir / entry["path"], scratch / (db.name + suffix))
    conn = sqlite3.connect(scratch / db.name)
    try:
        return "\n".join(str(r[0]) for r in conn.execute("SELECT event_json FROM transcript_events"))
    finally:
        conn.close()


def test_snapshot_after_a_real_gateway_run(openclaw_home: OpenClawHome, gateway: Gateway,
                                           transcripts: Transcripts, tmp_path: Path) -> None:
    home = openclaw_home
    gateway.stop()
    gateway.assert_stopped()

    # hostile entries in the gateway's default (TMPDIR-based) log dir, and a FIFO in the state dir
    logdir = home.tmpdir / "openclaw"
    logdir.mkdir(exist_ok=True)
    outside = tmp_path / "outside" / "not-evidence.txt"
    outside.parent.mkdir()
    outside.write_text("OUTSIDE-THE-ROOTS\n")
    today = logdir / f"openclaw-{time.strftime('%Y-%m-%d')}.log"
    if today.exists():
        today.rename(logdir / "gateway-wrote-this.log.moved")
    today.symlink_to(outside)
    fifo = logdir / "openclaw-2001-01-01.log"
    os.mkfifo(fifo)
    os.mkfifo(home.state_dir / "logs" / "pipe.log")

    case = tmp_path / "case"
    run = _snapshot(home, case)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr

    m = _manifest(case)
    files = _by_source(m)
    assert m["gateway_running"] is False
    assert m["install"]["product"] == "openclaw" and m["install"]["version"] == home.release.id
    expected = [home.config_path, home.log_file, *transcripts.paths]
    if home.release.current:
        assert transcripts.kind == "sqlite"
        expected.append(home.state_dir / "state" / "openclaw.sqlite")
    else:
        assert transcripts.kind == "jsonl"
    for path in expected:
        assert str(path) in files, f"{path} missing from the evidence"
        copy = case / files[str(path)]["path"]
        assert copy.read_bytes() == path.read_bytes(), path
    for side in ("-wal", "-shm"):  # whatever SQLite side files existed were taken with their db
        for db in [p for p in expected if p.suffix == ".sqlite"]:
            if Path(str(db) + side).exists():
                assert str(db) + side in files
    assert home.llm.reply in _transcript_text_from_copy(case, m, transcripts, tmp_path / "scratch")

    skipped = {s["source"]: s["reason"] for s in m["skipped"]}
    assert "symlink" in skipped[str(today)] and str(outside) in skipped[str(today)]
    assert "FIFO" in skipped[str(fifo)]
    assert "FIFO" in skipped[str(home.state_dir / "logs" / "pipe.log")]
    for dirpath, _dirs, names in os.walk(case / "evidence"):
        for name in names:
            assert b"OUTSIDE-THE-ROOTS" not in Path(dirpath, name).read_bytes()

    for name in ("manifest.json", "seal.json", "SHA256SUMS", "journal.jsonl"):
        assert home.token not in (case / name).read_text(), f"the gateway token leaked into {name}"

    sums = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=case, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout[-2000:] + sums.stderr[-2000:]
    ok = _moltir(home, "evidence", "verify", str(case))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    listed = _moltir(home, "evidence", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [c["state"] for c in moltir_json(listed.stdout)["cases"]] == ["sealed"]

    # a deterministic export, recorded in the custody log
    a = _moltir(home, "evidence", "export", "-o", str(tmp_path / "a.tar.gz"), "--json")  # default: latest case
    b = _moltir(home, "evidence", "export", str(case), "-o", str(tmp_path / "b.tar.gz"), "--json")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    custody = [json.loads(line) for line in (case / "custody.jsonl").read_text().splitlines()]
    assert [c["archive_sha256"] for c in custody] == [moltir_json(a.stdout)["sha256"]] * 2

    # one flipped byte in a copy: verify exits 5 and names the file
    rel = files[str(home.config_path)]["path"]
    target = case / rel
    target.parent.chmod(0o700)
    target.chmod(0o600)
    data = bytearray(target.read_bytes())
    data[0] ^= 0x20
    target.write_bytes(bytes(data))
    bad = _moltir(home, "evidence", "verify", str(case))
    assert bad.returncode == 5, bad.stdout + bad.stderr
    assert f"changed: {rel}" in bad.stdout and rel in bad.stderr
    assert "Traceback" not in bad.stderr


# 2026.1.29 keeps transcripts in JSONL: it has no SQLite store to back up, so only 2026.9.6 runs this.
@pytest.mark.parametrize("openclaw_release", ["2026.9.6"], indirect=True, ids=["oc2026.9.6"])
def test_snapshot_with_the_gateway_still_up_takes_consistent_sqlite_copies(
        openclaw_home: OpenClawHome, gateway: Gateway, transcripts: Transcripts, tmp_path: Path) -> None:
    assert openclaw_home.release.current
    case = tmp_path / "case"
    run = _snapshot(openclaw_home, case)
    assert run.returncode == 0, run.stdout + run.stderr
    assert gateway.running
    m = _manifest(case)
    assert m["gateway_running"] is True
    db = transcripts.paths[0]
    backups = {f["source"]: f for f in m["files"] if f["root"] == "sqlite-backup"}
    assert str(db) in backups
    conn = sqlite3.connect(f"file:{case / backups[str(db)]['path']}?mode=ro", uri=True)
    try:
        events = "\n".join(str(r[0]) for r in conn.execute("SELECT event_json FROM transcript_events"))
    finally:
        conn.close()
    assert openclaw_home.llm.reply in events
    ok = _moltir(openclaw_home, "evidence", "verify", str(case))
    assert ok.returncode == 0, ok.stdout + ok.stderr


@contextlib.contextmanager
def _small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                           capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mount.stderr.strip()}); "
                    "tests/unit/test_evidence.py covers ENOSPC with an injected write failure")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
        where.rmdir()


def test_disk_full_leaves_the_case_incomplete_and_unsealed(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    big = openclaw_home.state_dir / "logs" / "big.log"
    with big.open("wb") as fh:
        for _ in range(8):
            fh.write(os.urandom(1 << 20))  # 8 MiB of logs into a 2 MiB disk
    with _small_tmpfs(tmp_path / "small", "2m") as disk:
        case = disk / "case"
        run = _snapshot(openclaw_home, case)
        assert run.returncode == 1, run.stdout + run.stderr
        assert "disk full" in run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        assert (case / "evidence" / "INCOMPLETE").is_file()
        assert not (case / "seal.json").exists() and not (case / "manifest.json").exists()
        assert not any(p.name == "big.log" for p in (case / "evidence").rglob("*"))  # no half-written copy
        verify = _moltir(openclaw_home, "evidence", "verify", str(case))
        assert verify.returncode == 5 and "INCOMPLETE" in verify.stdout + verify.stderr
        events = [json.loads(line)["event"] for line in (case / "journal.jsonl").read_text().splitlines()]
        assert "evidence.incomplete" in events


def test_a_fifo_in_the_log_dir_does_not_hang(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    """Even a FIFO with the exact name of today's log (no writer on the other end)."""
    logdir = openclaw_home.tmpdir / "openclaw"
    logdir.mkdir(exist_ok=True)
    fifo = logdir / f"openclaw-{time.strftime('%Y-%m-%d')}.log"
    os.mkfifo(fifo)
    case = tmp_path / "case"
    result: list[subprocess.CompletedProcess[str]] = []
    t = threading.Thread(target=lambda: result.append(_snapshot(openclaw_home, case)), daemon=True)
    t.start()
    t.join(300)
    assert result, "the snapshot did not finish"
    assert result[0].returncode == 0, result[0].stdout + result[0].stderr
    skipped = {s["source"]: s["reason"] for s in _manifest(case)["skipped"]}
    assert "FIFO" in skipped[str(fifo)]


def test_snapshot_of_a_clawdbot_layout(clawdbot_home: ClawdbotHome, tmp_path: Path) -> None:
    cb = clawdbot_home
    env = {**cb.env, "MOLTIR_HOME": str(tmp_path / "moltir-home")}
    rb = tmp_path / "snapshot.json5"
    rb.write_text(SNAPSHOT_RUNBOOK)
    case = tmp_path / "case"
    run = subprocess.run([sys.executable, "-m", "moltir", "contain", "--runbook", str(rb), "--case-dir", str(case),
                          "--yes"], env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    m = _manifest(case)
    assert m["install"]["product"] == "clawdbot"
    s = cb.state_dir
    files = _by_source(m)
    for rel in ("clawdbot.json", "logs/clawdbot.log", f"agents/main/sessions/{cb.transcript.name}",
                "agents/main/sessions/sessions.json", "credentials/telegram-pairing.json",
                "credentials/telegram-allowFrom.json", "devices/paired.json", "devices/pending.json",
                "exec-approvals.json", "cron/jobs.json"):
        assert str(s / rel) in files, rel
        assert (case / files[str(s / rel)]["path"]).read_bytes() == (s / rel).read_bytes()
    listed = {e["source"] for e in m["listed"]}
    for rel in ("agents/main/agent/models.json", "agents/main/agent/auth-profiles.json", "identity/device.json",
                "identity/device-auth.json"):
        assert str(s / rel) in listed, rel
        assert str(s / rel) not in files
    for name in ("manifest.json", "seal.json", "journal.jsonl"):
        text = (case / name).read_text()
        assert cb.token not in text and "sk-ant-fake-not-a-secret" not in text, name
    sums = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=case, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    ok = subprocess.run([sys.executable, "-m", "moltir", "evidence", "verify", str(case)], env=env,
                        capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
