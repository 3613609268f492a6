"""``gateway.stop`` and ``gateway.start``: take the gateway down (and keep it down), bring it back.

gateway.stop
    find the install's gateway (lock files first, then the process table; ``moltir.openclaw.processes``) →
    refuse, signalling nothing, when a candidate runs as another user or when several gateways
    run for one state dir → volatile snapshot BEFORE any signal (``volatile/processes.json``,
    plus ``volatile/service.json`` when a service manager knows the gateway) → record in
    restore.json (section ``gateway``) exactly how it was running → stop it: through systemd /
    launchd when one supervises it (``moltir.openclaw.services``), else SIGTERM the verified process (and,
    on 2026.1.29, its ``openclaw`` wrapper), wait ``timeout_s``, SIGKILL what is left of the tree.
    Never waits minutes on a drain. Result: ``done`` (clean), ``forced`` (SIGKILL needed) or
    ``already`` (nothing ran). verify: no gateway of the install, its ports refuse connections,
    and it stays so for ``settle_s`` seconds; a supervisor that respawns it is named (exit 5).

gateway.start
    through the recorded service manager (undoing exactly what stop did), or for a foreground
    gateway by launching the recorded argv (``<openclaw binary> gateway run`` derived from the
    install: the gateway's own argv is overwritten by its process title) detached, in a new
    session, stdin /dev/null, output appended to ``<state>/logs/moltir-gateway-start.log``, with
    the recorded selector environment; ``with: {command: [...]}`` overrides the argv. Never a
    ``--token`` on its command line. Healthy = an authenticated ``POST /tools/invoke`` with the
    token moltir holds answers 400. A timeout or an early exit fails with the gateway's own last
    error lines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltir.actions.base import Action, Change, Deferred, Param, Plan, RunOptions, StepContext, StepResult
from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, MoltirError, env_error, usage_error, verify_error
from moltir.openclaw import CREDENTIAL_VARS, Install

# Environment variables whose VALUES are recorded for a relaunch: they select the install or
# the runtime and never hold a credential. Every other variable is recorded by NAME only.
RELAUNCH_VARS = ("HOME", "OPENCLAW_HOME", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "OPENCLAW_PROFILE",
                 "OPENCLAW_GATEWAY_PORT", "CLAWDBOT_STATE_DIR", "CLAWDBOT_CONFIG_PATH", "TMPDIR", "PATH",
                 "NODE_EXTRA_CA_CERTS", "OPENCLAW_SKIP_CHANNELS")
SECRET_ARGS = ("--token", "--password", "--password-file")
START_LOG = "moltir-gateway-start.log"
POLL_S = 0.25
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_ERRORISH = re.compile(r"error|invalid|fail|blocked|problem|cannot|can't|refus|unrecognized|missing|denied|"
                       r"eaddrinuse|already|exception|fatal|unavailable", re.I)
_BOX = re.compile(r"[│├╮╯╭╰─◇┌└┐┘]+")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _timeout(ctx: StepContext, default: float) -> float:
    """The step-level ``timeout_s`` wins over the ``with: {timeout_s}`` one, which wins over ``default``."""
    if ctx.timeout_s:
        return float(ctx.timeout_s)
    value = ctx.params.get("timeout_s")
    return float(value) if isinstance(value, int | float) and value > 0 else default


def _gw_label(g: Any) -> str:
    port = f" port {g.port}" if g.port else ""
    user = f" user {g.username}" if g.username else (f" uid {g.uid}" if g.uid is not None else "")
    return f"pid {g.pid} ({g.name}{port}{user})"


# ---- survey: what runs, who supervises it, may we act -------------------------------------------

def find_gateways(install: Install) -> list[Any]:
    """The install's running gateway processes: on the host (moltir.openclaw.processes), else the main process of the
    container that runs it (its environment names the container's paths, not the host's)."""
    from moltir.openclaw import processes as proc

    found = proc.find_gateways(install)
    if found:
        return found
    from moltir.actions.gateway_container import find_container, gateway_of

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


def _process_env(pid: int) -> dict[str, str]:
    import psutil

    try:
        return dict(psutil.Process(pid).environ())
    except (psutil.Error, OSError):
        return {}


def survey(install: Install, *, service_mode: str = "auto") -> Survey:
    """Find the gateway and its supervisor; raise (nothing signalled) when acting would be unsafe."""
    from moltir.openclaw import processes as proc
    from moltir.openclaw import services

    gateways = proc.find_gateways(install)
    me = os.getuid()
    # moltir acts on its own user's gateway; as root also on the gateway of the user who owns the install
    # (a system unit's User=, whose state dir it is): never on a third user's process
    allowed = {me} | ({install.run_as[0]} if me == 0 and install.run_as is not None else set())
    foreign = [g for g in gateways if (g.uid is not None and g.uid not in allowed) or not g.environ_readable]
    if foreign:
        listing = "; ".join(_gw_label(g) for g in gateways)
        owner = next((g.username or str(g.uid) for g in foreign if g.uid != me), "another user")
        raise env_error(
            f"the gateway for {install.state_dir} runs as {owner}, not as the user moltir runs as "
            f"(uid {me}): {listing}; nothing was signalled",
            f"run moltir as that user (e.g. sudo -u {owner} -H moltir ...), with the same --state-dir")
    if len(gateways) > 1:
        listing = "; ".join(_gw_label(g) for g in gateways)
        raise env_error(
            f"{len(gateways)} gateways run for {install.state_dir}: {listing}; moltir stops exactly one "
            "verified gateway and signalled nothing",
            "stop the extra ones yourself (kill PID) or point moltir at the right one with "
            "--state-dir/--config, then run it again")
    gw = gateways[0] if gateways else None
    container = None
    if service_mode != "ignore":
        from moltir.actions.gateway_container import find_container, gateway_of

        container = find_container(install, gw.pid if gw else None)
        if container is not None and gw is None:
            found_gw = gateway_of(container, install)
            if found_gw is not None:
                gw, gateways = found_gw, [found_gw]
    manager = services.Manager(install)
    genv: dict[str, str] = {}
    if gw is not None:
        genv = _process_env(gw.wrapper_pid or gw.pid) or _process_env(gw.pid)
    notes: list[str] = []
    if service_mode == "ignore":
        return Survey(gateways, [], None, manager, genv, ["service manager ignored (service: ignore)"])
    if container is not None and container.systemd_unit:  # Quadlet / generate systemd: stopped through the unit
        genv = {**genv, "OPENCLAW_SYSTEMD_UNIT": container.systemd_unit}
    found = services.detect(manager, gateway_pid=gw.pid if gw else None, gateway_env=genv)
    if me == 0:  # system units (OpenClaw's server installer) are within reach
        system = services.Manager(install, scope="system")
        found += services.detect(system, gateway_pid=gw.pid if gw else None, gateway_env=genv)
    supervisor = next((s for s in found if services.is_supervising(s, gw.pid if gw else None)), None)
    if supervisor is not None and supervisor.scope == "system":
        manager = services.Manager(install, scope="system")
    if supervisor is None and container is not None:
        return Survey(gateways, found, None, manager, genv, notes=[], container=container)
    if gw is not None and supervisor is None:
        unit, user = services.process_cgroup_unit(gw.pid)
        if unit and not user:
            owner = gw.username or (str(gw.uid) if gw.uid is not None else "its service user")
            hint_args = f" --state-dir {install.state_dir}" if me != 0 else ""
            raise env_error(
                f"the gateway {_gw_label(gw)} runs under the system unit {unit} (as {owner}); stopping it and "
                "keeping it down needs root, and moltir signalled nothing" if me != 0 else
                f"the gateway {_gw_label(gw)} runs under the system unit {unit}, but systemctl cannot show it; "
                "moltir signalled nothing",
                f"run it as root: sudo moltir contain{hint_args}" if me != 0 else
                f"check 'systemctl status {unit}', then run moltir again")
        if unit and user:
            _ok, why = manager.systemd_reachable()
            raise env_error(
                f"the gateway {_gw_label(gw)} runs under the systemd user unit {unit}, but "
                f"'systemctl --user' cannot reach the user manager ({why or 'unit not found'}); nothing "
                "was signalled",
                "run moltir inside the user's session (XDG_RUNTIME_DIR set), or add with: {service: "
                "\"ignore\"} to the step to signal the process directly")
        if genv.get("OPENCLAW_SERVICE_MARKER") or genv.get("OPENCLAW_LAUNCHD_LABEL") or genv.get(
                "OPENCLAW_SYSTEMD_UNIT"):
            notes.append("the gateway's environment says a service manager started it, but no running "
                         "unit or LaunchAgent was found; stopping the process directly")
    return Survey(gateways, found, supervisor, manager, genv, notes)


def _fresh_survey(ctx: StepContext, max_age_s: float = 2.0) -> Survey:
    """The survey plan() just took (every second counts before the gateway is signalled), or a new one.
    Reusing it is safe: the pid is signalled only through ``GatewayProcess.process()``, which checks
    its create time, and whatever started since is caught by the stop's verify."""
    taken = ctx.memo.pop("survey", None)
    if taken is not None and time.monotonic() - taken[0] <= max_age_s:
        return taken[1]  # type: ignore[no-any-return]
    return survey(ctx.install, service_mode=str(ctx.params.get("service", "auto")))


# ---- gateway.stop -------------------------------------------------------------------------------

class GatewayStop(Action):
    name = "gateway.stop"
    description = ("Snapshot the gateway's processes, record how it ran, and stop it (through its service "
                   "manager when it has one), SIGKILL after timeout_s; verify it stays down.")
    params = {
        "timeout_s": Param((int, float), default=15,
                           help="seconds to wait after SIGTERM (or the manager's stop) before SIGKILL; "
                                "the step's own timeout_s wins when set"),
        "service": Param((str,), default="auto", choices=("auto", "ignore"),
                         help="auto: stop through systemd/launchd when one supervises the gateway; "
                              "ignore: signal the process directly"),
        "settle_s": Param((int, float), default=5,
                          help="seconds the gateway must stay down during verify (catches respawners)"),
    }

    def plan(self, ctx: StepContext) -> Plan:
        sv = survey(ctx.install, service_mode=str(ctx.params.get("service", "auto")))
        ctx.memo["survey"] = (time.monotonic(), sv)
        timeout = _timeout(ctx, 15.0)
        if not sv.running:
            held = _port_held(ctx.install)
            if held is not None:
                return Plan("no gateway process of this install found, but its port is served: this step will "
                            "fail", warnings=(held.one_line(), *sv.notes))
            return Plan(f"gateway already stopped (no gateway process for {ctx.install.state_dir})",
                        already_done=True, warnings=tuple(sv.notes))
        changes: list[Change] = []
        gw = sv.gateway
        if sv.supervisor is not None:
            s = sv.supervisor
            how = ("disable, mask --runtime, stop --no-block" if s.manager == "systemd" else "disable, bootout")
            changes.append(Change("service", f"{s.manager}:{s.name}", before=s.active_state, after="stopped",
                                  detail=f"{how}; SIGKILL through the manager after {timeout:g} s"))
        if gw is not None:
            target = _gw_label(gw) + (f" with wrapper pid {gw.wrapper_pid}" if gw.wrapper_pid else "")
            detail = ("stopped by the service manager" if sv.supervisor is not None
                      else f"SIGTERM, SIGKILL after {timeout:g} s")
            changes.append(Change("process", target, before="running", after="stopped", detail=detail))
        changes.append(Change("file", "volatile/processes.json", detail="process snapshot, taken before any signal"))
        if sv.container is not None and sv.supervisor is None:
            c = sv.container
            changes.insert(0, Change("container", f"{c.engine}:{c.name}", before="running", after="stopped",
                                     detail=f"{c.engine} stop -t {timeout:g} (restart policy {c.restart_policy} "
                                            "recorded)"))
        if gw is not None:
            summary = f"stop the gateway {_gw_label(gw)}"
        else:
            assert sv.supervisor is not None  # running: a gateway or a supervising service
            summary = f"stop the {sv.supervisor.manager} service {sv.supervisor.name}"
        return Plan(summary, tuple(changes), warnings=tuple(sv.notes))

    def preflight(self, install: Install, params: Mapping[str, Any], options: RunOptions) -> None:
        """Refused before anything changes: a gateway under a SYSTEM unit when moltir is not root. It
        cannot be stopped (nor its user's config edited) without root: one line naming the unit and
        the sudo command, instead of a run that edits nothing it may and fails at every step."""
        if os.geteuid() == 0 or params.get("service") == "ignore":
            return
        from moltir.openclaw import processes as proc
        from moltir.openclaw import services

        for gw in proc.find_gateways(install):
            unit, user_unit = services.process_cgroup_unit(gw.pid)
            if unit and not user_unit:
                owner = gw.username or (str(gw.uid) if gw.uid is not None else "its service user")
                raise env_error(f"the gateway {_gw_label(gw)} runs under the system unit {unit} (as {owner}): "
                                "containing it needs root", "run it as root: sudo moltir contain (it finds the "
                                f"unit's install by itself; --user {owner} names it)")

    def still_holds(self, ctx: StepContext) -> str | None:
        try:
            sv = survey(ctx.install, service_mode=str(ctx.params.get("service", "auto")))
        except MoltirError as exc:
            return exc.one_line()
        if not sv.running:
            return None
        what = _gw_label(sv.gateway) if sv.gateway is not None else f"service {sv.supervisor.name}"  # type: ignore[union-attr]
        return f"the gateway is running again ({what})"

    # -- apply --
    def apply(self, ctx: StepContext) -> StepResult:
        import psutil

        from moltir.openclaw import processes as proc
        from moltir.openclaw import services

        timeout = _timeout(ctx, 15.0)
        sv = _fresh_survey(ctx)
        if not sv.running:
            held = _port_held(ctx.install)
            if held is not None:
                raise held
            ctx.case.record_restore("gateway", {"was_running": False, "recorded_at": _now()})
            ctx.event("gateway.already_stopped", state_dir=str(ctx.install.state_dir))
            return StepResult("already", f"gateway already stopped (no gateway process for "
                                         f"{ctx.install.state_dir})", {"mode": None, "listen_ports": []},
                              warnings=tuple(sv.notes))
        gw = sv.gateway
        gproc = wproc = None
        if gw is not None:
            try:
                gproc = gw.process()
                wproc = psutil.Process(gw.wrapper_pid) if gw.wrapper_pid else None
            except psutil.NoSuchProcess:
                gproc = wproc = None  # exited between the survey and now

        # 1) volatile state, before any signal (RFC 3227)
        snapshot_rel = self._snapshot(ctx, sv, gproc, wproc)

        # 2) how it was running, before any change
        record = self._restore_record(ctx, sv, gproc)
        ctx.case.record_restore("gateway", record)
        ctx.event("gateway.recorded", mode=record["mode"], pid=record.get("pid"), port=record.get("port"))

        # 3) stop. A gateway process created after this moment is a restart, not the one stopped.
        details: dict[str, Any] = {
            "signalled_at": proc.create_clock(),
            "launcher": proc.launcher_of(gw) if gw else None,
            "mode": record["mode"], "pid": gw.pid if gw else None, "wrapper_pid": gw.wrapper_pid if gw else None,
            "port": gw.port if gw else None, "listen_ports": list(gw.listen_ports) if gw else [],
            "snapshot": snapshot_rel, "timeout_s": timeout,
        }
        warnings = list(sv.notes)
        roots = [p for p in (gproc, wproc) if p is not None]
        if sv.supervisor is not None:
            s = sv.supervisor
            ctx.event("gateway.service_stop", manager=s.manager, unit=s.name, timeout_s=timeout)
            ctx.waiting()  # the drain: the engine warms the next steps meanwhile
            res = services.stop(sv.manager, s, timeout_s=timeout)
            details["service"] = {"manager": s.manager, "name": s.name, "disabled": res.disabled,
                                  "masked": res.masked, "final_state": res.final_state,
                                  "commands": [" ".join(c.argv) for c in res.commands
                                               if not {"show", "print", "print-disabled"} & set(c.argv[1:3])]}
            warnings.extend(res.warnings)
            if not res.stopped:
                check = (f"{sv.manager.systemctl_words} status {s.name}" if s.manager == "systemd"
                         else f"launchctl print {sv.manager.domain}/{s.name}")
                raise MoltirError(
                    f"{s.manager} did not stop {s.name} within {timeout:g} s even after SIGKILL "
                    f"(state {res.final_state})",
                    hint=f"check '{check}', then run moltir again (it resumes)", exit_code=EXIT_STEP_FAILED)
            # the manager is done; whatever of the recorded tree survived it is no longer supervised
            left = proc.terminate_tree(roots, timeout_s=0.0, signal_roots=False) if roots else None
            forced = res.forced or bool(left and left.forced)
            elapsed = res.elapsed_s
            if left and left.killed:
                warnings.append(f"killed {len(left.killed)} process(es) left behind by the service manager: "
                                f"{', '.join(map(str, left.killed))}")
        elif sv.container is not None:
            from moltir.actions import gateway_container

            extra, more, forced = gateway_container.stop(ctx, sv.container, timeout)
            details.update(extra)
            warnings.extend(more)
            elapsed = float(extra["elapsed_s"])
        else:
            assert gw is not None
            if not roots:
                return StepResult("already", f"gateway {_gw_label(gw)} exited on its own before it was signalled",
                                  details, tuple(warnings))
            ctx.event("gateway.sigterm", pids=[p.pid for p in roots], timeout_s=timeout)

            def on_event(name: str, fields: Mapping[str, Any]) -> None:
                ctx.event(f"gateway.{name}", **fields)
                if name == "proc.sigterm":
                    ctx.waiting()  # signalled: while the gateway drains, the engine warms the next steps

            term = proc.terminate_tree(roots, timeout_s=timeout, on_event=on_event)
            if term.denied:
                raise env_error(f"permission denied signalling pid(s) {', '.join(map(str, term.denied))}",
                                "run moltir as the user who runs the gateway")
            if term.survivors:
                raise MoltirError(f"pid(s) {', '.join(map(str, term.survivors))} survived SIGKILL",
                                  hint="they are probably stuck in the kernel (state D); check 'ps -o pid,stat,"
                                       "wchan -p PID' and reboot if they never exit", exit_code=EXIT_STEP_FAILED)
            forced, elapsed = term.forced, term.elapsed_s
            details.update(killed=list(term.killed), exited=list(term.exited))
        details.update(forced=forced, elapsed_s=elapsed, stopped_at=time.time())
        ctx.event("gateway.stopped", forced=forced, elapsed_s=elapsed, mode=record["mode"])
        who = _gw_label(gw) if gw else f"service {sv.supervisor.name}" if sv.supervisor else "gateway"
        if gw is not None and gw.wrapper_pid:
            who += f" and its openclaw wrapper pid {gw.wrapper_pid}"
        via = f" through {sv.supervisor.manager}" if sv.supervisor is not None else ""
        if forced:
            summary = (f"gateway {who} did not stop within {timeout:g} s (drain hung): killed with SIGKILL{via} "
                       f"after {elapsed:.1f} s")
            return StepResult("forced", summary, details, tuple(warnings))
        return StepResult("done", f"gateway {who} stopped cleanly{via} in {elapsed:.1f} s", details,
                          tuple(warnings))

    def _snapshot(self, ctx: StepContext, sv: Survey, gproc: Any, wproc: Any) -> str:
        from moltir.openclaw import processes as proc

        snap: dict[str, Any] = {
            "taken_at": _now(), "install": ctx.install.describe(),
            "gateways": [g.to_dict() for g in sv.gateways],
            "tree": proc.snapshot_tree(gproc, wrapper=wproc) if gproc is not None else None,
        }
        rel = _free_name(ctx.case.dir, "volatile/processes", ".json")
        ctx.case.write_json(rel, snap)
        if sv.services:
            srel = _free_name(ctx.case.dir, "volatile/service", ".json")
            ctx.case.write_json(srel, {"taken_at": snap["taken_at"],
                                       "supervisor": sv.supervisor.name if sv.supervisor else None,
                                       "services": [s.to_dict() for s in sv.services]})
        if sv.container is not None:
            from moltir.actions.gateway_container import snapshot as container_snapshot

            ctx.event("gateway.container_evidence", **container_snapshot(ctx, sv.container))
        if sv.supervisor is not None and sv.supervisor.manager == "systemd" and gproc is not None:
            from moltir.actions.unit_evidence import keep_unit_evidence

            ctx.event("gateway.unit_evidence", **keep_unit_evidence(ctx, sv.manager, sv.supervisor, gproc))
        ctx.event("gateway.snapshot", path=rel,
                  processes=len(snap["tree"]["processes"]) if snap["tree"] else 0)
        return rel

    def _restore_record(self, ctx: StepContext, sv: Survey, gproc: Any) -> dict[str, Any]:
        inst = ctx.install
        gw = sv.gateway
        rec: dict[str, Any] = {"was_running": True, "recorded_at": _now(), "product": inst.product,
                               "version": inst.version, "state_dir": str(inst.state_dir),
                               "config_path": str(inst.config_path)}
        if gw is not None:
            rec.update(pid=gw.pid, create_time=gw.create_time, name=gw.name, user=gw.username, uid=gw.uid,
                       port=gw.port, listen_ports=list(gw.listen_ports), wrapper=gw.wrapper_pid is not None)
        if sv.supervisor is not None:
            s = sv.supervisor
            rec["mode"] = s.manager
            rec["service"] = {
                "manager": s.manager, "name": s.name, "path": s.path, "domain": s.domain,
                "active_state": s.active_state, "unit_file_state": s.unit_file_state, "was_enabled": s.enabled,
                "was_disabled": s.disabled,
                # what stop does, so start can undo it (recorded before doing it)
                "masked": s.manager == "systemd",
                "disabled": (s.unit_file_state == "enabled") if s.manager == "systemd" else not s.disabled,
                "scope": s.scope,
                "user": s.properties.get("User") or None,
            }
            return rec
        if sv.container is not None:
            from moltir.actions.gateway_container import record as container_record

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
        argv: list[str] | None = None
        if inst.binary is not None:
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
        rec["argv"] = argv
        rec["argv_source"] = ("derived from the install: the gateway's own argv is overwritten by its process "
                              "title" if argv else "unknown: openclaw binary not found; pass with: {command}")
        return rec

    # -- verify --
    def verify(self, ctx: StepContext, result: StepResult) -> Deferred | None:
        """Down now (no gateway, ports closed), then -- in the background, while the next steps
        run -- still down for ``settle_s`` seconds, so a respawning supervisor is caught."""
        settle = float(ctx.params.get("settle_s", 5) or 0)
        self._check_down(ctx, result)
        if settle <= 0:
            return None
        deadline = time.monotonic() + settle

        def watch() -> None:
            while time.monotonic() < deadline:
                time.sleep(POLL_S)
                self._check_down(ctx, result)

        return Deferred(watch, f"the gateway stays down for {settle:g} s")

    def _check_down(self, ctx: StepContext, result: StepResult) -> None:
        from moltir.openclaw import gateway_http
        from moltir.openclaw import processes as proc

        ports = {int(p) for p in (result.details.get("listen_ports") or [])}
        with contextlib.suppress(MoltirError):
            ports.add(ctx.install.gateway_port())
        since = _signalled_at(result)
        launcher = result.details.get("launcher")
        gws = proc.find_gateways(ctx.install, extra_ports=ports)
        if gws:
            raise _respawn_error(gws[0], since, result)
        if isinstance(launcher, Mapping):
            child = proc.respawned_by(ctx.install, launcher, since)
            if child is not None:
                raise _respawned_by_launcher(child.pid, launcher)
        if result.details.get("container"):
            from moltir.actions.gateway_container import still_running

            back = still_running(ctx, result.details)
            if back is not None:
                raise verify_error(back, "stop it with the container engine, then run moltir again")
        open_ports = sorted(p for p in ports if gateway_http.port_open(p))
        if open_ports:
            listeners = [proc.describe_pid(d["pid"]) if d.get("pid") else d
                         for d in proc.port_listeners(open_ports[0])]
            who = "; ".join(_describe_listener(d) for d in listeners) or "a process moltir cannot see"
            raise verify_error(f"port {open_ports[0]} still accepts connections after the stop ({who})",
                               "stop that process, then run moltir again")


def _port_held(install: Install) -> MoltirError | None:
    """"Already stopped" holds only when the install's port is closed too: a listener there that moltir
    cannot tie to the install (another user's process, a title moltir does not know) is an error naming
    it, never a gateway silently left up."""
    from moltir.openclaw import gateway_http
    from moltir.openclaw import processes as proc

    try:
        port = install.gateway_port()
    except MoltirError:
        return None
    if not gateway_http.port_open(port):
        return None
    listeners = [proc.describe_pid(d["pid"]) if d.get("pid") else d for d in proc.port_listeners(port)]
    who = "; ".join(_describe_listener(d) for d in listeners) or "a process moltir cannot see"
    return MoltirError(f"no gateway process of {install.state_dir} was found, but its port {port} is served by "
                       f"{who}: moltir cannot tell that it is this install's gateway and stopped nothing",
                       hint="if it is the gateway, stop it yourself (kill PID, or 'systemctl stop' its unit), then "
                            "run moltir again; if another program holds the port, the gateway is down",
                       exit_code=EXIT_STEP_FAILED)


def _describe_listener(d: Mapping[str, Any]) -> str:
    if not d.get("pid"):
        return "owner not visible (another user's process?)"
    from moltir.openclaw.processes import one_line, short_command

    cmd = short_command(d.get("cmdline") or []) or one_line(str(d.get("name") or "?"), 120)
    return f"pid {d['pid']} {d.get('name') or ''} [{cmd}]".strip()


def _signalled_at(result: StepResult) -> float:
    """When the stop began, on the process create-time clock (``proc.create_clock``); 0 when
    nothing was signalled (already stopped), so any gateway found since is a new one."""
    at = result.details.get("signalled_at")
    return float(at) if isinstance(at, int | float) else 0.0


def _respawn_error(gw: Any, since: float, result: StepResult) -> MoltirError:
    from moltir.openclaw import processes as proc

    if result.details.get("pid") == gw.pid or not proc.started_since(gw.create_time, since):
        return verify_error(f"the gateway {_gw_label(gw)} is still running after the stop",
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
        f"the gateway came back after the stop as {_gw_label(gw)}, started by {who}: a supervisor restarts it",
        "stop the supervisor (or the gateway through it), then run moltir again (it resumes at this step)")


def _respawned_by_launcher(pid: int, launcher: Mapping[str, Any]) -> MoltirError:
    from moltir.openclaw import processes as proc

    sup = proc.describe_pid(int(launcher["pid"]))
    cmd = proc.short_command(sup.get("cmdline") or []) or str(sup.get("name") or "?")
    return verify_error(
        f"the gateway came back after the stop as pid {pid} (still starting), started by pid {sup['pid']} "
        f"({sup.get('name')}: {cmd}), the process that had started the stopped gateway: "
        "a supervisor restarts it",
        "stop the supervisor (or the gateway through it), then run moltir again (it resumes at this step)")


def _free_name(case_dir: Path, stem: str, suffix: str) -> str:
    rel = f"{stem}{suffix}"
    n = 2
    while (case_dir / rel).exists():
        rel = f"{stem}-{n}{suffix}"
        n += 1
    return rel


# ---- gateway.start ------------------------------------------------------------------------------

def _refuse_taken_port(port: int) -> None:
    """Fail before launching when another process already listens on the gateway's port.

    Decision: no gateway of this install runs (checked just before), so whatever holds the
    port would make the gateway exit with EADDRINUSE after a slow start-up. Say at once who
    holds it (pid, name, command line) and start nothing; the restore resumes at this step once
    the port is free.
    """
    from moltir.openclaw import gateway_http
    from moltir.openclaw import processes as proc

    holders = proc.port_listeners(port)  # the socket table: a squatter with a full backlog refuses connects
    if not holders and not gateway_http.port_open(port):
        return
    who = "; ".join(_describe_listener(d) for d in holders) or "a process moltir cannot see (another user's?)"
    raise MoltirError(f"port {port} is already in use by {who}: the gateway cannot listen there, so it was not "
                      "started", hint="stop that process (or free the port), then run the same command again "
                                      "(it resumes at this step)", exit_code=EXIT_STEP_FAILED)


def _check_command(command: object) -> list[str] | None:
    if command is None:
        return None
    if not isinstance(command, list) or not command or not all(isinstance(a, str) and a for a in command):
        raise usage_error("gateway.start: 'command' must be a non-empty list of non-empty strings",
                          'e.g. with: { command: ["openclaw", "gateway", "run"] }')
    _refuse_secret_args(command)
    return list(command)


def _refuse_secret_args(argv: Sequence[str]) -> None:
    for arg in argv:
        if arg.partition("=")[0] in SECRET_ARGS:
            raise usage_error(f"gateway.start: refusing {arg.partition('=')[0]} on the gateway's command line "
                              "(any local user can read it)",
                              "put the credential in the config (or a SecretRef) and drop the flag")


_UNREADABLE = object()


def _configured_token(install: Install) -> Any:
    """``gateway.auth.token`` as configured (None when absent), or ``_UNREADABLE``."""
    try:
        cfg = install.read_config()
    except MoltirError:
        return _UNREADABLE
    gw = cfg.get("gateway")
    auth = gw.get("auth") if isinstance(gw, dict) else None
    return auth.get("token") if isinstance(auth, dict) else None


def _config_token(install: Install) -> str | None:
    tok = _configured_token(install)
    return tok if isinstance(tok, str) and tok and "${" not in tok else None


def _config_has_token(install: Install) -> bool:
    tok = _configured_token(install)
    return tok is _UNREADABLE or tok not in (None, "")  # unreadable: assume it has one (do not add one)


def _config_token_is_ref(install: Install) -> bool:
    return isinstance(_configured_token(install), dict)


def health_token(ctx: StepContext) -> tuple[str | None, str]:
    """(token, source) for the health check: the one this run holds (after token.rotate), else the
    config's plaintext token, else -- when the config points at a SecretRef -- moltir's keyring entry
    for the install (what token.rotate stored). None when moltir holds no token at all."""
    from moltir.redaction import register

    tok = ctx.shared.get("gateway_token")
    if isinstance(tok, str) and tok:
        register(tok)
        return tok, "run"
    tok = _config_token(ctx.install)
    if tok:
        register(tok)
        return tok, "config"
    if _config_token_is_ref(ctx.install):
        try:
            from moltir import keystore

            tok = keystore.read(keystore.SERVICE, keystore.entry_name(ctx.install))
        except MoltirError:
            tok = None
        if tok:
            return tok, "keyring"
    return None, "none"


def _port_from_argv(argv: Sequence[str]) -> int | None:
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "--port" and i + 1 < len(argv) else (
            arg.split("=", 1)[1] if arg.startswith("--port=") else None)
        if value and value.isdigit():
            return int(value)
    return None


def error_lines(text: str, limit: int = 3) -> list[str]:
    """The gateway's own last error-looking lines (ANSI and box drawing removed)."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = _BOX.sub(" ", _ANSI.sub("", raw)).strip()
        if not line or line.startswith("at ") or line.startswith("==="):
            continue
        lines.append(re.sub(r"\s+", " ", line))
    picked = [ln for ln in lines if _ERRORISH.search(ln)]
    out: list[str] = []
    for ln in (picked or lines)[::-1]:
        if ln not in out:
            out.append(ln)
        if len(out) >= limit:
            break
    return out[::-1]


class GatewayStart(Action):
    name = "gateway.start"
    description = ("Start the gateway the way it ran before the stop (service manager or detached foreground "
                   "process) and wait until it accepts the token moltir holds.")
    params = {
        "command": Param((list,), default=None,
                         help="argv to launch instead of the recorded one (never with --token)"),
        "timeout_s": Param((int, float), default=60, help="seconds to wait for the gateway to become healthy"),
    }

    def _how(self, ctx: StepContext) -> tuple[str, dict[str, Any]]:
        command = _check_command(ctx.params.get("command"))
        rec = ctx.case.restore_section("gateway")
        rec = dict(rec) if isinstance(rec, dict) else {}
        if command is not None:
            return "foreground", {**rec, "argv": command}
        if rec.get("was_running") is False:
            return "leave-stopped", rec
        mode = str(rec.get("mode") or "foreground")
        if mode == "foreground" and not rec.get("argv"):
            if ctx.install.binary is None:
                raise env_error("gateway.start: no recorded command and the openclaw binary was not found",
                                "pass --openclaw-bin PATH, or give the step with: {command: [...]}")
            rec["argv"] = ctx.install.command("gateway", "run")
        if mode == "foreground":
            _refuse_secret_args(rec["argv"])
        return mode, rec

    def plan(self, ctx: StepContext) -> Plan:

        mode, rec = self._how(ctx)
        gws = find_gateways(ctx.install)
        if gws:
            return Plan(f"gateway already running ({_gw_label(gws[0])}); check that it accepts the token",
                        already_done=True)
        if mode == "leave-stopped":
            return Plan("leave the gateway stopped: it was not running when it was contained", already_done=True)
        if mode == "foreground":
            log = Path(ctx.install.state_dir) / "logs" / START_LOG
            return Plan(f"launch {' '.join(rec['argv'])} detached (log {log})",
                        (Change("process", " ".join(rec["argv"]), before="stopped", after="running",
                                detail=f"env: {', '.join(sorted(rec.get('env', {})))}"),))
        if mode == "container":
            cont = rec.get("container") or {}
            return Plan(f"start the {cont.get('engine')} container {cont.get('name')}",
                        (Change("container", f"{cont.get('engine')}:{cont.get('name')}", before="stopped",
                                after="running", detail=f"restart policy {cont.get('restart_policy')}"),))
        svc = rec.get("service") or {}
        return Plan(f"start {mode} service {svc.get('name')}",
                    (Change("service", f"{mode}:{svc.get('name')}", before="stopped", after="running"),))

    def apply(self, ctx: StepContext) -> StepResult:

        mode, rec = self._how(ctx)
        timeout = _timeout(ctx, 60.0)
        token, token_source = health_token(ctx)
        warnings: list[str] = []
        if token is None:
            warnings.append("no gateway token known to moltir (SecretRef or env): health means 'answers HTTP', "
                            "not 'accepts the token'")
        port = self._port(ctx, rec)
        gws = find_gateways(ctx.install)
        if gws:
            status = self._wait_healthy(port, token, time.monotonic() + timeout, None)
            if status == "healthy":
                return StepResult("already", f"gateway already running and healthy ({_gw_label(gws[0])})",
                                  {"pid": gws[0].pid, "port": port, "token_source": token_source},
                                  tuple(warnings))
            raise MoltirError(f"a gateway is running ({_gw_label(gws[0])}) but is not healthy after "
                              f"{timeout:g} s: {status}", hint="check its log, or stop it and run again",
                              exit_code=EXIT_STEP_FAILED)
        if mode == "leave-stopped":
            return StepResult("skipped", "left stopped: the gateway was not running when it was contained",
                              {"mode": None})
        _refuse_taken_port(port)
        ctx.event("gateway.start", mode=mode, port=port, token_source=token_source)
        if mode == "foreground":
            return self._start_foreground(ctx, rec, port, token, token_source, timeout, warnings)
        if mode == "container":
            from moltir.actions import gateway_container

            return gateway_container.start(ctx, rec, self._wait_healthy, port, token, token_source, timeout,
                                           warnings)
        return self._start_service(ctx, mode, rec, port, token, token_source, timeout, warnings)

    def _port(self, ctx: StepContext, rec: Mapping[str, Any]) -> int:
        argv = rec.get("argv") if rec.get("mode", "foreground") == "foreground" else None
        from_argv = _port_from_argv(argv) if isinstance(argv, list) else None
        if from_argv:
            return from_argv
        try:
            return ctx.install.gateway_port()
        except MoltirError:  # invalid config: the gateway will say why it cannot start
            port = rec.get("port")
            return int(port) if isinstance(port, int) else 18789

    def _wait_healthy(self, port: int, token: str | None, deadline: float,
                      popen: subprocess.Popen[bytes] | None) -> str:
        """"healthy", "exited:<rc>", or the last thing seen at the deadline."""
        from moltir.openclaw import gateway_http

        last = "not listening"
        while True:
            if popen is not None and popen.poll() is not None:
                return f"exited:{popen.returncode}"
            status = gateway_http.token_status(port, token or "moltir-health-probe", timeout=3.0)
            if status == gateway_http.ACCEPTED or (token is None and status != gateway_http.DOWN):
                return "healthy"
            if status == gateway_http.REFUSED:
                last = "it answers but refuses the token moltir holds (HTTP 401)"
            elif status != gateway_http.DOWN:
                last = f"HTTP {status}"
            if time.monotonic() >= deadline:
                return last
            time.sleep(POLL_S)

    def _start_foreground(self, ctx: StepContext, rec: Mapping[str, Any], port: int, token: str | None,
                          token_source: str, timeout: float, warnings: list[str]) -> StepResult:
        from moltir.fsutil import ensure_private_dir, os_error
        from moltir.openclaw.processes import scrub_argv
        from moltir.redaction import fingerprint

        inst = ctx.install
        argv = list(rec["argv"])
        _refuse_secret_args(argv)
        recorded_env = {k: v for k, v in dict(rec.get("env") or {}).items()
                        if k in RELAUNCH_VARS and isinstance(v, str)}
        env = inst.child_env(recorded_env)
        for var in CREDENTIAL_VARS:
            env.pop(var, None)
        names = set(rec.get("env_names") or [])
        if token and token_source == "run" and not _config_has_token(inst) and (  # noqa: S105
                {"OPENCLAW_GATEWAY_TOKEN", "CLAWDBOT_GATEWAY_TOKEN"} & names):
            # the install takes its token from the environment (none in the config): it needs it there
            env["OPENCLAW_GATEWAY_TOKEN"] = token
            warnings.append("the gateway reads its token from OPENCLAW_GATEWAY_TOKEN (none in the config); "
                            "moltir passed the new token in its environment")
        cwd = rec.get("cwd") if isinstance(rec.get("cwd"), str) and Path(rec["cwd"]).is_dir() else None
        cwd = cwd or (str(inst.state_dir) if inst.state_dir.is_dir() else str(inst.home))
        log_dir = Path(env.get("OPENCLAW_STATE_DIR") or inst.state_dir) / "logs"
        log_path = log_dir / START_LOG
        ensure_private_dir(log_dir)
        shown = scrub_argv(argv)
        try:
            with log_path.open("ab") as log:
                os.chmod(log_path, 0o600)
                if inst.run_as is not None:  # root starting another user's gateway: its files stay its own
                    os.chown(log_dir, *inst.run_as)
                    os.chown(log_path, *inst.run_as)
                offset = log.tell()
                log.write(f"=== moltir gateway.start {_now()} argv={shown} cwd={cwd}\n".encode())
                log.flush()
                who: dict[str, Any] = ({"user": inst.run_as[0], "group": inst.run_as[1], "extra_groups": []}
                                       if inst.run_as is not None else {})  # root: never start it as root
                popen = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, **who)
        except FileNotFoundError:
            raise env_error(f"gateway.start: {argv[0]}: no such executable",
                            "pass --openclaw-bin PATH or fix the step's command") from None
        except PermissionError:
            raise env_error(f"gateway.start: {argv[0]}: permission denied", "check the file's mode") from None
        except OSError as exc:
            raise os_error(exc, f"starting {argv[0]}") from None
        ctx.event("gateway.launched", pid=popen.pid, argv=shown, cwd=cwd, log=str(log_path),
                  env_names=sorted(recorded_env))
        status = self._wait_healthy(port, token, time.monotonic() + timeout, popen)
        details: dict[str, Any] = {"mode": "foreground", "pid": popen.pid, "port": port, "argv": shown,
                                   "log": str(log_path), "token_source": token_source,
                                   "token_fingerprint": fingerprint(token) if token else None}
        if status == "healthy":
            ctx.event("gateway.healthy", pid=popen.pid, port=port)
            return StepResult("done", f"gateway started (pid {popen.pid}, port {port}) and "
                                      f"{'accepts the token' if token else 'answers'}", details, tuple(warnings))
        lines = error_lines(_read_from(log_path, offset))
        said = f": {' | '.join(lines)}" if lines else ""
        if status.startswith("exited:"):
            raise MoltirError(f"the gateway exited with code {status.split(':', 1)[1]} before it was healthy{said}",
                              hint=f"see {log_path}; fix the cause and run moltir again", exit_code=EXIT_STEP_FAILED)
        raise MoltirError(f"the gateway (pid {popen.pid}) is not healthy after {timeout:g} s ({status}){said}",
                          hint=f"it is still running; see {log_path}", exit_code=EXIT_STEP_FAILED)

    def _start_service(self, ctx: StepContext, mode: str, rec: Mapping[str, Any], port: int, token: str | None,
                       token_source: str, timeout: float, warnings: list[str]) -> StepResult:
        from moltir.openclaw import services
        from moltir.redaction import fingerprint

        svc = dict(rec.get("service") or {})
        scope: services.Scope = "system" if svc.get("scope") == "system" else "user"
        manager = services.Manager(ctx.install, scope=scope)
        if scope == "system" and os.getuid() != 0:
            raise env_error(f"the gateway ran under the system unit {svc.get('name')}: starting it again needs root",
                            "run it as root: sudo moltir restore")
        results = services.start(manager, svc)
        bad = services.failed(results, allow=("bootstrap", "unmask"))
        ctx.event("gateway.service_start", manager=mode, unit=str(svc.get("name")),
                  commands=[" ".join(r.argv) for r in results], failed=[r.line() for r in bad])
        if bad:
            raise MoltirError(f"{' '.join(bad[0].argv)} failed: {bad[0].line()}",
                              hint="fix the service, then run moltir again", exit_code=EXIT_ENV)
        status = self._wait_healthy(port, token, time.monotonic() + timeout, None)
        details = {"mode": mode, "service": svc.get("name"), "port": port, "token_source": token_source,
                   "commands": [" ".join(r.argv) for r in results],
                   "token_fingerprint": fingerprint(token) if token else None}
        if status == "healthy":
            return StepResult("done", f"{mode} service {svc.get('name')} started; the gateway "
                                      f"{'accepts the token' if token else 'answers'} on port {port}",
                              details, tuple(warnings))
        lines = error_lines(_tail_text(_gateway_log(ctx.install)))
        said = f": {' | '.join(lines)}" if lines else ""
        raise MoltirError(f"{mode} service {svc.get('name')} started but the gateway is not healthy after "
                          f"{timeout:g} s ({status}){said}",
                          hint=(f"see '{manager.systemctl_words} status {svc.get('name')}' and 'journalctl "
                                f"{'--user ' if scope == 'user' else ''}-u {svc.get('name')}'" if mode == "systemd"
                                else "see the LaunchAgent's log"),
                          exit_code=EXIT_STEP_FAILED)

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        from moltir.openclaw import gateway_http

        if result.status == "skipped":
            return
        port = int(result.details.get("port") or self._port(ctx, {}))
        token, _ = health_token(ctx)
        status = gateway_http.token_status(port, token or "moltir-health-probe")
        if token is not None and status != gateway_http.ACCEPTED:
            raise verify_error(f"the gateway on port {port} does not accept the token moltir holds "
                               f"(HTTP {status or 'no answer'})", "check the gateway's log and auth config")
        if token is None and status == gateway_http.DOWN:
            raise verify_error(f"nothing answers on port {port}", "check the gateway's log")
        if not find_gateways(ctx.install):
            raise verify_error(f"something answers on port {port} but it is not this install's gateway",
                               "check what listens there (ss -ltnp)")


def _read_from(path: Path, offset: int, limit: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
    except OSError:
        return ""
    from moltir.redaction import redact

    return redact(data.decode("utf-8", errors="replace"))


def _tail_text(path: Path | None, limit: int = 64 * 1024) -> str:
    if path is None:
        return ""
    try:
        size = path.stat().st_size
    except OSError:
        return ""
    return _read_from(path, max(0, size - limit), limit)


def _gateway_log(install: Install) -> Path | None:
    """The gateway's own file log: ``logging.file``, else today's default under $TMPDIR/openclaw."""
    try:
        cfg = install.read_config()
    except MoltirError:
        cfg = {}
    logging_cfg = cfg.get("logging")
    path = logging_cfg.get("file") if isinstance(logging_cfg, dict) else None
    if isinstance(path, str) and path:
        return Path(path).expanduser()
    day = dt.date.today().isoformat()
    for folder in install.tmp_log_dirs():
        candidate = folder / f"openclaw-{day}.log"
        if candidate.exists():
            return candidate
    return None


# ---- restart the way it runs (for a release that cannot re-read its token in-process) -------------

def restart_running(ctx: StepContext, token: str | None, timeout_s: float) -> str:
    """Restart the running gateway the way it runs and wait until it answers on ``token``: through
    its service manager (``systemctl restart`` / ``launchctl kickstart -k``), else by stopping the
    verified foreground process (SIGTERM, SIGKILL after ``timeout_s``) and launching the command
    recorded from it (:meth:`GatewayStop._restore_record`: argv derived from the install, the
    selector environment, the working folder). Returns how it restarted, for the step's result.

    Used by token.rotate when the release has no in-process re-read it honours (no restart signal
    for another process, config reload off): the drill then still proves the new token live."""
    from moltir.openclaw import processes as proc

    sv = survey(ctx.install)
    if not sv.running:
        raise env_error("the gateway is not running", "start it, then run again")
    deadline = time.monotonic() + max(timeout_s, 30.0)
    if sv.supervisor is not None:
        s = sv.supervisor
        res = (sv.manager.systemctl("restart", "--no-block", s.name) if s.manager == "systemd"
               else sv.manager.launchctl("kickstart", "-k", f"{sv.manager.domain}/{s.name}"))
        ctx.event("gateway.service_restart", manager=s.manager, unit=s.name, ok=res.ok)
        if not res.ok:
            raise MoltirError(f"{' '.join(res.argv)} failed: {res.line()}", hint="restart the gateway yourself",
                              exit_code=EXIT_STEP_FAILED)
        port = sv.gateway.port if sv.gateway is not None and sv.gateway.port else ctx.install.gateway_port()
        status = GatewayStart()._wait_healthy(port, token, deadline, None)
        if status != "healthy":
            raise MoltirError(f"{s.manager} restarted {s.name} but the gateway is not healthy ({status})",
                              hint="check the service's log", exit_code=EXIT_STEP_FAILED)
        return f"{s.manager} restart of {s.name}"
    gw = sv.gateway
    assert gw is not None
    import psutil

    try:
        gproc = gw.process()
        wproc = psutil.Process(gw.wrapper_pid) if gw.wrapper_pid else None
    except psutil.NoSuchProcess:
        raise MoltirError("the gateway exited before moltir could restart it", hint="start it again",
                          exit_code=EXIT_STEP_FAILED) from None
    record = GatewayStop()._restore_record(ctx, sv, gproc)
    if not record.get("argv"):
        raise env_error("cannot restart the gateway: the openclaw binary was not found",
                        "restart it yourself, or pass --openclaw-bin PATH")
    ctx.event("gateway.restart", pid=gw.pid, argv=record["argv"])
    term = proc.terminate_tree([p for p in (gproc, wproc) if p is not None], timeout_s=timeout_s)
    if term.denied or term.survivors:
        raise MoltirError(f"could not stop the gateway pid {gw.pid} to restart it", hint="restart it yourself",
                          exit_code=EXIT_STEP_FAILED)
    port = gw.port or ctx.install.gateway_port()
    warnings: list[str] = []
    started = GatewayStart()._start_foreground(ctx, record, port, token, "run", max(1.0, deadline - time.monotonic()),
                                               warnings)
    return f"stopped pid {gw.pid} and started the recorded command again (pid {started.details['pid']})"
