"""engine.effects.with_case_release: the re-check of a case's effects uses the release the case's run
saw when nothing tells it now (root's PATH has no openclaw, the config has no meta version)."""

from __future__ import annotations

import json
from pathlib import Path

from moltir.engine.effects import with_case_release
from moltir.openclaw import Install, discover


def _install(tmp_path: Path) -> Install:
    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True)
    (state / "openclaw.json").write_text(json.dumps({"gateway": {"port": 18789}}))
    return discover(env={"HOME": str(tmp_path / "home"), "PATH": ""})


def test_an_unknown_release_takes_the_one_the_case_recorded(tmp_path: Path) -> None:
    install = _install(tmp_path)
    assert install.caps.release is None and install.caps.discord_slack_dm_key == "dm.policy"
    records = [{"event": "run.start", "ts": "2026-12-07T00:52:25Z", "openclaw": {"version": "2026.9.6"}},
               {"event": "step.done"}]
    told = with_case_release(install, records)
    assert str(told.caps.release) == "2026.9.6" and told.caps.discord_slack_dm_key == "dmPolicy"
    assert "journal" in told.caps.basis


def test_a_known_release_or_no_record_is_left_alone(tmp_path: Path) -> None:
    install = _install(tmp_path)
    assert with_case_release(install, [{"event": "run.start", "openclaw": {"version": None}}]) is install
    (install.config_path).write_text(json.dumps({"meta": {"lastTouchedVersion": "2026.1.29"}}))
    known = discover(env={"HOME": str(tmp_path / "home"), "PATH": ""})
    records = [{"event": "run.start", "openclaw": {"version": "2026.9.6"}}]
    assert str(with_case_release(known, records).caps.release) == "2026.1.29"
