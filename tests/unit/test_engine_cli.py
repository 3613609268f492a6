"""The engine through the real CLI, with moltir's test actions: lock, resume, dry-run, confirmation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.harness.envelope import moltir_json

from moltir.engine.journal import verify_chain


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
    assert moltir_json(status.stdout)["status"] == "interrupted"

    (tmp_path / "go").touch()
    second = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert second.returncode == 0, second.stderr
    result = moltir_json(second.stdout)
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
    assert moltir_json(fresh.stdout)["case_id"] != result["case_id"]


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
    result = moltir_json(out.stdout)
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
    result = moltir_json(out.stdout)
    assert [s["status"] for s in result["steps"]] == ["failed", "done"]
    assert "appeared while watching" in result["steps"][0]["error"]
    status = moltir_json(_moltir("status", "--json", env=env).stdout)
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


# ---- acceptance findings (engine area) ------------------------------------------------------------

def _cases(env: dict[str, str]) -> list[Path]:
    root = Path(env["MOLTIR_HOME"]) / "cases"
    return sorted(p for p in root.iterdir()) if root.exists() else []


def test_restore_and_drill_while_a_contain_runs_exit_4_and_open_no_case(tmp_path: Path) -> None:
    """The lock is taken before restore's checks and before a case is opened: a restore started
    during a contain used to say "nothing to restore" (exit 0), a drill opened a case that hid
    the containment from restore."""
    env = _env(tmp_path)
    rb = _runbook(tmp_path)
    drill_rb = tmp_path / "drill.json5"
    drill_rb.write_text('{ name: "drill", steps: [ { id: "d", action: "test.sleep" } ] }')
    first = _spawn("contain", "--yes", "--runbook", str(rb), env=env)
    try:
        _wait_for(lambda: _slow_step_started(env))
        for args in (("restore", "--yes"), ("drill", "--yes", "--runbook", str(drill_rb)),
                     ("contain", "--yes", "--new-case", "--runbook", str(rb))):
            out = _moltir(*args, "--json", env=env)
            assert out.returncode == 4, (args, out.stdout, out.stderr)
            assert moltir_json(out.stdout)["exit_code"] == 4
            assert f"pid {first.pid}" in out.stderr and "moltir contain" in out.stderr
        assert len(_cases(env)) == 1
        # status tells a run in progress from an interrupted one
        status = _moltir("status", "--json", env=env)
        report = moltir_json(status.stdout)
        assert report["status"] == "running" and report["running"]["pid"] == first.pid, report
        assert f"pid {first.pid}" in _moltir("status", env=env).stdout
    finally:
        (tmp_path / "go").touch()
        first.wait(timeout=30)
    assert first.returncode == 0, first.stderr


def test_a_drill_never_becomes_the_case_status_and_restore_act_on(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "go").touch()
    contained = _moltir("contain", "--yes", "--runbook", str(_runbook(tmp_path)), "--json", env=env)
    assert contained.returncode == 0, contained.stderr
    case_id = moltir_json(contained.stdout)["case_id"]
    drill_rb = tmp_path / "drill.json5"
    drill_rb.write_text('{ name: "drill", steps: [ { id: "d", action: "test.touch", with: { path: "" } } ] }')
    drill = _moltir("drill", "--yes", "--runbook", str(drill_rb), "--json", env=env)
    assert drill.returncode == 2 and moltir_json(drill.stdout)["case_id"] != case_id
    status = moltir_json(_moltir("status", "--json", env=env).stdout)
    assert status["case"]["id"] == case_id and status["status"] == "contained"
    plan = moltir_json(_moltir("restore", "--dry-run", "--json", env=env).stdout)
    assert plan["case_id"] == case_id


def test_resumed_run_after_an_earlier_change_exits_1_not_2(tmp_path: Path) -> None:
    """Exit 2 promises "nothing changed": a change made by an earlier run of the case counts too."""
    env = _env(tmp_path)
    rb = tmp_path / "b.json5"
    rb.write_text(f"""{{ name: "contain", steps: [
      {{ id: "change", action: "test.touch", with: {{ path: "{tmp_path}/changed" }} }},
      {{ id: "bad", action: "test.touch", with: {{ path: "" }} }} ] }}""")
    assert _moltir("contain", "--yes", "--runbook", str(rb), env=env).returncode == 1
    again = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert again.returncode == 1, again.stdout
    assert [s["status"] for s in moltir_json(again.stdout)["steps"]] == ["done-earlier", "failed"]


def test_a_state_dir_that_does_not_exist_is_exit_3_before_any_case(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "go").touch()
    missing = tmp_path / "typo" / ".openclaw"
    for extra in (("--yes",), ("--dry-run",)):
        out = _moltir("contain", *extra, "--state-dir", str(missing), "--runbook", str(_runbook(tmp_path)),
                      "--json", env=env)
        assert out.returncode == 3, out.stderr
        assert "no OpenClaw install at" in moltir_json(out.stdout)["error"]
        errors = [ln for ln in out.stderr.splitlines() if ln.startswith("moltir:")]
        assert len(errors) == 1 and str(missing) in errors[0]
    assert not missing.exists() and _cases(env) == []


def test_dry_run_plans_in_the_case_the_run_would_use(tmp_path: Path) -> None:
    from moltir.engine.journal import Journal

    env = _env(tmp_path)
    (tmp_path / "go").touch()
    rb = str(_runbook(tmp_path))
    first = moltir_json(_moltir("contain", "--yes", "--runbook", rb, "--json", env=env).stdout)
    # contained: a further contain resumes (no-op) in that case, and the dry run says so
    plan = moltir_json(_moltir("contain", "--dry-run", "--runbook", rb, "--json", env=env).stdout)
    assert plan["case_id"] == first["case_id"]
    # once restored, contain opens a new case: the dry run must not plan in the restored one
    journal = Journal(Path(first["case_dir"]) / "journal.jsonl")
    journal.append("run.start", runbook="restore", role="restore", steps=[])
    journal.append("run.done", runbook="restore", status="ok")
    plan = moltir_json(_moltir("contain", "--dry-run", "--runbook", rb, "--json", env=env).stdout)
    assert plan["case_id"] == "" and plan["case_dir"] == "(new case)"
    # a --case-dir that is not a case is refused by the dry run as by the run, not swapped for the latest
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("x")
    for kind in ("contain", "restore"):
        out = _moltir(kind, "--dry-run", "--case-dir", str(tmp_path / "junk"), "--runbook", rb, "--json", env=env)
        assert out.returncode == 2 and "not a moltir case" in moltir_json(out.stdout)["error"], out.stdout


def test_a_copied_runbook_with_another_name_still_counts_as_contain(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = tmp_path / "mine.json5"
    rb.write_text('{ name: "my-contain", steps: [ { id: "only", action: "test.sleep" } ] }')
    assert _moltir("contain", "--yes", "--runbook", str(rb), env=env).returncode == 0
    status = moltir_json(_moltir("status", "--json", env=env).stdout)
    assert status["status"] == "contained", status


def test_sigterm_mid_run_exits_130_and_the_run_resumes(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = _runbook(tmp_path)
    first = _spawn("contain", "--yes", "--runbook", str(rb), env=env)
    _wait_for(lambda: _slow_step_started(env))
    first.terminate()
    first.wait(timeout=30)
    assert first.returncode == 130, first.stderr
    journal = _journal(env)
    assert journal is not None and '"event":"run.interrupted"' in journal.read_text()
    assert moltir_json(_moltir("status", "--json", env=env).stdout)["status"] == "interrupted"
    (tmp_path / "go").touch()
    again = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert again.returncode == 0 and moltir_json(again.stdout)["resumed_from"] == "slow"
    assert verify_chain(journal).ok


def test_ctrl_c_during_the_audit_ends_the_audit_process_too(tmp_path: Path) -> None:
    """The audit runs in its own session (so a timeout kills its tree): Ctrl-C never reaches it
    from the terminal, so moltir must end it before exiting 130."""
    env = _env(tmp_path)
    Path(env["OPENCLAW_STATE_DIR"], "openclaw.json").write_text("{}\n")
    pidfile = tmp_path / "audit.pid"
    fake = tmp_path / "openclaw"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 120\n")
    fake.chmod(0o755)
    rb = tmp_path / "audit.json5"
    rb.write_text('{ name: "contain", steps: [ { id: "a", action: "audit.run", with: { deep: false } } ] }')
    run = _spawn("contain", "--yes", "--runbook", str(rb), "--openclaw-bin", str(fake), env=env)
    _wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit())
    pid = int(pidfile.read_text())
    run.send_signal(signal.SIGINT)
    run.wait(timeout=30)
    assert run.returncode == 130, run.stderr

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"

    _wait_for(gone, timeout=10)


JSON_COMMANDS = [
    ("runbook", "list"), ("runbook", "show", "contain"), ("runbook", "show", "nosuch"),
    ("runbook", "validate", "{rb}"), ("runbook", "validate", "{bad}"), ("journal", "verify"),
    ("status",), ("contain", "--bogus-option"), ("contain",), ("restore", "--yes"),
    ("status", "--profile", "not a profile"), ("--json-first", "status"),
]


def test_every_command_prints_one_json_object_even_on_errors(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = _runbook(tmp_path, 0)
    bad = tmp_path / "bad.json5"
    bad.write_text('{ name: "x", steps: [ { id: "a", action: "nope" } ] }')
    for args in JSON_COMMANDS:
        argv = [a.format(rb=rb, bad=bad) for a in args]
        argv = ["--json", *argv[1:]] if argv[0] == "--json-first" else [*argv, "--json"]
        out = _moltir(*argv, env=env)
        obj = moltir_json(out.stdout)  # exactly one JSON document
        assert isinstance(obj, dict), argv
        if out.returncode:
            assert obj["exit_code"] == out.returncode and obj["ok"] is False, (argv, obj)
            assert len([ln for ln in out.stderr.splitlines() if ln.startswith("moltir:")]) == 1, (argv, out.stderr)
    bogus = _moltir("contain", "--bogus-option", env=env)
    assert bogus.returncode == 2 and bogus.stderr.count("\n") == 1 and "moltir contain --help" in bogus.stderr


def test_ctrl_c_keeps_a_background_verification_that_already_passed(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = tmp_path / "w.json5"
    rb.write_text(f"""{{ name: "contain", steps: [
      {{ id: "watched", action: "test.watch", with: {{ seconds: 0 }} }},
      {{ id: "slow", action: "test.sleep", with: {{ seconds: 60, until: "{tmp_path}/go" }} }} ] }}""")
    run = _spawn("contain", "--yes", "--runbook", str(rb), env=env)
    _wait_for(lambda: _slow_step_started(env))
    run.send_signal(signal.SIGINT)
    run.wait(timeout=30)
    assert run.returncode == 130
    (tmp_path / "go").touch()
    again = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert again.returncode == 0, again.stderr
    result = moltir_json(again.stdout)
    assert result["resumed_from"] == "slow" and result["steps"][0]["status"] == "done-earlier"


def test_a_dry_run_that_cannot_plan_a_step_exits_with_that_steps_code(tmp_path: Path) -> None:
    """A malformed config: the dry run shows the plan and exits 2 (the run would stop there)."""
    env = _env(tmp_path)
    config = Path(env["OPENCLAW_STATE_DIR"]) / "openclaw.json"
    config.write_text('{\n  channels: { slack: { dmPolicy: "open" } }\n  gateway: {}\n}\n')
    before = config.read_bytes()
    rb = tmp_path / "dms.json5"
    rb.write_text('{ name: "contain", steps: [ { id: "disable-dms", action: "dm_policy.set" } ] }')
    out = _moltir("contain", "--dry-run", "--runbook", str(rb), "--json", env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    result = moltir_json(out.stdout)
    assert result["exit_code"] == 2 and result["status"] == "dry-run"
    assert f"{config}:3:3" in result["message"] and "disable-dms" in result["message"]
    assert next(ln for ln in out.stderr.splitlines() if ln.startswith("moltir:")).startswith("moltir: dry run:")
    assert config.read_bytes() == before and not (Path(env["MOLTIR_HOME"]) / "cases").exists()
    config.write_text('{\n  channels: { slack: { dmPolicy: "open" } },\n}\n')
    assert _moltir("contain", "--dry-run", "--runbook", str(rb), env=env).returncode == 0


def test_a_dry_run_on_a_read_only_config_exits_3_like_the_run(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "OPENCLAW_NIX_MODE": "1"}
    config = Path(env["OPENCLAW_STATE_DIR"]) / "openclaw.json"
    config.write_text('{\n  channels: { slack: { dmPolicy: "open" } },\n}\n')
    rb = tmp_path / "dms.json5"
    rb.write_text('{ name: "contain", steps: [ { id: "disable-dms", action: "dm_policy.set" } ] }')
    out = _moltir("contain", "--dry-run", "--runbook", str(rb), "--json", env=env)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "OPENCLAW_NIX_MODE=1" in moltir_json(out.stdout)["message"]
    run = _moltir("contain", "--yes", "--runbook", str(rb), env=env)
    assert run.returncode == 3 and "OPENCLAW_NIX_MODE=1" in run.stderr + run.stdout


def test_restore_with_nothing_contained_is_a_no_op_that_says_so(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for extra in (("--yes",), ("--dry-run",)):
        out = _moltir("restore", *extra, "--json", env=env)
        assert out.returncode == 0, out.stderr
        obj = moltir_json(out.stdout)
        assert obj["status"] == "noop" and "nothing to restore" in obj["message"]
        assert env["OPENCLAW_STATE_DIR"] in obj["message"]
    assert not (Path(env["MOLTIR_HOME"]) / "cases").exists()


def test_a_damaged_case_is_reported_never_a_crash_and_contain_opens_a_new_case(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = tmp_path / "two.json5"
    rb.write_text('{ name: "contain", steps: [ { id: "a", action: "test.sleep" },\n'
                  '  { id: "b", action: "test.sleep" } ] }')
    first = moltir_json(_moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env).stdout)
    journal = Path(first["case_dir"]) / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    lines[2] = "garbage{\n"  # a hand edit in the middle (not a crash's partial tail)
    journal.write_text("".join(lines))

    status = _moltir("status", "--json", env=env)
    assert status.returncode == 5 and moltir_json(status.stdout)["status"] == "damaged"
    assert "line 3" in moltir_json(status.stdout)["error"]
    again = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert moltir_json(again.stdout)["case_id"] != first["case_id"]
    assert "cannot be resumed" in again.stderr and "damaged" in again.stderr
    (Path(first["case_dir"]) / "case.json").write_text("{bad")
    (Path(first["case_dir"]) / "restore.json").write_text("{bad")
    for args in (("status", "--case-dir", first["case_dir"]), ("restore", "--yes", "--case-dir", first["case_dir"]),
                 ("journal", "verify", "--case-dir", first["case_dir"])):
        out = _moltir(*args, env=env)
        assert out.returncode == 5, (args, out.stdout, out.stderr)
        assert "internal error" not in out.stderr and "Traceback" not in out.stderr
    assert not (Path(env["MOLTIR_HOME"]) / "crash").exists()


def test_status_lists_steps_in_runbook_order_with_the_time_each_took_effect(tmp_path: Path) -> None:
    # like a contain whose snapshot failed on a full disk (on_failure: continue): the step verified in the
    # background (gateway.stop's respawn watch) is stamped when it acted, not when its watch ended after
    # the last step, and the failed step is listed in its place with its error, not last
    env = _env(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text(f"""{{ name: "contain", steps: [
      {{ id: "watched", action: "test.watch", with: {{ seconds: 1 }} }},
      {{ id: "snapshot", action: "test.touch", with: {{ path: "" }}, on_failure: "continue" }},
      {{ id: "audit", action: "test.sleep", with: {{ marker: "{tmp_path}/marks" }} }} ] }}""")
    out = _moltir("contain", "--yes", "--runbook", str(rb), env=env)
    assert out.returncode == 1, out.stderr
    journal = _journal(env)
    assert journal is not None
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    applied = next(r["ts"] for r in records if r["event"] == "step.applied" and r["step"] == "watched")
    audit_done = next(r["ts"] for r in records if r["event"] == "step.done" and r["step"] == "audit")
    verified = next(r["ts"] for r in records if r["event"] == "step.done" and r["step"] == "watched")
    assert applied <= audit_done < verified  # the watch ended after the last step
    text = _moltir("status", env=env).stdout
    lines = [ln.strip() for ln in text.splitlines() if ln.startswith("  ")]
    assert [ln.split()[1] for ln in lines] == ["watched", "snapshot", "audit"], text
    # each step stamped when it took effect, and re-checked now (status says whether it still holds)
    assert lines[0] == f"✓ watched  {applied}  [verified now]" and lines[2] == f"✓ audit  {audit_done}  [verified now]"
    assert lines[1].startswith("✗ snapshot  ") and "test.touch needs a path" in lines[1]
    report = moltir_json(_moltir("status", "--json", env=env).stdout)["runs"]["contain"]
    assert [(s["id"], s["state"]) for s in report["steps"]] == [("watched", "done"), ("snapshot", "failed"),
                                                                 ("audit", "done")]
    assert report["steps_done"] == {"watched": applied, "audit": audit_done}
    assert report["steps"][0]["status"] == "done"


def test_status_says_how_a_step_that_changed_nothing_ended(tmp_path: Path) -> None:
    # e.g. restore's start-gateway leaving a gateway stopped is "skipped", not a plain check mark
    env = _env(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text('{ name: "contain", steps: [ { id: "one", action: "test.sleep" } ] }')
    assert _moltir("contain", "--yes", "--runbook", str(rb), env=env).returncode == 0
    journal = _journal(env)
    assert journal is not None
    from moltir.engine.case import Case

    case = Case.open(journal.parent)
    case.journal().append("run.start", runbook="restore", role="restore", steps=["start-gateway"])
    case.journal().append("step.done", runbook="restore", step="start-gateway", action="gateway.start",
                          status="skipped", verified=True)
    case.journal().append("run.done", runbook="restore", status="ok")
    text = _moltir("status", env=env).stdout
    assert "  - start-gateway  " in text and text.rstrip().endswith("(skipped)"), text
    assert "  ✓ one  " in text and "(done)" not in text


def test_the_final_message_is_printed_once_on_stdout_and_progress_on_stderr(tmp_path: Path) -> None:
    # human output: progress lines on stderr, the result (final message, case folder) on stdout, once;
    # --json: stdout is the one JSON object (holding the message), stderr has no copy of it
    env = _env(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "only", action: "test.sleep", '
                  f'with: {{ marker: "{tmp_path}/marks" }} }} ] }}')
    human = _moltir("contain", "--yes", "--new-case", "--runbook", str(rb), env=env)
    assert human.returncode == 0, human.stderr
    final = next(ln for ln in human.stdout.splitlines() if "all 1 steps done" in ln)
    assert human.stdout.count(final) == 1 and final not in human.stderr
    assert "→ only (test.sleep)" in human.stderr and "→ only" not in human.stdout
    as_json = _moltir("contain", "--yes", "--new-case", "--json", "--runbook", str(rb), env=env)
    assert as_json.returncode == 0, as_json.stderr
    result = moltir_json(as_json.stdout)
    assert "all 1 steps done" in result["message"] and "steps done" not in as_json.stderr
    failing = tmp_path / "fail.json5"
    failing.write_text('{ name: "contain", steps: [ { id: "bad", action: "test.touch", with: { path: "" } } ] }')
    failed = _moltir("contain", "--yes", "--new-case", "--runbook", str(failing), env=env)
    assert failed.returncode == 2, failed.stderr
    assert failed.stdout.count("contain incomplete: bad") == 1 and "contain incomplete" not in failed.stderr
    assert "✗ bad: test.touch needs a path" in failed.stderr


def test_a_done_step_whose_effect_is_gone_runs_again_instead_of_nothing_to_do(tmp_path: Path) -> None:
    """contain in a contained case: the gateway running again or a DM opened by hand must not get
    'nothing to do'. Steps whose effect still holds stay done; the others run again, in order."""
    env = _env(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    rb = tmp_path / "touch.json5"
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "one", action: "test.touch", with: {{ path: "{a}" }} }},'
                  f' {{ id: "two", action: "test.touch", with: {{ path: "{b}" }} }} ] }}')
    first = _moltir("contain", "--yes", "--runbook", str(rb), env=env)
    assert first.returncode == 0, first.stderr
    same = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert same.returncode == 0 and moltir_json(same.stdout)["status"] == "noop"
    b.unlink()
    again = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert again.returncode == 0, again.stderr
    out = moltir_json(again.stdout)
    assert [(s["id"], s["status"]) for s in out["steps"]] == [("one", "done-earlier"), ("two", "done")]
    assert out["resumed_from"] == "two" and b.exists()
    assert out["regressed"] == {"two": f"{b} is gone"}
    b.unlink()
    human = _moltir("contain", "--yes", "--runbook", str(rb), env=env)
    assert human.returncode == 0 and f"two was done in this case, but {b} is gone: running it again" in human.stderr
    journal = _journal(env)
    assert journal is not None and '"event":"step.regressed"' in journal.read_text()
    assert verify_chain(journal).ok


def test_a_waiting_step_lets_the_engine_warm_the_next_steps_meanwhile(tmp_path: Path) -> None:
    """gateway.stop calls ctx.waiting() once the gateway drains: the next steps' warm() runs then, in the
    background (read-only, dry-run options), not after. The first step only ends once the second warmed."""
    env = _env(tmp_path)
    b = tmp_path / "b"
    rb = tmp_path / "warm.json5"
    rb.write_text(f'{{ name: "contain", steps: ['
                  f' {{ id: "drain", action: "test.sleep",'
                  f'    with: {{ seconds: 60, until: "{b}.warmed", waiting: true }} }},'
                  f' {{ id: "next", action: "test.touch", with: {{ path: "{b}" }} }} ] }}')
    run = _moltir("contain", "--yes", "--runbook", str(rb), "--json", env=env)
    assert run.returncode == 0, run.stderr
    steps = {s["id"]: s["summary"] for s in moltir_json(run.stdout)["steps"]}
    assert steps["drain"] == f"{b}.warmed appeared" and b.exists()
    assert Path(f"{b}.warmed").read_text() == "True"     # warmed with dry-run options


def test_new_case_while_still_contained_carries_the_pre_incident_record(tmp_path: Path) -> None:
    """``contain --new-case`` on an install an earlier case still holds contained: restoring the new
    case puts back the values from before the FIRST containment, not the contained ones."""
    env = _env(tmp_path)
    config = Path(env["OPENCLAW_STATE_DIR"]) / "openclaw.json"
    original = ('{\n  // ours\n  channels: {\n    telegram: { dmPolicy: "open", allowFrom: ["*"] },\n'
                '    discord: { dmPolicy: "pairing" },\n  },\n}\n')
    config.write_text(original)
    contain_rb = tmp_path / "contain.json5"
    contain_rb.write_text('{ name: "contain", steps: [ { id: "dms", action: "dm_policy.set" } ] }')
    restore_rb = tmp_path / "restore.json5"
    restore_rb.write_text('{ name: "restore", steps: [ { id: "dms", action: "dm_policy.restore" } ] }')

    first = _moltir("contain", "--yes", "--runbook", str(contain_rb), "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert 'dmPolicy: "open"' not in config.read_text()
    second = _moltir("contain", "--yes", "--new-case", "--runbook", str(contain_rb), "--json", env=env)
    assert second.returncode == 0, second.stderr
    first_id, second_res = moltir_json(first.stdout)["case_id"], moltir_json(second.stdout)
    assert second_res["case_id"] != first_id
    assert f"case {first_id} is still contained" in second.stderr
    new_case = Path(second_res["case_dir"])
    assert json.loads((new_case / "case.json").read_text())["continues"]["case_id"] == first_id
    olds = {tuple(e["path"]): e["old"] for e in json.loads((new_case / "restore.json").read_text())
            ["dm_policy"]["paths"]}
    assert olds[("channels", "telegram", "dmPolicy")] == {"value": "open"}

    # the earlier case, looked at directly, says who took over; restoring it points there
    first_dir = moltir_json(first.stdout)["case_dir"]
    st = _moltir("status", "--case-dir", first_dir, "--json", env=env)
    report = moltir_json(st.stdout)
    assert report["status"] == "continued", st.stdout
    assert report["continued_by"]["case_id"] == second_res["case_id"]
    human = _moltir("status", "--case-dir", first_dir, env=env)
    assert f"continued by: case {second_res['case_id']} (contained)" in human.stdout
    wrong = _moltir("restore", "--yes", "--case-dir", first_dir, "--runbook", str(restore_rb), env=env)
    assert wrong.returncode == 2
    assert f"is continued by case {second_res['case_id']}" in wrong.stderr
    assert 'dmPolicy: "open"' not in config.read_text()

    # restore would reopen telegram's DM: refused (exit 2, one line, nothing changed) until accepted
    risk = "security.exposure.open_groups_with_elevated"  # no release known: the newest audit's id
    dry = _moltir("restore", "--dry-run", "--runbook", str(restore_rb), env=env)
    assert dry.returncode == 2 and f"needs --accept-risk {risk}" in dry.stderr, dry.stderr
    contained = config.read_bytes()
    refused = _moltir("restore", "--yes", "--runbook", str(restore_rb), env=env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert f"--accept-risk {risk}" in refused.stderr and "channels.telegram.dmPolicy" in refused.stderr
    assert config.read_bytes() == contained
    journal = (new_case / "journal.jsonl").read_text()
    assert '"event":"restore.refused"' in journal and "risk.accepted" not in journal
    bad = _moltir("restore", "--yes", "--accept-risk", "x y\x1b[31m", "--runbook", str(restore_rb), env=env)
    assert bad.returncode == 2 and "is not a security audit check id" in bad.stderr and "\x1b" not in bad.stderr
    assert config.read_bytes() == contained

    restored = _moltir("restore", "--yes", "--accept-risk", risk, "--accept-risk", "channels.slack.dm.open",
                       "--runbook", str(restore_rb), env=env)
    assert restored.returncode == 0, restored.stderr
    assert "--accept-risk channels.slack.dm.open: this restore puts back no setting" in restored.stderr
    assert config.read_text() == original
    accepted = [json.loads(line) for line in (new_case / "journal.jsonl").read_text().splitlines()
                if '"risk.accepted"' in line]
    assert [r["check_ids"] for r in accepted] == [[risk]]
    st = _moltir("status", "--case-dir", first_dir, "--json", env=env)
    assert moltir_json(st.stdout)["status"] == "restored-by-later-case"
    again = _moltir("restore", "--yes", "--case-dir", first_dir, "--runbook", str(restore_rb), env=env)
    assert again.returncode == 0 and "which is restored" in again.stderr + again.stdout
    assert config.read_text() == original

    # once restored, a new case has nothing to carry
    third = _moltir("contain", "--yes", "--new-case", "--runbook", str(contain_rb), env=env)
    assert third.returncode == 0 and "still contained" not in third.stderr


def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(tmp_path: Path) -> None:
    """SIGINT while Python is still importing moltir (the first ~150 ms) or later: never a traceback.

    Through the installed ``moltir`` console script. The Ctrl-C is sent at several moments after the
    first line of moltir ran (``moltir.entry`` imported: Python reports each import as it finishes,
    PYTHONPROFILEIMPORTTIME); before that, while the interpreter itself starts, it is CPython's."""
    import shutil

    env = {**_env(tmp_path), "PYTHONPROFILEIMPORTTIME": "1"}
    exe = shutil.which("moltir", path=str(Path(sys.executable).parent))
    assert exe is not None
    seen = set()
    for delay_ms in (0, 10, 20, 40, 60, 80, 100, 130, 160, 200, 300):
        proc = subprocess.Popen([exe, "doctor"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        assert proc.stderr is not None
        head = []
        for line in proc.stderr:  # import-time lines until moltir's own entry point is loaded
            head.append(line)
            if line.rstrip().endswith("moltir.entry"):
                break
        time.sleep(delay_ms / 1000)  # the moment of the Ctrl-C, not a synchronisation
        proc.send_signal(signal.SIGINT)
        out, rest = proc.communicate(timeout=60)
        err = "".join(head) + rest
        assert "Traceback" not in out + err, (delay_ms, err[-2000:])
        if proc.returncode == 130:
            assert err.strip().splitlines()[-1] == "moltir: interrupted", (delay_ms, err[-500:])
        seen.add(proc.returncode)
    assert 130 in seen


def test_evidence_verify_finds_a_case_made_with_case_dir_by_its_id(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "only", action: "test.sleep", with: {{ marker: '
                  f'"{tmp_path}/marks" }} }} ] }}')
    elsewhere = tmp_path / "cases-kept-elsewhere" / "incident-1"
    run = _moltir("contain", "--yes", "--runbook", str(rb), "--case-dir", str(elsewhere), env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    case_id = json.loads((elsewhere / "case.json").read_text())["case_id"]
    listed = _moltir("evidence", "list", "--json", env=env)
    assert case_id in listed.stdout
    got = _moltir("evidence", "verify", case_id, env=env)
    assert "no case" not in got.stderr, got.stderr     # found (it is not sealed: that is another matter)
    assert str(elsewhere) in got.stdout + got.stderr or got.returncode in (0, 5), got.stdout + got.stderr
    prefix = _moltir("evidence", "verify", case_id[:12], env=env)
    assert "no case" not in prefix.stderr, prefix.stderr


def test_text_a_user_controls_never_reaches_the_terminal_raw(tmp_path: Path) -> None:
    """A reason with an escape sequence and a carriage return is stored, but shown escaped; a too long
    one is refused (exit 2); a runbook step id that is not a plain name (a path) is refused at load."""
    env = _env(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "only", action: "test.sleep", with: {{ marker: '
                  f'"{tmp_path}/marks" }} }} ] }}')
    evil = "odd DMs\x1b[2J\x1b]0;owned\x07\rfake line"
    run = _moltir("contain", "--yes", "--runbook", str(rb), "--reason", evil, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    status = _moltir("status", env=env)
    assert "\x1b" not in status.stdout and "\r" not in status.stdout and "\x07" not in status.stdout
    assert "\\x1b[2J" in status.stdout and "\\x0dfake line" in status.stdout
    too_long = _moltir("contain", "--yes", "--runbook", str(rb), "--reason", "x" * 2001, env=env)
    assert too_long.returncode == 2 and "at most 2000" in too_long.stderr
    bad = tmp_path / "bad.json5"
    bad.write_text('{ name: "contain", steps: [ { id: "../../escape", action: "test.sleep" } ] }')
    refused = _moltir("runbook", "validate", str(bad), env=env)
    assert refused.returncode == 2 and "not a plain name" in refused.stderr


def test_dry_run_predicts_the_real_run(tmp_path: Path) -> None:
    """--dry-run runs the same checks as the run: a state dir that is a file (exit 2), a moltir home it
    cannot write (exit 3), and steps already done in the case it would resume are shown as skipped."""
    env = _env(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "first", action: "test.touch", with: {{ path: '
                  f'"{tmp_path}/touched" }} }}, {{ id: "second", action: "test.touch" }} ] }}')
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    for cmd in (["contain", "--dry-run"], ["contain", "--yes"]):
        got = _moltir(*cmd, "--runbook", str(rb), "--state-dir", str(a_file), env=env)
        assert got.returncode == 2 and "is a file, not a folder" in got.stderr, (cmd, got.stderr)
    blocked = tmp_path / "blocked-home"
    blocked.write_text("a file where moltir's home should be")
    dry = _moltir("contain", "--dry-run", "--runbook", str(rb), env={**env, "MOLTIR_HOME": str(blocked)})
    real = _moltir("contain", "--yes", "--runbook", str(rb), env={**env, "MOLTIR_HOME": str(blocked)})
    assert dry.returncode == real.returncode == 3, (dry.stderr, real.stderr)
    first = _moltir("contain", "--yes", "--runbook", str(rb), env=env)
    assert first.returncode != 0  # 'second' failed: the case stays open, 'first' done
    plan = _moltir("contain", "--dry-run", "--runbook", str(rb), env=env)
    assert "first" in plan.stdout and "done earlier in case" in plan.stdout and "still holds" in plan.stdout


def test_status_rechecks_each_effect_now_and_says_when_one_is_gone(tmp_path: Path) -> None:
    """A contained case whose effect is gone (a file the step made removed, like a gateway started again
    by hand) is not 'contained' any more: status says which effect no longer holds and to run contain."""
    env = _env(tmp_path)
    made = tmp_path / "effect"
    rb = tmp_path / "rb.json5"
    # a step id that ends like a secret's key ("...-token") is shown as it is, not redacted
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "effect", action: "test.touch", '
                  f'with: {{ path: "{made}" }} }}, {{ id: "rotate-token", action: "test.touch", '
                  f'with: {{ path: "{made}.2" }} }} ] }}')
    assert _moltir("contain", "--yes", "--runbook", str(rb), env=env).returncode == 0
    report = moltir_json(_moltir("status", "--json", env=env).stdout)
    assert report["status"] == "contained"
    assert report["effects"] == {"effect": {"holds": True, "now": "verified now"},
                                 "rotate-token": {"holds": True, "now": "verified now"}}
    assert "✓ rotate-token" in _moltir("status", env=env).stdout.replace("  ", " ")
    assert "[verified now]" in _moltir("status", env=env).stdout
    made.unlink()
    report = moltir_json(_moltir("status", "--json", env=env).stdout)
    assert report["status"] == "regressed" and report["effects"]["effect"]["holds"] is False
    assert report["effects"]["effect"]["now"].startswith("gone:")
    text = _moltir("status", env=env).stdout
    assert "NOT NOW" in text and "run 'moltir contain' again" in text and "✗ effect" in text
    assert "redacted" not in text


def test_a_run_that_only_audits_is_not_contained(tmp_path: Path) -> None:
    env = _env(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text('{ name: "contain", steps: [ { id: "snap", action: "evidence.snapshot", '
                  'with: { journal: false } } ] }')
    assert _moltir("contain", "--yes", "--runbook", str(rb), env=env).returncode == 0
    report = moltir_json(_moltir("status", "--json", env=env).stdout)
    assert report["status"] == "audited"


def test_evidence_export_warns_about_secrets_and_encrypts_for_a_recipient(tmp_path: Path) -> None:
    import tarfile

    import pyrage

    env = _env(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "only", action: "test.sleep", with: {{ marker: '
                  f'"{tmp_path}/marks" }} }} ] }}')
    assert _moltir("contain", "--yes", "--runbook", str(rb), env=env).returncode == 0
    plain = _moltir("evidence", "export", "-o", str(tmp_path / "plain.tar.gz"), env=env)
    assert plain.returncode == 0 and "holds secrets" in plain.stderr and "--encrypt" in plain.stderr
    identity = pyrage.x25519.Identity.generate()
    out = tmp_path / "case.tar.gz.age"
    enc = _moltir("evidence", "export", "-o", str(out), "--encrypt", str(identity.to_public()), "--json", env=env)
    assert enc.returncode == 0, enc.stderr
    data = moltir_json(enc.stdout)
    assert data["encrypted"] is True and out.read_bytes().startswith(b"age-encryption.org/v1")
    clear = tmp_path / "clear.tar.gz"
    pyrage.decrypt_file(str(out), str(clear), [identity])
    with tarfile.open(clear) as tar:
        assert any(n.endswith("/case.json") for n in tar.getnames())
    assert not [p for p in tmp_path.iterdir() if ".moltir-" in p.name]  # no plaintext temp left
    case = Path(moltir_json(_moltir("status", "--json", env=env).stdout)["case"]["dir"])
    custody = [json.loads(x) for x in (case / "custody.jsonl").read_text().splitlines()]
    assert custody[-1]["encrypted"] == "age" and custody[-1]["recipients"] == [str(identity.to_public())]
    assert custody[-1]["archive_sha256"] == data["sha256"]
    bad = _moltir("evidence", "export", "-o", str(tmp_path / "x.age"), "--encrypt", "age1nope", env=env)
    assert bad.returncode == 2 and "not an age recipient" in bad.stderr and not (tmp_path / "x.age").exists()
