"""Container-engine adapter: is an install's gateway running in a Docker or Podman container, and
how to stop it so it stays down, and start it again -- bounded, through the engine's own CLI.

No moltir policy here (the ``gateway.*`` actions decide). Facts (OpenClaw's docs/install/docker.md
and podman.md; checked with Debian's podman 4.3 on this project's test machines):

* OpenClaw's own container setups bind-mount the host's state dir (``~/.openclaw``, or a compose
  volume) into the container (``/home/node/.openclaw``), so the install moltir acts on is the HOST
  side of that mount: a container belongs to an install when one of its mounts' host source is the
  install's state dir (or a folder holding it);
* a containerised gateway is a host process whose cgroup names the container
  (``libpod-<id>``, ``docker-<id>.scope``, ``/docker/<id>``);
* a restart policy (``always``, ``unless-stopped``, ``on-failure``) does not restart a container
  after an explicit ``stop``; ``always`` does bring Docker containers back when the daemon
  restarts, so the policy is recorded and, where the engine can (``docker update``), set to ``no``
  until restore puts it back;
* a container managed by systemd (Quadlet, ``podman generate systemd``: label
  ``PODMAN_SYSTEMD_UNIT``) must be stopped through that unit: its ``Restart=`` would undo an engine
  stop within seconds; compose-managed ones carry ``com.docker.compose.project`` /
  ``io.podman.compose.project`` (an explicit stop keeps them down: compose restarts nothing).

Every command runs with the caller's environment (``CONTAINERS_CONF``, ``DOCKER_HOST`` ... select
the engine's store), never with a credential variable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

ENGINES: Final = ("podman", "docker")
TIMEOUT_S: Final = 30.0
_CGROUP_ID: Final = re.compile(r"(?:libpod-(?:conmon-)?|docker-|/docker/)([0-9a-f]{64})")


@dataclass(frozen=True)
class Container:
    engine: str
    id: str
    name: str
    running: bool
    pid: int | None
    restart_policy: str
    restart_retries: int
    mounts: tuple[tuple[str, str], ...]  # (host source, container destination)
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def systemd_unit(self) -> str | None:
        unit = self.labels.get("PODMAN_SYSTEMD_UNIT")
        return unit or None

    @property
    def compose_project(self) -> str | None:
        return self.labels.get("com.docker.compose.project") or self.labels.get("io.podman.compose.project")

    def host_path(self, container_path: str) -> Path | None:
        """The host path of a path inside the container, through its bind mounts (deepest first)."""
        best: tuple[int, Path] | None = None
        for source, dest in self.mounts:
            d = dest.rstrip("/") or "/"
            if container_path == d or container_path.startswith(d + "/"):
                rest = container_path[len(d):].lstrip("/")
                cand = Path(source) / rest if rest else Path(source)
                if best is None or len(d) > best[0]:
                    best = (len(d), cand)
        return best[1] if best else None

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "id": self.id, "name": self.name, "running": self.running, "pid": self.pid,
                "restart_policy": self.restart_policy, "restart_retries": self.restart_retries,
                "mounts": [list(m) for m in self.mounts], "labels": dict(self.labels), "image": self.image,
                "systemd_unit": self.systemd_unit, "compose_project": self.compose_project}


def _env(env: Mapping[str, str]) -> dict[str, str]:
    from moltir.openclaw.install import CREDENTIAL_VARS

    out = {k: v for k, v in env.items() if k not in CREDENTIAL_VARS}
    out.setdefault("PATH", os.defpath)
    return out


def run(engine: str, args: Sequence[str], env: Mapping[str, str], timeout_s: float = TIMEOUT_S) -> tuple[int, str, str]:
    """``ENGINE ARGS`` bounded; (returncode, stdout, stderr); -1 when it could not run."""
    tool = shutil.which(engine, path=env.get("PATH", os.defpath))
    if tool is None:
        return -1, "", f"{engine}: not found on PATH"
    try:
        done = subprocess.run([tool, *args], env=_env(env), capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return -1, "", f"{engine} {' '.join(args[:2])}: no answer within {timeout_s:g} s"
    except OSError as exc:
        return -1, "", f"{engine}: {exc.strerror or exc}"
    return done.returncode, done.stdout, done.stderr


def available(env: Mapping[str, str], euid: int | None = None) -> list[str]:
    """The engines on PATH worth asking. Rootless podman only when the user has used it (its storage
    or its config exists): ``podman ps`` by a user who never ran podman creates that storage and
    leaves a pause process (catatonit) and a lock file behind, and could list nothing anyway. Docker
    asks a daemon and changes nothing by asking."""
    euid = os.geteuid() if euid is None else euid
    return [e for e in ENGINES if shutil.which(e, path=env.get("PATH", os.defpath))
            and (e != "podman" or euid == 0 or _rootless_podman_used(env))]


def _rootless_podman_used(env: Mapping[str, str]) -> bool:
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return (data / "containers" / "storage").is_dir() or (config / "containers" / "storage.conf").is_file()


def _parse(engine: str, item: Mapping[str, Any]) -> Container:
    state = item.get("State") or {}
    host = item.get("HostConfig") or {}
    policy = host.get("RestartPolicy") or {}
    config = item.get("Config") or {}
    mounts = tuple((str(m.get("Source", "")), str(m.get("Destination", "")))
                   for m in item.get("Mounts") or [] if isinstance(m, Mapping))
    pid = state.get("Pid") if isinstance(state.get("Pid"), int) and state.get("Pid") else None
    return Container(engine=engine, id=str(item.get("Id", "")), name=str(item.get("Name", "")).lstrip("/"),
                     running=bool(state.get("Running")), pid=pid,
                     restart_policy=str(policy.get("Name") or "no"),
                     restart_retries=int(policy.get("MaximumRetryCount") or 0),
                     mounts=mounts, labels=dict(config.get("Labels") or {}), image=str(config.get("Image") or ""),
                     raw=item)


def inspect(engine: str, ids: Sequence[str], env: Mapping[str, str]) -> list[Container]:
    if not ids:
        return []
    rc, out, _err = run(engine, ["inspect", "--type", "container", *ids], env)
    if rc != 0:
        return []
    try:
        data = json.loads(out)
    except ValueError:
        return []
    return [_parse(engine, item) for item in data if isinstance(item, Mapping)]


def all_containers(engine: str, env: Mapping[str, str]) -> list[Container]:
    rc, out, _err = run(engine, ["ps", "-a", "-q", "--no-trunc"], env)
    if rc != 0:
        return []
    return inspect(engine, out.split(), env)


def _covers(source: str, path: Path) -> bool:
    try:
        src = Path(os.path.realpath(source))
        real = Path(os.path.realpath(path))
    except OSError:
        return False
    return real == src or src in real.parents


def for_state_dir(state_dir: Path, env: Mapping[str, str]) -> list[Container]:
    """Containers (any engine on PATH, running first) that bind-mount ``state_dir`` from the host."""
    found = []
    for engine in available(env):
        for c in all_containers(engine, env):
            if any(_covers(src, state_dir) for src, _dest in c.mounts if src):
                found.append(c)
    return sorted(found, key=lambda c: not c.running)


def id_of_pid(pid: int) -> str | None:
    """The container id a host process runs in, from its cgroup; None for a host process."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = _CGROUP_ID.search(text)
    return m[1] if m else None


@dataclass(frozen=True)
class StopResult:
    stopped: bool
    commands: tuple[str, ...]
    warnings: tuple[str, ...]
    policy_changed: bool


def stop(c: Container, env: Mapping[str, str], timeout_s: float) -> StopResult:
    """``ENGINE stop -t TIMEOUT`` (the engine SIGKILLs after it), then make an ``always`` policy
    unable to bring it back at the next daemon start where the engine can (``docker update``)."""
    commands = [f"{c.engine} stop -t {int(timeout_s)} {c.name or c.id}"]
    warnings: list[str] = []
    rc, _out, err = run(c.engine, ["stop", "-t", str(int(max(1, timeout_s))), c.id], env, timeout_s=timeout_s + 30)
    if rc != 0:
        warnings.append(f"{c.engine} stop failed: {err.strip().splitlines()[-1] if err.strip() else rc}")
    changed = False
    if c.restart_policy not in ("no", "") and c.engine == "docker":
        rc2, _o, err2 = run(c.engine, ["update", "--restart=no", c.id], env)
        commands.append(f"{c.engine} update --restart=no {c.name or c.id}")
        changed = rc2 == 0
        if rc2 != 0:
            warnings.append(f"docker update --restart=no failed ({err2.strip()[:200]}): the restart policy "
                            f"'{c.restart_policy}' stays and may bring it back when the Docker daemon restarts")
    now = inspect(c.engine, [c.id], env)
    stopped = bool(now) and not now[0].running
    return StopResult(stopped, tuple(commands), tuple(warnings), changed)


def start(record: Mapping[str, Any], env: Mapping[str, str]) -> tuple[bool, list[str], str]:
    """Undo :func:`stop` from its record: the restart policy back (if moltir changed it), then start."""
    engine, cid = str(record["engine"]), str(record["id"])
    commands = []
    if record.get("policy_changed"):
        policy = str(record.get("restart_policy") or "no")
        if policy == "on-failure" and record.get("restart_retries"):
            policy += f":{record['restart_retries']}"
        run(engine, ["update", f"--restart={policy}", cid], env)
        commands.append(f"{engine} update --restart={policy} {cid}")
    rc, _out, err = run(engine, ["start", cid], env, timeout_s=120)
    commands.append(f"{engine} start {record.get('name') or cid}")
    return rc == 0, commands, err.strip().splitlines()[-1] if err.strip() else ""


def logs(c: Container, env: Mapping[str, str], limit_bytes: int = 64 << 20) -> bytes:
    """``ENGINE logs --timestamps`` (stdout and stderr), at most ``limit_bytes``."""
    tool = shutil.which(c.engine, path=env.get("PATH", os.defpath))
    if tool is None:
        return b""
    try:
        done = subprocess.run([tool, "logs", "--timestamps", c.id], env=_env(env), capture_output=True,
                              timeout=120, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return b""
    return (done.stdout + done.stderr)[-limit_bytes:]
