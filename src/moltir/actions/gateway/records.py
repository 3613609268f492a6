"""What gateway.stop records in restore.json (section ``gateway``) before it changes anything: exactly
how the gateway was running, so that gateway.start (and ``restart_running``) bring it back the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moltir.actions.base import StepContext
from moltir.actions.gateway.common import RELAUNCH_VARS, utc_now
from moltir.actions.gateway.surveys import Survey
from moltir.errors import MoltirError
from moltir.openclaw import CREDENTIAL_VARS, Install


def restore_record(ctx: StepContext, sv: Survey, gproc: Any) -> dict[str, Any]:
    inst = ctx.install
    gw = sv.gateway
    rec: dict[str, Any] = {"was_running": True, "recorded_at": utc_now(), "product": inst.product,
                           "version": inst.version, "state_dir": str(inst.state_dir),
                           "config_path": str(inst.config_path)}
    if gw is not None:
        rec.update(pid=gw.pid, create_time=gw.create_time, name=gw.name, user=gw.username, uid=gw.uid,
                   port=gw.port, listen_ports=list(gw.listen_ports), wrapper=gw.wrapper_pid is not None)
    if sv.supervisor is not None:
        rec["mode"] = sv.supervisor.manager
        rec["service"] = _service_record(sv.supervisor)
        return rec
    if sv.container is not None:
        from moltir.actions.gateway.container import record as container_record

        rec["mode"] = "container"
        rec["container"] = container_record(sv.container)
        return rec
    rec["mode"] = "foreground"
    env = sv.gateway_env
    rec["env"] = {k: env[k] for k in RELAUNCH_VARS if k in env and k not in CREDENTIAL_VARS}
    rec["env_names"] = sorted(env)
    import psutil

    try:
        rec["cwd"] = gproc.cwd() if gproc is not None else None
    except (psutil.Error, OSError):  # best effort
        rec["cwd"] = None
    argv = _relaunch_argv(inst, gw)
    rec["argv"] = argv
    rec["argv_source"] = ("derived from the install: the gateway's own argv is overwritten by its process "
                          "title" if argv else "unknown: openclaw binary not found; pass with: {command}")
    return rec


def _service_record(s: Any) -> dict[str, Any]:
    return {
        "manager": s.manager, "name": s.name, "path": s.path, "domain": s.domain,
        "active_state": s.active_state, "unit_file_state": s.unit_file_state, "was_enabled": s.enabled,
        "was_disabled": s.disabled,
        # what stop does, so start can undo it (recorded before doing it)
        "masked": s.manager == "systemd",
        "disabled": (s.unit_file_state == "enabled") if s.manager == "systemd" else not s.disabled,
        "scope": s.scope,
        "user": s.properties.get("User") or None,
    }


def _relaunch_argv(inst: Install, gw: Any | None) -> list[str] | None:
    """The command that runs the gateway again (derived from the install), None without a binary."""
    if inst.binary is None:
        return None
    # a named profile's gateway is relaunched with its profile (its environment may not name it)
    sel = ["--dev"] if inst.profile == "dev" else (["--profile", inst.profile] if inst.profile else [])
    argv = inst.command(*sel, "gateway", "run")
    try:
        config_port = inst.gateway_port()
    except MoltirError:
        config_port = None
    if gw is not None and gw.port and gw.port != config_port:
        # it ran on a port its config does not name (--port). 2026.1.x/clawdbot define --port on
        # both `gateway` and `gateway run`, and commander gives it to the parent, so `gateway run
        # --port N` listens on the config's port there; `gateway --port N` (the parent's default
        # action is run) listens on N on every release (seen on 2026.1.29, 2026.8.2, 2026.9.6)
        argv = inst.command(*sel, "gateway", "--port", str(gw.port))
    return argv


def free_name(case_dir: Path, stem: str, suffix: str) -> str:
    rel = f"{stem}{suffix}"
    n = 2
    while (case_dir / rel).exists():
        rel = f"{stem}-{n}{suffix}"
        n += 1
    return rel
