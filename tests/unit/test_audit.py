"""moltir.openclaw.audit_report and the audit.run action, on outputs captured from the real releases.

The fixtures in tests/unit/fixtures/audit/<release>/ are what ``openclaw security audit --json``
really printed (re-capture with ``python -m tests.unit.fixtures.audit.capture``). The runner
tests use a small fake ``openclaw`` executable: what is under test is moltir's handling of the
child (argv, environment, timeout, output), not OpenClaw.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from moltir.actions.audit import RunAudit
from moltir.actions.base import RunOptions, StepContext
from moltir.engine.case import Case
from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, MoltirError
from moltir.openclaw import Install, discover
from moltir.openclaw import audit_report as audit

FIX = Path(__file__).parent / "fixtures" / "audit"
NEW = "2026.9.6"
OLD = "2026.1.29"
TOKEN = "moltir-unit-token-0123456789abcdef0123456789"


def out(release: str, name: str) -> str:
    return (FIX / release / f"{name}.stdout").read_text(encoding="utf-8")


def report(release: str, name: str) -> audit.AuditReport:
    return audit.parse_report(out(release, name))


def ids(findings: Any) -> list[str]:
    return [f.check_id for f in findings]


VALID = [(NEW, n) for n in ("plain-stopped", "deep-stopped", "deep-up-config-token", "deep-up-env-right",
                            "deep-up-env-wrong", "deep-up-mismatch", "dm-disabled-deep-stopped", "insecure",
                            "suppressed")] + \
        [(OLD, n) for n in ("plain-stopped", "deep-stopped", "deep-up-config-token", "deep-up-env-right",
                            "deep-up-mismatch",
                            "dm-disabled-deep-stopped", "insecure", "doctor-boxes")]


# ---- parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("release", "name"), VALID)
def test_every_real_report_parses_and_counts_match_openclaws_summary(release: str, name: str) -> None:
    rep = report(release, name)
    assert rep.findings
    assert all(f.severity in audit.SEVERITIES for f in rep.findings)
    assert rep.counts() == {k: rep.summary[k] for k in audit.SEVERITIES}
    assert (FIX / release / f"{name}.exit").read_text().strip() == "0"


def test_generation_differences_secret_diagnostics_only_on_current() -> None:
    assert "secretDiagnostics" in json.loads(out(NEW, "plain-stopped"))
    assert "secretDiagnostics" not in json.loads(out(OLD, "plain-stopped"))
    assert report(NEW, "plain-stopped").secret_diagnostics == ()


def test_doctor_boxes_before_the_json_are_skipped_and_kept_as_prefix() -> None:
    text = out(OLD, "doctor-boxes")
    assert not text.startswith("{")
    rep = audit.parse_report(text)
    assert "Doctor changes" in rep.prefix
    assert "channels.telegram.dm.open" not in ids(rep.findings)  # plugin not enabled: no channel checks
    assert rep.summary["critical"] == rep.counts()["critical"] > 0


def test_invalid_config_current_release_failure_envelope() -> None:
    assert (FIX / NEW / "invalid.exit").read_text().strip() == "1"
    with pytest.raises(audit.AuditOutputError) as err:
        audit.parse_report(out(NEW, "invalid"))
    assert "config is invalid" in err.value.message
    assert "notAKey" in err.value.message
    assert err.value.exit_code == EXIT_STEP_FAILED


def test_invalid_config_old_release_prints_no_json() -> None:
    assert (FIX / OLD / "invalid.exit").read_text().strip() == "1"
    with pytest.raises(audit.AuditOutputError, match="no JSON"):
        audit.parse_report(out(OLD, "invalid"))
    assert "notAKey" in (FIX / OLD / "invalid.stderr").read_text()


@pytest.mark.parametrize("text", ["", "plain text\n", "{not json", "[1, 2]", '{"ts": 1}',
                                  '{"findings": [{"severity": "warn"}]}'])
def test_garbage_is_a_clear_error_not_a_traceback(text: str) -> None:
    with pytest.raises(audit.AuditOutputError):
        audit.parse_report(text)


def test_fix_shape_reads_the_inner_report() -> None:
    inner = json.loads(out(NEW, "insecure"))
    wrapped = json.dumps({"fix": {"ok": True, "changes": []}, "report": inner, "secretDiagnostics": []})
    assert ids(audit.parse_report(wrapped).findings) == ids(report(NEW, "insecure").findings)


# ---- the deep probe ---------------------------------------------------------------------------

@pytest.mark.parametrize(("release", "name", "state"), [
    (NEW, "deep-stopped", "unreachable"),
    (OLD, "deep-stopped", "unreachable"),
    (NEW, "deep-up-config-token", "authenticated"),   # "missing scope: operator.read" quirk
    (NEW, "deep-up-env-right", "authenticated"),
    (OLD, "deep-up-config-token", "authenticated"),   # ok: true
    (NEW, "plain-stopped", "not_run"),
])
def test_probe_states_from_real_outputs(release: str, name: str, state: str) -> None:
    rep = report(release, name)
    assert (rep.deep.state if rep.deep else "not_run") == state


def test_probe_token_mismatch_text_from_the_current_release() -> None:
    # exact text the 2026.9.6 probe printed with a wrong token (openclaw-run.md §6)
    probe = audit.DeepProbe(True, "ws://127.0.0.1:1", False,
                            "unauthorized: gateway token mismatch (provide gateway auth token)", 1008, "")
    assert probe.state == "token_mismatch"
    assert "REFUSED" in probe.describe()


@pytest.mark.parametrize("release", [NEW, OLD])
def test_probe_token_mismatch_captured(release: str) -> None:
    # the audit read a config whose token the running gateway does not serve
    rep = report(release, "deep-up-mismatch")
    assert rep.deep is not None and rep.deep.state == "token_mismatch"
    assert audit.probe_problem(rep, "up") and "token" in str(audit.probe_problem(rep, "up"))


# ---- expected findings --------------------------------------------------------------------------

@pytest.mark.parametrize("release", [NEW, OLD])
def test_probe_failed_is_expected_while_contained_and_not_counted(release: str) -> None:
    rep = report(release, "deep-stopped")
    assert "gateway.probe_failed" in ids(rep.findings)
    a = audit.assess(rep, gateway="down")
    assert ids(f.finding for f in a.expected) == ["gateway.probe_failed"]
    assert "gateway.probe_failed" not in ids(a.unexpected)
    assert a.counts()["warn"] == rep.counts()["warn"] - 1
    assert a.failing("warn") and "gateway.probe_failed" not in ids(a.failing("warn"))


def test_probe_failed_counts_when_the_gateway_should_be_up_but_is_not() -> None:
    rep = report(NEW, "deep-stopped")
    a = audit.assess(rep, gateway="up")
    assert "gateway.probe_failed" in ids(a.unexpected)
    assert "not reachable" in str(audit.probe_problem(rep, "up"))
    assert audit.probe_problem(rep, "down") is None


def test_missing_scope_quirk_is_expected_and_proves_the_gateway_up() -> None:
    rep = report(NEW, "deep-up-config-token")
    a = audit.assess(rep, gateway="up")
    assert "gateway.probe_failed" not in ids(a.unexpected)
    assert "missing scope" in a.expected[0].reason
    assert audit.probe_problem(rep, "up") is None


def test_env_token_conflict_is_expected_only_when_moltir_passed_the_token() -> None:
    rep = report(NEW, "deep-up-env-wrong")
    assert "gateway.env_token_overrides_config" in ids(rep.findings)
    assert "gateway.env_token_overrides_config" in ids(audit.assess(rep, gateway="up").unexpected)
    mine = audit.assess(rep, gateway="up", token_via_env=True)
    assert "gateway.env_token_overrides_config" not in ids(mine.unexpected)


@pytest.mark.parametrize("release", [NEW, OLD])
def test_insecure_config_fails_on_critical_naming_ids_and_open_paths(release: str) -> None:
    rep = report(release, "insecure")
    gate = audit.Gate(audit.assess(rep, gateway="down").failing("critical"))
    assert gate.failed
    msg = gate.message()
    assert "fs.config.perms_world_readable" in msg
    assert "channels.telegram" in msg
    if release == OLD:
        assert "channels.telegram.dm.open (channels.telegram.dmPolicy)" in msg
    else:  # 2026.9.6 names the open DM inside security.exposure.* only
        assert "security.exposure.open_groups_with_elevated (channels.telegram.groupPolicy, " \
               "channels.telegram.dmPolicy)" in msg


def test_fail_on_levels() -> None:
    a = audit.assess(report(NEW, "insecure"), gateway="down")
    crit = a.failing("critical")
    assert crit and all(f.severity == "critical" for f in crit)
    assert len(a.failing("warn")) > len(crit)
    assert a.failing("never") == ()
    benign = audit.assess(report(NEW, "deep-stopped"), gateway="down")
    assert benign.failing("critical") == ()


def test_suppressions_reported_prominently() -> None:
    rep = report(NEW, "suppressed")
    cfg = {"security": {"audit": {"suppressions": [{"checkId": "gateway.token_too_short",
                                                    "reason": "fixture: hide the short token"}]}}}
    sup = audit.active_suppressions(rep, cfg)
    assert sup.any and sup.active_finding
    assert ids(sup.hidden) == ["gateway.token_too_short"]
    lines = sup.lines()
    assert lines[0].startswith("AUDIT SUPPRESSIONS ARE ACTIVE (1 configured")
    assert any("hidden by a suppression: warn gateway.token_too_short" in ln for ln in lines)
    assert not audit.active_suppressions(report(NEW, "insecure"), {}).any


# ---- what moltir fixed, cross-checked -----------------------------------------------------------

def test_dm_disabled_confirmed_on_the_old_release() -> None:
    checks = audit.cross_check_dm(report(OLD, "dm-disabled-deep-stopped"), ["channels.telegram.dmPolicy"])
    assert [(c.path, c.status) for c in checks] == [("channels.telegram.dmPolicy", "confirmed")]


def test_dm_not_covered_by_the_current_release_cli_audit() -> None:
    checks = audit.cross_check_dm(report(NEW, "dm-disabled-deep-stopped"), ["channels.telegram.dmPolicy"])
    assert checks[0].status == "not_covered"
    assert "no DM findings" in checks[0].evidence


@pytest.mark.parametrize("release", [NEW, OLD])
def test_dm_still_open_is_contradicted(release: str) -> None:
    checks = audit.cross_check_dm(report(release, "insecure"), ["channels.telegram.dmPolicy"])
    assert checks[0].status == "contradicted"


def test_touched_paths_tolerates_record_layouts() -> None:
    section = {"files": {"/x/openclaw.json": {"changes": [
        {"path": ["channels", "telegram", "dmPolicy"], "old": "pairing"},
        {"path": "channels.discord.dm.policy", "old": "absent"},
        {"path": "channels.telegram.groupPolicy", "old": "open"}]}},
        "channels.slack.accounts.work.dmPolicy": {"old": "open"}}
    assert sorted(audit.touched_dm_paths(section)) == sorted([
        "channels.telegram.dmPolicy", "channels.discord.dm.policy", "channels.slack.accounts.work.dmPolicy"])


def test_touched_paths_reads_what_dm_policy_set_records() -> None:
    from moltir.actions.dm_policy import SECTION

    assert SECTION == "dm_policy"
    section = {"config": "/x/openclaw.json", "policy": "disabled", "files": {}, "paths": [
        {"path": ["channels", "telegram", "accounts", "alerts", "dmPolicy"], "old": {"value": "open"}},
        {"path": ["channels", "telegram", "direct", "555000111", "dmPolicy"], "old": {"value": "allowlist"}},
        {"path": ["channels", "matrix", "dm", "policy"], "old": "absent"},
        {"path": ["channels", "irc", "enabled"], "old": {"value": True}}]}
    assert audit.touched_dm_paths(section) == ["channels.telegram.accounts.alerts.dmPolicy",
                                               "channels.telegram.direct.555000111.dmPolicy",
                                               "channels.matrix.dm.policy"]


def test_token_needed() -> None:
    assert not audit.token_needed({"gateway": {"auth": {"mode": "token", "token": "literal-token-value"}}})
    assert audit.token_needed({"gateway": {"auth": {"mode": "token", "token": {"source": "exec", "id": "x"}}}})
    assert audit.token_needed({"gateway": {"auth": {"token": "${OPENCLAW_GATEWAY_TOKEN}"}}})
    assert audit.token_needed({})
    assert not audit.token_needed({"gateway": {"auth": {"mode": "password"}}})


# ---- running the child -------------------------------------------------------------------------

FAKE = textwrap.dedent("""\
    #!{python}
    import json, os, subprocess, sys, time
    rec = os.environ.get("FAKE_RECORD")
    if rec:
        with open(rec, "a") as fh:
            fh.write(json.dumps({{"argv": sys.argv[1:],
                                 "token": os.environ.get("OPENCLAW_GATEWAY_TOKEN"),
                                 "port": os.environ.get("OPENCLAW_GATEWAY_PORT")}}) + "\\n")
    if os.environ.get("FAKE_SLEEP"):
        child = subprocess.Popen(["sleep", "300"])
        open(os.environ["FAKE_CHILD_PID"], "w").write(str(child.pid))
        time.sleep(300)
    sys.stderr.write(os.environ.get("FAKE_STDERR", ""))
    src = os.environ.get("FAKE_STDOUT_FILE")
    sys.stdout.write(open(src).read() if src else os.environ.get("FAKE_STDOUT", ""))
    sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
""")


@pytest.fixture
def fake_home(tmp_path: Path) -> dict[str, Any]:
    home = tmp_path / "home"
    state = home / ".openclaw"
    state.mkdir(parents=True)
    binary = tmp_path / "bin" / "openclaw"
    binary.parent.mkdir()
    binary.write_text(FAKE.format(python=sys.executable))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    config = state / "openclaw.json"
    config.write_text(json.dumps({"gateway": {"port": 9, "auth": {"mode": "token", "token": "literal-token-x"}}}))
    return {"tmp": tmp_path, "home": home, "state": state, "bin": binary, "config": config,
            "record": tmp_path / "record.jsonl"}


def make_install(h: dict[str, Any], **env: str) -> Install:
    base = {"HOME": str(h["home"]), "PATH": "/usr/bin:/bin", "OPENCLAW_STATE_DIR": str(h["state"]),
            "FAKE_RECORD": str(h["record"])}
    base.update(env)
    from tests.unit.releasefix import pin

    return pin(discover(openclaw_bin=str(h["bin"]), env=base), "2026.9.6")  # the fixtures' release (NEW)


def records(h: dict[str, Any]) -> list[dict[str, Any]]:
    if not h["record"].exists():
        return []
    return [json.loads(line) for line in h["record"].read_text().splitlines()]


def test_run_audit_token_through_env_never_argv(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-stopped.stdout"))
    run = audit.run_audit(inst, deep=True, token=TOKEN, timeout_s=30)
    [rec] = records(fake_home)
    assert rec["argv"] == ["security", "audit", "--json", "--deep"]
    assert rec["token"] == TOKEN
    assert TOKEN not in " ".join(run.argv) and TOKEN not in json.dumps(run.meta())
    assert run.token_via_env and run.token_fingerprint == audit.fingerprint(TOKEN)
    assert run.returncode == 0 and run.report().deep is not None


def test_run_audit_strips_an_inherited_token(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, OPENCLAW_GATEWAY_TOKEN="stale-inherited-token-1234",
                        FAKE_STDOUT_FILE=str(FIX / NEW / "plain-stopped.stdout"))
    run = audit.run_audit(inst, deep=False, timeout_s=30)
    [rec] = records(fake_home)
    assert rec["token"] is None and rec["argv"] == ["security", "audit", "--json"]
    assert not run.token_via_env


def test_run_audit_timeout_kills_the_whole_tree(fake_home: dict[str, Any]) -> None:
    pidfile = fake_home["tmp"] / "child.pid"
    inst = make_install(fake_home, FAKE_SLEEP="1", FAKE_CHILD_PID=str(pidfile))
    run = audit.run_audit(inst, deep=True, timeout_s=1.5)
    assert run.timed_out and run.returncode is None
    with pytest.raises(audit.AuditOutputError, match=r"did not finish within 1\.5 s"):
        run.report()
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"grandchild {child} still alive after the timeout kill")


def test_run_audit_missing_binary_is_exit_3(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home)
    fake_home["bin"].unlink()
    with pytest.raises(MoltirError) as err:
        audit.run_audit(inst)
    assert err.value.exit_code == EXIT_ENV
    assert "cannot run" in err.value.message


def test_run_audit_unparseable_output_names_first_stderr_lines(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT="Segmentation fault\n", FAKE_STDERR="boom: node exploded\nline2\n",
                        FAKE_EXIT="139")
    run = audit.run_audit(inst, timeout_s=30)
    with pytest.raises(audit.AuditOutputError) as err:
        run.report()
    assert "(exit 139)" in err.value.message
    assert "boom: node exploded | line2" in err.value.hint


def test_stderr_head_redacts_registered_secrets(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT="", FAKE_STDERR=f"bad token {TOKEN}\n", FAKE_EXIT="1")
    run = audit.run_audit(inst, token=TOKEN, timeout_s=30)
    assert TOKEN not in run.stderr_head()


# ---- the action ------------------------------------------------------------------------------

def make_ctx(h: dict[str, Any], inst: Install, *, params: dict[str, Any] | None = None,
             runbook: str = "contain", step_id: str = "deep-audit", shared: dict[str, Any] | None = None,
             case: Case | None = None) -> StepContext:
    if case is None:
        case = Case.create(h["tmp"] / "case", kind="contain", install_info=inst.describe(), reason="unit")
    merged = {k: p.default for k, p in RunAudit.params.items()}
    merged.update(params or {})
    return StepContext(install=inst, case=case, journal=case.journal(), params=merged, step_id=step_id,
                       runbook=runbook, timeout_s=None, options=RunOptions(), shared=shared or {})


def run_step(ctx: StepContext) -> Any:
    action = RunAudit()
    result = action.apply(ctx)
    action.verify(ctx, result)
    return result


def test_action_insecure_fails_exit_1_naming_ids_and_keeps_evidence(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / OLD / "insecure.stdout"))
    ctx = make_ctx(fake_home, inst)
    with pytest.raises(MoltirError) as err:
        run_step(ctx)
    assert err.value.exit_code == EXIT_STEP_FAILED
    assert "channels.telegram.dm.open (channels.telegram.dmPolicy)" in err.value.message
    assert "fail_on" in err.value.hint
    folder = ctx.case.dir / "evidence" / "audit" / "contain-deep-audit"
    assert (folder / "security-audit.json").read_bytes() == (FIX / OLD / "insecure.stdout").read_bytes()
    assert (folder / "security-audit.exit").read_text() == "0\n"
    assert (folder / "security-audit.stderr").exists()
    assert not (folder / "security-audit.stdout").exists()  # the stdout was pure JSON


def test_action_evidence_audit_folders_are_private_like_the_rest_of_the_case(fake_home: dict[str, Any]) -> None:
    # the audit writes evidence/audit/<step>/ before (or without) the evidence snapshot: every folder it
    # creates is 0700 like the rest of the case, never the umask's 0755 (mkdir -p gives parents that)
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-stopped.stdout"))
    old_umask = os.umask(0o022)
    try:
        ctx = make_ctx(fake_home, inst, params={"expect_gateway": "down"})
        run_step(ctx)
    finally:
        os.umask(old_umask)
    for rel in ("evidence", "evidence/audit", "evidence/audit/contain-deep-audit"):
        assert stat.S_IMODE((ctx.case.dir / rel).stat().st_mode) == 0o700, rel
    for f in (ctx.case.dir / "evidence" / "audit" / "contain-deep-audit").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_action_contained_gateway_down_passes_with_probe_failed_expected(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-stopped.stdout"))
    result = run_step(make_ctx(fake_home, inst, params={"expect_gateway": "down"}))
    assert result.status == "done"
    assert result.summary.splitlines()[0].startswith("audit: 0 critical · 1 warn · 1 info (+1 expected)")
    assert "expected gateway.probe_failed: the gateway is stopped for containment" in result.summary
    assert result.details["gate"]["failed"] is False


def test_action_auto_sees_the_closed_port_as_down(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-stopped.stdout"))
    result = run_step(make_ctx(fake_home, inst))  # config port 9 (discard): nothing listens
    assert result.details["gateway_expected"] == "down"


def test_action_expect_up_fails_when_unreachable(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / OLD / "deep-stopped.stdout"))
    with pytest.raises(MoltirError, match="not reachable") as err:
        run_step(make_ctx(fake_home, inst, params={"expect_gateway": "up"}, runbook="restore",
                          step_id="final-audit"))
    assert err.value.exit_code == EXIT_STEP_FAILED


def test_action_expect_up_expects_down_when_the_case_found_the_gateway_stopped(fake_home: dict[str, Any]) -> None:
    # contain found no gateway running (was_running false): restore leaves it stopped, so the
    # final audit must not fail the restore on a probe that cannot reach it
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / OLD / "deep-stopped.stdout"))
    ctx = make_ctx(fake_home, inst, params={"expect_gateway": "up"}, runbook="restore", step_id="final-audit")
    ctx.case.record_restore("gateway", {"was_running": False})
    result = run_step(ctx)
    assert result.details["gateway_expected"] == "down" and result.details["gate"]["failed"] is False
    assert "expected gateway.probe_failed: the gateway was not running when this case contained" in result.summary


def test_action_probes_a_gateway_running_on_another_port_than_its_config(
        fake_home: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # started with 'openclaw gateway run --port N' (and relaunched so by restore): the probe,
    # which reads OPENCLAW_GATEWAY_PORT before gateway.port, must look where it listens
    from types import SimpleNamespace

    from moltir.openclaw import processes as proc

    monkeypatch.setattr(proc, "find_gateways", lambda install, **kw: [SimpleNamespace(port=45977)])
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-up-config-token.stdout"))
    ctx = make_ctx(fake_home, inst, params={"expect_gateway": "up"}, runbook="restore", step_id="final-audit")
    result = run_step(ctx)
    [rec] = records(fake_home)
    assert rec["port"] == "45977"
    assert result.details["gateway_expected"] == "up"
    monkeypatch.setattr(proc, "find_gateways", lambda install, **kw: [SimpleNamespace(port=9)])  # = config
    run_step(make_ctx(fake_home, inst, params={"expect_gateway": "up"}, runbook="restore", step_id="final-audit",
                      case=ctx.case))
    assert records(fake_home)[-1]["port"] is None


def test_action_expect_up_passes_on_the_missing_scope_quirk(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-up-config-token.stdout"))
    result = run_step(make_ctx(fake_home, inst, params={"expect_gateway": "up"}, runbook="restore"))
    assert "deep probe: the gateway answered and accepted the token" in result.summary


def test_action_unparseable_is_a_step_error_with_stderr_and_files_kept(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / OLD / "invalid.stdout"),
                        FAKE_STDERR=(FIX / OLD / "invalid.stderr").read_text(), FAKE_EXIT="1")
    ctx = make_ctx(fake_home, inst)
    with pytest.raises(MoltirError) as err:
        run_step(ctx)
    assert err.value.exit_code == EXIT_STEP_FAILED
    assert "no JSON" in err.value.message and "(exit 1)" in err.value.message
    assert "notAKey" in err.value.hint
    folder = ctx.case.dir / "evidence" / "audit" / "contain-deep-audit"
    assert (folder / "security-audit.stdout").exists() and not (folder / "security-audit.json").exists()
    assert (folder / "security-audit.exit").read_text() == "1\n"


def test_action_binary_gone_at_audit_time_is_a_failed_step(fake_home: dict[str, Any]) -> None:
    # found when moltir started, removed (an update, an uninstall) before the audit step: the step
    # fails (exit 1, containment incomplete, resumable), it is not an "environment not ready" refusal
    inst = make_install(fake_home)
    fake_home["bin"].unlink()
    with pytest.raises(MoltirError) as err:
        run_step(make_ctx(fake_home, inst))
    assert err.value.exit_code == EXIT_STEP_FAILED
    assert f"cannot run {fake_home['bin']}" in err.value.message and "resumes at this step" in err.value.hint


def test_action_doctor_boxes_json_split_from_raw_stdout(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / OLD / "doctor-boxes.stdout"))
    ctx = make_ctx(fake_home, inst, params={"fail_on": "never"})
    run_step(ctx)
    folder = ctx.case.dir / "evidence" / "audit" / "contain-deep-audit"
    assert json.loads((folder / "security-audit.json").read_text())["summary"]
    assert (folder / "security-audit.stdout").read_bytes() == (FIX / OLD / "doctor-boxes.stdout").read_bytes()


def test_action_rerun_never_overwrites_evidence(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-stopped.stdout"))
    ctx = make_ctx(fake_home, inst, params={"expect_gateway": "down"})
    first = run_step(ctx)
    second = run_step(ctx)
    assert first.details["evidence"] == "evidence/audit/contain-deep-audit"
    assert second.details["evidence"] == "evidence/audit/contain-deep-audit-2"


def test_action_plan_has_no_side_effects(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-stopped.stdout"))
    ctx = make_ctx(fake_home, inst)
    before = sorted(p.relative_to(ctx.case.dir) for p in ctx.case.dir.rglob("*"))
    plan = RunAudit().plan(ctx)
    assert not plan.simulated
    assert "security audit --json --deep" in plan.changes[0].target
    assert sorted(p.relative_to(ctx.case.dir) for p in ctx.case.dir.rglob("*")) == before
    assert records(fake_home) == []  # the audit did not run


def test_action_token_via_env_only_when_config_cannot_give_it(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-up-env-wrong.stdout"))
    # literal token in the config: the audit reads it itself
    run_step(make_ctx(fake_home, inst, shared={"gateway_token": TOKEN}, params={"fail_on": "never"}))
    assert records(fake_home)[-1]["token"] is None
    # SecretRef in the config: moltir hands the probe the new token through the environment
    fake_home["config"].write_text(json.dumps({"gateway": {"port": 9, "auth": {
        "mode": "token", "token": {"source": "exec", "provider": "moltir", "id": "gateway-token"}}}}))
    ctx = make_ctx(fake_home, inst, shared={"gateway_token": TOKEN}, params={"fail_on": "never"},
                   case=Case.create(fake_home["tmp"] / "case2", kind="contain", install_info={}, reason=""))
    result = run_step(ctx)
    assert records(fake_home)[-1]["token"] == TOKEN
    assert {"checkId": "gateway.env_token_overrides_config",
            "reason": "moltir passed the current token to the probe through OPENCLAW_GATEWAY_TOKEN"} \
        in result.details["expected"]
    for path in ctx.case.dir.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path


def test_action_summary_cross_checks_what_moltir_fixed(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / OLD / "dm-disabled-deep-stopped.stdout"))
    ctx = make_ctx(fake_home, inst, params={"expect_gateway": "down"})
    ctx.case.record_restore("dm_policy", {"changes": [{"path": "channels.telegram.dmPolicy", "old": "pairing"}]})
    ctx.case.record_restore("token", {"old_fingerprint": "aaaa1111", "new_fingerprint": "bbbb2222"})
    result = run_step(ctx)
    assert "channels.telegram.dmPolicy: confirmed (channels.telegram.dm.disabled)" in result.summary
    assert "moltir rotated the gateway token; no token finding remains" in result.summary
    assert result.details["fixes"]["dm_policy"][0]["status"] == "confirmed"


def test_action_warns_when_a_disabled_path_is_open_again(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / OLD / "insecure.stdout"))
    ctx = make_ctx(fake_home, inst, params={"fail_on": "never"})
    ctx.case.record_restore("dm_policy", {"changes": [{"path": "channels.telegram.dmPolicy", "old": "open"}]})
    result = run_step(ctx)
    assert any("DMs still open at channels.telegram.dmPolicy" in w for w in result.warnings)
    assert "CRITICAL channels.telegram.dm.open (channels.telegram.dmPolicy): " in result.summary
    assert "-> fix: " in result.summary


def test_action_suppressions_are_a_warning(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "suppressed.stdout"))
    fake_home["config"].write_text(json.dumps({"gateway": {"port": 9}, "security": {"audit": {"suppressions": [
        {"checkId": "gateway.token_too_short", "reason": "fixture"}]}}}))
    result = run_step(make_ctx(fake_home, inst, params={"fail_on": "never"}))
    assert result.warnings[0].startswith("AUDIT SUPPRESSIONS ARE ACTIVE")
    assert "hidden by a suppression: warn gateway.token_too_short" in result.summary


def test_action_journal_holds_no_token(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-stopped.stdout"))
    fake_home["config"].write_text(json.dumps({"gateway": {"port": 9, "auth": {"mode": "token"}}}))
    ctx = make_ctx(fake_home, inst, shared={"gateway_token": TOKEN}, params={"expect_gateway": "down"})
    run_step(ctx)
    text = ctx.case.journal_path.read_text()
    assert "audit.ran" in text and audit.fingerprint(TOKEN) in text
    assert TOKEN not in text
    assert os.stat(ctx.case.dir / "evidence" / "audit" / "contain-deep-audit" / "security-audit.json").st_mode \
        & 0o077 == 0


def test_registered_in_the_action_registry() -> None:
    from moltir import actions

    assert actions.load("audit.run") is RunAudit




def _secretref_config(h: dict[str, Any]) -> None:
    h["config"].write_text(json.dumps({"gateway": {"port": 9, "auth": {
        "mode": "token", "token": {"source": "exec", "provider": "moltir", "id": "gateway-token"}}}}))


def test_action_restore_run_takes_the_token_from_the_keyring(fake_home: dict[str, Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from tests.unit.keyring_fakes import MemKeyring

    from moltir import keystore

    _secretref_config(fake_home)
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-up-env-wrong.stdout"))
    kr = MemKeyring()
    kr.set_password(keystore.SERVICE, keystore.entry_name(inst), TOKEN)
    monkeypatch.setattr(keyring, "get_keyring", lambda: kr)
    ctx = make_ctx(fake_home, inst, params={"expect_gateway": "up"}, runbook="restore", step_id="final-audit")
    run_step(ctx)  # no token in ctx.shared: a separate 'moltir restore' process
    assert records(fake_home)[-1]["token"] == TOKEN
    assert '"token_from":"keyring"' in ctx.case.journal_path.read_text()


def test_action_keyring_unavailable_runs_without_a_token(fake_home: dict[str, Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from tests.unit.keyring_fakes import LockedKeyring

    _secretref_config(fake_home)
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / NEW / "deep-stopped.stdout"))
    monkeypatch.setattr(keyring, "get_keyring", lambda: LockedKeyring())
    ctx = make_ctx(fake_home, inst, params={"expect_gateway": "down"})
    run_step(ctx)
    assert records(fake_home)[-1]["token"] is None
    assert "audit.token_unavailable" in ctx.case.journal_path.read_text()


def test_reopened_paths_from_the_dm_policy_record() -> None:
    section = {"paths": [
        {"path": ["channels", "telegram", "accounts", "alerts", "dmPolicy"], "old": {"value": "open"}},
        {"path": ["channels", "discord", "dm", "policy"], "old": {"value": "open"}},
        {"path": ["channels", "telegram", "dmPolicy"], "old": {"value": "pairing"}},
        {"path": ["channels", "slack", "dmPolicy"], "old": "absent"}]}
    assert audit.reopened_dm_paths(section) == ["channels.telegram.accounts.alerts.dmPolicy",
                                                "channels.discord.dm.policy"]


def test_restore_run_warns_about_reopened_dms_and_standing_criticals(fake_home: dict[str, Any]) -> None:
    inst = make_install(fake_home, FAKE_STDOUT_FILE=str(FIX / OLD / "insecure.stdout"))
    ctx = make_ctx(fake_home, inst, params={"fail_on": "never"}, runbook="restore", step_id="final-audit")
    ctx.case.record_restore("dm_policy", {"paths": [
        {"path": ["channels", "telegram", "dmPolicy"], "old": {"value": "open"}}]})
    result = run_step(ctx)  # not gating: the pre-incident config is back, risks and all
    assert any(w.startswith("restore put back OPEN DM policies (their pre-incident values): "
                            "channels.telegram.dmPolicy") for w in result.warnings)
    assert any("critical finding(s) stand (not gating: fail_on never): channels.telegram.dm.open" in w
               for w in result.warnings)
    assert "moltir disabled DMs" not in result.summary
