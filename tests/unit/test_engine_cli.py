"""The engine through the real CLI, with moltir's test actions: lock, resume, dry-run, confirmation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from moltir.journal import verify_chain


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MOLTIR_ENABLE_TEST_ACTIONS="1", NO_COLOR="1", PATH=os.environ.get("PATH", ""))
    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True, exist_ok=True)
    env["OPENCLAW_STATE_DIR"] = str(state)
    return env


def _moltir(*args: str, env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False, **kw)  # type: ignore[call-overload]


def _spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "moltir", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def _runbook(tmp_path: Path, seconds: float = 60) -> Path:
    rb = tmp_path / "rb.json5"
    rb.write_text(f"""{{
  name: "contain",
  steps: [
    {{ id: "first", action: "test.sleep", with: {{ marker: "{tmp_path}/marks" }} }},
    {{ id: "slow", action: "test.sleep", with: {{ seconds: {seconds}, until: "{tmp_path}/go",
                                                  marker: "{tmp_path}/marks" }} }},
    {{ id: "last", action: "test.sleep", with: {{ marker: "{tmp_path}/marks" }} }},
  ],
}}
""")
    return rb


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def _journal(env: dict[str, str]) -> Path | None:
    cases = Path(env["MOLTIR_HOME"]) / "cases"
    found = list(cases.glob("*/journal.jsonl")) if cases.exists() else []
    return found[0] if found else None


def _slow_step_started(env: dict[str, str]) -> bool:
    path = _journal(env)
    return bool(path and '"step":"slow"' in path.read_text() and '"event":"step.start"' in path.read_text())


def test_second_concurrent_run_exits_4_naming_the_holder(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = _runbook(tmp_path)
    first = _spawn("contain", "--yes", "--runbook", str(rb), env=env)
    try:
        _wait_for(lambda: _slow_step_started(env))
        second = _moltir("contain", "--yes", "--runbook", str(rb), env=env)
        assert second.returncode == 4, second.stderr
        assert f"pid {first.pid}" in second.stderr and "started" in second.stderr
        errors = [ln for ln in second.stderr.splitlines() if ln.startswith("moltir:")]
        assert len(errors) == 1 and "another moltir run holds the lock" in errors[0]
    finally:
        (tmp_path / "go").touch()
        first.wait(timeout=30)
    assert first.returncode == 0, first.stderr


def test_kill_9_mid_run_then_rerun_resumes_at_the_interrupted_step(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = _runbook(tmp_path)
    first = _spawn("contain", "--yes", "--runbook", str(rb), env=env)
    _wait_for(lambda: _slow_step_started(env))
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert (tmp_path / "marks").read_text().splitlines() == ["first"]

    status = _moltir("status", "--json", env=env)
    assert json.loads(status.stdout)["status"] == "interrupted"

    (tmp_path / "go").touch()
    second = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["resumed_from"] == "slow"
    assert [s["status"] for s in result["steps"]] == ["done-earlier", "done", "done"]
    assert (tmp_path / "marks").read_text().splitlines() == ["first", "slow", "last"]
    journal = _journal(env)
    assert journal is not None and verify_chain(journal).ok
    verify = _moltir("journal", "verify", env=env)
    assert verify.returncode == 0, verify.stderr
    # and once everything is done, a further contain is a no-op that says so
    again = _moltir("contain", "--yes", "--runbook", str(rb), env=env)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    # --new-case starts fresh
    fresh = _moltir("contain", "--yes", "--new-case", "--runbook", str(rb), "--json", env=env)
    assert json.loads(fresh.stdout)["case_id"] != result["case_id"]


def test_tampered_journal_fails_verification_with_exit_5(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "go").touch()
    assert _moltir("contain", "--yes", "--runbook", str(_runbook(tmp_path)), env=env).returncode == 0
    journal = _journal(env)
    assert journal is not None
    journal.write_text(journal.read_text().replace('"step":"first"', '"step":"forged"', 1))
    out = _moltir("journal", "verify", env=env)
    assert out.returncode == 5 and "hash chain broken" in out.stderr
    assert _moltir("status", "--verify", env=env).returncode == 5


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    env = _env(tmp_path)
    target = tmp_path / "touched"
    rb = tmp_path / "touch.json5"
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "t", action: "test.touch", '
                  f'with: {{ path: "{target}" }} }} ] }}')
    before = sorted(p for p in tmp_path.rglob("*"))
    out = _moltir("contain", "--dry-run", "--runbook", str(rb), env=env)
    assert out.returncode == 0, out.stderr
    assert "dry run" in out.stdout and str(target) in out.stdout
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_without_a_tty_yes_is_required(tmp_path: Path) -> None:
    env = _env(tmp_path)
    out = _moltir("contain", "--runbook", str(_runbook(tmp_path, 0)), env=env)
    assert out.returncode == 2 and "--yes" in out.stderr
    assert not (Path(env["MOLTIR_HOME"]) / "cases").exists()


def test_failing_step_aborts_with_exit_1_and_resume_hint(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = tmp_path / "fail.json5"
    rb.write_text(f"""{{ name: "contain", steps: [
      {{ id: "boom", action: "test.touch", with: {{ path: "{tmp_path}/no/such/dir/x" }} }},
      {{ id: "after", action: "test.sleep" }} ] }}""")
    out = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert [s["status"] for s in result["steps"]] == ["failed", "not-run"]
    assert "internal error" in result["steps"][0]["error"] and "journal" in result["steps"][0]["error"]
    assert "Traceback" not in out.stderr


def _watch_runbook(tmp_path: Path) -> Path:
    rb = tmp_path / "watch.json5"
    rb.write_text(f"""{{ name: "contain", steps: [
      {{ id: "watched", action: "test.watch", with: {{ seconds: 1, fail_if: "{tmp_path}/respawned" }} }},
      {{ id: "next", action: "test.sleep", with: {{ marker: "{tmp_path}/marks" }} }} ] }}""")
    return rb


def test_deferred_verification_runs_behind_the_next_steps(tmp_path: Path) -> None:
    env = _env(tmp_path)
    out = _moltir("contain", "--yes", "--runbook", str(_watch_runbook(tmp_path)), "--json", env=env)
    assert out.returncode == 0, out.stderr
    journal = _journal(env)
    assert journal is not None
    events = [(r["event"], r.get("step")) for r in map(json.loads, journal.read_text().splitlines())]
    # the next step ran while the first was still being watched; verified done only afterwards
    assert events.index(("step.applied", "watched")) < events.index(("step.done", "next")) \
        < events.index(("step.done", "watched"))


def test_deferred_verification_failure_fails_the_step_with_its_exit_code(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "respawned").touch()
    out = _moltir("contain", "--yes", "--runbook", str(_watch_runbook(tmp_path)), "--json", env=env)
    assert out.returncode == 5, out.stderr
    result = json.loads(out.stdout)
    assert [s["status"] for s in result["steps"]] == ["failed", "done"]
    assert "appeared while watching" in result["steps"][0]["error"]
    status = json.loads(_moltir("status", "--json", env=env).stdout)
    assert status["status"] == "failed" and "watched" in status["runs"]["contain"]["steps_failed"]


def test_bad_input_after_a_change_is_exit_1_not_2(tmp_path: Path) -> None:
    """Exit 2 means 'nothing changed'; once an earlier step changed something, a bad-input failure is 1."""
    env = _env(tmp_path)
    first = tmp_path / "a.json5"
    first.write_text('{ name: "contain", steps: [ { id: "bad", action: "test.touch", with: { path: "" } } ] }')
    assert _moltir("contain", "--yes", "--runbook", str(first), env=env).returncode == 2
    second = tmp_path / "b.json5"
    second.write_text(f"""{{ name: "contain", steps: [
      {{ id: "change", action: "test.touch", with: {{ path: "{tmp_path}/changed" }} }},
      {{ id: "bad", action: "test.touch", with: {{ path: "" }} }} ] }}""")
    out = _moltir("contain", "--yes", "--new-case", "--runbook", str(second), env=env)
    assert out.returncode == 1 and (tmp_path / "changed").exists(), out.stderr
