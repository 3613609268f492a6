"""The real openclaw 2026.9.6 gateway in a REAL container: rootful podman (tests/harness/podman.py).

One private podman engine per test session (its store, run root, locks, events log and config
under the session's tmp dir; ``engine.env()`` is what moltir must inherit to see the same
containers), the offline skeleton image with the host's /usr and the release cache bound
read-only, host networking. Proven here:

* the gateway in a container answers the right token with 400 and a wrong one with 401 on the
  host's loopback; seen from the host: ``State.Pid`` is a host pid whose cgroup is
  ``/libpod_parent/libpod-<id>``, whose environ has ``container=podman``, in a pid namespace
  of its own but the host's network namespace;
* ``--restart=always`` brings it back after a SIGKILL; ``podman stop`` keeps it stopped (watched
  for a while, port closed, no process); ``podman start`` brings it back;
* ``podman logs`` holds the gateway's output;
* OpenClaw's own container shape (``/home/node/.openclaw``, ``--init``, the token in the
  container env): container paths map to host paths through ``podman inspect``'s Mounts;
* what a systemd unit (Quadlet, ``podman generate systemd``) and compose leave on a container;
* teardown leaves no conmon/podman/container process, mount or runc state behind, and the
  machine's own podman store is never touched.

Prerequisites (root, podman + runc + conmon + catatonit, node + openclaw 2026.9.6 in .cache):
skip, or fail under CI. Timings are printed (``pytest -s``) and summed up at session end.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from tests.harness import podman
from tests.harness.home import OpenClawHome, close_home, create_home
from tests.harness.net import port_is_open, wait_until
from tests.harness.podman import CONTAINER_STATE_DIR, Container, Engine
from tests.harness.prereq import missing_prerequisite
from tests.harness.procs import kill_leftovers, processes_for
from tests.harness.releases import Release, release

RELEASE = "2026.9.6"
STOPPED_WATCH_S = float(os.environ.get("MOLTIR_TEST_PODMAN_STOPPED_WATCH_S", "15"))
RESTART_TIMEOUT_S = 30.0
TIMINGS: list[tuple[str, float]] = []


def timing(what: str, seconds: float) -> float:
    TIMINGS.append((what, seconds))
    print(f"\n[podman timing] {what}: {seconds:.2f}s")
    return seconds


# ---- fixtures ----------------------------------------------------------------------------------
def _prereq() -> Release:
    reason = podman.missing() or release(RELEASE).missing()
    if reason:
        missing_prerequisite(reason)
    return release(RELEASE)


@pytest.fixture
def oc_home(engine: Engine, tmp_path: Path) -> Iterator[OpenClawHome]:
    home = create_home(tmp_path / "oc", release(RELEASE))
    try:
        yield home
    finally:
        for ctr in [c for c in engine.containers.values() if c.home is home]:
            ctr.rm(timeout=2)
            engine.containers.pop(ctr.name, None)
        close_home(home)
        killed = kill_leftovers(home.state_dir)
        assert not killed, f"gateway processes of {home.state_dir} outlived podman rm: {killed}"


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _run(engine: Engine, home: OpenClawHome, prefix: str, *, restart: str = "always",
         layout: podman.Layout = "same-path") -> Container:
    ctr = engine.run_gateway(home, _name(prefix), restart, layout=layout)
    assert ctr.ready_after_s is not None
    timing(f"{prefix}: podman run -> ready (token 400 + telegram polling)", ctr.ready_after_s)
    return ctr


def _nspid(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    return []


def _environ(pid: int) -> dict[str, str]:
    return dict(psutil.Process(pid).environ())


# ---- the gateway in a container, seen from the host --------------------------------------------
def test_gateway_runs_in_a_real_container_and_is_seen_from_the_host(engine: Engine, oc_home: OpenClawHome) -> None:
    ctr = _run(engine, oc_home, "same-path")
    # The token check from the host's loopback.
    assert ctr.token_status(oc_home.token) == 400
    assert ctr.token_status("wrong-" + secrets.token_hex(8)) == 401

    info = ctr.inspect()
    assert info["Id"] == ctr.id and info["Name"] == ctr.name
    assert info["State"]["Running"] is True and info["State"]["Status"] == "running"
    assert info["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert info["HostConfig"]["NetworkMode"] == "host"
    assert info["ImageName"] == podman.SKELETON_IMAGE
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts[str(oc_home.root)]["Source"] == str(oc_home.root) and mounts[str(oc_home.root)]["RW"] is True
    assert mounts["/usr"]["RW"] is False
    assert ctr.host_path(str(oc_home.config_path)) == oc_home.config_path

    # State.Pid is a host pid: the gateway itself (no --init in this layout).
    pid = ctr.host_pid()
    assert pid > 0 and pid == ctr.gateway_pid()
    proc = psutil.Process(pid)
    assert proc.name() == oc_home.release.facts.gateway_title
    cgroup = podman.cgroup_of(pid)
    assert f"/{podman.CGROUP_PARENT}/libpod-{ctr.id}" in cgroup, cgroup
    env = _environ(pid)
    assert env.get("container") == "podman"
    assert env["OPENCLAW_STATE_DIR"] == str(oc_home.state_dir) and env["HOME"] == str(oc_home.home)
    # Own pid namespace (PID 1 inside), the host's network namespace.
    nspid = _nspid(pid)
    assert len(nspid) == 2 and nspid[0] == pid and nspid[1] == 1, nspid
    assert os.stat(f"/proc/{pid}/ns/pid").st_ino != os.stat("/proc/self/ns/pid").st_ino
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    # Same paths inside and out: the harness's (and moltir's) host process scan sees it as the
    # home's gateway; conmon, outside the container's cgroup, is its host parent's child.
    assert pid in {p.pid for p in processes_for(oc_home.state_dir)}
    conmon = ctr.conmon_pids()
    assert len(conmon) == 1 and proc.ppid() == conmon[0], (conmon, proc.ppid())
    assert conmon[0] not in ctr.processes()
    assert set(ctr.processes()) >= {pid}

    # podman logs holds the gateway's own output (the k8s-file log conmon writes).
    logs = ctr.logs()
    assert "[gateway] ready" in logs, logs[-2000:]
    assert f"log file: {oc_home.log_file}" in logs
    timing("same-path: podman rm -f (running gateway)", ctr.rm())
    assert not port_is_open(oc_home.port) and not ctr.processes() and not ctr.conmon_pids()


def test_podman_stop_keeps_it_stopped_and_podman_start_brings_it_back(engine: Engine, oc_home: OpenClawHome) -> None:
    ctr = _run(engine, oc_home, "stop-start")
    pid = ctr.host_pid()
    timing("podman stop (SIGTERM, gateway exits by itself)", ctr.stop())
    st = ctr.state()
    assert st["Running"] is False and st["Status"] in ("exited", "stopped"), st
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert ctr.restart_policy() == "always"          # the policy stays; podman just honours the stop
    # Watched: the restart policy must not bring it back.
    t0 = time.monotonic()
    while time.monotonic() - t0 < STOPPED_WATCH_S:
        assert not port_is_open(oc_home.port), "a stopped container's port answered"
        assert not ctr.processes() and not ctr.conmon_pids(), "a stopped container has processes"
        time.sleep(0.5)
    st = ctr.state()
    assert st["Running"] is False and ctr.host_pid() == 0, st
    assert not processes_for(oc_home.state_dir)
    print(f"\nstayed stopped for {STOPPED_WATCH_S:.0f}s (exit code {st.get('ExitCode')})")

    timing("podman start -> ready", ctr.start())
    assert ctr.token_status(oc_home.token) == 400 and ctr.running
    assert ctr.host_pid() not in (0, pid)
    # Both runs are in podman logs, in order.
    logs = ctr.logs()
    assert logs.count("[gateway] ready") == 2, logs[-3000:]


# ---- OpenClaw's own container shape ------------------------------------------------------------
def test_official_layout_maps_container_paths_to_host_paths(engine: Engine, oc_home: OpenClawHome) -> None:
    ctr = _run(engine, oc_home, "docker-layout", restart="unless-stopped", layout="docker")
    assert ctr.token_status(oc_home.token) == 400
    assert ctr.token_status("wrong-" + secrets.token_hex(8)) == 401
    info = ctr.inspect()
    assert info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    assert env["HOME"] == podman.CONTAINER_HOME and env["OPENCLAW_NO_RESPAWN"] == "1"
    assert env["OPENCLAW_GATEWAY_TOKEN"] == oc_home.token        # from <state>/.env via --env-file
    assert "OPENCLAW_STATE_DIR" not in env and "OPENCLAW_CONFIG_PATH" not in env
    assert info["Config"]["Cmd"][:3] == ["node", "dist/index.js", "gateway"]

    # --init: catatonit, bound in as /run/podman-init, is PID 1 (State.Pid), the gateway its child.
    init_pid, gw_pid = ctr.host_pid(), ctr.gateway_pid()
    assert init_pid != gw_pid and psutil.Process(gw_pid).ppid() == init_pid
    init = psutil.Process(init_pid)
    assert init.name() == "podman-init" and init.cmdline()[:2] == ["/run/podman-init", "--"], init.cmdline()
    assert _nspid(init_pid)[-1] == 1 and _nspid(gw_pid)[-1] > 1
    gw_env = _environ(gw_pid)
    assert gw_env["HOME"] == "/home/node" and gw_env.get("container") == "podman"
    # The host's state-dir scan does NOT see this gateway: its paths are container paths.
    assert gw_pid not in {p.pid for p in processes_for(oc_home.state_dir)}

    # Container paths -> host paths through the Mounts (longest destination wins).
    assert ctr.host_path(CONTAINER_STATE_DIR) == oc_home.state_dir
    assert ctr.host_path(f"{CONTAINER_STATE_DIR}/openclaw.json") == oc_home.config_path
    assert ctr.host_path(f"{CONTAINER_STATE_DIR}/workspace/x") == oc_home.state_dir / "workspace" / "x"
    assert ctr.host_path("/tmp/openclaw") is None                # the container's own layer
    mounts = {m["Destination"]: m["Source"] for m in ctr.mounts()}
    assert mounts[CONTAINER_STATE_DIR] == str(oc_home.state_dir)
    # The gateway logs to the container path; the host sees the file through the bind mount,
    # and the container's own files through /proc/<pid>/root.
    logs = ctr.logs()
    assert f"log file: {CONTAINER_STATE_DIR}/logs/gateway.log" in logs, logs[-2000:]
    wait_until(lambda: oc_home.log_file.exists() and oc_home.log_file.stat().st_size > 0, 30,
               what="the gateway's log file on the host")
    inside = Path(f"/proc/{gw_pid}/root{CONTAINER_STATE_DIR}/openclaw.json")
    assert inside.read_bytes() == oc_home.config_path.read_bytes()
    assert os.path.realpath(f"/proc/{gw_pid}/cwd") == str(oc_home.release.package_dir)
    timing("docker layout: podman stop", ctr.stop())
    assert not ctr.processes()


# ---- what systemd units and compose leave on a container ---------------------------------------
def test_systemd_unit_env_and_compose_labels_show_on_the_container(engine: Engine) -> None:
    """A unit that runs podman (Quadlet from 4.4, ``podman generate systemd --new``) sets
    PODMAN_SYSTEMD_UNIT in podman's environment, and podman records it as a container LABEL;
    compose tools label their containers. Podman 4.3.1 has no Quadlet and no
    ``podman update --restart`` (5.1+): the restart policy of an existing container cannot be
    changed here, only seen (HostConfig.RestartPolicy)."""
    name = _name("labels")
    compose = {"io.podman.compose.project": "openclaw", "io.podman.compose.service": "openclaw-gateway",
               "com.docker.compose.project": "openclaw", "com.docker.compose.service": "openclaw-gateway"}
    labels_opt = [a for k, v in compose.items() for a in ("--label", f"{k}={v}")]
    cid = engine.run(name, ["/usr/bin/true"], restart="on-failure:3", options=labels_opt,
                     podman_env={"PODMAN_SYSTEMD_UNIT": "openclaw.service"}, create_only=True)
    try:
        out = engine.podman("container", "inspect", "--format",
                            "{{json .Config.Labels}} {{.HostConfig.RestartPolicy.Name}} "
                            "{{.HostConfig.RestartPolicy.MaximumRetryCount}}", cid)
        labels_json, policy, retries = out.stdout.strip().rsplit(" ", 2)
        labels = json.loads(labels_json)
        assert labels["PODMAN_SYSTEMD_UNIT"] == "openclaw.service"
        assert all(labels[k] == v for k, v in compose.items())
        assert (policy, retries) == ("on-failure", "3")
        update = engine.podman("update", "--restart=no", cid, check=False)
        print(f"\npodman {engine.version}: `podman update --restart=no` -> rc {update.returncode}: "
              f"{update.stderr.strip()[:200]}")
        if engine.version.startswith("4."):
            assert update.returncode != 0 and "unknown flag" in update.stderr
    finally:
        engine.podman("rm", "-f", cid)


# ---- teardown ---------------------------------------------------------------------------------
def _global_store_fingerprint() -> dict[str, float | None]:
    paths = ["/var/lib/containers/storage", "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
             "/run/containers/storage", "/run/libpod", "/dev/shm/libpod_lock"]
    out: dict[str, float | None] = {}
    for p in paths:
        try:
            out[p] = os.stat(p).st_mtime
        except OSError:
            out[p] = None
    return out


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_teardown_leaves_nothing_and_never_touches_the_machine_store(tmp_path: Path, driver: str) -> None:
    """A second, throwaway engine (per storage driver): an image import, a restart=always
    container with --init and one without, a CLI run with only ``engine.env()`` that sees them;
    then cleanup: no conmon/podman/container process, mount or runc state dir is left, and the
    machine's own podman store, blob cache and shm lock file are as they were."""
    _prereq()
    before = _global_store_fingerprint()
    eng = Engine(tmp_path / "podman", driver=driver).setup()
    try:
        timing(f"{driver}: skeleton import", eng.build_skeleton_image())
        ids = [eng.run(_name(f"sleep-{i}"), ["/usr/bin/sleep", "600"], restart="always",
                       options=["-v", "/usr:/usr:ro", *(["--init"] if i else [])]) for i in range(2)]
        # What moltir will do: only the engine's env vars, any other environment.
        cli = subprocess.run(["podman", "ps", "--format", "json"],
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **eng.env()},
                             capture_output=True, text=True, timeout=60, check=True)
        seen = {c["Id"]: c["State"] for c in json.loads(cli.stdout)}
        assert seen == dict.fromkeys(ids, "running"), cli.stdout
        running = [p for cid in ids for p in podman.pids_in_cgroup(cid)]
        assert len(running) == 3 and eng.processes()          # sleep, podman-init + sleep; conmons
        assert eng.mounts() and eng.runtime_state_dirs() and eng.cgroup_dirs()
        t0 = time.monotonic()
        assert sorted(eng.cleanup(stop_timeout=1)) == sorted(ids)
        timing(f"{driver}: cleanup of 2 running restart=always containers (stop -t 1)", time.monotonic() - t0)
    finally:
        eng.cleanup()
    assert eng.processes() == [] and eng.mounts() == [] and eng.runtime_state_dirs() == [] and eng.cgroup_dirs() == []
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in running)
    after = _global_store_fingerprint()
    touched = {p: (before[p], after[p]) for p in before if before[p] is not None and before[p] != after[p]}
    assert not touched, f"the machine's podman files changed: {touched}"
