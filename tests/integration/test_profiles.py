"""Several profiles on one host (a family or team sharing one machine): ``--all-profiles``.

One HOME with ``~/.openclaw-main`` and ``~/.openclaw-rescue``, each its own config, port, token and
real 2026.9.6 gateway (``openclaw --profile NAME gateway run``). One ``moltir contain --all-profiles``
takes both down -- two cases sharing one incident id, run in parallel -- and ``moltir restore
--all-profiles`` brings both back on their new tokens; ``status --all-profiles`` shows both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness.envelope import moltir_json
from tests.harness.home import OpenClawHome, close_home, create_home
from tests.harness.net import port_is_open, token_status, wait_until
from tests.harness.prereq import missing_prerequisite
from tests.harness.procs import kill_leftovers
from tests.harness.releases import release
from tests.harness.risk import accept_open_dms
from tests.harness.secret_service import SecretService

PROFILES = ("main", "rescue")


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[dict[str, OpenClawHome]]:
    rel = release("2026.9.6")
    if rel.missing():
        missing_prerequisite(str(rel.missing()))
    made = {p: create_home(tmp_path / p, rel) for p in PROFILES}
    try:
        yield made
    finally:
        for h in made.values():
            close_home(h)


def _shared_home(tmp_path: Path, homes: dict[str, OpenClawHome]) -> tuple[Path, dict[str, Path]]:
    """One HOME holding both profiles' state dirs (each one's own config, port, token, fakes)."""
    home = tmp_path / "family"
    dirs = {}
    for p, h in homes.items():
        state = home / f".openclaw-{p}"
        state.mkdir(parents=True, mode=0o700)
        shutil.copy2(h.config_path, state / "openclaw.json")
        dirs[p] = state
    return home, dirs


def _env(base: dict[str, str], home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH")}
    env.update(HOME=str(home), **extra)
    return env


def _moltir(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL, check=False)


def test_contain_and_restore_all_profiles(homes: dict[str, OpenClawHome], secret_service: SecretService,
                                          tmp_path: Path) -> None:
    home, dirs = _shared_home(tmp_path, homes)
    env = _env(homes["main"].env, home, {**secret_service.env, "MOLTIR_HOME": str(tmp_path / "moltir-home")})
    procs = []
    try:
        for p, h in homes.items():
            log = (tmp_path / f"gw-{p}.log").open("ab")
            procs.append(subprocess.Popen([str(h.openclaw_bin), "--profile", p, "gateway", "run"], env=env,
                                          cwd=home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        for p, h in homes.items():
            wait_until(lambda h=h: token_status(h.port, h.token) == 400, 180, what=f"profile {p} gateway")

        t0 = time.monotonic()
        contain = _moltir(env, "contain", "--all-profiles", "--yes", "--json", "--reason", "shared host")
        took = time.monotonic() - t0
        assert contain.returncode == 0, contain.stdout + contain.stderr
        out: dict[str, Any] = moltir_json(contain.stdout)
        by_profile = {i["profile"]: i for i in out["installs"]}
        assert set(by_profile) == set(PROFILES), out
        cases = [Path(i["result"]["case_dir"]) for i in by_profile.values()]
        assert len(set(cases)) == 2
        incidents = {json.loads((c / "case.json").read_text())["incident"] for c in cases}
        assert incidents == {out["incident"]}
        for p, h in homes.items():
            assert not port_is_open(h.port), f"profile {p} still listening"
            cfg = (dirs[p] / "openclaw.json").read_text()
            assert '"disabled"' in cfg or "disabled" in cfg
        print(f"contain --all-profiles of 2 gateways: {took:.1f} s")

        status = _moltir(env, "status", "--all-profiles", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        states = {i["install"]: i["report"]["status"] for i in moltir_json(status.stdout)["installs"]}
        assert states == {"main": "contained", "rescue": "contained"}

        restore = _moltir(env, "restore", "--all-profiles", "--yes", *accept_open_dms("2026.9.6"))
        assert restore.returncode == 0, restore.stdout + restore.stderr
        for stream in ("[main]", "[rescue]"):
            assert stream in restore.stderr, "progress lines name the install they are about"
        assert restore.stdout.count("restore: all 5 steps done") == 2, restore.stdout
        for p, h in homes.items():
            assert port_is_open(h.port), f"profile {p} not back"
            assert token_status(h.port, h.token) == 401, f"profile {p}: the old token still works"
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
        for d in dirs.values():
            kill_leftovers(d)


def test_all_profiles_refuses_a_selector(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "MOLTIR_HOME": str(tmp_path / "mh")}
    got = _moltir(env, "contain", "--all-profiles", "--profile", "main", "--yes")
    assert got.returncode == 2 and "cannot be combined" in got.stderr
    none = _moltir(env, "contain", "--all-profiles", "--yes")
    assert none.returncode == 3 and "no OpenClaw install found" in none.stderr
