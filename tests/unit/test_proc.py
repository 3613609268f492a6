"""moltir.openclaw.processes against real (fake-gateway) processes: find, pid-reuse checks, snapshot, terminate."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from fakegw import FakeGateway, free_port, port_is_open, spawn, wait_until

from moltir.openclaw import Install, discover
from moltir.openclaw import processes as proc

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")


@pytest.fixture
def fakes() -> Iterator[list[FakeGateway]]:
    started: list[FakeGateway] = []
    yield started
    for f in started:
        f.cleanup()


def make_install(root: Path, *, port: int) -> Install:
    home = root / "home"
    state = home / ".openclaw"
    state.mkdir(parents=True, exist_ok=True)
    (state / "openclaw.json").write_text(json.dumps({"gateway": {"port": port, "mode": "local"}}))
    (root / "tmp").mkdir(exist_ok=True)
    env = {"HOME": str(home), "OPENCLAW_STATE_DIR": str(state),
           "OPENCLAW_CONFIG_PATH": str(state / "openclaw.json"), "TMPDIR": str(root / "tmp"), "PATH": ""}
    return discover(env=env)


def gw_env(inst: Install, **extra: str) -> dict[str, str]:
    env = {"HOME": str(inst.home), "OPENCLAW_STATE_DIR": str(inst.state_dir),
           "OPENCLAW_CONFIG_PATH": str(inst.config_path), "TMPDIR": inst.env["TMPDIR"],
           "PATH": "/usr/bin:/bin"}
    env.update(extra)
    return env


def state_lock_dir(inst: Install) -> Path:
    return Path(os.path.realpath(inst.state_dir)) / "tmp" / f"openclaw-{os.getuid()}"


# ---- pure helpers ---------------------------------------------------------------------------

def test_is_gateway_argv_accepts_run_and_rejects_clients() -> None:
    assert proc.is_gateway_argv(["node", "/x/node_modules/.bin/openclaw", "gateway", "run"])
    assert proc.is_gateway_argv(["openclaw", "gateway"])
    assert proc.is_gateway_argv(["node", "/x/openclaw/dist/index.js", "gateway", "--port", "1"])
    assert not proc.is_gateway_argv(["node", "/x/.bin/openclaw", "gateway", "status", "--json"])
    assert not proc.is_gateway_argv(["node", "/x/.bin/openclaw", "gateway", "stop", "--force"])
    assert not proc.is_gateway_argv(["python3", "gateway", "run"])
    assert not proc.is_gateway_argv(["gateway"])


def test_scrub_argv_hides_credential_values_and_trailing_blanks() -> None:
    argv = ["openclaw", "gateway", "run", "--token", "s3cr3t-value", "--password=hunter22", "--port", "1", "", ""]
    out = proc.scrub_argv(argv)
    assert out == ["openclaw", "gateway", "run", "--token", "<redacted>", "--password=<redacted>", "--port", "1"]
    assert "s3cr3t-value" not in json.dumps(out)


def test_read_lock_accepts_padding_and_rejects_garbage(tmp_path: Path) -> None:
    good = tmp_path / "gateway.abc.lock"
    good.write_text(json.dumps({"pid": 12, "createdAt": "2026-11-24T23:53:49.347Z", "configPath": "/c",
                                "port": 28789, "startTime": 99}) + "\t" * 40 + "\n")
    lock = proc.read_lock(good)
    assert lock is not None
    assert (lock.pid, lock.port, lock.config_path, lock.start_ticks) == (12, 28789, "/c", 99)
    assert lock.created == dt.datetime(2026, 11, 24, 23, 53, 49, 347000, tzinfo=dt.UTC).timestamp()
    bad = tmp_path / "gateway.bad.lock"
    bad.write_text("{not json")
    assert proc.read_lock(bad) is None
    bad.write_text("[1, 2]")
    assert proc.read_lock(bad) is None


# ---- finding ------------------------------------------------------------------------------------

def test_finds_gateway_by_lock_with_port_and_start_ticks(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    port = free_port()
    inst = make_install(tmp_path, port=port)
    fake = spawn(tmp_path, gw_env(inst), port=port, lock_dir=state_lock_dir(inst),
                 config_path=str(inst.config_path))
    fakes.append(fake)
    fake.wait_ready()
    found = proc.find_gateways(inst)
    assert [g.pid for g in found] == [fake.pid]
    gw = found[0]
    assert gw.source == "lock" and gw.name == "openclaw-gateway"
    assert gw.port == port and port in gw.listen_ports
    assert gw.uid == os.getuid() and gw.wrapper_pid is None
    assert gw.state_dir == os.path.realpath(inst.state_dir)
    assert gw.process().pid == fake.pid


def test_finds_gateway_by_environment_through_a_symlinked_state_dir(tmp_path: Path,
                                                                       fakes: list[FakeGateway]) -> None:
    inst = make_install(tmp_path, port=free_port())
    link = tmp_path / "link-to-state"
    link.symlink_to(inst.state_dir)
    fake = spawn(tmp_path, gw_env(inst, OPENCLAW_STATE_DIR=str(link),
                                  OPENCLAW_CONFIG_PATH=str(link / "openclaw.json")))
    fakes.append(fake)
    fake.wait_ready()
    found = proc.find_gateways(inst)
    assert [(g.pid, g.source, g.matched_by) for g in found] == [(fake.pid, "scan", "environ")]


def test_ignores_gateways_of_other_installs(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    mine = make_install(tmp_path / "a", port=free_port())
    other = make_install(tmp_path / "b", port=free_port())
    fake = spawn(tmp_path, gw_env(other), lock_dir=state_lock_dir(other), config_path=str(other.config_path))
    fakes.append(fake)
    fake.wait_ready()
    assert proc.find_gateways(mine) == []
    assert [g.pid for g in proc.find_gateways(other)] == [fake.pid]


def test_lock_naming_a_reused_pid_is_ignored(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    """A stale lock whose pid now belongs to a younger gateway-named process (of ANOTHER install)."""
    inst = make_install(tmp_path / "a", port=free_port())
    other = make_install(tmp_path / "b", port=free_port())
    fake = spawn(tmp_path, gw_env(other))
    fakes.append(fake)
    fake.wait_ready()
    lock_dir = state_lock_dir(inst)
    lock_dir.mkdir(parents=True)
    # 1) start ticks recorded in the lock differ from the live process's
    (lock_dir / "gateway.state.lock").write_text(json.dumps(
        {"pid": fake.pid, "createdAt": dt.datetime.now(dt.UTC).isoformat(), "configPath": str(inst.config_path),
         "startTime": 1}))
    assert proc.find_gateways(inst) == []
    # 2) no start ticks: the lock is older than the process that now has the pid
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    (lock_dir / "gateway.state.lock").write_text(json.dumps(
        {"pid": fake.pid, "createdAt": old, "configPath": str(inst.config_path)}))
    lock = proc.install_locks(inst)[0]
    assert proc.lock_owner(lock) is None
    assert proc.find_gateways(inst) == []


def test_lock_naming_a_non_gateway_process_is_ignored(tmp_path: Path) -> None:
    inst = make_install(tmp_path, port=free_port())
    lock_dir = state_lock_dir(inst)
    lock_dir.mkdir(parents=True)
    (lock_dir / "gateway.state.lock").write_text(json.dumps(
        {"pid": os.getpid(), "createdAt": dt.datetime.now(dt.UTC).isoformat(),
         "configPath": str(inst.config_path)}))
    assert proc.find_gateways(inst) == []


def test_old_layout_lock_in_tmpdir_matched_by_config_path(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    """2026.1.29: $TMPDIR/openclaw-<uid>/gateway.<sha1>.lock, shared by installs: configPath decides."""
    inst = make_install(tmp_path, port=free_port())
    lock_dir = Path(inst.env["TMPDIR"]) / f"openclaw-{os.getuid()}"
    # the process's env points elsewhere, so only the lock can tie it to this install
    decoy = make_install(tmp_path / "decoy", port=free_port())
    fake = spawn(tmp_path, gw_env(decoy), lock_dir=lock_dir, lock_name="gateway.60f0fe81.lock",
                 config_path=str(inst.config_path))
    fakes.append(fake)
    fake.wait_ready()
    found = proc.find_gateways(inst)
    assert [(g.pid, g.source, g.lock_path) for g in found] == [
        (fake.pid, "lock", str(lock_dir / "gateway.60f0fe81.lock"))]
    # a lock for another config in the same shared folder is not ours
    (lock_dir / "gateway.60f0fe81.lock").write_text(json.dumps(
        {"pid": fake.pid, "createdAt": dt.datetime.now(dt.UTC).isoformat(), "configPath": "/elsewhere.json"}))
    assert proc.find_gateways(inst) == []


def test_wrapper_is_reported_as_wrapper_of_its_gateway(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    inst = make_install(tmp_path, port=free_port())
    fake = spawn(tmp_path, gw_env(inst), wrapper=True)
    fakes.append(fake)
    fake.wait_ready()
    found = proc.find_gateways(inst)
    assert [(g.pid, g.wrapper_pid) for g in found] == [(fake.pid, fake.launcher_pid)]


def test_unreadable_environment_matches_by_port(tmp_path: Path, fakes: list[FakeGateway],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user's gateway as seen without privileges: environ() is AccessDenied."""
    port = free_port()
    inst = make_install(tmp_path, port=port)
    fake = spawn(tmp_path, gw_env(inst), port=port)
    fakes.append(fake)
    fake.wait_ready()
    real_environ = psutil.Process.environ

    def denied(self: psutil.Process) -> dict[str, str]:
        if self.pid == fake.pid:
            raise psutil.AccessDenied(self.pid)
        return real_environ(self)

    monkeypatch.setattr(psutil.Process, "environ", denied)
    found = proc.find_gateways(inst)
    assert [(g.pid, g.matched_by, g.environ_readable) for g in found] == [(fake.pid, "port", False)]


def test_zombie_and_dead_gateways_are_not_found(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    inst = make_install(tmp_path, port=free_port())
    fake = spawn(tmp_path, gw_env(inst), lock_dir=state_lock_dir(inst), config_path=str(inst.config_path))
    fakes.append(fake)
    fake.wait_ready()
    fake.popen.kill()
    wait_until(lambda: psutil.Process(fake.pid).status() == psutil.STATUS_ZOMBIE, 10, what="zombie")
    assert proc.find_gateways(inst) == []   # zombie (not reaped yet)
    fake.popen.wait()
    assert proc.find_gateways(inst) == []   # dead, stale lock left behind


# ---- snapshot -----------------------------------------------------------------------------------

def test_snapshot_tree_lists_listener_children_and_env_names_only(tmp_path: Path,
                                                                   fakes: list[FakeGateway]) -> None:
    port = free_port()
    inst = make_install(tmp_path, port=port)
    secret = "do-not-leak-" + os.urandom(6).hex()
    fake = spawn(tmp_path, gw_env(inst, OPENCLAW_GATEWAY_TOKEN=secret), port=port, worker="polite")
    fakes.append(fake)
    fake.wait_ready()
    snap = proc.snapshot_tree(psutil.Process(fake.pid))
    text = json.dumps(snap)
    assert secret not in text
    by_pid = {p["pid"]: p for p in snap["processes"]}
    gw = by_pid[fake.pid]
    assert gw["name"] == "openclaw-gateway"
    assert "OPENCLAW_GATEWAY_TOKEN" in gw["environ_names"] and "OPENCLAW_STATE_DIR" in gw["environ_names"]
    assert any(c["status"] == "LISTEN" and c["laddr"] == f"127.0.0.1:{port}" for c in gw["connections"])
    for key in ("ppid", "exe", "cmdline", "cwd", "user", "create_time", "status", "num_threads", "memory",
                "open_files"):
        assert key in gw
    assert fake.worker_pid() in by_pid and by_pid[fake.worker_pid()]["ppid"] == fake.pid


# ---- terminate ----------------------------------------------------------------------------------

def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_terminate_cooperative_gateway_is_clean(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    port = free_port()
    inst = make_install(tmp_path, port=port)
    fake = spawn(tmp_path, gw_env(inst), port=port, worker="polite")
    fakes.append(fake)
    fake.wait_ready()
    worker = fake.worker_pid()
    assert worker is not None
    res = proc.terminate_tree([psutil.Process(fake.pid)], timeout_s=10)
    assert not res.forced and res.signalled == (fake.pid,) and res.killed == () and res.survivors == ()
    assert set(res.exited) == {fake.pid, worker}
    assert _gone(fake.pid) and _gone(worker) and not port_is_open(port)


def test_terminate_hanging_drain_is_forced_and_leaves_nothing(tmp_path: Path,
                                                               fakes: list[FakeGateway]) -> None:
    port = free_port()
    inst = make_install(tmp_path, port=port)
    fake = spawn(tmp_path, gw_env(inst), port=port, ignore_term=True, worker="stubborn")
    fakes.append(fake)
    fake.wait_ready()
    worker = fake.worker_pid()
    assert worker is not None
    res = proc.terminate_tree([psutil.Process(fake.pid)], timeout_s=1.0)
    assert res.forced
    assert fake.pid in res.killed and worker in res.killed and res.survivors == ()
    assert _gone(fake.pid) and _gone(worker)
    assert not port_is_open(port)


def test_terminate_kills_stubborn_leftover_worker_without_forcing_root(tmp_path: Path,
                                                                        fakes: list[FakeGateway]) -> None:
    inst = make_install(tmp_path, port=free_port())
    fake = spawn(tmp_path, gw_env(inst), worker="stubborn")
    fakes.append(fake)
    fake.wait_ready()
    worker = fake.worker_pid()
    res = proc.terminate_tree([psutil.Process(fake.pid)], timeout_s=10, children_grace_s=0.5)
    assert not res.forced and res.killed == (worker,) and fake.pid in res.exited
    assert worker is not None and _gone(worker)


def test_terminate_wrapper_and_gateway(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    inst = make_install(tmp_path, port=free_port())
    fake = spawn(tmp_path, gw_env(inst), wrapper=True)
    fakes.append(fake)
    fake.wait_ready()
    gw = psutil.Process(fake.pid)
    wrapper = psutil.Process(fake.launcher_pid)
    res = proc.terminate_tree([gw, wrapper], timeout_s=10)
    assert set(res.signalled) == {fake.pid, fake.launcher_pid} and not res.forced
    assert _gone(fake.pid) and _gone(fake.launcher_pid)


def test_terminate_skips_processes_that_already_exited(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    inst = make_install(tmp_path, port=free_port())
    fake = spawn(tmp_path, gw_env(inst))
    fakes.append(fake)
    fake.wait_ready()
    p = psutil.Process(fake.pid)
    fake.popen.kill()
    fake.popen.wait()
    res = proc.terminate_tree([p], timeout_s=1)
    assert res.signalled == () and res.killed == () and not res.forced


def test_ancestry_names_the_parent(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    inst = make_install(tmp_path, port=free_port())
    fake = spawn(tmp_path, gw_env(inst))
    fakes.append(fake)
    fake.wait_ready()
    chain = proc.ancestry(fake.pid)
    assert chain[0]["pid"] == os.getpid()


def test_port_listeners_names_the_owner(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        owners = proc.port_listeners(port)
    assert [o["pid"] for o in owners] == [os.getpid()]


HALF_DEAD = r'''
import ctypes, os, socket, sys, threading, time
port, hold = int(sys.argv[1]), sys.argv[2]
sock = socket.socket()
sock.bind(("127.0.0.1", port))
sock.listen(1)
def worker():
    while os.path.exists(hold):   # keeps the process (and its socket) alive until the test says so
        time.sleep(0.02)
    os._exit(0)
threading.Thread(target=worker).start()
ctypes.CDLL(None).syscall(60, 0)   # SYS_exit: only the main thread exits -> the leader shows as a zombie
'''


def test_zombie_leader_with_live_threads_is_not_gone(tmp_path: Path) -> None:
    """What a SIGKILLed node gateway looks like while the kernel tears it down: its main thread is
    a zombie, its other threads still hold the listening socket. Not gone until they are."""
    import subprocess
    import sys

    port = free_port()
    hold = tmp_path / "hold"
    hold.touch()
    p = subprocess.Popen([sys.executable, "-c", HALF_DEAD, str(port), str(hold)])
    try:
        ps = psutil.Process(p.pid)
        wait_until(lambda: ps.status() == psutil.STATUS_ZOMBIE and port_is_open(port), 10, what="half-dead")
        assert proc.wait_gone([ps], deadline=0) == [ps]
        hold.unlink()
        wait_until(lambda: not proc.wait_gone([ps], deadline=0), 10, what="the last thread to exit")
        assert not port_is_open(port)
    finally:
        hold.unlink(missing_ok=True)
        p.wait(timeout=10)


def test_a_process_created_in_the_same_clock_tick_as_the_signal_counts_as_started_since() -> None:
    """Create times are floored to the 10 ms tick: a respawn 3 ms after the signal must count as new."""
    from moltir.openclaw.processes import CREATE_TIME_SLACK_S, started_since

    assert started_since(100.00, 100.005)
    assert started_since(100.02, 100.005)
    assert not started_since(100.005 - CREATE_TIME_SLACK_S - 0.001, 100.005)
    assert not started_since(90.0, 100.0)


# ---- run_capture: a CLI whose grandchild keeps the pipes open --------------------------------

def _with_marker(marker: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def test_run_capture_returns_output_and_status(tmp_path: Path) -> None:
    done = proc.run_capture(["sh", "-c", "echo '{\"paired\": []}'; echo warn >&2; exit 3"],
                            timeout_s=30, env=os.environ)
    assert (done.returncode, done.stdout, done.stderr) == (3, b'{"paired": []}\n', b"warn\n")


def test_run_capture_timeout_ends_the_respawned_child_too(tmp_path: Path) -> None:
    # Like the openclaw respawn wrapper: the real CLI is a child that inherits stdout/stderr.
    # subprocess.run(timeout=…) kills only the wrapper and leaves that child running.
    marker = f"run-capture-{tmp_path.name}"
    wrapper = f"echo started; echo oops >&2; exec -a {marker} sleep 300 & wait"
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        proc.run_capture(["bash", "-c", wrapper], timeout_s=0.5, env=os.environ)
    assert _with_marker(marker) == []
    assert (caught.value.output, caught.value.stderr) == (b"started\n", b"oops\n")  # kept, as audit.run needs


def test_gateway_titled_openclaw_is_found_by_environment_and_socket(tmp_path: Path,
                                                                    fakes: list[FakeGateway]) -> None:
    """2026.5.28 titles its single gateway process plain ``openclaw`` (no wrapper): found when it
    listens and its environment names the install; the same title without a socket (a CLI client)
    is not a gateway."""
    port = free_port()
    inst = make_install(tmp_path, port=port)
    client = spawn(tmp_path, gw_env(inst), name="openclaw", tag="client")
    fakes.append(client)
    client.wait_ready()
    assert proc.find_gateways(inst) == []
    gw = spawn(tmp_path, gw_env(inst), port=port, name="openclaw")
    fakes.append(gw)
    gw.wait_ready()
    found = proc.find_gateways(inst)
    assert [(g.pid, g.name, g.port, g.wrapper_pid) for g in found] == [(gw.pid, "openclaw", port, None)]


def test_lock_owned_by_a_gateway_titled_openclaw_is_found(tmp_path: Path, fakes: list[FakeGateway]) -> None:
    inst = make_install(tmp_path, port=free_port())
    lock_dir = Path(inst.env["TMPDIR"]) / f"openclaw-{os.getuid()}"
    gw = spawn(tmp_path, gw_env(inst), name="openclaw", lock_dir=lock_dir, lock_name="gateway.791bd11b.lock",
               config_path=str(inst.config_path))
    fakes.append(gw)
    gw.wait_ready()
    found = proc.find_gateways(inst)
    assert [(g.pid, g.source) for g in found] == [(gw.pid, "lock")]


def test_short_command_keeps_the_program_and_the_script_wherever_the_repo_lives() -> None:
    deep = "/tmp/" + "a-much-longer-checkout-path/" * 8
    argv = [deep + ".venv/bin/python3", deep + "tests/tmp/respawner.py", deep + "openclaw", "/tmp/sup.log"]
    text = proc.short_command(argv)
    assert len(text) <= 120
    assert "python3" in text and "respawner.py" in text
    long_args = ["node", "gateway", *[f"--flag-{i}=value" for i in range(40)], "last-arg.js"]
    cut = proc.short_command(long_args)
    assert cut.startswith("node gateway") and cut.endswith("last-arg.js") and "…" in cut and len(cut) <= 120
