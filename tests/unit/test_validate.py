"""Every config write is checked by the installed release's own validator first (fake CLIs here;
the real releases in tests/integration/test_release_matrix.py)."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import pytest
from tests.unit.releasefix import pin

from moltir.engine.case import Case
from moltir.errors import EXIT_STEP_FAILED, MoltirError
from moltir.openclaw import discover, validate
from moltir.openclaw.configfile import ConfigFile

TOKEN = "tok-" + "s" * 40

# A fake `openclaw`: `config validate --json` (2026.3.2+) or `config get gateway.mode` (older) reading
# OPENCLAW_CONFIG_PATH; "forbidden" keys make it invalid; every argv and the candidate's mode recorded.
FAKE = textwrap.dedent(r'''
    #!{python}
    import json, os, stat, sys, time
    path = os.environ["OPENCLAW_CONFIG_PATH"]
    with open(os.environ["FAKE_RECORD"], "a") as fh:
        fh.write(json.dumps({{"argv": sys.argv[1:], "mode": oct(stat.S_IMODE(os.stat(path).st_mode)),
                             "env_token": os.environ.get("OPENCLAW_GATEWAY_TOKEN")}}) + "\n")
    if os.environ.get("FAKE_HANG"):
        time.sleep(30)
    data = json.load(open(path))
    bad = [f"channels.{{c}}: Unrecognized key: \"dmPolicy\"" for c, b in (data.get("channels") or {{}}).items()
           if isinstance(b, dict) and "dmPolicy" in b and c == "googlechat"]
    if data.get("broken"):
        bad.append("broken: Unrecognized key: \"broken\"")
    if sys.argv[1:3] == ["config", "validate"]:
        print(json.dumps({{"valid": not bad, "path": path,
                          "issues": [{{"path": b.split(":")[0], "message": b.split(": ", 1)[1]}} for b in bad]}}))
        sys.exit(1 if bad else 0)
    if bad:
        print("Invalid config at " + path + ":\\n- " + bad[0], file=sys.stderr)
        print("Problem:")
        for b in bad:
            print("  - " + b)
        sys.exit(1)
    print("local")
''')


def make(tmp_path: Path, config: dict[str, object], release: str = "2026.9.6", **env: str) -> tuple[ConfigFile, Path]:
    import sys

    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    cfg = state / "openclaw.json"
    cfg.write_text(json.dumps(config, indent=2))
    cfg.chmod(0o600)
    fake = tmp_path / "openclaw"
    fake.write_text(FAKE.format(python=sys.executable).lstrip())
    fake.chmod(0o755)
    record = tmp_path / "record.jsonl"
    install = discover(state_dir=str(state), openclaw_bin=str(fake),
                       env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "FAKE_RECORD": str(record),
                            "OPENCLAW_GATEWAY_TOKEN": TOKEN, **env})
    return ConfigFile.load(pin(install, release)), record


def calls(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


BASE = {"gateway": {"mode": "local", "auth": {"mode": "token", "token": TOKEN}},
        "channels": {"googlechat": {"enabled": True, "dm": {"policy": "open"}}}}


@pytest.mark.parametrize("release", ["2026.9.6", "2026.1.29"])
def test_an_edit_the_release_rejects_is_never_written(tmp_path: Path, release: str) -> None:
    cfg, record = make(tmp_path, BASE, release)
    before = cfg.path.read_bytes()
    edits = cfg.plan_edits({("channels", "googlechat", "dmPolicy"): "disabled"})
    case = Case.create(tmp_path / "case", kind="contain", install_info={}, reason="t")
    with pytest.raises(MoltirError) as err:
        cfg.write(edits, case=case)
    assert err.value.exit_code == EXIT_STEP_FAILED
    assert "would reject the edited config" in err.value.message and "googlechat" in err.value.message
    assert cfg.path.read_bytes() == before
    assert not (case.dir / "preimage").exists()  # refused before anything was saved or written
    seen = calls(record)
    want = ["config", "validate", "--json"] if release == "2026.9.6" else ["config", "get", "gateway.mode"]
    assert seen[0]["argv"] == want
    assert all(c["mode"] == "0o600" and c["env_token"] is None for c in seen)  # no credential inherited
    assert all(TOKEN not in json.dumps(c["argv"]) for c in seen)
    assert [p.name for p in cfg.path.parent.iterdir()] == ["openclaw.json"]  # the candidate file is gone


def test_a_valid_edit_is_written_and_the_verdict_kept(tmp_path: Path) -> None:
    cfg, _ = make(tmp_path, BASE)
    cfg.write(cfg.plan_edits({("channels", "googlechat", "dm", "policy"): "disabled"}))
    assert json.loads(cfg.path.read_text())["channels"]["googlechat"]["dm"]["policy"] == "disabled"
    assert cfg.validation is not None and cfg.validation.ok is True
    assert cfg.validation_warning() is None
    assert stat.S_IMODE(cfg.path.stat().st_mode) == 0o600


def test_a_config_invalid_before_the_edit_is_still_edited(tmp_path: Path) -> None:
    cfg, _ = make(tmp_path, {**BASE, "broken": True})
    cfg.write(cfg.plan_edits({("channels", "googlechat", "dm", "policy"): "disabled"}))
    assert json.loads(cfg.path.read_text())["channels"]["googlechat"]["dm"]["policy"] == "disabled"
    warning = cfg.validation_warning()
    assert warning is not None and "broken" in warning


def test_a_validator_that_does_not_answer_does_not_stop_containment(tmp_path: Path) -> None:
    cfg, _ = make(tmp_path, BASE, FAKE_HANG="1", MOLTIR_VALIDATE_TIMEOUT_S="1")
    cfg.write(cfg.plan_edits({("channels", "googlechat", "dmPolicy"): "disabled"}))
    assert json.loads(cfg.path.read_text())["channels"]["googlechat"]["dmPolicy"] == "disabled"
    warning = cfg.validation_warning()
    assert warning is not None and "no answer within 1 s" in warning


def test_a_valid_verdict_started_early_serves_the_write_with_another_token(tmp_path: Path) -> None:
    cfg, record = make(tmp_path, BASE)
    planned = cfg.plan_edits({("gateway", "auth", "token"): "<new token>"})
    cfg.start_validation(planned)
    cfg.write(cfg.plan_edits({("gateway", "auth", "token"): "n" * 64}))
    assert cfg.validation is not None and cfg.validation.ok is True
    assert len(calls(record)) == 1  # the token's value does not change validity: one run served both


def test_text_verdicts_of_old_releases_are_parsed() -> None:
    out = ('Invalid config at /x/.openclaw.json.moltir-validate-1.json:\\n- channels.googlechat: '
           'Unrecognized key: "dmPolicy"\nProblem:\n  - channels.googlechat: Unrecognized key: "dmPolicy"\n')
    v = validate._from_text(out, 1, "openclaw config get gateway.mode", 5, "/x/.openclaw.json.moltir-validate-1.json")
    assert v.ok is False and v.problems == ('channels.googlechat: Unrecognized key: "dmPolicy"',)
    assert validate._from_text("local\n", 0, "x", 1, "/t").ok is True
    assert validate._from_text("Error: boom\n", 1, "x", 1, "/t").ok is None


def test_no_binary_means_not_validated(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    (state / "openclaw.json").write_text(json.dumps(BASE))
    cfg = ConfigFile.load(discover(state_dir=str(state), env={"HOME": str(tmp_path), "PATH": ""}))
    cfg.write(cfg.plan_edits({("channels", "googlechat", "dm", "policy"): "disabled"}))
    assert cfg.validation is not None and cfg.validation.ok is None
    assert "not checked" in (cfg.validation_warning() or "")
    assert os.listdir(state) == ["openclaw.json"]
