"""Boot safety: the gateway refuses to start when its exec helper fails (shared/research/openclaw-run.md
§9). :func:`boot_check` runs the helper the way the gateway will: same user, the environment of the
running gateway (or of the systemd user manager that starts it, or this shell when neither is known),
reduced to ``passEnv``, the request on stdin, the provider's timeout."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moltir.errors import EXIT_ENV, MoltirError
from moltir.keystore.entries import SERVICE, entry_name, read
from moltir.keystore.launcher import (
    HELPER_TIMEOUT_MS,
    PASS_ENV,
    PROVIDER_ALIAS,
    exec_path_problem,
    helper_wrapper_path,
    wrapper_text,
)
from moltir.redaction import fingerprint, register

if TYPE_CHECKING:
    from moltir.openclaw import Install


@dataclass(frozen=True)
class BootEnv:
    env: dict[str, str] = field(repr=False)
    source: str  # "running gateway pid 123" | "systemd user manager (unit)" | "this shell"
    service_managed: bool = False


def _systemd_user_env(install: Install) -> BootEnv | None:
    import shutil

    if not shutil.which("systemctl"):
        return None
    for unit in install.systemd_units():
        try:
            state = subprocess.run(["systemctl", "--user", "show", unit, "-p", "LoadState", "-p",
                                    "Environment", "--no-pager"], capture_output=True, text=True, timeout=5,
                                   check=False, env=install.child_env())
        except (OSError, subprocess.TimeoutExpired):
            return None
        if state.returncode != 0 or "LoadState=loaded" not in state.stdout:
            continue
        try:
            manager = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True,
                                     text=True, timeout=5, check=False, env=install.child_env())
        except (OSError, subprocess.TimeoutExpired):
            return None
        env: dict[str, str] = {}
        for line in manager.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                env[key] = value
        for line in state.stdout.splitlines():
            if line.startswith("Environment="):
                for item in shlex.split(line[len("Environment="):]):
                    key, sep, value = item.partition("=")
                    if sep:
                        env[key] = value
        return BootEnv(env, f"systemd user manager ({unit})", service_managed=True)
    return None


def gateway_env(install: Install, pid: int | None = None) -> BootEnv:
    """The environment the gateway (re)starts with, as well as moltir can tell."""
    if pid is not None:
        try:
            import psutil

            return BootEnv(dict(psutil.Process(pid).environ()), f"running gateway pid {pid}")
        except Exception:  # noqa: S110 - psutil.Error and friends: fall through to the next source
            pass
    managed = _systemd_user_env(install)
    if managed is not None:
        return managed
    return BootEnv(dict(install.env), "this shell (the gateway is not running and no service unit was found)")


@dataclass(frozen=True)
class BootCheck:
    ok: bool
    source: str
    detail: str  # one line: what happened (fingerprints only)
    fingerprint: str | None = None  # of the value the helper returned
    duration_ms: int = 0


def run_helper(command: str, args: Sequence[str], env: Mapping[str, str], ids: Sequence[str], *,
               timeout_s: float = HELPER_TIMEOUT_MS / 1000) -> tuple[int, dict[str, Any] | None, str]:
    """Run the helper like OpenClaw does (no shell, request on stdin). Returns (rc, response, stderr line)."""
    request = json.dumps({"protocolVersion": 1, "provider": PROVIDER_ALIAS, "ids": list(ids)})
    try:
        proc = subprocess.run([command, *args], input=request, capture_output=True, text=True,
                              env=dict(env), timeout=timeout_s, check=False, cwd="/")
    except subprocess.TimeoutExpired:
        return -1, None, f"timed out after {timeout_s:.0f} s"
    except OSError as exc:
        return -1, None, f"cannot run {command}: {exc.strerror}"
    err = " ".join(proc.stderr.split())[:300]
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        data = None
    return proc.returncode, data if isinstance(data, dict) else None, err


def _ask(command: str, args: Sequence[str], where: BootEnv, entry: str) -> tuple[int, dict[str, Any] | None, str, int]:
    """Run the helper for ``entry`` with only the ``passEnv`` variables of ``where``: (rc, response,
    stderr line, ms)."""
    env = {k: where.env[k] for k in PASS_ENV if k in where.env}
    started = time.monotonic()
    rc, data, err = run_helper(command, args, env, [entry])
    return rc, data, err, int((time.monotonic() - started) * 1000)


def _failed(where: BootEnv, rc: int, err: str, ms: int) -> BootCheck:
    return BootCheck(False, where.source, f"the helper failed there (rc {rc}): {err or 'no JSON on stdout'}",
                     duration_ms=ms)


def _value(data: Mapping[str, Any], entry: str) -> Any:
    """What the helper's response holds for ``entry`` (None when nothing)."""
    values = data.get("values") if isinstance(data.get("values"), dict) else {}
    return values.get(entry) if isinstance(values, dict) else None


def boot_check(install: Install, command: str, args: Sequence[str], *, expected: str | None = None,
               pid: int | None = None, boot_env: BootEnv | None = None, entry: str | None = None) -> BootCheck:
    """Can the gateway's helper read the token (``entry``, default the install's) in the gateway's env?"""
    where = boot_env or gateway_env(install, pid)
    problem = exec_path_problem(command)
    if problem:
        return BootCheck(False, where.source, f"OpenClaw would refuse the helper: {problem}")
    entry = entry or entry_name(install)
    rc, data, err, ms = _ask(command, args, where, entry)
    if rc != 0 or data is None:
        return _failed(where, rc, err, ms)
    value = _value(data, entry)
    if not isinstance(value, str):
        errors = data.get("errors")
        item = errors.get(entry) if isinstance(errors, dict) else None
        code = item.get("code", "no value") if isinstance(item, dict) else "no value"
        return BootCheck(False, where.source, f"the helper returned no token for {entry} ({code})",
                         duration_ms=ms)
    register(value)
    fp = fingerprint(value)
    if expected is not None and value != expected:
        return BootCheck(False, where.source,
                         f"the helper returned token {fp}, not the expected {fingerprint(expected)}", fp, ms)
    return BootCheck(True, where.source, f"the helper returned token {fp} in {ms} ms", fp, ms)


def _launch_as_installed(install: Install, backend: str, where: BootEnv) -> tuple[str, list[str]]:
    """(command, args) that run the helper as the launcher would: the launcher itself when it is installed
    and current (its path checked as OpenClaw checks it: :func:`boot_refusal` when it would be refused),
    else this interpreter with ``-I -m moltir.secret_helper``."""
    wrapper = helper_wrapper_path(install.env)
    try:
        current = wrapper.is_file() and not wrapper.is_symlink() and wrapper.read_bytes() == wrapper_text().encode()
    except OSError:
        current = False
    if not current:
        return sys.executable, ["-I", "-m", "moltir.secret_helper", "--backend", backend]
    problem = exec_path_problem(str(wrapper))
    if problem:
        raise boot_refusal(BootCheck(False, where.source, f"OpenClaw would refuse the helper: {problem}"))
    return str(wrapper), ["--backend", backend]


def boot_preflight(install: Install, backend: str, pid: int | None) -> BootCheck:
    """The boot-safety check BEFORE a run changes anything (``token.rotate``'s preflight): can the
    helper read this install's keyring entry in the environment of the gateway ``pid``? Raises
    :func:`boot_refusal` (exit 3, one line) when it cannot; returns the passed check.

    Side-effect free: nothing is written (no staging entry, no launcher), unlike the check in
    ``token.rotate``'s apply, which proves the helper returns the NEW token from a staging entry
    through the launcher it installs. Here the helper runs as the launcher would run it (this
    interpreter, ``-I -m moltir.secret_helper --backend BACKEND``; the launcher itself when it is
    already installed and current, so OpenClaw's path checks are included), with only the
    ``passEnv`` variables of the gateway's environment, and reads the entry moltir keeps:

    * the helper fails there (no D-Bus session, a locked keyring, a backend that cannot load):
      refused -- the gateway could not read its token either;
    * it returns something other than what moltir reads here (another token, or nothing while
      moltir holds one): refused -- the gateway's environment reaches another keyring;
    * both see no entry yet (the first rotation): the keyring answered, which is what this check
      can prove without writing; the apply-time check with the staging token still runs.
    """
    where = gateway_env(install, pid)
    entry = entry_name(install)
    command, args = _launch_as_installed(install, backend, where)
    mine = read(SERVICE, entry)
    rc, data, err, ms = _ask(command, args, where, entry)
    if rc != 0 or data is None:
        raise boot_refusal(_failed(where, rc, err, ms))
    value = _value(data, entry)
    if isinstance(value, str):
        register(value)
    if mine is not None and value != mine:
        got = f"token {fingerprint(value)}" if isinstance(value, str) else "no token"
        raise boot_refusal(BootCheck(False, where.source, f"the helper read {got} for {entry} there, not the "
                                                          f"{fingerprint(mine)} moltir reads here: the gateway's "
                                                          "environment reaches another keyring", duration_ms=ms))
    detail = (f"the helper read the token {fingerprint(value)} there in {ms} ms" if isinstance(value, str)
              else f"the keyring answered the helper there in {ms} ms (no token stored yet)")
    return BootCheck(True, where.source, detail, fingerprint(value) if isinstance(value, str) else None, ms)


def boot_refusal(check: BootCheck) -> MoltirError:
    """The error that stops a switch to the keyring when the helper would fail at gateway start."""
    return MoltirError(
        f"the gateway could not read its token from the keyring ({check.source}): {check.detail}",
        hint="choose: give the gateway the D-Bus session of an unlocked keyring (DBUS_SESSION_BUS_ADDRESS in "
             "the environment it starts in; 'moltir doctor' re-checks) and run again; or keep the token in the "
             "0600 config with the keyring copy as the record: copy the runbook ('moltir runbook show drill' or "
             "'contain'), give its token.rotate step with: {mode: \"plaintext\"} and pass --runbook",
        exit_code=EXIT_ENV)
