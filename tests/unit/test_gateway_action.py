"""gateway.stop / gateway.start driven through a StepContext against fake gateway processes.

The fakes are real processes named ``openclaw-gateway`` (see fakegw.py); the service-manager
branch uses the recording systemctl stand-in (fakemgr.py). The real-gateway tests live in
tests/integration/test_gateway_real.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakemgr
import psutil
import pytest
from fakegw import FakeGateway, fake_config, free_port, port_is_open, shell_command, spawn, wait_until

from moltir.actions.base import RunOptions, StepContext, StepResult
from moltir.actions.gateway import GatewayStart, GatewayStop, error_lines
from moltir.engine.case import Case
from moltir.engine.journal import Journal
from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, EXIT_USAGE, EXIT_VERIFY, MoltirError
from moltir.openclaw import Install, discover

TOKEN = "gw-token-" + "a1b2c3d4" * 4


@pytest.fixture
def fakes() -> Iterator[list[FakeGateway]]:
    started: list[FakeGateway] = []
    yield started
    for f in started:
        f.cleanup()


@pytest.fixture
def reap() -> Iterator[list[int]]:
    """pids started by gateway.start (or a supervisor) that the test must not leave behind."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            p = psutil.Process(pid)
            p.suspend()   # a supervisor must not respawn a child between the kills below
            children = p.children(recursive=True)
            p.kill()
            for c in children:
                c.kill()
        except psutil.Error:
            pass


class World:
    """An install (state dir, config with a token, a fake ``openclaw`` binary on PATH) and a case."""

    def __init__(self, tmp: Path, *, port: int | None = None, extra_path: str = "") -> None:
        self.tmp = tmp
        self.port = port or free_port()
        home = tmp / "home"
        self.state = home / ".openclaw"
        self.state.mkdir(parents=True)
        self.config = self.state / "openclaw.json"
        self.config.write_text(json.dumps({"gateway": {"mode": "local", "port": self.port,
                                                       "auth": {"mode": "token", "token": TOKEN}}}))
        bindir = tmp / "bin"
        bindir.mkdir()
        fake_bin = bindir / "openclaw"
        fake_bin.write_text("#!/bin/sh\necho 'fake openclaw: not used by these tests' >&2\nexit 64\n")
        fake_bin.chmod(0o755)
        (tmp / "tmpdir").mkdir()
        path = f"{extra_path}:{bindir}:/usr/bin:/bin" if extra_path else f"{bindir}:/usr/bin:/bin"
        self.env = {"HOME": str(home), "OPENCLAW_STATE_DIR": str(self.state),
                    "OPENCLAW_CONFIG_PATH": str(self.config), "TMPDIR": str(tmp / "tmpdir"), "PATH": path}
        self.install: Install = discover(env=self.env)
        self.case = Case.create(tmp / "case", kind="contain", install_info=self.install.describe(), reason="test")
        self.journal = Journal(self.case.journal_path)
        self.shared: dict[str, Any] = {}

    def lock_dir(self) -> Path:
        return Path(os.path.realpath(self.state)) / "tmp" / f"openclaw-{os.getuid()}"

    def ctx(self, action: type[GatewayStop] | type[GatewayStart], *, timeout_s: float | None = None,
            **params: Any) -> StepContext:
        merged = {k: p.default for k, p in action.params.items()}
        merged.update(params)
        return StepContext(install=self.install, case=self.case, journal=self.journal, params=merged,
                           step_id="step", runbook="test", timeout_s=timeout_s, options=RunOptions(),
                           shared=self.shared)

    def gateway(self, fakes: list[FakeGateway], **kw: Any) -> FakeGateway:
        env = {**self.env, "OPENCLAW_GATEWAY_TOKEN": TOKEN, "SOME_API_KEY": "sk-should-not-leak-123456"}
        kw.setdefault("port", self.port)
        fake = spawn(self.tmp, env, lock_dir=self.lock_dir(), config_path=str(self.config), **kw)
        fakes.append(fake)
        return fake.wait_ready()

    def case_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.case.dir.rglob("*") if p.is_file())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stop(w: World, **params: Any) -> StepResult:
    params.setdefault("settle_s", 0.5)
    action = GatewayStop()
    ctx = w.ctx(GatewayStop, **params)
    result = action.apply(ctx)
    action.verify(ctx, result)
    return result


# ---- gateway.stop ---------------------------------------------------------------------------

def test_stop_snapshots_records_and_stops_cleanly(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    w = World(tmp_path)
    fake = w.gateway(fakes, worker="polite")
    worker = fake.worker_pid()
    plan = GatewayStop().plan(w.ctx(GatewayStop))
    assert not plan.already_done and str(fake.pid) in plan.summary
    result = stop(w)
    assert result.status == "done"
    assert result.details["pid"] == fake.pid and result.details["port"] == w.port
    assert gone(fake.pid) and worker is not None and gone(worker) and not port_is_open(w.port)

    snap = json.loads((w.case.dir / "volatile" / "processes.json").read_text())
    procs = {p["pid"]: p for p in snap["tree"]["processes"]}
    assert procs[fake.pid]["name"] == "openclaw-gateway"
    assert {"status": "LISTEN", "laddr": f"127.0.0.1:{w.port}"}.items() <= next(
        c for c in procs[fake.pid]["connections"] if c["status"] == "LISTEN").items()
    assert worker in procs
    assert "OPENCLAW_GATEWAY_TOKEN" in procs[fake.pid]["environ_names"]

    rec = w.case.restore_section("gateway")
    assert rec["was_running"] and rec["mode"] == "foreground" and rec["pid"] == fake.pid
    assert rec["argv"] == [str(tmp_path / "bin" / "openclaw"), "gateway", "run"]
    assert rec["env"]["OPENCLAW_STATE_DIR"] == str(w.state) and rec["env"]["HOME"] == w.env["HOME"]
    assert "OPENCLAW_GATEWAY_TOKEN" not in rec["env"] and "OPENCLAW_GATEWAY_TOKEN" in rec["env_names"]
    text = w.case_text()
    assert TOKEN not in text and "sk-should-not-leak-123456" not in text


def test_stop_records_port_flag_when_the_gateway_ran_on_another_port(tmp_path: Path,
                                                                       fakes: list[FakeGateway]) -> None:
    w = World(tmp_path)
    other = free_port()
    w.gateway(fakes, port=other)
    stop(w)
    assert w.case.restore_section("gateway")["argv"][-2:] == ["--port", str(other)]


def test_stop_records_gateway_port_flag_on_the_parent_command(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    # 2026.1.x: `gateway run --port N` listens on the config's port (commander gives --port to `gateway`);
    # `gateway --port N` works on every release, so that is what is recorded
    w = World(tmp_path)
    other = free_port()
    w.gateway(fakes, port=other)
    stop(w)
    argv = w.case.restore_section("gateway")["argv"]
    assert argv[-3:] == ["gateway", "--port", str(other)] and "run" not in argv


def test_stop_hanging_drain_is_forced_within_the_bound(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    w = World(tmp_path)
    fake = w.gateway(fakes, ignore_term=True, worker="stubborn")
    result = stop(w, timeout_s=1)
    assert result.status == "forced" and "SIGKILL" in result.summary
    assert fake.pid in result.details["killed"]
    assert gone(fake.pid) and not port_is_open(w.port)


def test_step_timeout_wins_over_with_timeout(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    w = World(tmp_path)
    w.gateway(fakes, ignore_term=True)
    action = GatewayStop()
    ctx = w.ctx(GatewayStop, timeout_s=600, settle_s=0.5)
    ctx.timeout_s = 0.5
    result = action.apply(ctx)
    assert result.status == "forced" and result.details["timeout_s"] == 0.5


def test_stop_when_nothing_runs_is_already_and_records_it(tmp_path: Path) -> None:
    w = World(tmp_path)
    assert GatewayStop().plan(w.ctx(GatewayStop)).already_done
    result = stop(w)
    assert result.status == "already"
    assert w.case.restore_section("gateway")["was_running"] is False
    assert not (w.case.dir / "volatile").exists()


def test_restore_record_is_written_once(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    """A resumed run that finds nothing keeps what the first run saw."""
    w = World(tmp_path)
    fake = w.gateway(fakes)
    stop(w)
    assert stop(w).status == "already"
    assert w.case.restore_section("gateway")["pid"] == fake.pid


def test_two_gateways_for_one_state_dir_signal_nothing(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    w = World(tmp_path)
    a = w.gateway(fakes)
    b = w.gateway(fakes, port=free_port())
    with pytest.raises(MoltirError) as err:
        stop(w)
    assert err.value.exit_code == EXIT_ENV
    assert "2 gateways" in err.value.message and str(a.pid) in err.value.message and str(b.pid) in err.value.message
    assert not gone(a.pid) and not gone(b.pid)
    assert not (w.case.dir / "restore.json").exists() and not (w.case.dir / "volatile").exists()
    with pytest.raises(MoltirError):   # the dry-run plan says the same
        GatewayStop().plan(w.ctx(GatewayStop))


def test_gateway_of_another_user_is_refused(tmp_path: Path, fakes: list[FakeGateway],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """psutil-level fake: the gateway's real uid differs from ours (the real-user case is in the
    integration test, which creates a throwaway user when run as root)."""
    w = World(tmp_path)
    fake = w.gateway(fakes)
    from psutil import _pslinux

    real_uids = _pslinux.Process.uids

    def uids(self: Any) -> Any:
        u = real_uids(self)
        return type(u)(54321, 54321, 54321) if self.pid == fake.pid else u

    monkeypatch.setattr(_pslinux.Process, "uids", uids)
    with pytest.raises(MoltirError) as err:
        stop(w)
    assert err.value.exit_code == EXIT_ENV and str(fake.pid) in err.value.message
    assert "sudo -u" in err.value.hint
    assert not gone(fake.pid)
    assert not (w.case.dir / "restore.json").exists()


SUPERVISOR = r'''
import json, subprocess, sys
argv, marker = json.loads(sys.argv[1]), sys.argv[2]
n = 0
while True:
    p = subprocess.Popen(argv)
    n += 1
    with open(marker, "w") as fh:
        fh.write(str(n))
    p.wait()
'''


def _verify_fully(action: GatewayStop, ctx: Any, result: Any) -> None:
    """verify() checks once and returns the settle watch: run it too, as the engine does (the
    respawn may come after the first check on a busy machine)."""
    deferred = action.verify(ctx, result)
    if deferred is not None:
        deferred.check()


def test_respawning_supervisor_is_caught_and_named(tmp_path: Path, reap: list[int]) -> None:
    w = World(tmp_path)
    cfg, ready = fake_config(tmp_path, port=w.port)
    script = tmp_path / "respawner.py"
    script.write_text(SUPERVISOR)
    marker = tmp_path / "respawns"
    sup = subprocess.Popen([sys.executable, str(script), json.dumps(shell_command(tmp_path, cfg)), str(marker)],
                           env=w.env, stdin=subprocess.DEVNULL)
    reap.append(sup.pid)
    wait_until(ready.exists, 20, what="fake gateway under the supervisor")
    action = GatewayStop()
    ctx = w.ctx(GatewayStop, settle_s=10)
    result = action.apply(ctx)
    assert result.status == "done"
    with pytest.raises(MoltirError) as err:
        _verify_fully(action, ctx, result)
    assert err.value.exit_code == EXIT_VERIFY
    assert f"pid {sup.pid}" in err.value.message and "respawner.py" in err.value.message
    assert "came back" in err.value.message


def test_respawn_still_titled_openclaw_is_caught_through_the_launcher(tmp_path: Path, reap: list[int]) -> None:
    """2026.9.x is titled plain ``openclaw`` for seconds while it starts: only its parent gives it away."""
    w = World(tmp_path)
    cfg, ready = fake_config(tmp_path, port=w.port)
    script = tmp_path / "respawner.py"
    script.write_text(SUPERVISOR.replace("p = subprocess.Popen(argv)",
                                         "p = subprocess.Popen(argv if n == 0 else later)"))
    later = shell_command(tmp_path, {**cfg, "port": None, "ready": str(tmp_path / "later.ready")}, name="openclaw")
    sup = subprocess.Popen([sys.executable, "-c", f"later = {later!r}\n" + script.read_text(),
                            json.dumps(shell_command(tmp_path, cfg)), str(tmp_path / "respawns")],
                           env=w.env, stdin=subprocess.DEVNULL)
    reap.append(sup.pid)
    wait_until(ready.exists, 20, what="fake gateway under the supervisor")
    action = GatewayStop()
    ctx = w.ctx(GatewayStop, settle_s=10)
    result = action.apply(ctx)
    assert result.details["launcher"]["pid"] == sup.pid
    with pytest.raises(MoltirError) as err:
        _verify_fully(action, ctx, result)
    assert err.value.exit_code == EXIT_VERIFY and f"started by pid {sup.pid}" in err.value.message
    assert "still starting" in err.value.message


def test_systemd_supervised_gateway_is_stopped_through_the_manager(tmp_path: Path,
                                                                    fakes: list[FakeGateway]) -> None:
    bindir = tmp_path / "mgrbin"
    state_file, log = tmp_path / "mgr.json", tmp_path / "mgr.log"
    extra = fakemgr.install(bindir, state_file, log, {"units": {}})
    w = World(tmp_path, extra_path=str(bindir))
    w.env.update(extra)
    w.install = discover(env=w.env)
    fake = w.gateway(fakes)
    unit = "openclaw-gateway.service"
    st = fakemgr.read_state(state_file)
    st["units"][unit] = {"active": "active", "file": "enabled", "pid": fake.pid}
    state_file.write_text(json.dumps(st))

    result = stop(w)
    assert result.status == "done" and result.details["mode"] == "systemd"
    assert fakemgr.mutating(log) == [
        ["systemctl", "--user", "disable", unit],
        ["systemctl", "--user", "mask", "--runtime", unit],
        ["systemctl", "--user", "stop", "--no-block", unit],
    ]
    assert gone(fake.pid)
    rec = w.case.restore_section("gateway")
    assert rec["mode"] == "systemd" and rec["service"]["name"] == unit
    assert rec["service"]["was_enabled"] is True and rec["service"]["masked"] and rec["service"]["disabled"]
    svc = json.loads((w.case.dir / "volatile" / "service.json").read_text())
    assert svc["supervisor"] == unit and svc["services"][0]["main_pid"] == fake.pid

    # start undoes it through the manager; the stand-in's start launches nothing, so health fails
    n = len(fakemgr.mutating(log))
    with pytest.raises(MoltirError) as err:
        GatewayStart().apply(w.ctx(GatewayStart, timeout_s=1))
    assert fakemgr.mutating(log)[n:] == [
        ["systemctl", "--user", "unmask", "--runtime", unit],
        ["systemctl", "--user", "enable", unit],
        ["systemctl", "--user", "start", "--no-block", unit],
    ]
    assert err.value.exit_code == EXIT_STEP_FAILED and "not healthy" in err.value.message


def test_service_ignore_signals_the_process_directly(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    bindir = tmp_path / "mgrbin"
    extra = fakemgr.install(bindir, tmp_path / "mgr.json", tmp_path / "mgr.log", {"units": {}})
    w = World(tmp_path, extra_path=str(bindir))
    w.env.update(extra)
    w.install = discover(env=w.env)
    fake = w.gateway(fakes)
    st = {"units": {"openclaw-gateway.service": {"active": "active", "file": "enabled", "pid": fake.pid}}}
    (tmp_path / "mgr.json").write_text(json.dumps(st))
    result = stop(w, service="ignore")
    assert result.details["mode"] == "foreground" and gone(fake.pid)
    assert fakemgr.calls(tmp_path / "mgr.log") == []


# ---- gateway.start --------------------------------------------------------------------------

def test_start_launches_detached_and_waits_for_the_token(tmp_path: Path, fakes: list[FakeGateway],
                                                         reap: list[int]) -> None:
    w = World(tmp_path)
    w.gateway(fakes, http_token=TOKEN)
    stop(w)
    cfg, _ready = fake_config(tmp_path, port=w.port, http_token=TOKEN)
    action = GatewayStart()
    ctx = w.ctx(GatewayStart, command=shell_command(tmp_path, cfg), timeout_s=20)
    assert "launch" in action.plan(ctx).summary
    result = action.apply(ctx)
    reap.append(result.details["pid"])
    assert result.status == "done" and result.details["token_source"] == "config"
    action.verify(ctx, result)
    p = psutil.Process(result.details["pid"])
    assert p.name() == "openclaw-gateway"
    assert os.getsid(p.pid) == p.pid  # its own session: detached from moltir
    env = p.environ()
    assert env["OPENCLAW_STATE_DIR"] == str(w.state) and "OPENCLAW_GATEWAY_TOKEN" not in env
    assert TOKEN not in " ".join(p.cmdline())
    log = w.state / "logs" / "moltir-gateway-start.log"
    assert "=== moltir gateway.start" in log.read_text()
    # idempotent: running and healthy -> already
    again = GatewayStart().apply(w.ctx(GatewayStart, timeout_s=5))
    assert again.status == "already"


def test_start_uses_the_token_moltir_holds(tmp_path: Path, fakes: list[FakeGateway], reap: list[int]) -> None:
    w = World(tmp_path)
    new = "rotated-" + "9f" * 16
    w.shared["gateway_token"] = new
    cfg, _ = fake_config(tmp_path, port=w.port, http_token=new)
    result = GatewayStart().apply(w.ctx(GatewayStart, command=shell_command(tmp_path, cfg), timeout_s=20))
    reap.append(result.details["pid"])
    assert result.details["token_source"] == "run"


def test_start_failure_quotes_the_gateways_own_error(tmp_path: Path) -> None:
    w = World(tmp_path)
    cmd = ["bash", "-c", "echo 'Config invalid'; echo '  - gateway.bind: Invalid input' >&2; "
                         "echo 'Run: openclaw doctor --fix'; exit 1"]
    with pytest.raises(MoltirError) as err:
        GatewayStart().apply(w.ctx(GatewayStart, command=cmd, timeout_s=20))
    assert err.value.exit_code == EXIT_STEP_FAILED
    assert "exited with code 1" in err.value.message and "gateway.bind: Invalid input" in err.value.message
    assert "moltir-gateway-start.log" in err.value.hint


def test_start_refuses_a_port_another_process_holds_naming_it(tmp_path: Path) -> None:
    # a squatter that never accepts: its backlog fills, so connects time out; the socket table names it
    import socket

    w = World(tmp_path)
    squat = socket.socket()
    squat.bind(("127.0.0.1", w.port))
    squat.listen(0)
    marker = tmp_path / "launched"
    try:
        with pytest.raises(MoltirError) as err:
            GatewayStart().apply(w.ctx(GatewayStart, command=["touch", str(marker)], timeout_s=20))
    finally:
        squat.close()
    assert err.value.exit_code == EXIT_STEP_FAILED
    assert err.value.message.startswith(f"port {w.port} is already in use by pid {os.getpid()} ")
    assert "was not started" in err.value.message and "\n" not in err.value.message
    assert not marker.exists(), "nothing is launched onto a taken port"


def test_start_that_never_gets_healthy_times_out_clearly(tmp_path: Path, reap: list[int]) -> None:
    w = World(tmp_path)
    cfg, _ = fake_config(tmp_path, port=w.port, http_token="some-other-token-xyz")
    with pytest.raises(MoltirError) as err:
        GatewayStart().apply(w.ctx(GatewayStart, command=shell_command(tmp_path, cfg), timeout_s=2))
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == "openclaw-gateway":
            try:
                if p.environ().get("OPENCLAW_STATE_DIR") == str(w.state):
                    reap.append(p.pid)
            except psutil.Error:
                pass
    assert "not healthy after 2 s" in err.value.message and "refuses the token" in err.value.message


@pytest.mark.parametrize("command", [["openclaw", "gateway", "run", "--token", "x"],
                                     ["openclaw", "gateway", "run", "--password=x"], [], ["ok", ""], "openclaw"])
def test_start_rejects_bad_commands_before_launching(tmp_path: Path, command: Any) -> None:
    w = World(tmp_path)
    with pytest.raises(MoltirError) as err:
        GatewayStart().apply(w.ctx(GatewayStart, command=command))
    assert err.value.exit_code == EXIT_USAGE
    assert not (w.state / "logs").exists()


def test_start_leaves_a_gateway_that_was_not_running_stopped(tmp_path: Path) -> None:
    w = World(tmp_path)
    stop(w)   # nothing ran: recorded as such
    result = GatewayStart().apply(w.ctx(GatewayStart))
    assert result.status == "skipped"


def test_health_token_prefers_the_run_then_config_then_keyring(tmp_path: Path) -> None:
    import keyring
    from keyring_fakes import MemKeyring

    from moltir import keystore
    from moltir.actions.gateway import health_token

    w = World(tmp_path)
    ctx = w.ctx(GatewayStart)
    assert health_token(ctx) == (TOKEN, "config")
    w.shared["gateway_token"] = "from-this-run-123456"
    assert health_token(ctx) == ("from-this-run-123456", "run")
    w.shared.clear()
    w.config.write_text(json.dumps({"gateway": {"port": w.port, "auth": {"mode": "token", "token": {
        "source": "exec", "provider": "moltir", "id": "gateway-token"}}}}))
    before = keyring.get_keyring()
    kr = MemKeyring()
    kr.set_password(keystore.SERVICE, keystore.entry_name(w.install), "from-the-keyring-123456")
    keyring.set_keyring(kr)
    try:
        # the entry the ref names is where the gateway reads: not this install's default entry
        assert health_token(ctx) == (None, "none")
        kr.set_password(keystore.SERVICE, "gateway-token", "named-by-the-ref-123456")
        assert health_token(ctx) == ("named-by-the-ref-123456", "keyring")
        w.config.write_text(json.dumps({"gateway": {"port": w.port, "auth": {
            "mode": "token", "token": keystore.token_ref(w.install)}}}))
        assert health_token(ctx) == ("from-the-keyring-123456", "keyring")
        kr.entries.clear()
        assert health_token(ctx) == (None, "none")
    finally:
        keyring.set_keyring(before)


def test_error_lines_pick_the_gateways_complaint() -> None:
    old = ("◇  Config ────╮\n│  Config invalid; doctor will run with best-effort config.  │\n├────╯\n"
           "Config invalid\nFile: ~/.openclaw/openclaw.json\nProblem:\n  - gateway.bind: Invalid input\n\n"
           "Run: openclaw doctor --fix\n")
    assert error_lines(old)[-1] == "- gateway.bind: Invalid input"
    new = ("\x1b[36m2026-11-25T00:33:42.910+00:00 [gateway] loading configuration…\x1b[0m\n"
           '2026-11-25T00:33:43.128+00:00 Invalid --bind. Use "loopback", "lan".\n')
    assert error_lines(new) == ['2026-11-25T00:33:43.128+00:00 Invalid --bind. Use "loopback", "lan".']
    assert error_lines("") == []
