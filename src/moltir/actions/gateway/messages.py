"""How gateways and port listeners are named in messages, and the errors that name them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moltir.actions.base import StepResult
from moltir.errors import EXIT_STEP_FAILED, MoltirError, verify_error
from moltir.openclaw import Install


def gw_label(g: Any) -> str:
    port = f" port {g.port}" if g.port else ""
    user = f" user {g.username}" if g.username else (f" uid {g.uid}" if g.uid is not None else "")
    return f"pid {g.pid} ({g.name}{port}{user})"


def describe_listener(d: Mapping[str, Any]) -> str:
    if not d.get("pid"):
        return "owner not visible (another user's process?)"
    from moltir.openclaw.processes import one_line, short_command

    cmd = short_command(d.get("cmdline") or []) or one_line(str(d.get("name") or "?"), 120)
    return f"pid {d['pid']} {d.get('name') or ''} [{cmd}]".strip()


def who_listens(port: int) -> str:
    """Every process that listens on ``port``, for one message line."""
    from moltir.openclaw import processes as proc

    listeners = [proc.describe_pid(d["pid"]) if d.get("pid") else d for d in proc.port_listeners(port)]
    return "; ".join(describe_listener(d) for d in listeners) or "a process moltir cannot see"


def port_held(install: Install) -> MoltirError | None:
    """"Already stopped" holds only when the install's port is closed too: a listener there that moltir
    cannot tie to the install (another user's process, a title moltir does not know) is an error naming
    it, never a gateway silently left up."""
    from moltir.openclaw import gateway_http

    try:
        port = install.gateway_port()
    except MoltirError:
        return None
    if not gateway_http.port_open(port):
        return None
    who = who_listens(port)
    return MoltirError(f"no gateway process of {install.state_dir} was found, but its port {port} is served by "
                       f"{who}: moltir cannot tell that it is this install's gateway and stopped nothing",
                       hint="if it is the gateway, stop it yourself (kill PID, or 'systemctl stop' its unit), then "
                            "run moltir again; if another program holds the port, the gateway is down",
                       exit_code=EXIT_STEP_FAILED)


def respawn_error(gw: Any, since: float, result: StepResult) -> MoltirError:
    from moltir.openclaw import processes as proc

    if result.details.get("pid") == gw.pid or not proc.started_since(gw.create_time, since):
        return verify_error(f"the gateway {gw_label(gw)} is still running after the stop",
                            "stop it by hand (kill -KILL PID) and find out what keeps it alive")
    chain = proc.ancestry(gw.pid)
    # the respawner: the first ancestor that is not openclaw's own wrapper
    respawner = next((a for a in chain if a.get("name") not in proc.WRAPPER_NAMES), chain[0] if chain else None)
    if respawner is None:
        who = "an unknown process"
    else:
        cmd = proc.short_command(respawner.get("cmdline") or []) or str(respawner.get("name") or "?")
        who = f"pid {respawner['pid']} ({respawner.get('name')}: {cmd})"
        if respawner["pid"] == 1:
            who += ", the init system: a system-level service restarts it"
    return verify_error(
        f"the gateway came back after the stop as {gw_label(gw)}, started by {who}: a supervisor restarts it",
        "stop the supervisor (or the gateway through it), then run moltir again (it resumes at this step)")


def respawned_by_launcher(pid: int, launcher: Mapping[str, Any]) -> MoltirError:
    from moltir.openclaw import processes as proc

    sup = proc.describe_pid(int(launcher["pid"]))
    cmd = proc.short_command(sup.get("cmdline") or []) or str(sup.get("name") or "?")
    return verify_error(
        f"the gateway came back after the stop as pid {pid} (still starting), started by pid {sup['pid']} "
        f"({sup.get('name')}: {cmd}), the process that had started the stopped gateway: "
        "a supervisor restarts it",
        "stop the supervisor (or the gateway through it), then run moltir again (it resumes at this step)")
