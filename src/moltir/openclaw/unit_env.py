"""Secrets handed to the gateway by its service: the systemd unit's ``Environment=`` and
``EnvironmentFile=`` lines, OpenClaw's generated ``<state>/service-env/*`` files (openclaw-facts.md:
"Service installs may also hold env values in an owner-only generated env file under
``~/.openclaw/service-env/``"), and the environment of the running gateway process.

The unit files moltir knows for an install (:meth:`Install.systemd_units`: ``openclaw-gateway[-<profile>]
.service``, as ``openclaw gateway install`` writes it) are read from the user unit folder
(``$XDG_CONFIG_HOME/systemd/user``) and the system one (``/etc/systemd/system``, OpenClaw's server
installer). Drop-ins (``<unit>.d/*.conf``) are read too. Only secret-named variables count.
"""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from moltir.openclaw import credential_table as table
from moltir.openclaw.credentials import Credential, dotenv_credentials
from moltir.redaction import register

if TYPE_CHECKING:
    from moltir.openclaw.install import Install


def unit_files(install: Install) -> list[Path]:
    user_dir = Path(install.env.get("XDG_CONFIG_HOME") or install.home / ".config") / "systemd" / "user"
    found: list[Path] = []
    for folder in (user_dir, Path("/etc/systemd/system")):
        for unit in install.systemd_units():
            path = folder / unit
            if path.is_file():
                found.append(path)
                found += sorted((folder / f"{unit}.d").glob("*.conf"))
    return found


def _lines(path: Path) -> list[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.strip() in ("Environment", "EnvironmentFile"):
            out.append((name.strip(), value.strip()))
    return out


def _env_creds(values: dict[str, str], prefix: str, file: str, where: str) -> list[Credential]:
    out = []
    for var, secret in values.items():
        if secret and table.SECRET_KEY_RE.search(var):
            register(secret)
            out.append(Credential(f"{prefix}.{var}", table.kind_of(f"env.{var}", var),
                                  table.provider_of(f"env.{var}", var), file, f"{where}{var}", "env", secret))
    return out


def process_credentials(install: Install) -> list[Credential]:
    """Secret-named variables in the running gateway's environment (as it was started: what OpenClaw
    later loads from ``.env`` is not there)."""
    import psutil

    from moltir.openclaw import processes as proc

    out: list[Credential] = []
    for gw in proc.find_gateways(install):
        env: dict[str, str] = {}
        with contextlib.suppress(psutil.Error, OSError):  # gone, or another user's: nothing to list
            env = dict(gw.process().environ())
        out += _env_creds(env, "process.gateway", f"/proc/{gw.pid}/environ", "")
    return out


def service_env_credentials(install: Install) -> list[Credential]:
    folder = install.state_dir / "service-env"
    out: list[Credential] = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file():
            out += dotenv_credentials(path, f"service-env.{path.name}")
    return out


def unit_credentials(install: Install) -> list[Credential]:
    out: list[Credential] = []
    for unit in unit_files(install):
        for name, value in _lines(unit):
            if name == "EnvironmentFile":
                env_file = Path(value.lstrip("-"))
                out += dotenv_credentials(env_file, f"unit.{unit.name}.EnvironmentFile")
                continue
            try:
                words = shlex.split(value)
            except ValueError:
                continue
            pairs = dict(word.partition("=")[::2] for word in words if "=" in word)
            out += _env_creds(pairs, f"unit.{unit.name}", str(unit), "Environment=")
    return out
