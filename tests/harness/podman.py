"""A real container engine for the integration tests: rootful podman with a private store.

    engine = Engine(tmp / "podman").setup()
    engine.build_skeleton_image()
    ctr = engine.run_gateway(home, "oc-gw")                 # the real gateway of a harness home
    ctr.token_status(home.token)                            # 400, from the host's loopback
    subprocess.run(["moltir", ...], env={**home.env, **engine.env()})   # sees the same containers
    engine.cleanup()                                        # rm -f all; proves nothing is left

What it is (Debian's podman 4.3.1, runc, conmon, catatonit; measured on Debian 12 with hybrid
cgroups, PID 1 not systemd, root without CAP_SYS_RESOURCE):

* Everything of the engine lives under one root dir (a test session's tmp dir): a private
  ``containers.conf`` (``CONTAINERS_CONF``: podman then reads no other containers.conf) and
  ``storage.conf`` (``CONTAINERS_STORAGE_CONF``) put the image/container store (graphroot,
  overlay or vfs), the run root, libpod's tmp dir (exit files, file locks: ``lock_type = "file"``,
  so not even ``/dev/shm/libpod_lock`` is shared), the bolt state DB, volumes, the events log
  and the network config dir there. :meth:`Engine.env` is what any CLI, moltir included, must
  inherit to see the same containers. What podman still writes outside it: runc's per-container
  state ``/run/runc/<id>`` (gone after ``podman rm``) and an empty ``/run/containers/networks``;
  the blob-info cache ``/var/lib/containers/cache`` an image import would update is hidden
  behind a tmpfs in a private mount namespace (:meth:`Engine.build_skeleton_image`).
* ``runtime = "runc"`` (crun refuses the hybrid cgroup layout), ``cgroup_manager = "cgroupfs"``
  (no systemd): a container's processes are in ``/libpod_parent/libpod-<id>`` of every hierarchy;
  ``events_logger = "file"`` (no journald). ``default_ulimits`` are lowered to what this process
  may set (no CAP_SYS_RESOURCE): any ``--ulimit`` on a command line replaces ALL defaults.
* No registry is reachable: every ``run``/``create`` has ``--pull=never``, and the only image is
  the offline "skeleton" (:func:`skeleton_rootfs`): a few KB of rootfs whose ``/usr`` is the
  host's, bound read-only at run time, like the release cache (Node and openclaw).
* ``--network host``: the gateway's 127.0.0.1:PORT is the host's, and it reaches the harness's
  fakes and egress guard on the host's loopback.
* Two layouts (:meth:`Engine.run_gateway`): ``"same-path"`` (the harness home bound at its host
  path, the home's env as is, ``openclaw gateway run``), and ``"docker"``, the shape of
  OpenClaw's own docker-compose.yml / podman launcher / Quadlet (docs/install/podman.md,
  docs/install/docker.md; scripts/run-openclaw-podman.sh): ``--init`` (catatonit is PID 1, the
  gateway its child), HOME=/home/node, the host state dir at ``/home/node/.openclaw`` and its
  workspace at ``/home/node/.openclaw/workspace``, ``OPENCLAW_NO_RESPAWN=1``,
  ``NPM_CONFIG_CACHE``, ``OPENCLAW_GATEWAY_TOKEN`` from ``<state>/.env`` through ``--env-file``,
  ``node dist/index.js gateway --bind ... --port ...`` in the package dir. What differs offline:
  host networking instead of ``-p 127.0.0.1:18789:18789`` with ``--bind lan``, the container
  runs as root (rootful; the launcher's rootless ``--userns=keep-id --user $(id -u)`` is the same
  "host uid"), and node/openclaw come from the read-only cache instead of the image's ``/app``.
* Measured (2 cores): skeleton import 0.1-0.3 s; 2026.9.6 answering 400 and polling Telegram
  9-13 s after ``podman run`` on an idle machine, 15-25 s beside another test run; ``podman
  stop`` 0.7-1.7 s (the gateway exits on SIGTERM); ``--restart=always`` has a new container
  process ~0.5 s after a SIGKILL; ``podman rm -a -f`` + the leftover proof ~1.2 s.
* Worth knowing: conmon (``/libpod_parent/conmon`` cgroup, parent PID 1) is the gateway's
  parent, outside the container's cgroup; with ``--init`` PID 1 is ``/run/podman-init``
  (catatonit bound in). Podman 4.3.1 has no Quadlet (4.4+) and no ``podman update --restart``
  (5.1+). A unit that runs ``podman run`` with PODMAN_SYSTEMD_UNIT in its environment (Quadlet,
  ``podman generate systemd --new``) gets that as a container label.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil
from tests.harness.home import OpenClawHome, egress_env
from tests.harness.net import port_is_open, token_status, wait_until
from tests.harness.releases import cache_dir, node_bin_dir

SKELETON_IMAGE = "localhost/moltir-skel:latest"
CONTAINER_HOME = "/home/node"                      # the official image's user home
CONTAINER_STATE_DIR = f"{CONTAINER_HOME}/.openclaw"
READY_TIMEOUT_S = float(os.environ.get("MOLTIR_TEST_GATEWAY_READY_TIMEOUT", "180"))
PODMAN_TIMEOUT_S = 120.0
CLEANUP_TIMEOUT_S = 30.0
CGROUP_PARENT = "libpod_parent"                    # cgroupfs manager default (rootful)
TOOLS = {"podman": "podman", "conmon": "conmon", "runc": "runc", "unshare": "util-linux"}
Layout = Literal["same-path", "docker"]

# Kept from the caller's environment when podman runs; everything else of podman's is ours.
_PODMAN_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "MOLTIR_TEST_RUN_ID")


class PodmanError(RuntimeError):
    pass


def missing() -> str | None:
    """One-line reason the podman harness cannot run here, or None."""
    if os.geteuid() != 0:
        return "the podman harness runs rootful podman: needs root"
    for tool, pkg in TOOLS.items():
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install {pkg}, or run `make deps` as root)"
    if not (Path("/usr/libexec/podman/catatonit").exists() or shutil.which("catatonit")):
        return "catatonit not installed (podman --init needs it: apt-get install catatonit)"
    try:
        out = subprocess.run(["podman", "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"podman --version failed: {exc}"
    if out.returncode != 0:
        return f"podman --version failed: {(out.stderr or out.stdout).strip()[:200]}"
    return None


# ---- the skeleton image -----------------------------------------------------------------------
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n"
GROUP = "root:x:0:\nnode:x:1000:\n"


def skeleton_rootfs() -> bytes:
    """The skeleton image's only layer as a tar: merged-/usr symlinks (bin, lib, sbin -> usr/...,
    lib64 -> usr/lib64), /etc/passwd and /etc/group (root, node), sticky 1777 /tmp and /var/tmp,
    empty mount points. /usr itself is the host's, bound read-only at run time."""
    buf = io.BytesIO()
    now = int(time.time())

    def add(name: str, kind: bytes, mode: int, *, target: str = "", data: bytes = b"") -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, now
        info.linkname = target
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data) if data else None)

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("usr", "etc", "proc", "sys", "dev", "run", "root", "home", "var", "opt"):
            add(d, tarfile.DIRTYPE, 0o755)
        for d in ("tmp", "var/tmp"):
            add(d, tarfile.DIRTYPE, 0o1777)
        for name in ("bin", "lib", "sbin", "lib64"):
            add(name, tarfile.SYMTYPE, 0o777, target=f"usr/{name}")
        add("etc/passwd", tarfile.REGTYPE, 0o644, data=PASSWD.encode())
        add("etc/group", tarfile.REGTYPE, 0o644, data=GROUP.encode())
    return buf.getvalue()


# ---- processes ---------------------------------------------------------------------------------
def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def cgroup_of(pid: int) -> str:
    """The contents of /proc/PID/cgroup ("" when the process is gone)."""
    return _read(f"/proc/{pid}/cgroup")


def pids_in_cgroup(container_id: str) -> list[int]:
    """Host pids whose cgroup is ``/libpod_parent/libpod-<id>`` (catatonit, the gateway, its
    helpers); conmon stays outside. Zombies excluded."""
    marker = f"/libpod-{container_id}"
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if marker in cgroup_of(proc.pid):
            found.append(proc.pid)
    return found


def _describe(pids: Sequence[int]) -> str:
    parts = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            parts.append(f"{pid}:{p.name()}:{' '.join(a for a in p.cmdline() if a)[:160]}")
        except psutil.Error:
            parts.append(f"{pid}:?")
    return ", ".join(parts) or "none"


# ---- containers --------------------------------------------------------------------------------
@dataclass
class Container:
    """One container of an :class:`Engine` running (or having run) a harness home's gateway."""

    engine: Engine
    name: str
    id: str
    home: OpenClawHome | None
    layout: Layout
    state_dir_inside: str            # OPENCLAW_STATE_DIR as the gateway inside sees it
    port: int
    run_args: list[str] = field(default_factory=list)
    started_at: float = 0.0          # monotonic time of the last run/start
    ready_after_s: float | None = None

    # ---- facts ------------------------------------------------------------------------------
    def inspect(self) -> dict[str, Any]:
        out = self.engine.podman("container", "inspect", self.id)
        data = json.loads(out.stdout)
        assert isinstance(data, list) and len(data) == 1, out.stdout[:500]
        item = data[0]
        assert isinstance(item, dict)
        return item

    def state(self) -> dict[str, Any]:
        st = self.inspect()["State"]
        assert isinstance(st, dict)
        return st

    @property
    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def host_pid(self) -> int:
        """``State.Pid``: the host pid of the container's PID 1 (the gateway itself in the
        same-path layout, catatonit with ``--init``); 0 when it is not running."""
        return int(self.state().get("Pid") or 0)

    def processes(self) -> list[int]:
        return pids_in_cgroup(self.id)

    def gateway_pid(self) -> int:
        """The host pid of the process that serves the port (found by its listening socket among
        the container's processes; State.Pid when none listens yet)."""
        for pid in self.processes():
            try:
                conns = psutil.Process(pid).net_connections("inet")
            except psutil.Error:
                continue
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in conns):
                return pid
        return self.host_pid()

    def conmon_pids(self) -> list[int]:
        """conmon processes of this container (``-c <id>`` on their command line)."""
        found = []
        for proc in psutil.process_iter(["pid", "name", "cmdline", "status"]):
            if proc.info["name"] != "conmon" or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if self.id in (proc.info["cmdline"] or []):
                found.append(proc.pid)
        return found

    def mounts(self) -> list[dict[str, Any]]:
        mounts = self.inspect().get("Mounts") or []
        assert isinstance(mounts, list)
        return mounts

    def host_path(self, container_path: str) -> Path | None:
        """Where ``container_path`` (absolute, inside) lives on the host, through the bind mount
        with the longest matching destination; None when no bind mount covers it (the path is
        in the container's own layer). What moltir must do with ``podman inspect``'s Mounts."""
        best: tuple[int, Path] | None = None
        for m in self.mounts():
            dest, src = str(m.get("Destination", "")), str(m.get("Source", ""))
            if not dest or not src:
                continue
            if container_path == dest or container_path.startswith(dest.rstrip("/") + "/"):
                rest = container_path[len(dest):].lstrip("/")
                if best is None or len(dest) > best[0]:
                    best = (len(dest), Path(src) / rest if rest else Path(src))
        return best[1] if best else None

    def token_status(self, token: str | None) -> int:
        return token_status(self.port, token)

    def logs(self, tail: int | None = None) -> str:
        """``podman logs`` (the k8s-file log conmon keeps of the container's stdout+stderr)."""
        args = ["logs"] + (["--tail", str(tail)] if tail is not None else []) + [self.id]
        out = self.engine.podman(*args, check=False)
        return out.stdout + out.stderr

    # ---- lifecycle --------------------------------------------------------------------------
    def wait_ready(self, timeout: float = READY_TIMEOUT_S, *, wait_telegram: bool = True,
                   telegram_before: int | None = None) -> float:
        """Until the right token gets 400 (and, when the home has telegram enabled and
        ``wait_telegram``, until the gateway polls the fake). Returns seconds since the last
        run/start. A container that exited (restart policy "no") fails at once, with its logs."""
        t0 = self.started_at or time.monotonic()

        def ready() -> bool:
            st = self.state()
            if st.get("Status") in ("exited", "stopped") and self.restart_policy() in ("", "no"):
                raise PodmanError(f"container {self.name} exited with {st.get('ExitCode')} before it was "
                                  f"ready; podman logs:\n{self.logs(tail=60)}")
            return self.token_status(self.home.token if self.home else None) == 400
        try:
            wait_until(ready, timeout, interval=0.2, what=f"gateway in container {self.name} on port {self.port}")
            if wait_telegram and self.home is not None and _telegram_enabled(self.home):
                before = telegram_before if telegram_before is not None else 0
                wait_until(lambda: self.home is not None and self.home.telegram.methods().count("getUpdates") > before,
                           max(30.0, timeout - (time.monotonic() - t0)), interval=0.2,
                           what=f"telegram of container {self.name} to poll the fake Bot API")
        except TimeoutError as exc:
            raise PodmanError(f"{exc}; podman logs:\n{self.logs(tail=60)}") from None
        self.ready_after_s = time.monotonic() - t0
        return self.ready_after_s

    def restart_policy(self) -> str:
        policy = self.inspect().get("HostConfig", {}).get("RestartPolicy", {}) or {}
        return str(policy.get("Name", ""))

    def start(self, timeout: float = READY_TIMEOUT_S, wait: bool = True) -> float:
        """``podman start``; with ``wait``, until ready. Returns seconds until ready (or until
        podman start returned)."""
        before = self.home.telegram.methods().count("getUpdates") if self.home else 0
        self.started_at = time.monotonic()
        self.engine.podman("start", self.id)
        if not wait:
            return time.monotonic() - self.started_at
        return self.wait_ready(timeout, telegram_before=before)

    def stop(self, timeout: int = 10) -> float:
        """``podman stop -t TIMEOUT`` (SIGTERM, SIGKILL after TIMEOUT s): seconds it took."""
        t0 = time.monotonic()
        self.engine.podman("stop", "-t", str(timeout), self.id, timeout=timeout + PODMAN_TIMEOUT_S)
        return time.monotonic() - t0

    def kill(self, sig: str = "KILL") -> None:
        self.engine.podman("kill", "-s", sig, self.id)

    def rm(self, timeout: int = 10) -> float:
        """``podman rm -f -t TIMEOUT``: seconds it took (idempotent)."""
        t0 = time.monotonic()
        self.engine.podman("rm", "-f", "--ignore", "-t", str(timeout), self.id, timeout=timeout + PODMAN_TIMEOUT_S)
        return time.monotonic() - t0

    def wait_stopped(self, timeout: float = 30.0) -> None:
        wait_until(lambda: not self.running and not port_is_open(self.port) and not self.processes(),
                   timeout, interval=0.2, what=f"container {self.name} to be stopped")


def _telegram_enabled(home: OpenClawHome) -> bool:
    try:
        telegram = home.read_config().get("channels", {}).get("telegram", {})
    except (OSError, ValueError):
        return False
    return isinstance(telegram, dict) and telegram.get("enabled", True) is not False


# ---- the engine --------------------------------------------------------------------------------
class Engine:
    """Rootful podman with its whole store under ``root`` (see the module docstring)."""

    def __init__(self, root: Path, driver: str | None = None) -> None:
        self.root = root.resolve()
        self.driver = driver or os.environ.get("MOLTIR_TEST_PODMAN_DRIVER", "overlay")
        self.conf_path = self.root / "containers.conf"
        self.storage_conf_path = self.root / "storage.conf"
        self.graphroot = self.root / "storage"
        self.runroot = self.root / "run"
        self.tmp_dir = self.root / "libpod"
        self.image_tmp = self.root / "image-tmp"
        self.env_dir = self.root / "env"
        self.events_log = self.root / "events.log"
        self.containers: dict[str, Container] = {}     # by name: every container this engine made
        self.ids: set[str] = set()
        self.info: dict[str, Any] = {}
        self.skeleton_import_s: float | None = None
        self.cleaned = False

    # ---- configuration ----------------------------------------------------------------------
    def containers_conf(self) -> str:
        return f"""\
# moltir test harness: a private podman engine (tests/harness/podman.py). With CONTAINERS_CONF
# pointing here podman reads no other containers.conf.
[containers]
# This process has no CAP_SYS_RESOURCE: the built-in 1048576 nofile default cannot be set.
# A --ulimit on the command line replaces ALL of these: pass both or none.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"                 # crun refuses the hybrid cgroup layout here
cgroup_manager = "cgroupfs"      # no systemd as PID 1
events_logger = "file"
events_logfile_path = "{self.events_log}"
lock_type = "file"               # locks under tmp_dir, not the shared /dev/shm/libpod_lock
tmp_dir = "{self.tmp_dir}"
static_dir = "{self.graphroot / 'libpod'}"
volume_path = "{self.graphroot / 'volumes'}"
image_copy_tmp_dir = "{self.image_tmp}"

[network]
network_config_dir = "{self.root / 'networks'}"
"""

    def storage_conf(self) -> str:
        return f"""\
# moltir test harness: the private image/container store (CONTAINERS_STORAGE_CONF).
[storage]
driver = "{self.driver}"
graphroot = "{self.graphroot}"
runroot = "{self.runroot}"
"""

    def env(self) -> dict[str, str]:
        """What a CLI (moltir included) must inherit to talk to this engine and store."""
        return {"CONTAINERS_CONF": str(self.conf_path), "CONTAINERS_STORAGE_CONF": str(self.storage_conf_path)}

    def podman_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PODMAN_PASSTHROUGH if k in os.environ}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env["TMPDIR"] = str(self.image_tmp)
        return {**env, **self.env(), **(extra or {})}

    def podman(self, *args: str, timeout: float = PODMAN_TIMEOUT_S, check: bool = True,
               env: Mapping[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["podman", *args], env=self.podman_env(env), capture_output=True, text=True,
                              timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip()[:2000]
            raise PodmanError(f"podman {' '.join(args)[:300]}: rc {proc.returncode}: {detail}")
        return proc

    def setup(self) -> Engine:
        """Write the private configuration and check that podman uses it (``podman info``)."""
        for d in (self.root, self.graphroot, self.runroot, self.tmp_dir, self.image_tmp, self.env_dir,
                  self.root / "networks"):
            d.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)
        self.conf_path.write_text(self.containers_conf(), encoding="utf-8")
        self.storage_conf_path.write_text(self.storage_conf(), encoding="utf-8")
        info = json.loads(self.podman("info", "--format", "json").stdout)
        assert isinstance(info, dict)
        self.info = info
        store, host = info.get("store", {}), info.get("host", {})
        got = {"graphRoot": store.get("graphRoot"), "runRoot": store.get("runRoot"),
               "graphDriverName": store.get("graphDriverName"),
               "ociRuntime": host.get("ociRuntime", {}).get("name"), "cgroupManager": host.get("cgroupManager")}
        want = {"graphRoot": str(self.graphroot), "runRoot": str(self.runroot), "graphDriverName": self.driver,
                "ociRuntime": "runc", "cgroupManager": "cgroupfs"}
        if got != want:
            raise PodmanError(f"podman did not take the private configuration: {got} != {want}")
        atexit.register(self._cleanup_at_exit)     # a session that dies before its teardown
        return self

    def _cleanup_at_exit(self) -> None:
        if not self.cleaned:
            with contextlib.suppress(Exception):
                self.cleanup()

    @property
    def version(self) -> str:
        return str(self.info.get("version", {}).get("Version", "?"))

    # ---- images -----------------------------------------------------------------------------
    def build_skeleton_image(self, ref: str = SKELETON_IMAGE) -> float:
        """``podman import`` the skeleton rootfs as ``ref``; returns the seconds it took.

        Every image copy also updates the machine-wide blob-info cache
        ``/var/lib/containers/cache/blob-info-cache-v1.boltdb`` (containers/image ignores the
        store's root for it, and podman 4.3 has no knob): the import runs in a private mount
        namespace with a tmpfs over ``/var/lib/containers`` (or ``/var/lib`` where that does not
        exist yet), so nothing outside this engine's root is written.
        """
        tar_path = self.root / "skeleton.tar"
        tar_path.write_bytes(skeleton_rootfs())
        hide = Path("/var/lib/containers") if Path("/var/lib/containers").is_dir() else Path("/var/lib")
        cmd = ["podman", "import", "--quiet", str(tar_path), ref]
        if self.root == hide or hide in self.root.parents:
            argv = cmd
        else:
            script = 'mount -t tmpfs -o mode=0700,size=16m moltir-podman-hide "$1" && shift && exec "$@"'
            argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", str(hide), *cmd]
        t0 = time.monotonic()
        proc = subprocess.run(argv, env=self.podman_env(), capture_output=True, text=True,
                              timeout=PODMAN_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip()[:2000]
            raise PodmanError(f"podman import {ref}: rc {proc.returncode}: {detail}")
        self.skeleton_import_s = time.monotonic() - t0
        tar_path.unlink()
        return self.skeleton_import_s

    # ---- containers -------------------------------------------------------------------------
    def _env_file(self, name: str, env: Mapping[str, str]) -> Path:
        """An ``--env-file`` (KEY=VALUE lines, taken verbatim by podman), 0600."""
        for k, v in env.items():
            if "\n" in v or "\r" in v or "=" in k or not k:
                raise ValueError(f"env {k!r} cannot go through an --env-file")
        path = self.env_dir / f"{name}.env"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in env.items())
        return path

    def run(self, name: str, image_args: Sequence[str], *, restart: str = "always",
            options: Sequence[str] = (), env: Mapping[str, str] | None = None,
            podman_env: Mapping[str, str] | None = None, image: str = SKELETON_IMAGE,
            detach: bool = True, create_only: bool = False) -> str:
        """``podman run -d`` (or ``create``) with this engine's fixed flags; returns the id."""
        args = ["create" if create_only else "run", *(["-d"] if detach and not create_only else []),
                "--pull=never", "--name", name, "--network", "host", f"--restart={restart}"]
        if env:
            args += ["--env-file", str(self._env_file(name, env))]
        args += [*options, image, *image_args]
        out = self.podman(*args, env=podman_env)
        cid = out.stdout.strip().splitlines()[-1]
        if len(cid) != 64:
            raise PodmanError(f"podman {args[0]} printed no container id: {out.stdout!r} {out.stderr!r}")
        self.ids.add(cid)
        return cid

    def run_gateway(self, home: OpenClawHome, name: str, restart: str = "always", *,
                    layout: Layout = "same-path", init: bool | None = None,
                    labels: Mapping[str, str] | None = None, extra_options: Sequence[str] = (),
                    podman_env: Mapping[str, str] | None = None, wait: bool = True,
                    timeout: float = READY_TIMEOUT_S, wait_telegram: bool = True) -> Container:
        """Run the real gateway of ``home`` in a container named ``name`` and (``wait``) wait
        until it answers. ``layout``: "same-path" or "docker" (module docstring); ``init``
        (``--init``, catatonit as PID 1) defaults to the layout's (False / True). ``labels``
        become ``--label``; ``podman_env`` is added to podman's own environment (e.g.
        ``PODMAN_SYSTEMD_UNIT``, which podman turns into a label as a systemd unit's run does)."""
        release = home.release
        cache = cache_dir()
        opts: list[str] = ["-v", "/usr:/usr:ro", "-v", "/etc/ssl:/etc/ssl:ro", "-v", f"{cache}:{cache}:ro"]
        if layout == "same-path":
            use_init = bool(init)
            # The home's env as is (HOME, OPENCLAW_STATE_DIR, OPENCLAW_CONFIG_PATH, TMPDIR, XDG_*,
            # PATH with the cache's node, the egress guard, MOLTIR_TEST_RUN_ID...); the home's whole
            # tree (HOME, TMPDIR, xdg, test CA) at its host path; the shared compile caches its
            # TMPDIR links to stay writable over the read-only cache.
            env = dict(home.env)
            opts += ["-v", f"{home.root}:{home.root}", "-w", str(home.home)]
            compile_cache = release.compile_cache
            compile_cache.mkdir(parents=True, exist_ok=True)
            if cache in compile_cache.parents:
                opts += ["-v", f"{compile_cache}:{compile_cache}"]
            state_inside = str(home.state_dir)
            command = [str(release.openclaw_bin), "gateway", "run"]
        elif layout == "docker":
            use_init = True if init is None else init
            env, state_inside, command = self._docker_layout(home, name)
            opts += ["-v", f"{home.state_dir}:{CONTAINER_STATE_DIR}:rw",
                     "-v", f"{home.state_dir / 'workspace'}:{CONTAINER_STATE_DIR}/workspace:rw",
                     "--env-file", str(home.state_dir / ".env"),
                     "-w", str(release.package_dir)]
            if home.ca is not None:
                opts += ["-v", f"{home.ca.ca_cert.parent}:{home.ca.ca_cert.parent}:ro"]
        else:
            raise ValueError(f"unknown layout {layout!r}")
        if use_init:
            opts.append("--init")
        for k, v in (labels or {}).items():
            opts += ["--label", f"{k}={v}"]
        opts += list(extra_options)
        before = home.telegram.methods().count("getUpdates")
        started = time.monotonic()
        cid = self.run(name, command, restart=restart, options=opts, env=env, podman_env=podman_env)
        ctr = Container(engine=self, name=name, id=cid, home=home, layout=layout,
                        state_dir_inside=state_inside, port=home.port, run_args=opts + command,
                        started_at=started)
        self.containers[name] = ctr
        if wait:
            try:
                ctr.wait_ready(timeout, wait_telegram=wait_telegram, telegram_before=before)
            except BaseException:
                ctr.rm(timeout=2)
                raise
        return ctr

    def _docker_layout(self, home: OpenClawHome, name: str) -> tuple[dict[str, str], str, list[str]]:
        """Env, state dir inside and command of the official container shape (see the module
        docstring); writes ``<state>/.env`` with OPENCLAW_GATEWAY_TOKEN (0600, as
        scripts/podman/setup.sh does) and points the config's ``logging.file`` at its path
        inside the container (the same host file, ``home.log_file``)."""
        if home.state_dir not in home.log_file.parents:
            raise ValueError(f"{home.log_file} is not under {home.state_dir}")
        (home.state_dir / "workspace").mkdir(exist_ok=True)
        dotenv = home.state_dir / ".env"
        fd = os.open(dotenv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"OPENCLAW_GATEWAY_TOKEN={home.token}\n")
        inside_log = f"{CONTAINER_STATE_DIR}/{home.log_file.relative_to(home.state_dir).as_posix()}"
        text = home.config_path.read_text(encoding="utf-8")
        quoted = json.dumps(str(home.log_file))
        if quoted in text:
            home.config_path.write_text(text.replace(quoted, json.dumps(inside_log)), encoding="utf-8")
        elif json.dumps(inside_log) not in text:
            raise ValueError(f"{home.config_path}: logging.file {quoted} not found")
        env: dict[str, str] = {k: home.env[k] for k in ("LANG", "LC_ALL", "TZ", "MOLTIR_TEST_RUN_ID") if k in home.env}
        env.update({
            "HOME": CONTAINER_HOME, "TERM": "xterm-256color",
            "NPM_CONFIG_CACHE": f"{CONTAINER_STATE_DIR}/.npm", "OPENCLAW_NO_RESPAWN": "1",
            # The image has node on its PATH; here it comes from the read-only cache.
            "PATH": f"{node_bin_dir()}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            **egress_env(home.telegram.url),
        })
        if "NODE_EXTRA_CA_CERTS" in home.env:
            env["NODE_EXTRA_CA_CERTS"] = home.env["NODE_EXTRA_CA_CERTS"]
        command = ["node", "dist/index.js", "gateway", "--bind", "loopback", "--port", str(home.port)]
        return env, CONTAINER_STATE_DIR, command

    def container_ids(self) -> list[str]:
        """Every container of this store (running or not)."""
        out = self.podman("ps", "-a", "--no-trunc", "--format", "{{.ID}}")
        return [line.strip() for line in out.stdout.splitlines() if line.strip()]

    # ---- teardown ---------------------------------------------------------------------------
    def processes(self) -> list[int]:
        """Live processes of this engine: conmon and podman processes whose command line or
        environment names this engine's root (conmon's ``-b``/``--exit-dir``, the exit command's
        ``--root``, a CLI run with :meth:`env`), and every process in a cgroup of a container
        this engine made."""
        root = str(self.root)
        conf = str(self.conf_path)
        me = os.getpid()
        found: set[int] = set()
        for proc in psutil.process_iter(["pid", "name", "cmdline", "status"]):
            if proc.pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = proc.info["cmdline"] or []
            if any(root in a for a in cmdline):
                found.add(proc.pid)
                continue
            if proc.info["name"] in ("podman", "conmon", "catatonit", "runc"):
                try:
                    if proc.environ().get("CONTAINERS_CONF") == conf:
                        found.add(proc.pid)
                        continue
                except psutil.Error:
                    pass
            cg = cgroup_of(proc.pid)
            if cg and any(f"/libpod-{cid}" in cg for cid in self.ids):
                found.add(proc.pid)
        return sorted(found)

    def mounts(self) -> list[str]:
        """Mount points under this engine's root (a running container's rootfs, its shm)."""
        prefix = str(self.root) + "/"
        points = []
        for line in _read("/proc/self/mountinfo").splitlines():
            parts = line.split()
            if len(parts) > 4:
                point = parts[4].replace("\\040", " ")
                if point.startswith(prefix):
                    points.append(point)
        return points

    def runtime_state_dirs(self) -> list[Path]:
        """runc's per-container state dirs of this engine's containers (``/run/runc/<id>``)."""
        return [p for cid in self.ids if (p := Path("/run/runc") / cid).exists()]

    def cgroup_dirs(self) -> list[Path]:
        """cgroup dirs of this engine's containers (``<hierarchy>/libpod_parent/libpod-<id>``);
        podman removes them when the container stops. ``/libpod_parent`` itself and conmon's
        ``/libpod_parent/conmon`` stay, empty, as after any rootful cgroupfs podman run."""
        base = Path("/sys/fs/cgroup")
        found = []
        for hierarchy in [base, *(p for p in base.iterdir() if p.is_dir())] if base.is_dir() else []:
            found += [p for cid in self.ids if (p := hierarchy / CGROUP_PARENT / f"libpod-{cid}").is_dir()]
        return found

    def cleanup(self, timeout: float = CLEANUP_TIMEOUT_S, stop_timeout: int = 5) -> list[str]:
        """Remove every container of the store (``podman rm -a -f -t STOP_TIMEOUT``), then prove
        that no process, mount, runc state dir or cgroup of this engine is left. What had to be
        force-cleaned is killed / unmounted / removed and raises AssertionError; else returns the
        ids removed. Idempotent."""
        self.cleaned = True
        problems: list[str] = []
        ids: list[str] = []
        if self.conf_path.exists():
            try:
                ids = self.container_ids()
                self.podman("rm", "-a", "-f", "-t", str(stop_timeout), timeout=PODMAN_TIMEOUT_S + timeout)
            except (PodmanError, subprocess.TimeoutExpired) as exc:
                problems.append(f"podman rm -a -f failed: {exc}")
            with contextlib.suppress(PodmanError, subprocess.TimeoutExpired):
                if left := self.container_ids():
                    problems.append(f"containers still in the store after rm -a -f: {left}")
        deadline = time.monotonic() + timeout
        while (left_pids := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.1)     # conmon and its exit command (podman container cleanup) finishing
        if left_pids:
            problems.append(f"engine processes survived {timeout:.0f}s: {_describe(left_pids)}")
            for pid in left_pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            psutil.wait_procs([p for pid in left_pids if (p := _proc(pid)) is not None], timeout=5)
        if points := self.mounts():
            problems.append(f"mounts left under {self.root}: {points}")
            for point in sorted(points, key=len, reverse=True):
                subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)
        if dirs := self.runtime_state_dirs():
            problems.append(f"runc state dirs left: {dirs}")
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)
        if cgroups := self.cgroup_dirs():
            problems.append(f"container cgroups left: {cgroups}")
            for cg in cgroups:
                with contextlib.suppress(OSError):
                    cg.rmdir()
        if problems:
            raise AssertionError("podman engine teardown: " + "; ".join(problems))
        return ids


def _proc(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


@contextlib.contextmanager
def engine_at(root: Path, *, skeleton: bool = True, driver: str | None = None) -> Iterator[Engine]:
    """An :class:`Engine` set up under ``root`` (with the skeleton image), cleaned up after."""
    engine = Engine(root, driver=driver)
    try:
        engine.setup()
        if skeleton:
            engine.build_skeleton_image()
        yield engine
    finally:
        engine.cleanup()
