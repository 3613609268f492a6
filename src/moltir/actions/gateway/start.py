"""``gateway.start``: start the gateway the way it ran before the stop and wait until it is healthy."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult
from moltir.actions.gateway.common import START_LOG, step_timeout
from moltir.actions.gateway.health import health_token, wait_healthy
from moltir.actions.gateway.launch import refuse_secret_args, start_foreground, start_service
from moltir.actions.gateway.messages import describe_listener, gw_label
from moltir.actions.gateway.surveys import find_gateways
from moltir.errors import EXIT_STEP_FAILED, MoltirError, env_error, usage_error, verify_error


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
            refuse_secret_args(rec["argv"])
        return mode, rec

    def plan(self, ctx: StepContext) -> Plan:

        mode, rec = self._how(ctx)
        gws = find_gateways(ctx.install)
        if gws:
            return Plan(f"gateway already running ({gw_label(gws[0])}); check that it accepts the token",
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
        timeout = step_timeout(ctx, 60.0)
        token, token_source = health_token(ctx)
        warnings: list[str] = []
        if token is None:
            warnings.append("no gateway token known to moltir (SecretRef or env): health means 'answers HTTP', "
                            "not 'accepts the token'")
        port = self._port(ctx, rec)
        gws = find_gateways(ctx.install)
        if gws:
            status = wait_healthy(port, token, time.monotonic() + timeout, None)
            if status == "healthy":
                return StepResult("already", f"gateway already running and healthy ({gw_label(gws[0])})",
                                  {"pid": gws[0].pid, "port": port, "token_source": token_source},
                                  tuple(warnings))
            raise MoltirError(f"a gateway is running ({gw_label(gws[0])}) but is not healthy after "
                              f"{timeout:g} s: {status}", hint="check its log, or stop it and run again",
                              exit_code=EXIT_STEP_FAILED)
        if mode == "leave-stopped":
            return StepResult("skipped", "left stopped: the gateway was not running when it was contained",
                              {"mode": None})
        _refuse_taken_port(port)
        ctx.event("gateway.start", mode=mode, port=port, token_source=token_source)
        if mode == "foreground":
            return start_foreground(ctx, rec, port, token, token_source, timeout, warnings)
        if mode == "container":
            from moltir.actions.gateway import container

            return container.start(ctx, rec, wait_healthy, port, token, token_source, timeout, warnings)
        return start_service(ctx, mode, rec, port, token, token_source, timeout, warnings)

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
    who = "; ".join(describe_listener(d) for d in holders) or "a process moltir cannot see (another user's?)"
    raise MoltirError(f"port {port} is already in use by {who}: the gateway cannot listen there, so it was not "
                      "started", hint="stop that process (or free the port), then run the same command again "
                                      "(it resumes at this step)", exit_code=EXIT_STEP_FAILED)


def _check_command(command: object) -> list[str] | None:
    if command is None:
        return None
    if not isinstance(command, list) or not command or not all(isinstance(a, str) and a for a in command):
        raise usage_error("gateway.start: 'command' must be a non-empty list of non-empty strings",
                          'e.g. with: { command: ["openclaw", "gateway", "run"] }')
    refuse_secret_args(command)
    return list(command)


def _port_from_argv(argv: Sequence[str]) -> int | None:
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "--port" and i + 1 < len(argv) else (
            arg.split("=", 1)[1] if arg.startswith("--port=") else None)
        if value and value.isdigit():
            return int(value)
    return None
