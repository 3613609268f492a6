"""gateway.stop / gateway.start for a gateway that runs in a Docker or Podman container.

Found through its engine (:mod:`moltir.openclaw.containers`): the container that bind-mounts the
install's state dir from the host, or the one the gateway process's cgroup names. Stopped through
the engine (``stop -t timeout_s``: the engine SIGKILLs after it) so it stays down, with its restart
policy recorded (and, where the engine can change it, set to ``no`` until restore); a container a
systemd unit manages (Quadlet) is stopped through that unit instead (the service path of ``stop``).
Before the stop its ``inspect`` record and ``logs`` go to ``volatile/`` (sealed with the evidence);
the config is edited on the host side of the mount (the install moltir acts on). ``gateway.start``
puts the restart policy back and starts the same container.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from moltir.actions.base import StepContext, StepResult
from moltir.errors import EXIT_STEP_FAILED, MoltirError
from moltir.openclaw import Install
from moltir.openclaw import containers as ct


def find_container(install: Install, gateway_pid: int | None) -> ct.Container | None:
    """The container running (or holding) the install's gateway: the gateway process's own container,
    else a running container that bind-mounts the state dir, else a stopped one that does."""
    if gateway_pid is not None:
        cid = ct.id_of_pid(gateway_pid)
        if cid is None:
            return None
        for engine in ct.available(install.env):
            got = ct.inspect(engine, [cid], install.env)
            if got:
                return got[0]
        return None
    found = ct.for_state_dir(install.state_dir, install.env)
    return found[0] if found else None


def gateway_of(c: ct.Container, install: Install) -> Any | None:
    """A :class:`moltir.openclaw.processes.GatewayProcess` for the container's main process (host pid)."""
    if not (c.running and c.pid):
        return None
    from moltir.openclaw import processes as proc

    return proc.describe_process(c.pid, matched_by=f"container {c.name}", install=install)


def snapshot(ctx: StepContext, c: ct.Container) -> dict[str, Any]:
    """Keep the container's inspect record and its logs (gone with the container) in ``volatile/``."""
    rel = f"volatile/container-{_safe(c.name or c.id[:12])}"
    ctx.case.write_json(rel + ".json", dict(c.raw), overwrite=True)
    data = ct.logs(c, ctx.install.env)
    ctx.case.write_file(rel + ".log", data, overwrite=True)
    return {"inspect": rel + ".json", "logs": rel + ".log", "log_bytes": len(data)}


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:100]


def record(c: ct.Container) -> dict[str, Any]:
    return {"engine": c.engine, "id": c.id, "name": c.name, "restart_policy": c.restart_policy,
            "restart_retries": c.restart_retries, "image": c.image, "compose_project": c.compose_project,
            "mounts": [list(m) for m in c.mounts]}


def stop(ctx: StepContext, c: ct.Container, timeout: float) -> tuple[dict[str, Any], list[str], bool]:
    """(details, warnings, forced) of stopping ``c`` through its engine; raises when it is still up."""
    started = time.monotonic()
    ctx.event("gateway.container_stop", engine=c.engine, container=c.name, timeout_s=timeout)
    ctx.waiting()
    res = ct.stop(c, ctx.install.env, timeout)
    elapsed = time.monotonic() - started
    if not res.stopped:
        raise MoltirError(f"{c.engine} did not stop the container {c.name or c.id[:12]} within {timeout:g} s",
                          hint=f"check '{c.engine} ps -a' and '{c.engine} logs {c.name or c.id[:12]}', then run "
                               "moltir again (it resumes)", exit_code=EXIT_STEP_FAILED)
    ctx.case.record_restore("gateway_container", {"policy_changed": res.policy_changed})
    details = {"container": {**record(c), "policy_changed": res.policy_changed, "commands": list(res.commands)},
               "elapsed_s": round(elapsed, 3)}
    return details, list(res.warnings), elapsed >= timeout


def start(ctx: StepContext, rec: Mapping[str, Any], wait: Any, port: int, token: str | None,
          token_source: str, timeout: float, warnings: list[str]) -> StepResult:
    """Put back the recorded restart policy and start the container; healthy = accepts ``token``."""
    from moltir.redaction import fingerprint

    cont = dict(rec.get("container") or {})
    changed = ctx.case.restore_section("gateway_container")
    cont["policy_changed"] = bool(isinstance(changed, dict) and changed.get("policy_changed"))
    ok, commands, err = ct.start(cont, ctx.install.env)
    ctx.event("gateway.container_start", engine=cont.get("engine"), container=cont.get("name"), ok=ok)
    if not ok:
        raise MoltirError(f"{cont.get('engine')} start {cont.get('name')} failed: {err or 'no detail'}",
                          hint="check the container with the engine, then run moltir again", exit_code=EXIT_STEP_FAILED)
    status = wait(port, token, time.monotonic() + timeout, None)
    details = {"mode": "container", "container": cont.get("name"), "engine": cont.get("engine"), "port": port,
               "commands": commands, "token_source": token_source,
               "token_fingerprint": fingerprint(token) if token else None}
    if status != "healthy":
        raise MoltirError(f"the container {cont.get('name')} started but the gateway is not healthy after "
                          f"{timeout:g} s ({status})", hint=f"see '{cont.get('engine')} logs {cont.get('name')}'",
                          exit_code=EXIT_STEP_FAILED)
    return StepResult("done", f"container {cont.get('name')} started ({cont.get('engine')}); the gateway "
                              f"{'accepts the token' if token else 'answers'} on port {port}", details, tuple(warnings))


def still_running(ctx: StepContext, details: Mapping[str, Any]) -> str | None:
    """For the stop's verify: the container's state now, when it is running again (restart policy...)."""
    cont = details.get("container")
    if not isinstance(cont, Mapping):
        return None
    got = ct.inspect(str(cont.get("engine")), [str(cont.get("id"))], ctx.install.env)
    if got and got[0].running:
        return (f"the container {cont.get('name')} is running again (restart policy "
                f"{got[0].restart_policy}, or something started it)")
    return None
