"""``gateway.stop``: snapshot, record, stop the gateway (through its supervisor when it has one) and
verify it stays down."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from typing import Any

from moltir.actions.base import Action, Change, Deferred, Param, Plan, RunOptions, StepContext, StepResult
from moltir.actions.gateway.common import POLL_S, step_timeout, utc_now
from moltir.actions.gateway.messages import gw_label, port_held, respawn_error, respawned_by_launcher, who_listens
from moltir.actions.gateway.records import free_name, restore_record
from moltir.actions.gateway.surveys import Survey, fresh_survey, live_processes, survey
from moltir.errors import EXIT_STEP_FAILED, MoltirError, env_error, verify_error
from moltir.openclaw import Install


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
        timeout = step_timeout(ctx, 15.0)
        if not sv.running:
            held = port_held(ctx.install)
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
            target = gw_label(gw) + (f" with wrapper pid {gw.wrapper_pid}" if gw.wrapper_pid else "")
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
            summary = f"stop the gateway {gw_label(gw)}"
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
                raise env_error(f"the gateway {gw_label(gw)} runs under the system unit {unit} (as {owner}): "
                                "containing it needs root", "run it as root: sudo moltir contain (it finds the "
                                f"unit's install by itself; --user {owner} names it)")

    def still_holds(self, ctx: StepContext) -> str | None:
        try:
            sv = survey(ctx.install, service_mode=str(ctx.params.get("service", "auto")))
        except MoltirError as exc:
            return exc.one_line()
        if not sv.running:
            return None
        what = gw_label(sv.gateway) if sv.gateway is not None else f"service {sv.supervisor.name}"  # type: ignore[union-attr]
        return f"the gateway is running again ({what})"

    # -- apply --
    def apply(self, ctx: StepContext) -> StepResult:
        from moltir.openclaw import processes as proc

        timeout = step_timeout(ctx, 15.0)
        sv = fresh_survey(ctx)
        if not sv.running:
            return _already_stopped(ctx, sv)
        gw = sv.gateway
        gproc, wproc = _live_or_gone(gw)

        # 1) volatile state, before any signal (RFC 3227)
        snapshot_rel = self._snapshot(ctx, sv, gproc, wproc)

        # 2) how it was running, before any change
        record = restore_record(ctx, sv, gproc)
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
            forced, elapsed = _stop_service(ctx, sv, roots, timeout, details, warnings)
        elif sv.container is not None:
            from moltir.actions.gateway import container

            extra, more, forced = container.stop(ctx, sv.container, timeout)
            details.update(extra)
            warnings.extend(more)
            elapsed = float(extra["elapsed_s"])
        else:
            assert gw is not None
            if not roots:
                return StepResult("already", f"gateway {gw_label(gw)} exited on its own before it was signalled",
                                  details, tuple(warnings))
            forced, elapsed = _stop_process(ctx, roots, timeout, details)
        details.update(forced=forced, elapsed_s=elapsed, stopped_at=time.time())
        ctx.event("gateway.stopped", forced=forced, elapsed_s=elapsed, mode=record["mode"])
        return _stopped(sv, timeout, forced, elapsed, details, warnings)

    def _snapshot(self, ctx: StepContext, sv: Survey, gproc: Any, wproc: Any) -> str:
        from moltir.openclaw import processes as proc

        snap: dict[str, Any] = {
            "taken_at": utc_now(), "install": ctx.install.describe(),
            "gateways": [g.to_dict() for g in sv.gateways],
            "tree": proc.snapshot_tree(gproc, wrapper=wproc) if gproc is not None else None,
        }
        rel = free_name(ctx.case.dir, "volatile/processes", ".json")
        ctx.case.write_json(rel, snap)
        if sv.services:
            srel = free_name(ctx.case.dir, "volatile/service", ".json")
            ctx.case.write_json(srel, {"taken_at": snap["taken_at"],
                                       "supervisor": sv.supervisor.name if sv.supervisor else None,
                                       "services": [s.to_dict() for s in sv.services]})
        if sv.container is not None:
            from moltir.actions.gateway.container import snapshot as container_snapshot

            ctx.event("gateway.container_evidence", **container_snapshot(ctx, sv.container))
        if sv.supervisor is not None and sv.supervisor.manager == "systemd" and gproc is not None:
            from moltir.actions.gateway.unit_evidence import keep_unit_evidence

            ctx.event("gateway.unit_evidence", **keep_unit_evidence(ctx, sv.manager, sv.supervisor, gproc))
        ctx.event("gateway.snapshot", path=rel,
                  processes=len(snap["tree"]["processes"]) if snap["tree"] else 0)
        return rel

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
            raise respawn_error(gws[0], since, result)
        if isinstance(launcher, Mapping):
            child = proc.respawned_by(ctx.install, launcher, since)
            if child is not None:
                raise respawned_by_launcher(child.pid, launcher)
        if result.details.get("container"):
            from moltir.actions.gateway.container import still_running

            back = still_running(ctx, result.details)
            if back is not None:
                raise verify_error(back, "stop it with the container engine, then run moltir again")
        open_ports = sorted(p for p in ports if gateway_http.port_open(p))
        if open_ports:
            who = who_listens(open_ports[0])
            raise verify_error(f"port {open_ports[0]} still accepts connections after the stop ({who})",
                               "stop that process, then run moltir again")


def _already_stopped(ctx: StepContext, sv: Survey) -> StepResult:
    held = port_held(ctx.install)
    if held is not None:
        raise held
    ctx.case.record_restore("gateway", {"was_running": False, "recorded_at": utc_now()})
    ctx.event("gateway.already_stopped", state_dir=str(ctx.install.state_dir))
    return StepResult("already", f"gateway already stopped (no gateway process for "
                                 f"{ctx.install.state_dir})", {"mode": None, "listen_ports": []},
                      warnings=tuple(sv.notes))


def _live_or_gone(gw: Any | None) -> tuple[Any, Any]:
    """The gateway's live process and its wrapper's; (None, None) when there is none or it has exited."""
    import psutil

    if gw is None:
        return None, None
    try:
        return live_processes(gw)
    except psutil.NoSuchProcess:
        return None, None  # exited between the survey and now


def _stop_service(ctx: StepContext, sv: Survey, roots: list[Any], timeout: float, details: dict[str, Any],
                  warnings: list[str]) -> tuple[bool, float]:
    """Stop the gateway through the service manager that supervises it: (forced, elapsed seconds)."""
    from moltir.openclaw import processes as proc
    from moltir.openclaw import services

    s = sv.supervisor
    assert s is not None
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
    if left and left.killed:
        warnings.append(f"killed {len(left.killed)} process(es) left behind by the service manager: "
                        f"{', '.join(map(str, left.killed))}")
    return res.forced or bool(left and left.forced), res.elapsed_s


def _stop_process(ctx: StepContext, roots: list[Any], timeout: float, details: dict[str, Any]) -> tuple[bool, float]:
    """SIGTERM the gateway (and its wrapper), SIGKILL what is left after ``timeout``: (forced, elapsed seconds)."""
    from moltir.openclaw import processes as proc

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
    details.update(killed=list(term.killed), exited=list(term.exited))
    return term.forced, term.elapsed_s


def _stopped(sv: Survey, timeout: float, forced: bool, elapsed: float, details: dict[str, Any],
             warnings: list[str]) -> StepResult:
    gw = sv.gateway
    who = gw_label(gw) if gw else f"service {sv.supervisor.name}" if sv.supervisor else "gateway"
    if gw is not None and gw.wrapper_pid:
        who += f" and its openclaw wrapper pid {gw.wrapper_pid}"
    via = f" through {sv.supervisor.manager}" if sv.supervisor is not None else ""
    if forced:
        summary = (f"gateway {who} did not stop within {timeout:g} s (drain hung): killed with SIGKILL{via} "
                   f"after {elapsed:.1f} s")
        return StepResult("forced", summary, details, tuple(warnings))
    return StepResult("done", f"gateway {who} stopped cleanly{via} in {elapsed:.1f} s", details,
                      tuple(warnings))


def _signalled_at(result: StepResult) -> float:
    """When the stop began, on the process create-time clock (``proc.create_clock``); 0 when
    nothing was signalled (already stopped), so any gateway found since is a new one."""
    at = result.details.get("signalled_at")
    return float(at) if isinstance(at, int | float) else 0.0
