"""The keyring preflight through the real CLI: a run whose token.rotate cannot work changes nothing.

``contain`` stops the gateway and edits the config BEFORE it rotates the token; with no usable
keyring it used to stop half-way (exit 3 after the gateway was down and the DMs edited). Now every
pending step's preflight runs first: exit 3, one line naming the problem and the fix, no step run,
no case opened. A drill refused that way is still recorded in the drill history.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.harness.envelope import moltir_json


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MOLTIR_ENABLE_TEST_ACTIONS="1", NO_COLOR="1", PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True, exist_ok=True)
    (state / "openclaw.json").write_text('{ gateway: { auth: { token: "old-token-value-123456" } } }')
    env["OPENCLAW_STATE_DIR"] = str(state)
    return env


def _moltir(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)


def test_contain_with_no_usable_keyring_changes_nothing(tmp_path: Path) -> None:
    env = _env(tmp_path)
    marker = tmp_path / "marks"
    rb = tmp_path / "contain.json5"
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "stop-gateway", action: "test.sleep", with: {{ marker: '
                  f'"{marker}" }} }}, {{ id: "rotate-token", action: "token.rotate" }} ] }}')
    before = (tmp_path / "home" / ".openclaw" / "openclaw.json").read_bytes()
    result = _moltir("contain", "--yes", "--runbook", str(rb), env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("moltir:")]  # not the install notes
    assert len(lines) == 1 and lines[0].startswith("moltir: no keyring backend is available"), result.stderr
    assert all(ln.startswith(("moltir:", "warning:")) for ln in result.stderr.splitlines()), result.stderr
    assert "PYTHON_KEYRING_BACKEND" in lines[0] and "nothing was changed" in lines[0]
    assert "drop step 'rotate-token'" in lines[0]  # how to stop the bleeding without the keyring
    assert "Traceback" not in result.stdout + result.stderr
    assert not marker.exists(), "a step ran before the keyring was found unusable"
    assert (tmp_path / "home" / ".openclaw" / "openclaw.json").read_bytes() == before
    assert not (Path(env["MOLTIR_HOME"]) / "cases").exists() or not any((Path(env["MOLTIR_HOME"]) / "cases").iterdir())

    as_json = _moltir("contain", "--yes", "--json", "--runbook", str(rb), env=env)
    assert as_json.returncode == 3 and moltir_json(as_json.stdout)["exit_code"] == 3


def test_a_drill_refused_up_front_is_in_the_history(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _moltir("drill", "--yes", env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("moltir:")] == [
        "moltir: the gateway is not running (needed by step 'rotate-token'; nothing was changed). start it "
        "first: this step proves the rotation on the running gateway"], result.stderr
    assert not (Path(env["MOLTIR_HOME"]) / "cases").exists() or not any((Path(env["MOLTIR_HOME"]) / "cases").iterdir())
    history = moltir_json(_moltir("drill", "history", "--json", env=env).stdout)["drills"]
    assert [(r["outcome"], r["exit_code"]) for r in history] == [("failed", 3)]
    assert "the gateway is not running" in history[0]["message"]
    text = _moltir("drill", "history", env=env).stdout
    assert "exit 3" in text and "the gateway is not running" in text


def test_the_dry_run_plan_never_prints_none(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _moltir("contain", "--dry-run", env=env)
    # no openclaw binary here: the dry run says the run would stop at the audit, with its exit code
    assert result.returncode == 3, result.stdout + result.stderr
    assert "keyring  moltir/gateway-token:" in result.stdout
    assert "None" not in result.stdout, result.stdout
