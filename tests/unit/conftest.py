"""Unit-test isolation: moltir's own state and HOME live in the test's tmp dir."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_moltir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MOLTIR_HOME", str(tmp_path / "moltir-home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    for var in ("OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "OPENCLAW_PROFILE", "OPENCLAW_HOME",
                "CLAWDBOT_STATE_DIR", "CLAWDBOT_CONFIG_PATH", "OPENCLAW_GATEWAY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
