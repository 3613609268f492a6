"""moltir.commands.restore_checks: refusals, no-ops, what restore will change, partial-failure messages.

Cases are real case folders with real journals (moltir.engine.journal); the install is discovered
from a tmp HOME. Only the evidence verifier is replaced where a test needs a verdict it cannot
cheaply produce for real (a tampered sealed snapshot).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moltir import paths
from moltir.commands import restore_checks
from moltir.engine import runbook
from moltir.engine.case import Case, remember_latest
from moltir.errors import EXIT_OK, EXIT_USAGE, MoltirError
from moltir.openclaw import Install, discover


@pytest.fixture
def install(tmp_path: Path) -> Install:
    home = tmp_path / "home"
    (home / ".openclaw").mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(home), "PATH": "/nonexistent", "MOLTIR_HOME": str(tmp_path / "moltir-home")}
    return discover(env=env)


def new_case(install: Install, name: str, *, latest: bool = True, state_dir: str | None = None) -> Case:
    info = install.describe()
    if state_dir is not None:
        info["state_dir"] = state_dir
    case = Case.create(paths.cases_root(install.env) / name, kind="contain", install_info=info, reason="unit")
    if latest:
        remember_latest(paths.installs_dir(install.env), install.key, case.dir, install.state_dir)
    return case


def contained(case: Case, *, ok: bool = True) -> Case:
    j = case.journal()
    j.append("run.start", runbook="contain", steps=["stop-gateway", "disable-dms"])
    for step in ("stop-gateway", "disable-dms"):
        j.append("step.start", runbook="contain", step=step, action="x")
        j.append("step.done", runbook="contain", step=step, verified=True)
    j.append("run.done", runbook="contain", status="ok" if ok else "failed")
    case.record_restore("gateway", {"was_running": True, "mode": "foreground", "port": 18789,
                                    "argv": ["/opt/oc/bin/openclaw", "gateway", "run"]})
    # the layout dm_policy.set records (actions/dm_policy/set.py _record)
    case.record_restore("dm_policy", {"config": "/x/openclaw.json", "policy": "disabled", "files": {}, "paths": [
        {"path": ["channels", "telegram", "dmPolicy"], "file": "/x/openclaw.json", "written": "disabled",
         "old": {"value": "pairing"}},
        {"path": ["channels", "discord", "accounts", "work", "dmPolicy"], "file": "/x/openclaw.json",
         "written": "disabled", "old": "absent", "created": ["channels", "discord", "accounts", "work", "dmPolicy"]},
        {"path": ["channels", "whatsapp", "accounts", "default", "dmPolicy"], "file": "/x/openclaw.json",
         "written": "disabled", "old": {"value": None}}]})
    case.record_restore("token", {"new_fingerprint": "bbbb2222", "previous": {"token_fingerprint": "aaaa1111"}})
    return case


RESTORE_STEPS = [("restore-dms", "dm_policy.restore"), ("start-gateway", "gateway.start"),
                 ("verify-token", "token.verify"), ("final-audit", "audit.run")]


def restore_run(case: Case, *, done: int, failed: str | None = None, finished: bool = True,
                statuses: dict[str, str] | None = None) -> None:
    j = case.journal()
    j.append("run.start", runbook="restore", steps=[s for s, _ in RESTORE_STEPS])
    for sid, action in RESTORE_STEPS[:done]:
        j.append("step.start", runbook="restore", step=sid, action=action)
        j.append("step.done", runbook="restore", step=sid, action=action, verified=True,
                 status=(statuses or {}).get(sid, "done"))
    if failed:
        action = dict(RESTORE_STEPS)[failed]
        j.append("step.start", runbook="restore", step=failed, action=action)
        j.append("step.failed", runbook="restore", step=failed, action=action, error="boom: it broke")
    if finished:
        j.append("run.done", runbook="restore", status="failed" if failed else "ok")


# ---- preflight ---------------------------------------------------------------------------------

def test_latest_contained_case_passes_with_a_note(install: Install) -> None:
    case = contained(new_case(install, "c1"))
    notes = restore_checks.preflight(case, install, force=False)
    assert any("evidence" in n for n in notes)


def test_already_restored_is_a_noop_exit_0(install: Install) -> None:
    case = contained(new_case(install, "c1"))
    restore_run(case, done=4)
    with pytest.raises(restore_checks.NothingToRestore) as err:
        restore_checks.preflight(case, install, force=False)
    assert err.value.exit_code == EXIT_OK
    assert "already restored" in err.value.message and "nothing to do" in err.value.message


def test_nothing_recorded_is_a_noop_exit_0(install: Install) -> None:
    case = new_case(install, "c1")
    with pytest.raises(restore_checks.NothingToRestore, match="recorded no change") as err:
        restore_checks.preflight(case, install, force=False)
    assert err.value.exit_code == EXIT_OK


def test_not_the_latest_case_needs_force(install: Install) -> None:
    old = contained(new_case(install, "c-old"))
    contained(new_case(install, "c-new"))
    with pytest.raises(MoltirError) as err:
        restore_checks.preflight(old, install, force=False)
    assert err.value.exit_code == EXIT_USAGE
    assert "not the latest case" in err.value.message and "c-new" in err.value.message
    assert "--force" in err.value.hint
    notes = restore_checks.preflight(old, install, force=True)
    assert any(n.startswith("--force: case c-old is not the latest") for n in notes)


def test_case_of_another_install_needs_force(install: Install, tmp_path: Path) -> None:
    case = contained(new_case(install, "c1", state_dir=str(tmp_path / "elsewhere" / ".openclaw")))
    with pytest.raises(MoltirError, match=r"was opened for .*elsewhere") as err:
        restore_checks.preflight(case, install, force=False)
    assert err.value.exit_code == EXIT_USAGE


def test_failed_evidence_verification_needs_force(install: Install, monkeypatch: pytest.MonkeyPatch) -> None:
    import moltir.evidence as evidence

    case = contained(new_case(install, "c1"))
    (case.dir / "evidence").mkdir(exist_ok=True)
    report = evidence.VerifyReport(case.dir, "sealed", 3, mismatched=("evidence/state/openclaw.json",))
    monkeypatch.setattr(evidence, "verify", lambda case_dir: report)
    with pytest.raises(MoltirError, match="fails verification") as err:
        restore_checks.preflight(case, install, force=False)
    assert "evidence/state/openclaw.json" in err.value.message
    assert restore_checks.preflight(case, install, force=True)


def test_unfinished_snapshot_is_not_a_tamper_sign(install: Install, monkeypatch: pytest.MonkeyPatch) -> None:
    import moltir.evidence as evidence

    case = contained(new_case(install, "c1"))
    (case.dir / "evidence").mkdir(exist_ok=True)
    report = evidence.VerifyReport(case.dir, "incomplete", 0, problems=(
        "evidence/INCOMPLETE: the snapshot did not finish (disk full)", "seal.json is missing: never sealed"))
    monkeypatch.setattr(evidence, "verify", lambda case_dir: report)
    notes = restore_checks.preflight(case, install, force=False)
    assert any("did not finish" in n for n in notes)


def test_real_verifier_on_a_case_without_a_snapshot(install: Install) -> None:
    case = contained(new_case(install, "c1"))
    (case.dir / "evidence" / "audit" / "contain-deep-audit").mkdir(parents=True)  # audit.run output only
    notes = restore_checks.preflight(case, install, force=False)
    assert "no sealed evidence snapshot in this case; nothing to verify" in notes


def test_unfinished_containment_is_said(install: Install) -> None:
    case = contained(new_case(install, "c1"), ok=False)
    notes = restore_checks.preflight(case, install, force=False)
    assert any("containment did not finish (status: failed)" in n for n in notes)


# ---- describe_restore ----------------------------------------------------------------------------

def test_describe_restore_lists_every_change(install: Install) -> None:
    text = "\n".join(restore_checks.describe_restore(contained(new_case(install, "c1"))))
    assert "channels.telegram.dmPolicy: disabled -> 'pairing'" in text
    assert "channels.discord.accounts.work.dmPolicy: key removed (moltir inserted it)" in text
    assert "channels.whatsapp.accounts.default.dmPolicy: disabled -> None" in text
    assert "relaunched in the background (`openclaw gateway run`)" in text and "port 18789" in text
    assert "NEW token (fingerprint bbbb2222)" in text and "old token (aaaa1111) stays refused" in text
    assert "never brings it back" in text
    assert "deep security audit" in text


@pytest.mark.parametrize(("record", "expected"), [
    ({"was_running": False}, "stays stopped"),
    ({"was_running": True, "mode": "systemd", "service": {"manager": "systemd", "name": "openclaw-gateway.service",
                                                          "masked": True, "disabled": True}},
     "systemd service openclaw-gateway.service unmasked, re-enabled, started"),
    ({"was_running": True, "mode": "launchd", "service": {"manager": "launchd", "name": "ai.openclaw.gateway",
                                                          "masked": False, "disabled": True}},
     "launchd service ai.openclaw.gateway re-enabled, started"),
])
def test_describe_gateway_modes(install: Install, record: dict[str, Any], expected: str) -> None:
    case = new_case(install, "c1")
    case.record_restore("gateway", record)
    assert any(expected in line for line in restore_checks.describe_restore(case))


def _left_stopped_case(install: Install) -> Case:
    case = new_case(install, "c1")
    case.record_restore("gateway", {"was_running": False})  # contain found the gateway already stopped
    case.record_restore("token", {"new_fingerprint": "bbbb2222", "previous": {"token_fingerprint": "aaaa1111"}})
    return case


def test_describe_a_gateway_left_stopped_promises_no_live_proof_and_a_down_audit(install: Install) -> None:
    # contain found the gateway stopped: restore leaves it so, token.verify skips, and the final audit
    # expects it down (actions/audit.py _left_stopped); the preview says so, not "with the gateway up"
    rb = runbook.load(runbook.resolve("restore"))
    for lines in (restore_checks.describe_restore(_left_stopped_case(install)),
                  restore_checks.describe_restore(Case.open(paths.cases_root(install.env) / "c1"), rb, install)):
        text = "\n".join(lines)
        assert "gateway: was not running before containment; it stays stopped" in text
        assert "Not proven live: the gateway stays stopped" in text and "Then proven" not in text
        assert "then: a deep security audit with the gateway stopped, as before containment" in text
        assert "gateway up" not in text and "findings are listed, not gating" in text


def test_describe_follows_the_runbook_it_will_run(install: Install, tmp_path: Path) -> None:
    case = contained(new_case(install, "c1"))
    copy = tmp_path / "restore-short.json5"
    copy.write_text('{ name: "restore", steps: [ { id: "restore-dms", action: "dm_policy.restore" },'
                    ' { id: "start-gateway", action: "gateway.start" } ] }')
    text = "\n".join(restore_checks.describe_restore(case, runbook.load(copy), install))
    assert "relaunched in the background" in text
    assert "Not proven live: this runbook has no token.verify step" in text and "Then proven" not in text
    assert "then: no final audit (this runbook has no audit.run step)" in text
    full = "\n".join(restore_checks.describe_restore(case, runbook.load(runbook.resolve("restore")), install))
    assert "Then proven on the live gateway" in full
    assert "then: a deep security audit with the gateway up (its probe must authenticate with the new token)" in full


# ---- partial failure -----------------------------------------------------------------------------

def test_partial_failure_at_gateway_start(install: Install) -> None:
    case = contained(new_case(install, "c1"))
    restore_run(case, done=1, failed="start-gateway")
    msg = restore_checks.partial_failure_message(case, "start-gateway")
    assert msg.startswith("restore stopped at step 'start-gateway' (boom: it broke).")
    assert "DM policies are back to their pre-incident values" in msg
    assert "the gateway is NOT up on the new token" in msg
    assert "the token was not checked" in msg
    assert f"moltir restore --yes --case-dir {case.dir}" in msg
    assert "resumes at 'start-gateway'" in msg


def test_partial_failure_at_dm_restore_mentions_force_for_conflicts(install: Install) -> None:
    case = contained(new_case(install, "c1"))
    restore_run(case, done=0, failed="restore-dms")
    msg = restore_checks.partial_failure_message(case, "restore-dms")
    assert "DM policies are NOT restored" in msg
    assert "the gateway is still stopped" in msg
    assert "--force" in msg


def test_partial_failure_at_the_final_audit(install: Install) -> None:
    case = contained(new_case(install, "c1"))
    restore_run(case, done=3, failed="final-audit")
    msg = restore_checks.partial_failure_message(case, "final-audit")
    assert "the gateway accepts the new token and refuses the old one" in msg
    assert "the final audit failed or found problems" in msg


def test_partial_failure_after_a_resume_counts_earlier_steps(install: Install) -> None:
    case = contained(new_case(install, "c1"))
    restore_run(case, done=1, failed="start-gateway")
    # second attempt: the engine skips restore-dms (done earlier) and fails again at start-gateway
    j = case.journal()
    j.append("run.start", runbook="restore", steps=[s for s, _ in RESTORE_STEPS])
    j.append("step.start", runbook="restore", step="start-gateway", action="gateway.start")
    j.append("step.failed", runbook="restore", step="start-gateway", action="gateway.start", error="again")
    j.append("run.done", runbook="restore", status="failed")
    msg = restore_checks.partial_failure_message(case, "start-gateway")
    assert "DM policies are back" in msg and "(again)" in msg


# ---- the keyring the gateway needs to start -------------------------------------------------------

def _keyring_ref_config(install: Install, tmp_path: Path, helper_body: str) -> Path:
    helper = tmp_path / "helper-bin" / "moltir-secret"
    helper.parent.mkdir(mode=0o700)
    helper.write_text("#!/bin/sh\ncat >/dev/null\n" + helper_body)
    helper.chmod(0o700)
    install.config_path.write_text(
        '{ gateway: { auth: { mode: "token", token: { source: "exec", provider: "moltir", id: "gateway-token:k" } } },'
        f' secrets: {{ providers: {{ moltir: {{ source: "exec", command: "{helper}", args: ["--backend", "x.Y"],'
        ' passEnv: ["HOME"], jsonOnly: true } } } }')
    install.config_path.chmod(0o600)
    return helper


def test_a_locked_keyring_refuses_the_restore_before_anything_changes(install: Install, tmp_path: Path) -> None:
    """On 2026.9.x the gateway reads its token through moltir's helper: with the keyring locked it refuses
    to start, and restore would have put the DM policies back first. Refused up front, exit 3."""
    case = contained(new_case(install, "c1"))
    _keyring_ref_config(install, tmp_path, "echo 'moltir-secret: cannot read the keyring (KeyringLocked)' >&2\n"
                                           "exit 1\n")
    before = install.config_path.read_bytes()
    with pytest.raises(MoltirError) as err:
        restore_checks.preflight(case, install, force=True)
    assert err.value.exit_code == 3
    assert "KeyringLocked" in err.value.message and "nothing was changed" in err.value.message
    assert "unlock the keyring" in err.value.hint
    assert install.config_path.read_bytes() == before


def test_a_readable_keyring_passes_with_a_note(install: Install, tmp_path: Path) -> None:
    case = contained(new_case(install, "c1"))
    answer = """echo '{"protocolVersion":1,"values":{"gateway-token:k":"tok-123456"}}'\n"""
    _keyring_ref_config(install, tmp_path, answer)
    notes = restore_checks.preflight(case, install, force=False)
    assert any(n.startswith("keyring: the gateway's secret helper reads its token") for n in notes)
    assert not any("tok-123456" in n for n in notes)


def test_partial_failure_after_a_gateway_left_stopped_never_says_it_runs(install: Install) -> None:
    # gateway.start left the gateway stopped (status "skipped": it was not running before the incident),
    # token.verify skipped too; then the final audit failed
    case = _left_stopped_case(install)
    restore_run(case, done=3, failed="final-audit",
                statuses={"start-gateway": "skipped", "verify-token": "skipped"})
    msg = restore_checks.partial_failure_message(case, "final-audit")
    assert "the gateway stays stopped, as before containment" in msg
    assert "running again" not in msg and "runs on the new token" not in msg
    assert "accepts the new token" not in msg and "the token was not proven live: the gateway is not running" in msg
    assert "the final audit failed or found problems" in msg


def test_partial_failure_of_the_token_proof_on_a_stopped_gateway(install: Install) -> None:
    case = _left_stopped_case(install)
    restore_run(case, done=2, failed="verify-token", statuses={"start-gateway": "skipped"})
    msg = restore_checks.partial_failure_message(case, "verify-token")
    assert "the token was NOT proven: the gateway is not running" in msg
    assert "the gateway is running but" not in msg and "running again" not in msg


def test_partial_failure_with_a_gateway_found_running(install: Install) -> None:
    case = contained(new_case(install, "c1"))
    restore_run(case, done=2, failed="verify-token", statuses={"start-gateway": "already"})
    msg = restore_checks.partial_failure_message(case, "verify-token")
    assert "the gateway is running (it was already up)" in msg and "running again" not in msg


@pytest.mark.parametrize(("ledger", "expected"), [
    ({"release_has_ledger": True, "exported": "evidence/ledger/audit_events.jsonl", "rows": 12},
     "audit ledger: starting the gateway prunes it (rows older than 30 days, beyond 100,000); the case keeps "
     "the copy taken at containment: evidence/ledger/audit_events.jsonl (12 rows)"),
    ({"release_has_ledger": True, "exported": None, "rows": 0},
     "audit ledger: starting the gateway prunes it (rows older than 30 days, beyond 100,000); the case keeps "
     "the copied state/openclaw.sqlite"),
    ({"release_has_ledger": False, "exported": None, "rows": 0, "note": "no ledger in this release"}, None),
])
def test_describe_restore_warns_that_starting_the_gateway_prunes_the_ledger(
        install: Install, ledger: dict[str, Any], expected: str | None) -> None:
    import json

    case = contained(new_case(install, "c1"))
    (case.dir / "manifest.json").write_text(json.dumps({"audit_ledger": ledger}))
    lines = [ln for ln in restore_checks.describe_restore(case) if ln.startswith("audit ledger:")]
    assert lines == ([expected] if expected else [])
    stopped = new_case(install, "c2")
    stopped.record_restore("gateway", {"was_running": False})  # restore leaves it stopped: nothing is pruned
    (stopped.dir / "manifest.json").write_text(json.dumps({"audit_ledger": ledger}))
    assert not [ln for ln in restore_checks.describe_restore(stopped) if ln.startswith("audit ledger:")]
