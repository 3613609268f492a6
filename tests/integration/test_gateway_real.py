"""gateway.stop / gateway.start against the REAL gateway (openclaw 2026.9.6 and 2026.1.29).

Every run goes through ``moltir contain --runbook <one-step runbook> --yes --json`` in a child
process, exactly as a user would run it. Process facts are checked with psutil and the token
check (``POST /tools/invoke``: 400 accepted, 401 refused, 0 down).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.net import port_is_open, token_status, wait_until
from tests.harness.procs import describe, kill_leftovers, processes_for

STOP_RUNBOOK = """// one step: stop the gateway
{{ name: "stop-only", steps: [ {{ id: "stop-gateway", action: "gateway.stop", with: {with_} }} ] }}
"""
START_RUNBOOK = """// one step: start it again the way it ran
{{ name: "start-only", steps: [ {{ id: "start-gateway", action: "gateway.start", with: {with_} }} ] }}
"""


def _env(home: OpenClawHome) -> dict[str, str]:
    return {**home.env, "MOLTIR_HOME": str(home.root / "moltir-home")}


def moltir(home: OpenClawHome, *args: str, timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run([sys.executable, "-m", "moltir", *args, "--json"], env=_env(home), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=home.root)
    try:
        out: dict[str, Any] = moltir_json(proc.stdout)
    except ValueError:
        out = {}
    return proc.returncode, out, proc.stdout + proc.stderr


def run_stop(home: OpenClawHome, case_dir: Path, **with_: Any) -> tuple[int, dict[str, Any], str]:
    rb = home.root / f"stop-{secrets.token_hex(3)}.json5"
    rb.write_text(STOP_RUNBOOK.format(with_=json.dumps(with_ or {"timeout_s": 15, "settle_s": 3})))
    return moltir(home, "contain", "--runbook", str(rb), "--case-dir", str(case_dir), "--yes")


def run_start(home: OpenClawHome, case_dir: Path, **with_: Any) -> tuple[int, dict[str, Any], str]:
    rb = home.root / f"start-{secrets.token_hex(3)}.json5"
    rb.write_text(START_RUNBOOK.format(with_=json.dumps(with_ or {"timeout_s": 120})))
    return moltir(home, "contain", "--runbook", str(rb), "--case-dir", str(case_dir), "--yes")


def step(out: dict[str, Any]) -> dict[str, Any]:
    steps = out.get("steps") or []
    assert len(steps) == 1, out
    result: dict[str, Any] = steps[0]
    return result


def gateway_procs(home: OpenClawHome) -> list[psutil.Process]:
    return [p for p in processes_for(home.state_dir) if _name(p).startswith(("openclaw-gatewa", "openclaw"))]


def _name(p: psutil.Process) -> str:
    try:
        return p.name()
    except psutil.Error:
        return ""


def assert_all_down(home: OpenClawHome) -> None:
    left = processes_for(home.state_dir)
    assert not left, f"still running: {describe(left)}"
    assert not port_is_open(home.port), f"port {home.port} still open"
    assert token_status(home.port, home.token) == 0


def _cmd(p: dict[str, Any] | None) -> str:
    return " ".join((p or {}).get("cmdline") or [])


def case_text(case_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in case_dir.rglob("*") if p.is_file())


# ---- (1) stop a running real gateway --------------------------------------------------------------

def test_contain_stops_the_real_gateway_and_snapshots_it_first(openclaw_home: OpenClawHome,
                                                                gateway: Gateway) -> None:
    home = openclaw_home
    gw_pid = gateway.gateway_pid
    tree = {p.pid: " ".join(p.cmdline()) for p in processes_for(home.state_dir)}
    assert gw_pid in tree and token_status(home.port, home.token) == 400
    case_dir = home.root / "case"

    rc, out, text = run_stop(home, case_dir)

    assert rc == 0, text
    s = step(out)
    assert s["status"] == "done", s
    assert s["details"]["pid"] == gw_pid and s["details"]["port"] == home.port
    assert_all_down(home)

    snap = json.loads((case_dir / "volatile" / "processes.json").read_text())
    procs = {p["pid"]: p for p in snap["tree"]["processes"]}
    # every process of the tree that lived through the stop was snapshotted (2026.9.6 also runs
    # short-lived children, a sqlite worker and an `npm` lookup, that may come and go between our
    # look and moltir's)
    # (the lookup shows as `npm root -g` or as `node /usr/bin/npm root -g`)
    long_lived = {pid for pid, cmd in tree.items()
                  if "sqlite-readonly" not in cmd
                  and "npm" not in {Path(a).name for a in cmd.split(" ")[:2]}}
    assert long_lived <= set(procs), (tree, sorted(procs))
    if home.release.current:
        assert any("spawn-broker/worker.js" in _cmd(p) for p in procs.values()), "the node workers too"
    gw = procs[gw_pid]
    assert gw["name"] == "openclaw-gateway"
    listening = {c["laddr"] for c in gw["connections"] if c["status"] == "LISTEN"}
    assert f"127.0.0.1:{home.port}" in listening
    assert "OPENCLAW_STATE_DIR" in gw["environ_names"]
    if not home.release.current:
        assert snap["tree"]["wrapper_pid"] == gateway.pid, "2026.1.29: the openclaw wrapper is recorded too"
        assert procs[gateway.pid]["name"] == "openclaw"

    rec = json.loads((case_dir / "restore.json").read_text())["gateway"]
    assert rec["mode"] == "foreground" and rec["pid"] == gw_pid
    assert rec["argv"] == [str(home.openclaw_bin), "gateway", "run"]
    assert rec["env"]["OPENCLAW_STATE_DIR"] == str(home.state_dir)
    assert home.token not in case_text(case_dir)


# ---- (2) a drain that hangs (telegram unreachable) ------------------------------------------------

def test_hanging_drain_is_forced_within_the_bound(openclaw_home: OpenClawHome) -> None:
    home = openclaw_home
    closed = home.telegram.url.rsplit(":", 1)[0] + ":9"   # discard port: nothing listens there
    text = home.config_path.read_text()
    assert home.telegram.url in text
    home.config_path.write_text(text.replace(home.telegram.url, closed))
    gw = Gateway(home).start(wait_telegram=False)
    try:
        # the drain hangs once the telegram accounts are in their failing network loop: wait until
        # every account's provider started and its command sync failed (2026.9.6 starts default, ops
        # and alerts; 2026.1.29 logs alerts and ops)
        accounts = ("default", "ops", "alerts") if home.release.current else ("ops", "alerts")

        def failing() -> bool:
            return (all(_log_count(home, f"[{a}] starting provider") for a in accounts)
                    and _log_count(home, "telegram setMyCommands failed") >= len(accounts))

        wait_until(failing, 120, what="telegram to fail against the closed port")
        gw_pid = gw.gateway_pid
        timeout_s = 3
        rc, out, text = run_stop(home, home.root / "case", timeout_s=timeout_s, settle_s=2)
        assert rc == 0, text
        s = step(out)
        assert s["status"] == "forced", (s, home.log_file.read_text(errors="replace")[-3000:])
        assert gw_pid in s["details"]["killed"]
        assert s["details"]["elapsed_s"] <= timeout_s + 7, "bounded: SIGKILL after timeout_s, never minutes"
        assert_all_down(home)
    finally:
        gw.stop()


def _log_count(home: OpenClawHome, needle: str) -> int:
    try:
        return home.log_file.read_text(errors="replace").count(needle)
    except FileNotFoundError:
        return 0


# ---- (3) a supervisor that respawns the gateway ---------------------------------------------------

SUPERVISOR = r'''
import subprocess, sys
binary, log = sys.argv[1], sys.argv[2]
while True:   # restart the gateway whenever it dies
    with open(log, "ab") as fh:
        subprocess.Popen([binary, "gateway", "run"], stdin=subprocess.DEVNULL, stdout=fh,
                         stderr=subprocess.STDOUT).wait()
'''


def test_respawning_supervisor_fails_verification_and_is_named(openclaw_home: OpenClawHome) -> None:
    home = openclaw_home
    script = home.root / "respawner.py"
    script.write_text(SUPERVISOR)
    sup = subprocess.Popen([sys.executable, str(script), str(home.openclaw_bin), str(home.root / "sup.log")],
                           env=home.env, cwd=home.home, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: token_status(home.port, home.token) == 400, 180, what="supervised gateway")
        rc, out, text = run_stop(home, home.root / "case", timeout_s=15)   # default settle_s (5 s)
        assert rc == 5, text
        s = step(out)
        assert s["status"] == "failed"
        assert f"pid {sup.pid}" in s["error"] and "respawner.py" in s["error"], s["error"]
        assert "came back" in s["error"]
    finally:
        os.killpg(sup.pid, signal.SIGKILL)
        sup.wait(timeout=10)
        kill_leftovers(home.state_dir)


# ---- (4) start brings it back; a broken config fails with the gateway's own words ----------------

def test_start_brings_the_same_gateway_back(openclaw_home: OpenClawHome, gateway: Gateway) -> None:
    home = openclaw_home
    case_dir = home.root / "case"
    old_pid = gateway.gateway_pid
    rc, out, text = run_stop(home, case_dir)
    assert rc == 0, text
    assert_all_down(home)

    rc, out, text = run_start(home, case_dir)
    assert rc == 0, text
    s = step(out)
    assert s["status"] == "done" and s["details"]["token_source"] == "config", s
    assert token_status(home.port, home.token) == 400
    assert token_status(home.port, "wrong-" + home.token) == 401
    procs = gateway_procs(home)
    gw = next(p for p in procs if _name(p).startswith("openclaw-gatewa"))
    assert gw.pid != old_pid
    env = gw.environ()
    assert env["OPENCLAW_STATE_DIR"] == str(home.state_dir) and "OPENCLAW_GATEWAY_TOKEN" not in env
    for p in procs:
        assert home.token not in " ".join(p.cmdline())
    assert os.getsid(s["details"]["pid"]) == s["details"]["pid"], "detached: its own session"
    log = home.state_dir / "logs" / "moltir-gateway-start.log"
    assert log.exists() and home.token not in log.read_text(errors="replace")

    # idempotent: a second start finds it healthy
    rc, out, text = run_start(home, home.root / "case-again")
    assert rc == 0 and step(out)["status"] == "already", text

    # and moltir can stop what it started (a detached process that is not its child)
    rc, out, text = run_stop(home, home.root / "case-2")
    assert rc == 0 and step(out)["status"] == "done", text
    assert_all_down(home)


def test_start_with_a_broken_config_quotes_the_gateway(openclaw_home: OpenClawHome, gateway: Gateway) -> None:
    home = openclaw_home
    case_dir = home.root / "case"
    rc, out, text = run_stop(home, case_dir)
    assert rc == 0, text
    cfg = home.config_path.read_text()
    assert 'bind: "loopback"' in cfg
    home.config_path.write_text(cfg.replace('bind: "loopback"', 'bind: "sideways"'))

    rc, out, text = run_start(home, case_dir, timeout_s=120)
    assert rc == 1, text
    s = step(out)
    assert s["status"] == "failed" and "exited with code" in s["error"], s
    expected = "Invalid --bind" if home.release.current else "gateway.bind: Invalid input"
    assert expected in s["error"], s["error"]
    assert_all_down(home)


# ---- (5) refusals: another user's gateway, two gateways for one state dir -------------------------

FAKE_GATEWAY = r'''
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(15, b"openclaw-gateway", 0, 0, 0)
open(sys.argv[1], "w").close()
while True:
    time.sleep(1)
'''


def _spawn_named_gateway(folder: Path, env: dict[str, str], *, preexec: Any = None,
                         python: str = sys.executable) -> subprocess.Popen[bytes]:
    """A process NAMED openclaw-gateway whose environment claims ``env``'s state dir."""
    script = folder / "fake_gateway.py"
    script.write_text(FAKE_GATEWAY)
    ready = folder / f"ready-{secrets.token_hex(3)}"
    os.chmod(folder, 0o777)  # the throwaway user must create its ready file here
    script.chmod(0o644)
    p = subprocess.Popen(["openclaw-gateway", str(script), str(ready)], executable=python, env=env,
                         stdin=subprocess.DEVNULL, preexec_fn=preexec, cwd=folder)
    try:
        wait_until(ready.exists, 30, what="named fake gateway")
    except BaseException:
        p.kill()
        p.wait(timeout=10)
        raise
    return p


def test_two_gateways_for_one_state_dir_signal_nothing(openclaw_home: OpenClawHome, gateway: Gateway) -> None:
    """A second process claiming the same state dir (a real second gateway cannot be started on one
    state dir: 2026.9.6 exits 78 on its SQLite lock, 2026.1.29 on its lock file; a stale copy left by
    a half-finished restart looks exactly like this)."""
    home = openclaw_home
    folder = Path(tempfile.mkdtemp(prefix="moltir-t4-"))
    second: subprocess.Popen[bytes] | None = None
    try:
        second = _spawn_named_gateway(folder, home.env)
        rc, out, text = run_stop(home, home.root / "case")
        assert rc == 3, text
        s = step(out)
        assert "2 gateways" in s["error"] and str(second.pid) in s["error"]
        assert str(gateway.gateway_pid) in s["error"]
        assert second.poll() is None and gateway.running
        assert token_status(home.port, home.token) == 400, "the real gateway still serves: nothing signalled"
        assert not (home.root / "case" / "restore.json").exists()
    finally:
        if second is not None:
            second.kill()
            second.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_user() -> Iterator[pwd.struct_passwd]:
    name = f"mt4{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                    reason="needs root and useradd to run a process as another user "
                           "(tests/unit/test_gateway_action.py fakes the uid at the psutil level)")
def test_gateway_of_another_user_is_refused(openclaw_home: OpenClawHome) -> None:
    home = openclaw_home
    folder = Path(tempfile.mkdtemp(prefix="moltir-t4-"))
    with throwaway_user() as user:
        def drop() -> None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

        # the venv's interpreter may live under /root (0700): use the system one for the other user
        python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
        other: subprocess.Popen[bytes] | None = None
        try:
            other = _spawn_named_gateway(folder, home.env, preexec=drop, python=python)
            assert psutil.Process(other.pid).uids().real == user.pw_uid
            rc, out, text = run_stop(home, home.root / "case")
            assert rc == 3, text
            s = step(out)
            assert f"runs as {user.pw_name}" in s["error"] and str(other.pid) in s["error"], s["error"]
            assert other.poll() is None, "nothing signalled"
            assert not (home.root / "case" / "restore.json").exists()
        finally:
            if other is not None:
                other.kill()
                other.wait(timeout=10)
            shutil.rmtree(folder, ignore_errors=True)


# ---- (8) a gateway started with --port N: brought back there, audited there; a taken port ---------

RESTORE_TAIL = """// start it again, then the deep audit with the gateway expected up
{ name: "restore", steps: [
  { id: "start-gateway", action: "gateway.start", with: { timeout_s: 120 } },
  { id: "final-audit", action: "audit.run", with: { deep: true, expect_gateway: "up", fail_on: "never" } },
] }
"""


def test_gateway_on_a_cli_port_comes_back_there_audited_there_and_a_taken_port_is_named(
        openclaw_home: OpenClawHome) -> None:
    from tests.harness.net import free_port

    home = openclaw_home
    port = free_port()
    assert port != home.port
    log = (home.root / "cli-port-gateway.log").open("ab")
    # how a user runs it on another port: 2026.1.29 takes --port on `gateway` only (`gateway run --port N`
    # listens on the config's port there: commander hands the option to the parent command)
    run = ["gateway", "run"] if home.release.current else ["gateway"]
    gw = subprocess.Popen([str(home.openclaw_bin), *run, "--port", str(port)], env=home.env,
                          cwd=home.home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                          start_new_session=True)
    squat: Any = None
    try:
        wait_until(lambda: token_status(port, home.token) == 400, 120, what=f"gateway on --port {port}")
        case_dir = home.root / "case"
        rc, out, text = run_stop(home, case_dir)
        assert rc == 0, text
        rec = json.loads((case_dir / "restore.json").read_text())["gateway"]
        # recorded as `gateway --port N` (the parent's default action is run): listens on N on every release
        assert rec["argv"] == [str(home.openclaw_bin), "gateway", "--port", str(port)], rec

        # something else took the port meanwhile: named, and no gateway launched onto it
        import socket

        squat = socket.socket()
        squat.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squat.bind(("127.0.0.1", port))
        squat.listen(8)
        rb = home.root / "restore-tail.json5"
        rb.write_text(RESTORE_TAIL)
        rc, out, text = moltir(home, "restore", "--runbook", str(rb), "--case-dir", str(case_dir), "--yes")
        assert rc == 1, text
        error = out["steps"][0]["error"]
        assert f"port {port} is already in use by pid {os.getpid()}" in error, error
        assert not gateway_procs(home), "nothing launched onto a taken port"
        squat.close()
        squat = None

        rc, out, text = moltir(home, "restore", "--runbook", str(rb), "--case-dir", str(case_dir), "--yes")
        assert rc == 0, text
        assert token_status(port, home.token) == 400 and not port_is_open(home.port)
        audit = next(s for s in out["steps"] if s["id"] == "final-audit")["details"]
        assert audit["probe"]["state"] == "authenticated", audit
        assert audit["probe"]["url"].endswith(f":{port}")
    finally:
        if squat is not None:
            squat.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(gw.pid, signal.SIGKILL)
        gw.wait(timeout=30)
        log.close()
        kill_leftovers(home.state_dir)
