from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from moltir.cli import cli


def _home(tmp_path: Path, config: str) -> list[str]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "openclaw.json").write_text(config)
    (state / "openclaw.json").chmod(0o600)
    return ["doctor", "--json", "--state-dir", str(state)]


def test_a_plaintext_token_is_advice_not_a_problem(tmp_path: Path, monkeypatch: object) -> None:
    args = _home(tmp_path, '{ gateway: { mode: "local", auth: { mode: "token", token: "t-0123456789abcdef01" } } }')
    result = CliRunner().invoke(cli, args)
    report = json.loads(result.output)
    levels = {c["check"]: c["level"] for c in report["checks"]}
    assert levels.get("gateway token source") in (None, "ok", "advice")
    assert all(c["level"] != "problem" or c["check"] not in ("gateway token source", "gateway token in keyring")
               for c in report["checks"])


def test_a_malformed_config_is_a_problem_with_exit_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, _home(tmp_path, "{ gateway: "))
    report = json.loads(result.output)
    assert result.exit_code == 3 and report["ok"] is False
    config = next(c for c in report["checks"] if c["check"] == "config")
    assert config["level"] == "problem" and "openclaw.json" in config["detail"]
