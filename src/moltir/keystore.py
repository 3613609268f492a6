"""The OS keyring, as moltir uses it for the gateway token; and the secret helper's wiring.

Where the token lives
    service ``moltir``, entry ``gateway-token:<install key>`` (:func:`entry_name`), where the
    install key is the first 16 hex of the SHA-256 of the real state dir
    (:attr:`moltir.openclaw.Install.key`): one entry per OpenClaw install and profile, stable
    across runs. The entry name doubles as the exec SecretRef ``id`` the gateway asks the
    helper for, so the helper needs no configuration of its own.

Backends (shared/research/ir-anchors.md §C.2)
    :func:`preflight` names the backend keyring chose and refuses the ones that are no
    keyring at all (``fail``: raises on every call; ``null``: stores nothing), whatever the
    flags; plaintext file backends (``keyrings.alt`` PlaintextKeyring and friends, and any
    chain holding one) only with ``allow_insecure=True`` (``--allow-insecure-keyring``). It then
    reads one (absent) entry, which is what makes a Secret Service collection unlock: a locked
    or missing keyring fails here, before anything has changed. NoKeyringError, InitError,
    KeyringLocked and D-Bus errors become one-line :class:`MoltirError` s with exit code 3.

The secret helper
    OpenClaw's exec provider runs ``command`` with no shell and only the ``passEnv`` variables;
    it refuses a command that is a symlink, group/world-writable or not owned by the gateway's
    user (``dist/exec-provider-path-validation-*.mjs``). A console script in a venv is often a
    symlink (pipx), root-owned (system install) or group-writable (umask 002), so moltir writes
    its own launcher, :func:`helper_wrapper_path` = ``<moltir home>/bin/moltir-secret``, mode 0700
    in a 0700 folder, that execs *this* interpreter with ``-I -m moltir.secret_helper``
    (isolated: PYTHONPATH and friends cannot change what the gateway runs). The keyring backend
    moltir stored the token with is pinned in the provider's ``args`` (``--backend``), so the
    helper reads exactly where moltir wrote.

Boot safety
    The gateway refuses to start when its exec helper fails (shared/research/openclaw-run.md §9).
    :func:`boot_check` runs the helper the way the gateway will: same user, the environment of
    the running gateway (or of the systemd user manager that starts it, or this shell when
    neither is known), reduced to ``passEnv``, the request on stdin, the provider's timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltir import paths
from moltir.errors import EXIT_ENV, MoltirError, env_error
from moltir.fsutil import atomic_write, ensure_private_dir
from moltir.redaction import fingerprint, register

if TYPE_CHECKING:
    from moltir.openclaw import Install

SERVICE = "moltir"
PROVIDER_ALIAS = "moltir"
HELPER_NAME = "moltir-secret"
HELPER_TIMEOUT_MS = 10000
# What the helper needs from the gateway's environment: HOME (keyring config and file backends),
# PATH, the D-Bus session bus (Secret Service, KWallet), XDG dirs (bus socket fallback, keyringrc).
PASS_ENV = ("HOME", "PATH", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME")

# Backends that are no keyring at all: refused whatever the flags.
NO_KEYRING = ("keyring.backends.fail.Keyring", "keyring.backends.null.Keyring")

_HINT_DBUS = ("start a D-Bus session with an unlocked Secret Service (log in to the desktop; on a headless "
              "host: dbus-run-session + 'gnome-keyring-daemon --unlock'), then run again")
_HINT_UNLOCK = ("unlock the keyring (log in to the desktop session; on a headless host: "
                "'echo PASSWORD | gnome-keyring-daemon --unlock --replace'), then run again")
_HINT_INSECURE = ("use a real keyring (Secret Service, macOS Keychain), or pass --allow-insecure-keyring "
                  "to accept a plaintext keyring file")


def entry_name(install: Install) -> str:
    """The keyring entry (and exec SecretRef id) holding this install's gateway token."""
    return f"gateway-token:{install.key}"


# ---- backends ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackendInfo:
    name: str  # fully qualified class, e.g. "keyring.backends.SecretService.Keyring"
    label: str  # human: "SecretService Keyring"
    priority: float | None
    chain: tuple[str, ...] = ()  # for a ChainerBackend: the chained backends
    insecure: bool = False  # a plaintext file (accepted only with --allow-insecure-keyring)

    def describe(self) -> str:
        text = self.label
        if self.chain:
            text += " [" + ", ".join(".".join(c.rsplit(".", 2)[-2:]) for c in self.chain) + "]"
        if self.insecure:
            text += " (INSECURE: plaintext file)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "priority": self.priority, "chain": list(self.chain),
                "insecure": self.insecure}


def _qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def backend_name(backend: object) -> str:
    """The backend's name as :class:`BackendInfo` has it, without asking the backend anything."""
    return _qualname(backend)


def is_plaintext(name: str) -> bool:
    """A backend that keeps secrets in a readable file (keyrings.alt's PlaintextKeyring and kin)."""
    module, _, cls = name.rpartition(".")
    return "plaintext" in cls.lower() or (module.startswith("keyrings.alt") and "Encrypted" not in cls
                                           and module.endswith(".file"))


def _priority(backend: object) -> float | None:
    try:
        value = type(backend).priority  # type: ignore[attr-defined]
    except Exception:
        return None
    return float(value) if isinstance(value, int | float) else None


def describe_backend(backend: object) -> BackendInfo:
    name = _qualname(backend)
    label = f"{type(backend).__module__.rsplit('.', 1)[-1]} {type(backend).__name__}"
    chain: tuple[str, ...] = ()
    if type(backend).__name__ == "ChainerBackend":
        with contextlib.suppress(Exception):
            chain = tuple(_qualname(b) for b in type(backend).backends)  # type: ignore[attr-defined]
    insecure = is_plaintext(name) or any(is_plaintext(c) or c in NO_KEYRING for c in chain)
    return BackendInfo(name, label, _priority(backend), chain, insecure)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300].rstrip(".!")


def translate(exc: BaseException, backend: str = "") -> MoltirError:
    """A keyring failure as a one-line error (exit 3) that says how to fix it."""
    kind = type(exc).__name__
    where = f" ({backend})" if backend else ""
    msg = _one_line(exc)
    if kind == "NoKeyringError":
        return env_error("no keyring backend is available" + where, _HINT_DBUS)
    if kind == "KeyringLocked":
        return env_error(f"the keyring is locked{where}: {msg}", _HINT_UNLOCK)
    if kind == "InitError":
        return env_error(f"the keyring could not be opened{where}: {msg}", _HINT_UNLOCK)
    if kind in ("SecretServiceNotAvailableException", "DBusErrorResponse", "ItemNotFoundException") \
            or "DBUS_SESSION_BUS_ADDRESS" in msg or "D-Bus" in msg or "dbus" in msg.lower():
        return env_error(f"the Secret Service is not reachable{where}: {msg}", _HINT_DBUS)
    if isinstance(exc, EOFError):
        return env_error(f"the keyring backend{where} asks for a password on a terminal", _HINT_INSECURE)
    return env_error(f"the keyring failed{where}: {kind}: {msg}",
                     "run 'keyring diagnose' to see which backend is used, fix it, then run again")


def _keyring_errors() -> tuple[type[BaseException], ...]:
    import keyring.errors

    errors: list[type[BaseException]] = [keyring.errors.KeyringError, EOFError, RuntimeError, OSError]
    with contextlib.suppress(ImportError):
        import secretstorage.exceptions

        errors.append(secretstorage.exceptions.SecretStorageException)
    with contextlib.suppress(ImportError):
        import jeepney.wrappers  # type: ignore[import-untyped]

        errors.append(jeepney.wrappers.DBusErrorResponse)
    return tuple(errors)


def get_backend() -> Any:
    """keyring's backend (env PYTHON_KEYRING_BACKEND > keyringrc.cfg > best available)."""
    import keyring

    try:
        return keyring.get_keyring()
    except (ImportError, AttributeError, ValueError) as exc:
        raise env_error(f"the configured keyring backend cannot be loaded: {_one_line(exc)}",
                        "fix PYTHON_KEYRING_BACKEND or keyringrc.cfg ('keyring diagnose' shows where)"
                        ) from None
    except Exception as exc:
        raise translate(exc) from None


def check_backend(info: BackendInfo, allow_insecure: bool) -> None:
    """Refuse what is no keyring at all, and plaintext backends unless allowed (exit 3). No I/O."""
    chosen = os.environ.get("PYTHON_KEYRING_BACKEND", "")
    if info.name == "keyring.backends.fail.Keyring":
        if chosen.endswith("fail.Keyring"):
            raise env_error(f"no keyring backend is available (PYTHON_KEYRING_BACKEND={chosen})",
                            "unset PYTHON_KEYRING_BACKEND (or name a real keyring in it), then run again")
        raise env_error("no keyring backend is available (keyring fell back to fail.Keyring)", _HINT_DBUS)
    if info.name == "keyring.backends.null.Keyring":
        raise env_error("the keyring backend is null.Keyring, which stores nothing",
                        "unset PYTHON_KEYRING_BACKEND or fix keyringrc.cfg, and use a real keyring")
    if info.insecure and not allow_insecure:
        raise env_error(f"the keyring backend {info.describe()} keeps secrets in a plaintext file",
                        _HINT_INSECURE)


def preflight(allow_insecure: bool) -> BackendInfo:
    """Check the keyring is usable before anything changes; raise exit 3 when it is not."""
    backend = get_backend()
    info = describe_backend(backend)
    check_backend(info, allow_insecure)
    try:
        backend.get_password(SERVICE, "preflight-probe")  # opens (and unlocks) the collection
    except _keyring_errors() as exc:
        raise translate(exc, info.label) from None
    return info


SYSTEM_NO_KEYRING = "moltir.keystore.RunOnly"
_RUN_ONLY_SET = False  # this process uses the run-only keyring (see preflight_for)


def _run_only() -> Any:
    """A keyring that lives as long as this moltir run: for a system install with no usable keyring."""
    from keyring.backend import KeyringBackend

    class RunOnly(KeyringBackend):
        priority = 0.0

        values: dict[tuple[str, str], str]

        def get_password(self, service: str, entry: str) -> str | None:
            return self.values.get((service, entry))

        def set_password(self, service: str, entry: str, value: str) -> None:
            self.values[(service, entry)] = value

        def delete_password(self, service: str, entry: str) -> None:
            self.values.pop((service, entry), None)

    backend = RunOnly()  # type: ignore[no-untyped-call]
    backend.values = {}
    return backend


def preflight_for(install: Install, allow_insecure: bool) -> BackendInfo:
    """:func:`preflight`, except where the gateway cannot read this account's keyring anyway
    (:attr:`Install.keyring_unreachable`: a system unit's ``User=openclaw`` with moltir as root, a
    container): the token goes into its 0600 config (plaintext mode) and a keyring copy is only a
    record; with no usable keyring that record is skipped (the config is the one copy) instead of
    refusing containment."""
    global _RUN_ONLY_SET
    info = BackendInfo(SYSTEM_NO_KEYRING, "no keyring (system install: the token is only in the 0600 config)", None)
    if _RUN_ONLY_SET:
        return info
    try:
        return preflight(allow_insecure)
    except MoltirError:
        if install.keyring_unreachable is None:
            raise
    import keyring

    keyring.set_keyring(_run_only())
    _RUN_ONLY_SET = True
    return info


# ---- the token entry --------------------------------------------------------------------------

def read(service: str, entry: str, *, backend: Any | None = None) -> str | None:
    """The stored value, or None. Keyring failures -> exit 3."""
    kr = get_backend() if backend is None else backend
    try:
        value = kr.get_password(service, entry)
    except _keyring_errors() as exc:
        raise translate(exc, describe_backend(kr).label) from None
    if value is not None:
        register(value)
    return value if isinstance(value, str) else None


def pinned_backend_name(config: Mapping[str, Any]) -> str | None:
    """The backend moltir pinned in ``secrets.providers.moltir.args`` (``--backend X``): where the gateway reads."""
    provider = _configured_provider(config)
    args = provider.get("args") if provider is not None else None
    if not isinstance(args, list):
        return None
    for i, arg in enumerate(args):
        if arg == "--backend" and i + 1 < len(args) and isinstance(args[i + 1], str):
            return str(args[i + 1])
        if isinstance(arg, str) and arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


def pinned_backend(config: Mapping[str, Any]) -> Any | None:
    """The keyring backend the running gateway's helper reads (the one pinned in the config), keyring's
    own choice when none is pinned, or None when the pinned one cannot be loaded here (then what the
    current backend holds may be a stale copy: the caller treats the token as unknown).

    A drill run from another environment (a timer with another ``PYTHON_KEYRING_BACKEND``) or a backend
    switch must read the PREVIOUS token where the gateway reads it, not a stale copy in the current
    backend: that is the token it must prove refused, and the one a rollback puts back."""
    current = get_backend()
    name = pinned_backend_name(config)
    if not name or name == _qualname(current):
        return current
    from moltir.secret_helper import load_backend

    try:
        return load_backend(name)
    except Exception:
        return None


def store(service: str, entry: str, token: str, *, backend: Any | None = None) -> str:
    """Store ``token``, read it back, compare. Returns the fingerprint. Failures -> exit 3."""
    register(token)
    kr = get_backend() if backend is None else backend
    label = describe_backend(kr).label
    try:
        kr.set_password(service, entry, token)
        back = kr.get_password(service, entry)
    except _keyring_errors() as exc:
        raise translate(exc, label) from None
    if back != token:
        got = fingerprint(back) if isinstance(back, str) else "nothing"
        raise MoltirError(f"the keyring ({label}) did not return the token just stored in {service}/{entry} "
                          f"(stored {fingerprint(token)}, read back {got})",
                          hint="check the keyring backend ('keyring diagnose'); "
                               "the gateway config was not changed",
                          exit_code=EXIT_ENV)
    return fingerprint(token)


def delete(service: str, entry: str, *, backend: Any | None = None) -> bool:
    kr = get_backend() if backend is None else backend
    try:
        kr.delete_password(service, entry)
    except _keyring_errors():
        return False
    return True


# ---- the helper: where it is, whether OpenClaw accepts it ---------------------------------------

def helper_wrapper_path(env: Mapping[str, str] | None = None) -> Path:
    return paths.moltir_home(env) / "bin" / HELPER_NAME


def wrapper_text(python: str | None = None) -> str:
    python = python or sys.executable
    return ("#!/bin/sh\n"
            "# moltir secret helper for OpenClaw's exec secret provider\n"
            "# (generated by moltir; rewritten by every token rotation)\n"
            f"exec {shlex.quote(python)} -I -m moltir.secret_helper \"$@\"\n")


def install_helper_wrapper(env: Mapping[str, str] | None = None, python: str | None = None) -> Path:
    """Write (or refresh) ``<moltir home>/bin/moltir-secret``: 0700, ours, exec'ing this interpreter."""
    path = helper_wrapper_path(env)
    ensure_private_dir(path.parent)
    data = wrapper_text(python).encode()
    try:
        current = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        mode_ok = current is not None and stat.S_IMODE(path.stat().st_mode) == 0o700
    except OSError:
        current, mode_ok = None, False
    if current != data or not mode_ok:
        if path.is_symlink():
            path.unlink()
        atomic_write(path, data, mode=0o700)
    return path


def launcher_problem(path: Path) -> str | None:
    """Why moltir's launcher ``path`` no longer starts the helper (the Python it execs is gone: a rebuilt
    or removed venv), or None. Reads the launcher; runs nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None  # exec_path_problem says it
    for line in text.splitlines():
        if line.startswith("exec "):
            try:
                python = shlex.split(line)[1]
            except (ValueError, IndexError):
                return f"{path} has no command moltir can read"
            if not os.access(python, os.X_OK):
                return f"{path} runs {python}, which no longer exists (a removed or rebuilt moltir install)"
            return None
    return None


def exec_path_problem(command: str) -> str | None:
    """Why OpenClaw would refuse ``command`` as an exec provider, or None (mirrors its checks)."""
    path = Path(command)
    if not path.is_absolute():
        return f"{command} is not an absolute path"
    try:
        st = path.lstat()
    except OSError as exc:
        return f"{command} is not readable: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return f"{command} is a symlink"
    if not stat.S_ISREG(st.st_mode):
        return f"{command} is not a regular file"
    if st.st_mode & 0o022:
        return f"{command} is group- or world-writable"
    if st.st_uid != os.getuid():
        return f"{command} is not owned by uid {os.getuid()}"
    if not os.access(path, os.X_OK):
        return f"{command} is not executable"
    return None


def provider_config(command: str, backend: str) -> dict[str, Any]:
    """``secrets.providers.moltir`` as moltir writes it."""
    return {"source": "exec", "command": command, "args": ["--backend", backend],
            "passEnv": list(PASS_ENV), "jsonOnly": True, "timeoutMs": HELPER_TIMEOUT_MS}


def token_ref(install: Install) -> dict[str, str]:
    """``gateway.auth.token`` as moltir writes it."""
    return {"source": "exec", "provider": PROVIDER_ALIAS, "id": entry_name(install)}


# ---- boot safety ----------------------------------------------------------------------------

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


def boot_check(install: Install, command: str, args: Sequence[str], *, expected: str | None = None,
               pid: int | None = None, boot_env: BootEnv | None = None, entry: str | None = None) -> BootCheck:
    """Can the gateway's helper read the token (``entry``, default the install's) in the gateway's env?"""
    where = boot_env or gateway_env(install, pid)
    problem = exec_path_problem(command)
    if problem:
        return BootCheck(False, where.source, f"OpenClaw would refuse the helper: {problem}")
    env = {k: where.env[k] for k in PASS_ENV if k in where.env}
    entry = entry or entry_name(install)
    started = time.monotonic()
    rc, data, err = run_helper(command, args, env, [entry])
    ms = int((time.monotonic() - started) * 1000)
    if rc != 0 or data is None:
        why = err or "no JSON on stdout"
        return BootCheck(False, where.source, f"the helper failed there (rc {rc}): {why}", duration_ms=ms)
    values = data.get("values") if isinstance(data.get("values"), dict) else {}
    value = values.get(entry) if isinstance(values, dict) else None
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
    wrapper = helper_wrapper_path(install.env)
    try:
        current = wrapper.is_file() and not wrapper.is_symlink() and wrapper.read_bytes() == wrapper_text().encode()
    except OSError:
        current = False
    if current:
        problem = exec_path_problem(str(wrapper))
        if problem:
            raise boot_refusal(BootCheck(False, where.source, f"OpenClaw would refuse the helper: {problem}"))
        command, args = str(wrapper), ["--backend", backend]
    else:
        command, args = sys.executable, ["-I", "-m", "moltir.secret_helper", "--backend", backend]
    mine = read(SERVICE, entry)
    env = {k: where.env[k] for k in PASS_ENV if k in where.env}
    started = time.monotonic()
    rc, data, err = run_helper(command, args, env, [entry])
    ms = int((time.monotonic() - started) * 1000)
    if rc != 0 or data is None:
        raise boot_refusal(BootCheck(False, where.source, f"the helper failed there (rc {rc}): "
                                                          f"{err or 'no JSON on stdout'}", duration_ms=ms))
    values = data.get("values") if isinstance(data.get("values"), dict) else {}
    value = values.get(entry) if isinstance(values, dict) else None
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


# ---- doctor ---------------------------------------------------------------------------------

def _configured_provider(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    secrets_cfg = config.get("secrets")
    providers = secrets_cfg.get("providers") if isinstance(secrets_cfg, Mapping) else None
    entry = providers.get(PROVIDER_ALIAS) if isinstance(providers, Mapping) else None
    return entry if isinstance(entry, Mapping) else None


def token_source(config: Mapping[str, Any]) -> tuple[str, Any]:
    """("absent"|"plaintext"|"ref"|"env-shorthand", value-or-ref) of ``gateway.auth.token``."""
    gw = config.get("gateway")
    auth = gw.get("auth") if isinstance(gw, Mapping) else None
    token = auth.get("token") if isinstance(auth, Mapping) else None
    if token is None:
        return "absent", None
    if isinstance(token, Mapping):
        return "ref", dict(token)
    if isinstance(token, str) and token.startswith("$"):
        return "env-shorthand", token
    return "plaintext", token


def configured_token(install: Install) -> tuple[str | None, str]:
    """(token, source) the gateway is configured with, as far as moltir can read it: a plaintext
    ``gateway.auth.token``, or moltir's keyring entry when the config points at moltir's SecretRef.
    For health checks in later runs (``restore``), where the rotating run's memory is gone. Never raises."""
    try:
        config = install.read_config()
        kind, value = token_source(config)
        if kind == "plaintext" and isinstance(value, str) and value:
            register(value)
            return value, "config"
        if kind == "ref" and isinstance(value, Mapping) and value.get("source") == "exec" \
                and value.get("provider") == PROVIDER_ALIAS:
            backend = pinned_backend(config)
            if backend is None:
                return None, f"keyring backend {pinned_backend_name(config)} (pinned in the config) unavailable"
            stored = read(SERVICE, str(value.get("id")), backend=backend)
            return (stored, "keyring") if stored else (None, "keyring entry missing")
    except MoltirError:
        return None, "unreadable"
    return None, "none"


def doctor_checks(install: Install, *, pid: int | None = None) -> list[tuple[str, bool, str]]:
    """Checks for ``moltir doctor``: (name, ok, detail or fix). Never raises MoltirError."""
    checks: list[tuple[str, bool, str]] = []
    try:
        info = preflight(allow_insecure=False)
        checks.append(("keyring backend", True, info.describe()))
    except MoltirError as exc:
        checks.append(("keyring backend", False, exc.one_line()))
        info = None
    entry = entry_name(install)
    stored: str | None = None
    if info is not None:
        try:
            stored = read(SERVICE, entry)
            checks.append(("gateway token in keyring", stored is not None,
                           f"{SERVICE}/{entry}: token {fingerprint(stored)}" if stored else
                           f"{SERVICE}/{entry} is empty: 'moltir drill' or 'moltir contain' stores one"))
        except MoltirError as exc:
            checks.append(("gateway token in keyring", False, exc.one_line()))
    try:
        config = install.read_config()
    except MoltirError as exc:
        checks.append(("gateway token source", False, exc.one_line()))
        return checks
    kind, value = token_source(config)
    if kind == "ref":
        mine = value.get("source") == "exec" and value.get("provider") == PROVIDER_ALIAS
        checks.append(("gateway token source", True,
                       "keyring, through moltir's exec SecretRef" if mine else
                       f"SecretRef {value.get('source')}:{value.get('provider')} (not moltir's)"))
        provider = _configured_provider(config)
        if mine:
            if provider is None or not isinstance(provider.get("command"), str):
                checks.append(("secret helper", False, f"secrets.providers.{PROVIDER_ALIAS} is missing: "
                                                       "run 'moltir drill' to rewrite it"))
            else:
                command = str(provider["command"])
                args = [str(a) for a in provider.get("args", []) if isinstance(a, str)]
                problem = exec_path_problem(command)
                checks.append(("secret helper", problem is None, problem or command))
                stale = launcher_problem(Path(command))
                if stale is not None:
                    checks.append(("secret helper launcher", False, f"{stale}: at its next start the gateway "
                                   "cannot read its token. Run 'moltir token repin' (points it at this moltir) or "
                                   "'moltir token unpin' (the token back into the 0600 config)"))
                if pid is None:
                    with contextlib.suppress(Exception):
                        from moltir.openclaw import processes as proc

                        running = proc.find_gateways(install)
                        pid = running[0].pid if running else None
                boot = boot_check(install, command, args, expected=stored, pid=pid)
                detail = f"{boot.detail} [{boot.source}]"
                if not boot.ok:  # the gateway will refuse to start ("required secrets are unavailable")
                    detail += (": the gateway cannot start like this; unlock the keyring (and give the gateway's "
                               "environment the same D-Bus session), or run 'moltir drill' to rewrite the helper")
                checks.append(("secret helper at gateway start", boot.ok, detail))
    elif kind == "plaintext":
        same = stored is not None and stored == value
        if isinstance(value, str):
            register(value)
        move = ("moves it to the keyring" if install.caps.gateway_token_secretref else
                "rotates it and keeps the keyring copy as the record (this OpenClaw reads it only from the config)")
        detail = ("plaintext in the config; the keyring copy matches" if same else
                  f"plaintext in the config, with no matching keyring copy: 'moltir drill' {move}")
        checks.append(("gateway token source", same, detail))
    elif kind == "env-shorthand":
        checks.append(("gateway token source", True, f"environment variable {value}"))
    else:
        checks.append(("gateway token source", False, "gateway.auth.token is not set: the gateway makes an "
                                                      "ephemeral token at each start"))
    return checks
