"""What runs and who supervises it: the install's gateway, its container, its service; may moltir act."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from moltir.actions.base import StepContext
from moltir.actions.gateway.messages import gw_label
from moltir.errors import env_error
from moltir.openclaw import Install


def find_gateways(install: Install) -> list[Any]:
    """The install's running gateway processes: on the host (moltir.openclaw.processes), else the main process of the
    container that runs it (its environment names the container's paths, not the host's)."""
    from moltir.openclaw import processes as proc

    found = proc.find_gateways(install)
    if found:
        return found
    from moltir.actions.gateway.container import find_container, gateway_of

    container = find_container(install, None)
    gw = gateway_of(container, install) if container is not None else None
    return [gw] if gw is not None else []


@dataclass
class Survey:
    gateways: list[Any]  # moltir.openclaw.processes.GatewayProcess
    services: list[Any]  # moltir.openclaw.services.ServiceInfo (every known unit/agent of the install)
    supervisor: Any | None  # the ServiceInfo that supervises the gateway, if any
    manager: Any  # moltir.openclaw.services.Manager
    gateway_env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    container: Any | None = None  # moltir.openclaw.containers.Container running the gateway, if any

    @property
    def running(self) -> bool:
        return bool(self.gateways) or self.supervisor is not None or bool(self.container and self.container.running)

    @property
    def gateway(self) -> Any | None:
        return self.gateways[0] if self.gateways else None


def process_env(pid: int) -> dict[str, str]:
    import psutil

    try:
        return dict(psutil.Process(pid).environ())
    except (psutil.Error, OSError):
        return {}


def live_processes(gw: Any) -> tuple[Any, Any]:
    """The gateway's live process (create time checked) and its wrapper's, if any; ``psutil.NoSuchProcess``
    when either has exited."""
    import psutil

    return gw.process(), (psutil.Process(gw.wrapper_pid) if gw.wrapper_pid else None)


def survey(install: Install, *, service_mode: str = "auto") -> Survey:
    """Find the gateway and its supervisor; raise (nothing signalled) when acting would be unsafe."""
    from moltir.openclaw import processes as proc
    from moltir.openclaw import services

    gateways = proc.find_gateways(install)
    me = os.getuid()
    _refuse_foreign(install, gateways, me)
    _refuse_several(install, gateways)
    gw = gateways[0] if gateways else None
    container = None
    if service_mode != "ignore":
        from moltir.actions.gateway.container import find_container, gateway_of

        container = find_container(install, gw.pid if gw else None)
        if container is not None and gw is None:
            found_gw = gateway_of(container, install)
            if found_gw is not None:
                gw, gateways = found_gw, [found_gw]
    manager = services.Manager(install)
    genv: dict[str, str] = {}
    if gw is not None:
        genv = process_env(gw.wrapper_pid or gw.pid) or process_env(gw.pid)
    if service_mode == "ignore":
        return Survey(gateways, [], None, manager, genv, ["service manager ignored (service: ignore)"])
    if container is not None and container.systemd_unit:  # Quadlet / generate systemd: stopped through the unit
        genv = {**genv, "OPENCLAW_SYSTEMD_UNIT": container.systemd_unit}
    found = _detect(install, manager, gw, genv, me)
    supervisor = next((s for s in found if services.is_supervising(s, gw.pid if gw else None)), None)
    if supervisor is not None and supervisor.scope == "system":
        manager = services.Manager(install, scope="system")
    if supervisor is None and container is not None:
        return Survey(gateways, found, None, manager, genv, notes=[], container=container)
    notes = _unsupervised(install, manager, gw, genv, me) if gw is not None and supervisor is None else []
    return Survey(gateways, found, supervisor, manager, genv, notes)


def _refuse_foreign(install: Install, gateways: list[Any], me: int) -> None:
    # moltir acts on its own user's gateway; as root also on the gateway of the user who owns the install
    # (a system unit's User=, whose state dir it is): never on a third user's process
    allowed = {me} | ({install.run_as[0]} if me == 0 and install.run_as is not None else set())
    foreign = [g for g in gateways if (g.uid is not None and g.uid not in allowed) or not g.environ_readable]
    if foreign:
        listing = "; ".join(gw_label(g) for g in gateways)
        owner = next((g.username or str(g.uid) for g in foreign if g.uid != me), "another user")
        raise env_error(
            f"the gateway for {install.state_dir} runs as {owner}, not as the user moltir runs as "
            f"(uid {me}): {listing}; nothing was signalled",
            f"run moltir as that user (e.g. sudo -u {owner} -H moltir ...), with the same --state-dir")


def _refuse_several(install: Install, gateways: list[Any]) -> None:
    if len(gateways) > 1:
        listing = "; ".join(gw_label(g) for g in gateways)
        raise env_error(
            f"{len(gateways)} gateways run for {install.state_dir}: {listing}; moltir stops exactly one "
            "verified gateway and signalled nothing",
            "stop the extra ones yourself (kill PID) or point moltir at the right one with "
            "--state-dir/--config, then run it again")


def _detect(install: Install, manager: Any, gw: Any | None, genv: dict[str, str], me: int) -> list[Any]:
    """Every unit / LaunchAgent of the install the service managers within reach know."""
    from moltir.openclaw import services

    found = services.detect(manager, gateway_pid=gw.pid if gw else None, gateway_env=genv)
    if me == 0:  # system units (OpenClaw's server installer) are within reach
        system = services.Manager(install, scope="system")
        found += services.detect(system, gateway_pid=gw.pid if gw else None, gateway_env=genv)
    return found


def _unsupervised(install: Install, manager: Any, gw: Any, genv: dict[str, str], me: int) -> list[str]:
    """Notes on a gateway no known service supervises; raises when a unit runs it that moltir cannot reach."""
    from moltir.openclaw import services

    unit, user = services.process_cgroup_unit(gw.pid)
    if unit and not user:
        owner = gw.username or (str(gw.uid) if gw.uid is not None else "its service user")
        hint_args = f" --state-dir {install.state_dir}" if me != 0 else ""
        raise env_error(
            f"the gateway {gw_label(gw)} runs under the system unit {unit} (as {owner}); stopping it and "
            "keeping it down needs root, and moltir signalled nothing" if me != 0 else
            f"the gateway {gw_label(gw)} runs under the system unit {unit}, but systemctl cannot show it; "
            "moltir signalled nothing",
            f"run it as root: sudo moltir contain{hint_args}" if me != 0 else
            f"check 'systemctl status {unit}', then run moltir again")
    if unit and user:
        _ok, why = manager.systemd_reachable()
        raise env_error(
            f"the gateway {gw_label(gw)} runs under the systemd user unit {unit}, but "
            f"'systemctl --user' cannot reach the user manager ({why or 'unit not found'}); nothing "
            "was signalled",
            "run moltir inside the user's session (XDG_RUNTIME_DIR set), or add with: {service: "
            "\"ignore\"} to the step to signal the process directly")
    if genv.get("OPENCLAW_SERVICE_MARKER") or genv.get("OPENCLAW_LAUNCHD_LABEL") or genv.get(
            "OPENCLAW_SYSTEMD_UNIT"):
        return ["the gateway's environment says a service manager started it, but no running "
                "unit or LaunchAgent was found; stopping the process directly"]
    return []


def fresh_survey(ctx: StepContext, max_age_s: float = 2.0) -> Survey:
    """The survey plan() just took (every second counts before the gateway is signalled), or a new one.
    Reusing it is safe: the pid is signalled only through ``GatewayProcess.process()``, which checks
    its create time, and whatever started since is caught by the stop's verify."""
    taken = ctx.memo.pop("survey", None)
    if taken is not None and time.monotonic() - taken[0] <= max_age_s:
        return taken[1]  # type: ignore[no-any-return]
    return survey(ctx.install, service_mode=str(ctx.params.get("service", "auto")))
