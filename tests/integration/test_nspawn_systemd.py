"""The real openclaw 2026.9.6 gateway under a REAL systemd (tests/harness/nspawn.py).

Each test boots the host's own systemd as PID 1 of a throwaway systemd-nspawn container (~1 s),
with the release cache and the interpreter running this test bound in read-only and the test's
tmp dir read-write, all at their host paths. The container shares the host's network namespace:
a gateway inside on 127.0.0.1:PORT is polled from here, and its egress guard (the fake
Telegram, which refuses and records any other host) listens here on 127.0.0.1.

* the system unit of openclaw-ansible (``openclaw-host.service.j2``): runs as openclaw with
  PrivateTmp/ProtectSystem/ProtectHome, answers on its port, comes back after a SIGKILL
  (Restart=always, RestartSec=10); as published (ReadWritePaths= only ~/.openclaw) it exits 78;
* a user manager (linger) running a user unit;
* (the user unit the real ``openclaw gateway install`` writes, contained and restored through the
  user manager: tests/integration/test_user_unit.py; moltir run inside as root on a system unit:
  tests/integration/test_system_unit.py).

Prerequisites (root, systemd-nspawn, node + openclaw 2026.9.6 in .cache): skip, or fail under CI.
"""

from __future__ import annotations

import os
import secrets
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from tests.harness import nspawn
from tests.harness.envelope import moltir_json
from tests.harness.faketg import FakeTelegram
from tests.harness.hostunit import (
    HOST_UNIT,
    OC_HOME,
    OC_USER,
    PUBLISHED_RW,
    READY_TIMEOUT_S,
    WORKING_RW,
    http_status,
    install_host_unit,
    journal_has,
    wait_gateway,
)
from tests.harness.net import LOOPBACK, free_port, token_status, wait_until
from tests.harness.nspawn import Machine, NspawnError, boot, python_binds
from tests.harness.prereq import missing_prerequisite
from tests.harness.releases import Release, cache_dir, node_bin_dir, release

RELEASE = "2026.9.6"


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def oc_release() -> Release:
    reason = nspawn.missing() or release(RELEASE).missing()
    if reason:
        missing_prerequisite(reason)
    return release(RELEASE)


@pytest.fixture
def machine(oc_release: Release, tmp_path: Path) -> Iterator[Machine]:
    m = boot(tmp_path / "machine", binds=[tmp_path], ro_binds=[cache_dir(), *python_binds()], name="moltir-it")
    print(f"\n{m.name}: booted in {m.boot_s:.2f}s ({m.system_state})")
    try:
        yield m
    finally:
        print(f"{m.name}: halted in {m.halt():.2f}s")     # raises when a process of it survived


@pytest.fixture
def egress() -> Iterator[FakeTelegram]:
    """The egress guard the gateways inside use as HTTP(S) proxy; it lives on the host's loopback."""
    proxy = FakeTelegram().start()
    try:
        yield proxy
    finally:
        proxy.stop()


# ---- the harness itself ------------------------------------------------------------------------
def test_containers_are_real_systemd_share_loopback_and_halt_clean(oc_release: Release, tmp_path: Path) -> None:
    nonce = secrets.token_hex(8)
    (tmp_path / "from-host").write_text(nonce)
    with boot(tmp_path / "m1", binds=[tmp_path], name="moltir-it") as m1, \
            boot(tmp_path / "m2", name="moltir-it") as m2:
        assert m1.name != m2.name
        for m in (m1, m2):
            assert m.system_state in nspawn.READY_STATES
            assert m.run(["cat", "/proc/1/comm"], check=True).stdout.strip() == "systemd"
            inside = m.run(["stat", "-L", "-c", "%i", "/proc/self/ns/pid", "/proc/self/ns/net"], check=True)
            pid_ns, net_ns = (int(x) for x in inside.stdout.split())
            assert pid_ns != os.stat("/proc/self/ns/pid").st_ino, "nsenter ran on the host"
            assert net_ns == os.stat("/proc/self/ns/net").st_ino, "loopback is not the host's"
            # The container's systemd sees itself at the root of its own cgroup tree.
            assert "0::/init.scope" in m.read_file("/proc/1/cgroup").splitlines()
        # ... and each tree is its own on the host (nspawn would root both at one cgroup).
        cg1, cg2 = (Path(f"/proc/{m.init_pid}/cgroup").read_text() for m in (m1, m2))
        assert cg1 != cg2 and m1.name in cg1 and m2.name in cg2
        assert not set(m1.processes()) & set(m2.processes())
        # Binds are at their host path; /etc writes stay in the container's overlay.
        assert m1.read_file(str(tmp_path / "from-host")) == nonce
        assert m2.run(["test", "-e", str(tmp_path / "from-host")]).returncode == 1
        probe = f"/etc/moltir-nspawn-probe-{nonce}"
        m1.write_file(probe, nonce)
        assert m1.read_file(probe) == nonce and not Path(probe).exists()
        assert m1.host_path(probe).read_text() == nonce
    for m in (m1, m2):
        assert m.halted and m.processes() == []
        assert not [c for c in m.cgroups if c.exists()]
        with pytest.raises(NspawnError, match="not running"):
            m.run(["true"])        # never falls through to the host
    assert not [n for n in nspawn.active_machines() if n in (m1.name, m2.name)]


def test_failed_boot_raises_with_nspawn_output(oc_release: Release, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(NspawnError, match="systemd-nspawn exited") as err:
        boot(tmp_path / "bad", ro_binds=[missing], name="moltir-it")
    assert str(missing) in str(err.value)
    assert not nspawn.active_machines()


# ---- (a) the openclaw-ansible system unit ------------------------------------------------------
def test_host_unit_runs_gateway_and_restarts_it(machine: Machine, oc_release: Release,
                                                egress: FakeTelegram) -> None:
    port, token = install_host_unit(machine, oc_release, egress.url, WORKING_RW)
    t0 = time.monotonic()
    machine.systemctl("enable", "--now", HOST_UNIT, check=True)
    ready_s = wait_gateway(machine, HOST_UNIT, port, token)
    print(f"{HOST_UNIT}: answering on 127.0.0.1:{port} {time.monotonic() - t0:.1f}s after enable --now")
    assert ready_s < READY_TIMEOUT_S
    assert http_status(port, "/healthz") == 200 and token_status(port, "wrong-token") == 401

    props = machine.show(HOST_UNIT, "User", "Group", "PrivateTmp", "ProtectSystem", "ProtectHome",
                         "ReadWritePaths", "NoNewPrivileges", "Restart", "RestartUSec", "UnitFileState",
                         "SyslogIdentifier", "MainPID", "ControlGroup")
    assert props["User"] == OC_USER and props["Group"] == OC_USER
    assert (props["PrivateTmp"], props["ProtectSystem"], props["ProtectHome"], props["NoNewPrivileges"]) == \
        ("yes", "strict", "read-only", "yes")
    assert props["ReadWritePaths"].split() == WORKING_RW.split()
    assert (props["Restart"], props["RestartUSec"], props["UnitFileState"]) == ("always", "10s", "enabled")
    assert props["ControlGroup"] == f"/system.slice/{HOST_UNIT}"
    main_pid = int(props["MainPID"])
    host_pid = machine.host_pid(main_pid)
    assert host_pid is not None
    assert psutil.Process(host_pid).uids().real == machine.user(OC_USER).uid
    journal_has(machine, "http server listening", "-t", "openclaw")   # SyslogIdentifier=openclaw

    # PrivateTmp: the gateway's /tmp/openclaw/openclaw-DATE.log is, inside the container,
    # /tmp/systemd-private-<container boot id>-openclaw.service-<random>/tmp/openclaw/...; the host
    # reaches it through /proc/<container init>/root/tmp/... or /proc/<gateway>/root/tmp/...
    found = machine.run(["sh", "-c", "ls -d /tmp/systemd-private-*-openclaw.service-*/tmp/openclaw/openclaw-*.log"])
    logs = found.stdout.split()
    assert len(logs) == 1, found
    boot_id = machine.read_file("/proc/sys/kernel/random/boot_id").strip().replace("-", "")
    assert logs[0].startswith(f"/tmp/systemd-private-{boot_id}-openclaw.service-")
    via_init = machine.host_path(logs[0])
    via_gateway = Path(f"/proc/{host_pid}/root/tmp/openclaw") / Path(logs[0]).name
    assert os.path.samefile(via_init, via_gateway)
    assert not Path(logs[0]).exists()              # not on the host's own /tmp
    assert via_gateway.stat().st_size > 0

    # Restart=always: SIGKILL the gateway; systemd starts a new one RestartSec=10 later.
    t_kill = time.monotonic()
    machine.run(["kill", "-KILL", str(main_pid)], check=True)

    def restarted() -> bool:
        st = machine.show(HOST_UNIT, "NRestarts", "MainPID", "ActiveState")
        return st["NRestarts"] == "1" and st["ActiveState"] == "active" and int(st["MainPID"]) not in (0, main_pid)

    wait_until(restarted, 60, interval=0.2, what=f"{HOST_UNIT} to be restarted")
    restart_started_s = time.monotonic() - t_kill
    wait_gateway(machine, HOST_UNIT, port, token)
    print(f"{HOST_UNIT}: restarted {restart_started_s:.1f}s after SIGKILL, answering again "
          f"{time.monotonic() - t_kill:.1f}s after it")
    assert restart_started_s >= 9.5                  # RestartSec=10 (monotonic clocks differ by ms)
    journal_has(machine, "code=killed, status=9/KILL", "-u", HOST_UNIT)
    # The killed run's private /tmp (and the log in it) is gone: a new one came with the restart.
    after = machine.run(["sh", "-c", "ls -d /tmp/systemd-private-*-openclaw.service-*"]).stdout.split()
    assert len(after) == 1 and not logs[0].startswith(after[0] + "/")
    assert egress.refused == []


@pytest.mark.parametrize("cache_dir_exists", [False, True], ids=["no-cache-dir", "cache-dir"])
def test_published_host_unit_exits_78(machine: Machine, oc_release: Release, egress: FakeTelegram,
                                      cache_dir_exists: bool) -> None:
    """As published (ReadWritePaths= only ~/.openclaw), 2026.9.6 exits 78 (EX_CONFIG) at start:
    its SQLite snapshot staging dir is $XDG_CACHE_HOME/openclaw or ~/.cache/openclaw (fallback
    ~/.cache/openclaw-UID), which ProtectHome=read-only leaves read-only (or missing). It then
    loops: Restart=always restarts it every 10 s (2026.9.6's own unit has RestartPreventExitStatus=78)."""
    port, token = install_host_unit(machine, oc_release, egress.url, PUBLISHED_RW, make_cache_dir=cache_dir_exists)
    machine.systemctl("start", HOST_UNIT, check=True)
    uid = machine.user(OC_USER).uid

    def exited() -> dict[str, str]:
        st = machine.show(HOST_UNIT, "ExecMainStatus", "ExecMainCode", "Result", "SubState")
        return st if st["ExecMainCode"] == "1" and st["ExecMainStatus"] != "0" else {}   # 1 = CLD_EXITED

    try:
        st = wait_until(exited, READY_TIMEOUT_S, interval=0.3, what=f"{HOST_UNIT} to exit")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{machine.journal(HOST_UNIT, lines=30)}") from None
    assert (st["ExecMainStatus"], st["Result"]) == ("78", "exit-code"), machine.journal(HOST_UNIT, lines=30)
    journal_has(machine, f"Unable to create fallback OpenClaw temp dir: {OC_HOME}/.cache/openclaw-{uid}",
                "-u", HOST_UNIT)
    assert token_status(port, token) == 0
    # moltir doctor (root, --user openclaw) tells the user why: the unit's ProtectHome and ReadWritePaths
    doctor = machine.run([sys.executable, "-m", "moltir", "doctor", "--user", OC_USER, "--json"], timeout=120,
                         env={"MOLTIR_HOME": "/root/moltir-doctor"})
    checks = moltir_json(doctor.stdout)["checks"]
    unit = [c for c in checks if c["check"] == f"system unit {HOST_UNIT}"]
    assert unit and unit[0]["level"] == "problem", checks
    assert "ReadWritePaths" in unit[0]["detail"] and "exits 78" in unit[0]["detail"]
    assert "it exited 78 last time" in unit[0]["detail"]
    machine.systemctl("stop", HOST_UNIT, check=True)


# ---- (b) a user manager --------------------------------------------------------------------------
def test_user_manager_runs_a_user_unit(machine: Machine, oc_release: Release) -> None:
    t0 = time.monotonic()
    alice = machine.add_user("alice")
    print(f"user manager of alice running {time.monotonic() - t0:.2f}s after useradd")
    port, nonce = free_port(), secrets.token_hex(8)
    server = f"require('http').createServer((q, s) => s.end('{nonce}')).listen({port}, '{LOOPBACK}')"
    machine.write_file(f"{alice.home}/.config/systemd/user/hello.service", textwrap.dedent(f"""\
        [Unit]
        Description=moltir test: a user service on loopback

        [Service]
        ExecStart={node_bin_dir() / "node"} -e "{server}"
        """), owner="alice")
    machine.systemctl_user("alice", "daemon-reload", check=True)
    machine.systemctl_user("alice", "start", "hello.service", check=True)

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/", timeout=2) as resp:
                return bool(resp.read().decode() == nonce)
        except OSError:
            return False

    wait_until(answers, 30, interval=0.2, what="the user unit to answer from the host")
    props = machine.show("hello.service", "ControlGroup", "MainPID", "ActiveState", user="alice")
    assert props["ActiveState"] == "active"
    assert props["ControlGroup"] == \
        f"/user.slice/user-{alice.uid}.slice/user@{alice.uid}.service/app.slice/hello.service"
    host_pid = machine.host_pid(int(props["MainPID"]))
    assert host_pid is not None and psutil.Process(host_pid).uids().real == alice.uid
    assert "Started hello.service" in machine.journal("hello.service", user="alice")
    machine.systemctl_user("alice", "stop", "hello.service", check=True)
    assert not answers()


# ---- moltir's view from inside ------------------------------------------------------------------
PROBE = """\
import json, os, subprocess, sys
import psutil
import moltir
unit = sys.argv[1]
show = subprocess.run(["systemctl", "show", unit, "--property=MainPID,ControlGroup,User,ActiveState"],
                      capture_output=True, text=True, check=True).stdout
props = dict(line.split("=", 1) for line in show.splitlines())
pid = int(props["MainPID"])
proc = psutil.Process(pid)
print(json.dumps({
    "props": props,
    "cgroup": open(f"/proc/{pid}/cgroup").read().splitlines(),
    "own_cgroup": open("/proc/self/cgroup").read().splitlines(),
    "user": proc.username(),
    "home": proc.environ().get("HOME"),
    "tmp_logs": sorted(os.listdir(f"/proc/{pid}/root/tmp/openclaw")),
    "journal": subprocess.run(["journalctl", "-u", unit, "--no-pager", "-o", "cat"],
                              capture_output=True, text=True).stdout,
    "moltir": moltir.__file__,
    "pid1": open("/proc/1/comm").read().strip(),
}))
"""


