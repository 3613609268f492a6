"""audit.run end to end: the real ``openclaw security audit`` of 2026.9.6 and 2026.1.29.

Each test runs ``moltir contain --runbook <one audit.run step>`` in a child process, as a user
would, against the harness's isolated home (commented multi-channel config; the Telegram
account ``alerts`` has ``dmPolicy: "open"``, and so does Discord).

What the real releases report for an open DM (captured, see tests/unit/fixtures/audit/):
2026.1.29 (Telegram plugin enabled) -> ``channels.telegram.dm.open`` (critical); the 2026.9.6
CLI audit loads no channel security adapter and reports the open paths inside
``security.exposure.*`` (critical) instead.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome


def _runbook(home: OpenClawHome, **params: Any) -> Path:
    rb = home.root / "audit-only.json5"
    rb.write_text("// only the audit: the open DM policy stays untouched\n"
                  + json.dumps({"name": "contain", "steps": [{"id": "deep-audit", "action": "audit.run",
                                                               "with": {"deep": True, **params}}]}))
    return rb


def _moltir(home: OpenClawHome, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**home.env, "MOLTIR_HOME": str(home.root / "moltir-home")}
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=home.root)


def _audit(home: OpenClawHome, case: Path, **params: Any) -> subprocess.CompletedProcess[str]:
    return _moltir(home, "contain", "--runbook", str(_runbook(home, **params)), "--case-dir", str(case), "--yes")


def _step_record(case: Path, event: str) -> dict[str, Any]:
    records = [json.loads(line) for line in (case / "journal.jsonl").read_text().splitlines() if line.strip()]
    found = [r for r in records if r.get("event") == event and r.get("step") == "deep-audit"]
    assert found, f"no {event} record in the journal"
    return found[-1]


def _close_open_dms(home: OpenClawHome) -> None:
    text = home.config_path.read_text(encoding="utf-8")
    fixed, n = re.subn(r'\b(dmPolicy|policy): "open"', r'\1: "disabled"', text)
    assert n >= 2
    home.config_path.write_text(fixed, encoding="utf-8")


def _no_secret_in_case(home: OpenClawHome, case: Path) -> None:
    for path in case.rglob("*"):
        if path.is_file():
            assert home.token not in path.read_text(errors="replace"), f"the gateway token leaked into {path}"


def test_open_dm_policy_fails_the_audit_step_naming_it(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    home = openclaw_home
    case = tmp_path / "case"
    before = home.config_path.read_bytes()
    run = _audit(home, case, expect_gateway="down")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "Traceback" not in out
    failed = _step_record(case, "step.failed")
    assert failed["exit_code"] == 1
    msg = failed["error"]
    if home.release.current:
        assert "security.exposure.open_groups_with_elevated (channels.telegram.accounts.alerts.dmPolicy, " \
               "channels.discord.dmPolicy)" in msg
    else:
        assert "channels.telegram.dm.open (channels.telegram.accounts.alerts.dmPolicy)" in msg
    assert msg in out  # the user sees the same line
    assert "fail_on" in out
    # the real report is kept, as printed
    folder = case / "evidence" / "audit" / "contain-deep-audit"
    report = json.loads((folder / "security-audit.json").read_text())
    assert report["summary"]["critical"] >= 1
    assert (folder / "security-audit.exit").read_text() == "0\n"
    assert home.config_path.read_bytes() == before  # the audit changed nothing
    _no_secret_in_case(home, case)


def test_gateway_down_probe_failed_is_expected_not_counted(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    home = openclaw_home
    _close_open_dms(home)
    case = tmp_path / "case"
    run = _audit(home, case, expect_gateway="down")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    details = _step_record(case, "step.done")["details"]
    assert {"checkId": "gateway.probe_failed", "reason": "the gateway is stopped for containment"} \
        in details["expected"]
    assert "gateway.probe_failed" not in details["unexpected"]
    assert details["probe"]["state"] == "unreachable"
    assert details["counts"]["critical"] == 0
    assert "expected gateway.probe_failed: the gateway is stopped for containment" in out
    if not home.release.current:  # 2026.1.29 confirms the disabled DM of the Telegram account
        report = json.loads((case / "evidence" / "audit" / "contain-deep-audit" / "security-audit.json").read_text())
        assert "channels.telegram.dm.disabled" in [f["checkId"] for f in report["findings"]]


def test_gateway_expected_up_but_down_fails(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    case = tmp_path / "case"
    run = _audit(openclaw_home, case, expect_gateway="up", fail_on="never")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "deep probe: the gateway is not reachable" in _step_record(case, "step.failed")["error"]


def test_deep_probe_with_the_gateway_up_and_the_right_token(openclaw_home: OpenClawHome, gateway: Gateway,
                                                            tmp_path: Path) -> None:
    home = openclaw_home
    case = tmp_path / "case"
    run = _audit(home, case, expect_gateway="up", fail_on="never")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    details = _step_record(case, "step.done")["details"]
    assert details["gateway_expected"] == "up"
    assert details["probe"]["state"] == "authenticated"
    if home.release.current:  # the "missing scope: operator.read" quirk: shown as expected
        assert details["probe"]["error"] == "missing scope: operator.read"
        assert "gateway.probe_failed" in [e["checkId"] for e in details["expected"]]
    else:
        assert details["probe"]["ok"] is True
    assert "gateway.probe_failed" not in details["unexpected"]
    assert "deep probe: the gateway answered and accepted the token" in out
    assert gateway.running
    _no_secret_in_case(home, case)


def test_restore_of_a_case_that_found_the_gateway_stopped_passes_its_final_audit(
        openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    # contain found nothing running (gateway.stop: "already"), so restore leaves the gateway
    # stopped; the final audit (expect_gateway "up") must then expect it down, not fail the restore
    home = openclaw_home
    case = tmp_path / "case"
    stop_only = home.root / "stop-only.json5"
    stop_only.write_text(json.dumps({"name": "contain", "steps": [
        {"id": "stop-gateway", "action": "gateway.stop", "with": {"settle_s": 0}}]}))
    run = _moltir(home, "contain", "--runbook", str(stop_only), "--case-dir", str(case), "--yes")
    assert run.returncode == 0, run.stdout + run.stderr
    restore = home.root / "restore-tail.json5"
    restore.write_text(json.dumps({"name": "restore", "steps": [
        {"id": "start-gateway", "action": "gateway.start"},
        {"id": "final-audit", "action": "audit.run",
         "with": {"deep": True, "expect_gateway": "up", "fail_on": "never"}}]}))
    run = _moltir(home, "restore", "--runbook", str(restore), "--case-dir", str(case), "--yes")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Traceback" not in out
    details = [json.loads(line) for line in (case / "journal.jsonl").read_text().splitlines()
               if '"final-audit"' in line and '"step.done"' in line][-1]["details"]
    assert details["gateway_expected"] == "down" and details["probe"]["state"] == "unreachable"
    assert "gateway.probe_failed" in [e["checkId"] for e in details["expected"]]


WRAPPER = """#!/bin/sh
# the real openclaw, except 'security audit' when {mode} says otherwise
if [ "$1" = security ] && [ "$2" = audit ]; then
  case "$(cat {mode})" in
    garbage) echo "not a report"; echo "Error: plugin loader exploded" >&2; echo "second line" >&2; exit 3;;
  esac
fi
exec {real} "$@"
"""


def test_audit_failures_are_step_errors_and_the_run_resumes(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    # unparseable output, then the binary gone at audit time: exit 1 naming why (with the audit's
    # first stderr lines), evidence kept; once fixed, the same command resumes at the audit and passes
    home = openclaw_home
    _close_open_dms(home)
    mode = tmp_path / "mode"
    mode.write_text("garbage")
    wrapper = tmp_path / "bin" / "openclaw"
    wrapper.parent.mkdir()
    wrapper.write_text(WRAPPER.format(mode=mode, real=home.openclaw_bin))
    wrapper.chmod(0o755)
    case = tmp_path / "case"
    rb = _runbook(home, expect_gateway="down")
    args = ("--openclaw-bin", str(wrapper), "contain", "--runbook", str(rb), "--case-dir", str(case), "--yes")

    run = _moltir(home, *args)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "Traceback" not in out and "internal error" not in out
    error = _step_record(case, "step.failed")["error"]
    assert "printed no JSON report (exit 3)" in error and "stderr: Error: plugin loader exploded | second line" in error
    assert (case / "evidence" / "audit" / "contain-deep-audit" / "security-audit.stdout").exists()

    # found when moltir starts, but it cannot run at the audit (what it runs is gone): a failed step too
    good = wrapper.read_text()
    wrapper.write_text(good.replace("#!/bin/sh", f"#!{tmp_path}/gone/sh", 1))
    run = _moltir(home, *args)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "Traceback" not in out and "internal error" not in out
    assert "the security audit could not run: cannot run" in _step_record(case, "step.failed")["error"]

    wrapper.write_text(good)
    mode.write_text("real")
    run = _moltir(home, *args)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert _step_record(case, "step.done")["details"]["probe"]["state"] == "unreachable"
    events = [json.loads(line)["event"] for line in (case / "journal.jsonl").read_text().splitlines()]
    assert events.count("step.failed") == 2 and events.count("run.start") == 3, "one case, resumed twice"


def test_restore_of_a_case_that_found_the_gateway_stopped_says_it_stays_stopped(
        openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    # the preview and the partial-failure message tell what this restore really does: the gateway stays
    # stopped (contain found it so), the token is not proven live, the final audit runs with it down;
    # the audit here gates on the open DMs (fail_on critical), so the restore stops at the final audit
    home = openclaw_home
    case = tmp_path / "case"
    stop_only = home.root / "stop-only.json5"
    stop_only.write_text(json.dumps({"name": "contain", "steps": [
        {"id": "stop-gateway", "action": "gateway.stop", "with": {"settle_s": 0}}]}))
    run = _moltir(home, "contain", "--runbook", str(stop_only), "--case-dir", str(case), "--yes")
    assert run.returncode == 0, run.stdout + run.stderr
    restore = home.root / "restore-gating.json5"
    restore.write_text(json.dumps({"name": "restore", "steps": [
        {"id": "start-gateway", "action": "gateway.start"},
        {"id": "verify-token", "action": "token.verify"},
        {"id": "final-audit", "action": "audit.run",
         "with": {"deep": True, "expect_gateway": "up", "fail_on": "critical"}}]}))
    run = _moltir(home, "restore", "--runbook", str(restore), "--case-dir", str(case), "--yes")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "gateway: was not running before containment; it stays stopped" in run.stderr
    assert "then: a deep security audit with the gateway stopped, as before containment" in run.stderr
    assert "gateway up" not in run.stderr
    assert "Install state: the gateway stays stopped, as before containment" in out
    assert "the token was not proven live: the gateway is not running" in out
    assert "running again" not in out and "runs on the new token" not in out
    assert "Traceback" not in out
