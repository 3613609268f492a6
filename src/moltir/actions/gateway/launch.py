"""Bring the gateway back the way it ran: launch the recorded command detached (a foreground gateway),
or start its service again; then wait until it is healthy."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from moltir.actions.base import StepContext, StepResult
from moltir.actions.gateway.common import RELAUNCH_VARS, SECRET_ARGS, START_LOG, utc_now
from moltir.actions.gateway.health import config_has_token, wait_healthy
from moltir.actions.gateway.logs import error_lines, gateway_log, read_from, tail_text
from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, MoltirError, env_error, usage_error
from moltir.openclaw import CREDENTIAL_VARS, Install


def refuse_secret_args(argv: Sequence[str]) -> None:
    for arg in argv:
        if arg.partition("=")[0] in SECRET_ARGS:
            raise usage_error(f"gateway.start: refusing {arg.partition('=')[0]} on the gateway's command line "
                              "(any local user can read it)",
                              "put the credential in the config (or a SecretRef) and drop the flag")


def start_foreground(ctx: StepContext, rec: Mapping[str, Any], port: int, token: str | None,
                     token_source: str, timeout: float, warnings: list[str]) -> StepResult:
    """Launch the recorded argv detached (new session, stdin /dev/null, output appended to the start
    log) with the recorded selector environment; done once it is healthy, else its last error lines."""
    from moltir.fsutil import ensure_private_dir
    from moltir.openclaw.processes import scrub_argv
    from moltir.redaction import fingerprint

    inst = ctx.install
    argv = list(rec["argv"])
    refuse_secret_args(argv)
    recorded_env = {k: v for k, v in dict(rec.get("env") or {}).items()
                    if k in RELAUNCH_VARS and isinstance(v, str)}
    env = _launch_env(inst, rec, recorded_env, token, token_source, warnings)
    cwd = rec.get("cwd") if isinstance(rec.get("cwd"), str) and Path(rec["cwd"]).is_dir() else None
    cwd = cwd or (str(inst.state_dir) if inst.state_dir.is_dir() else str(inst.home))
    log_dir = Path(env.get("OPENCLAW_STATE_DIR") or inst.state_dir) / "logs"
    log_path = log_dir / START_LOG
    ensure_private_dir(log_dir)
    shown = scrub_argv(argv)
    popen, offset = _launch(inst, argv, shown, env, cwd, log_path)
    ctx.event("gateway.launched", pid=popen.pid, argv=shown, cwd=cwd, log=str(log_path),
              env_names=sorted(recorded_env))
    status = wait_healthy(port, token, time.monotonic() + timeout, popen)
    details: dict[str, Any] = {"mode": "foreground", "pid": popen.pid, "port": port, "argv": shown,
                               "log": str(log_path), "token_source": token_source,
                               "token_fingerprint": fingerprint(token) if token else None}
    if status == "healthy":
        ctx.event("gateway.healthy", pid=popen.pid, port=port)
        return StepResult("done", f"gateway started (pid {popen.pid}, port {port}) and "
                                  f"{'accepts the token' if token else 'answers'}", details, tuple(warnings))
    lines = error_lines(read_from(log_path, offset))
    said = f": {' | '.join(lines)}" if lines else ""
    if status.startswith("exited:"):
        raise MoltirError(f"the gateway exited with code {status.split(':', 1)[1]} before it was healthy{said}",
                          hint=f"see {log_path}; fix the cause and run moltir again", exit_code=EXIT_STEP_FAILED)
    raise MoltirError(f"the gateway (pid {popen.pid}) is not healthy after {timeout:g} s ({status}){said}",
                      hint=f"it is still running; see {log_path}", exit_code=EXIT_STEP_FAILED)


def _launch_env(inst: Install, rec: Mapping[str, Any], recorded_env: dict[str, str], token: str | None,
                token_source: str, warnings: list[str]) -> dict[str, str]:
    """The install's environment with the recorded selectors, no credential but the token the gateway
    needs there (one it reads from the environment only)."""
    env = inst.child_env(recorded_env)
    for var in CREDENTIAL_VARS:
        env.pop(var, None)
    names = set(rec.get("env_names") or [])
    if token and token_source == "run" and not config_has_token(inst) and (  # noqa: S105
            {"OPENCLAW_GATEWAY_TOKEN", "CLAWDBOT_GATEWAY_TOKEN"} & names):
        # the install takes its token from the environment (none in the config): it needs it there
        env["OPENCLAW_GATEWAY_TOKEN"] = token
        warnings.append("the gateway reads its token from OPENCLAW_GATEWAY_TOKEN (none in the config); "
                        "moltir passed the new token in its environment")
    return env


def _launch(inst: Install, argv: list[str], shown: list[str], env: dict[str, str], cwd: str,
            log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv`` detached, its output appended to ``log_path``: (the process, where its output begins)."""
    from moltir.fsutil import os_error

    try:
        with log_path.open("ab") as log:
            os.chmod(log_path, 0o600)
            if inst.run_as is not None:  # root starting another user's gateway: its files stay its own
                os.chown(log_path.parent, *inst.run_as)
                os.chown(log_path, *inst.run_as)
            offset = log.tell()
            log.write(f"=== moltir gateway.start {utc_now()} argv={shown} cwd={cwd}\n".encode())
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
    return popen, offset


def start_service(ctx: StepContext, mode: str, rec: Mapping[str, Any], port: int, token: str | None,
                  token_source: str, timeout: float, warnings: list[str]) -> StepResult:
    """Start the recorded systemd unit / LaunchAgent again (undoing what stop did); done once healthy."""
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
    status = wait_healthy(port, token, time.monotonic() + timeout, None)
    details = {"mode": mode, "service": svc.get("name"), "port": port, "token_source": token_source,
               "commands": [" ".join(r.argv) for r in results],
               "token_fingerprint": fingerprint(token) if token else None}
    if status == "healthy":
        return StepResult("done", f"{mode} service {svc.get('name')} started; the gateway "
                                  f"{'accepts the token' if token else 'answers'} on port {port}",
                          details, tuple(warnings))
    lines = error_lines(tail_text(gateway_log(ctx.install)))
    said = f": {' | '.join(lines)}" if lines else ""
    raise MoltirError(f"{mode} service {svc.get('name')} started but the gateway is not healthy after "
                      f"{timeout:g} s ({status}){said}",
                      hint=(f"see '{manager.systemctl_words} status {svc.get('name')}' and 'journalctl "
                            f"{'--user ' if scope == 'user' else ''}-u {svc.get('name')}'" if mode == "systemd"
                            else "see the LaunchAgent's log"),
                      exit_code=EXIT_STEP_FAILED)
