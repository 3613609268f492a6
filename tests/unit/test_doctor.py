from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from tests.harness.envelope import moltir_json

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
    report = moltir_json(result.output)
    levels = {c["check"]: c["level"] for c in report["checks"]}
    assert levels.get("gateway token source") in (None, "ok", "advice")
    assert all(c["level"] != "problem" or c["check"] not in ("gateway token source", "gateway token in keyring")
               for c in report["checks"])


def test_a_malformed_config_is_a_problem_with_exit_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, _home(tmp_path, "{ gateway: "))
    report = moltir_json(result.output)
    assert result.exit_code == 3 and report["ok"] is False
    config = next(c for c in report["checks"] if c["check"] == "config")
    assert config["level"] == "problem" and "openclaw.json" in config["detail"]


def test_a_plain_script_binary_reports_its_version_and_the_matching_capabilities(tmp_path: Path) -> None:
    """A plain ``openclaw`` script (no npm package around it) that prints a version: doctor names the
    binary it found, the version the script gave, and answers for that release (not "no binary")."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "openclaw"
    script.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'OpenClaw 2026.7.35 (2a1b3c4)'; fi\n")
    script.chmod(0o755)
    args = [*_home(tmp_path, '{ gateway: { mode: "local" } }'), "--openclaw-bin", str(script)]
    report = moltir_json(CliRunner().invoke(cli, args).output)
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["openclaw binary"]["level"] == "ok" and str(script) in checks["openclaw binary"]["detail"]
    assert "2026.7.35" in checks["openclaw release"]["detail"] and "--version" in checks["openclaw release"]["detail"]
    answers = report["capabilities"]["answers"]
    assert answers["restart_signal"]["value"] == "SIGUSR1"
    assert answers["googlechat_dm_key"]["value"] == "dm.policy"
    assert answers["gateway_token_secretref"]["value"] is True
    assert answers["audit_ledger"]["value"] is True
    assert report["capabilities"]["release"] == "2026.7.35"
    assert "no binary" not in json.dumps(report)
    text = CliRunner().invoke(cli, [a for a in args if a != "--json"]).output
    assert "restart_signal" in text and "SIGUSR1" in text


def test_a_release_newer_than_known_is_advice_with_the_newest_answers(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "openclaw"
    script.write_text("#!/bin/sh\necho 2027.2.1\n")
    script.chmod(0o755)
    args = [*_home(tmp_path, '{ gateway: { mode: "local" } }'), "--openclaw-bin", str(script)]
    report = moltir_json(CliRunner().invoke(cli, args).output)
    release = next(c for c in report["checks"] if c["check"] == "openclaw release")
    assert release["level"] == "advice" and "newer than 2026.9.6" in release["detail"]
    assert report["capabilities"]["answers"]["restart_signal"]["value"] == "SIGUSR2"
