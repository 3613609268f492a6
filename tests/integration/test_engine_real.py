"""The run engine against the REAL gateway (openclaw 2026.9.6 and 2026.1.29), driven like a user:

* one moltir per install: a restore or drill started while a contain runs exits 4 naming the
  holder and opens no case; ``moltir status`` says the contain is RUNNING (not "interrupted");
* crash and Ctrl-C mid-contain: ``kill -9`` right after the gateway stop, then Ctrl-C during
  the deep audit (the audit process, in its own session, must not outlive moltir), each
  followed by ``moltir contain --yes`` resuming; the journal chain verifies;
* a BOM + CRLF + single-quoted + commented config survives contain and restore with only the
  token line (and on 2026.9.6 the SecretRef provider block) changed.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.net import port_is_open, wait_until
from tests.harness.procs import describe, kill_leftovers, processes_for
from tests.harness.risk import accept_open_dms
from tests.harness.secret_service import SecretService


def _env(home: OpenClawHome, **extra: str) -> dict[str, str]:
    return {**home.env, "MOLTIR_HOME": str(home.root / "moltir-home"), **extra}


def _moltir(env: dict[str, str], cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=cwd)


def _spawn(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "moltir", *args], env=env, cwd=cwd, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _records(env: dict[str, str]) -> list[dict[str, Any]]:
    cases = Path(env["MOLTIR_HOME"]) / "cases"
    journals = sorted(cases.glob("*/journal.jsonl")) if cases.exists() else []
    if not journals:
        return []
    lines = journals[-1].read_text().splitlines()
    return [json.loads(ln) for ln in lines if ln.endswith("}")]


def _seen(env: dict[str, str], event: str, step: str) -> bool:
    return any(r.get("event") == event and r.get("step") == step for r in _records(env))


def _audits(home: OpenClawHome) -> list[Any]:
    """The state dir's `openclaw security audit` processes (2026.9.6 renames its child openclaw-security)."""
    found = []
    for proc in processes_for(home.state_dir):
        try:
            if "audit" in proc.cmdline() or proc.name().startswith("openclaw-secur"):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_a_second_run_exits_4_and_status_says_running(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    home = openclaw_home
    env = _env(home, MOLTIR_ENABLE_TEST_ACTIONS="1")
    go = tmp_path / "go"
    rb = tmp_path / "hold.json5"
    rb.write_text(f"""{{ name: "contain", steps: [
      {{ id: "stop-gateway", action: "gateway.stop", with: {{ timeout_s: 15, settle_s: 1 }} }},
      {{ id: "hold", action: "test.sleep", with: {{ seconds: 120, until: "{go}" }} }} ] }}""")
    start_rb = tmp_path / "start.json5"
    start_rb.write_text('{ name: "restore", steps: [ { id: "start-gateway", action: "gateway.start" } ] }')
    gw = Gateway(home).start()
    first = _spawn(env, home.root, "contain", "--yes", "--runbook", str(rb))
    try:
        wait_until(lambda: _seen(env, "step.start", "hold") or first.poll() is not None, 120,
                   what="the contain to reach its hold step")
        assert first.poll() is None, first.communicate()
        assert not port_is_open(home.port)
        for args in (("restore", "--yes"), ("drill", "--yes"), ("contain", "--yes", "--new-case")):
            out = _moltir(env, home.root, *args, "--json")
            assert out.returncode == 4, (args, out.stdout, out.stderr)
            assert moltir_json(out.stdout)["exit_code"] == 4
            assert f"pid {first.pid}" in out.stderr and "moltir contain --yes" in out.stderr
        assert len(list((Path(env["MOLTIR_HOME"]) / "cases").iterdir())) == 1
        status = moltir_json(_moltir(env, home.root, "status", "--json").stdout)
        assert status["status"] == "running" and status["running"]["pid"] == first.pid
    finally:
        go.touch()
        first.wait(timeout=120)
    assert first.returncode == 0, first.stderr
    # the lock is free again: restore (here: just the start step) brings the same gateway back
    back = _moltir(env, home.root, "restore", "--yes", "--runbook", str(start_rb))
    assert back.returncode == 0, back.stdout + back.stderr
    assert gw.token_status(home.token) == 400


def test_kill_9_after_the_stop_and_ctrl_c_in_the_audit_both_resume(openclaw_home: OpenClawHome,
                                                                   secret_service: SecretService) -> None:
    home = openclaw_home
    home.env.update(secret_service.env)  # the gateway and moltir share the private keyring
    env = _env(home)
    pre_config = home.config_path.read_bytes()
    Gateway(home).start()

    crashed = _spawn(env, home.root, "contain", "--yes")
    wait_until(lambda: _seen(env, "step.applied", "stop-gateway") or _seen(env, "step.done", "stop-gateway")
               or crashed.poll() is not None, 120, what="the gateway stop")
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(timeout=30)
    assert not port_is_open(home.port)
    assert moltir_json(_moltir(env, home.root, "status", "--json").stdout)["status"] == "interrupted"
    assert not list(home.config_path.parent.glob(".*.moltir-*.tmp"))

    interrupted = _spawn(env, home.root, "contain", "--yes")
    wait_until(lambda: (_seen(env, "step.start", "deep-audit") and _audits(home)) or interrupted.poll() is not None,
               180, what="the deep audit to start")
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130, err
    assert "Traceback" not in err
    try:
        wait_until(lambda: not _audits(home), 30, what="no audit process left")
    except TimeoutError:
        raise AssertionError(f"the audit outlived moltir: {describe(_audits(home))}") from None

    done = _moltir(env, home.root, "contain", "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = moltir_json(done.stdout)
    # stop-gateway is verified in the background for settle_s: interrupted before that ended, it
    # runs again ("already stopped"); the steps verified done are not redone
    assert result["resumed_from"] in ("stop-gateway", "deep-audit"), result
    assert [s["status"] for s in result["steps"]][1:4] == ["done-earlier"] * 3
    verify = _moltir(env, home.root, "journal", "verify", "--json")
    assert verify.returncode == 0 and moltir_json(verify.stdout)["ok"] is True, verify.stdout
    status = _moltir(env, home.root, "status", "--verify", "--json")
    assert status.returncode == 0 and moltir_json(status.stdout)["status"] == "contained"
    assert home.config_path.read_bytes() != pre_config  # DMs disabled in the same file
    assert not list(home.config_path.parent.glob(".*.moltir-*.tmp"))


def _crlf_bom_single_quotes(text: str) -> str:
    text = text.replace('dmPolicy: "pairing"', "dmPolicy: 'pairing'")
    text = text.replace('dmPolicy: "open"', "'dmPolicy': 'open' /* risky */")
    text = text.replace("enabled: true,\n", "enabled: true, // on\n")
    return "\ufeff" + text.replace("\n", "\r\n")


def test_a_bom_crlf_single_quoted_config_survives_contain_and_restore(openclaw_home: OpenClawHome,
                                                                      secret_service: SecretService) -> None:
    home = openclaw_home
    home.env.update(secret_service.env)
    env = _env(home)
    home.config_path.write_bytes(_crlf_bom_single_quotes(home.config_path.read_text()).encode("utf-8"))
    pre = home.config_path.read_bytes()
    assert pre.count(b"'dmPolicy': 'open'") >= 1 and pre.count(b"\r\n") == pre.count(b"\n")
    Gateway(home).start()

    # the shipped runbooks without their deep audits (covered elsewhere; they double the time)
    contain_rb, restore_rb = home.root / "contain.json5", home.root / "restore.json5"
    contain_rb.write_text('{ name: "contain", steps: ['
                          '{ id: "stop-gateway", action: "gateway.stop" },'
                          '{ id: "disable-dms", action: "dm_policy.set" },'
                          '{ id: "rotate-token", action: "token.rotate" },'
                          '{ id: "snapshot", action: "evidence.snapshot" } ] }')
    restore_rb.write_text('{ name: "restore", steps: ['
                          '{ id: "restore-dms", action: "dm_policy.restore" },'
                          '{ id: "start-gateway", action: "gateway.start" },'
                          '{ id: "verify-token", action: "token.verify" } ] }')
    contain = _moltir(env, home.root, "contain", "--yes", "--runbook", str(contain_rb))
    assert contain.returncode == 0, contain.stdout + contain.stderr
    mid = home.config_path.read_bytes()
    assert mid.startswith(b"\xef\xbb\xbf") and mid.count(b"\r\n") == mid.count(b"\n")
    assert b"'dmPolicy': 'disabled' /* risky */" in mid
    try:
        restore = _moltir(env, home.root, "restore", "--yes", "--runbook", str(restore_rb),
                          *accept_open_dms(home.release.id))
        assert restore.returncode == 0, restore.stdout + restore.stderr
    finally:  # the gateway restore started lives on the test's keyring bus: end it before the keyring goes
        kill_leftovers(home.state_dir)

    post = home.config_path.read_bytes()
    assert post.startswith(b"\xef\xbb\xbf") and post.count(b"\r\n") == post.count(b"\n")
    before, after = pre.decode().splitlines(keepends=True), post.decode().splitlines(keepends=True)
    diff = [ln for ln in difflib.unified_diff(before, after, n=0) if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    removed = [ln for ln in diff if ln.startswith("-")]
    added = [ln for ln in diff if ln.startswith("+")]
    # only the token line changes (and on 2026.9.6 a SecretRef provider block is added)
    assert len(removed) == 1 and home.token in removed[0], diff
    assert all(ln.endswith("\r\n") for ln in added), diff
    if home.release.current:
        assert '"exec"' in "".join(added) and home.token not in "".join(added)
    else:  # the same line, comment and CRLF kept, with the new plaintext token
        def masked(line: str) -> str:
            return re.sub(r'token: "[^"]*"', 'token: "T"', line[1:])

        assert len(added) == 1 and masked(added[0]) == masked(removed[0]), diff


@pytest.mark.parametrize("openclaw_release", ["2026.9.6"], indirect=True, ids=["oc2026.9.6"])
def test_a_full_disk_before_the_case_exists_is_exit_3_and_changes_nothing(
        openclaw_release: Any, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """``--case-dir`` on a full tmpfs: the case cannot be opened, so nothing runs: exit 3 in one line,
    the gateway still serves the old token, the config is untouched and no case folder is left."""
    home: OpenClawHome = request.getfixturevalue("openclaw_home")
    secret_service: SecretService = request.getfixturevalue("secret_service")
    home.env.update(secret_service.env)  # a usable keyring: the token.rotate preflight passes
    env = _env(home)
    before = home.config_path.read_bytes()
    disk = tmp_path / "full"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(disk)],
                           capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mount.stderr.strip()}); "
                    "tests/unit/test_disk_full.py covers ENOSPC with an injected write failure")
    gw = Gateway(home)
    try:
        gw.start()
        fd = os.open(disk / "fill", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        run = _moltir(env, home.root, "contain", "--yes", "--case-dir", str(disk / "case"))
        assert run.returncode == 3, run.stdout + run.stderr
        errors = [ln for ln in run.stderr.splitlines() if not ln.startswith("warning:")]
        assert len(errors) == 1 and "disk full" in errors[0] and "nothing was changed" in errors[0], run.stderr
        assert "Traceback" not in run.stdout + run.stderr
        assert sorted(p.name for p in disk.iterdir()) == ["fill"], "a half-made case folder was left"
        assert gw.token_status(home.token) == 400 and home.config_path.read_bytes() == before
        assert moltir_json(_moltir(env, home.root, "status", "--json").stdout)["status"] == "none"
    finally:
        subprocess.run(["umount", str(disk)], check=True)
        gw.stop()
        gw.assert_stopped()
