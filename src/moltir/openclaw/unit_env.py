"""Secrets handed to the gateway by its systemd unit: ``Environment=`` and ``EnvironmentFile=`` lines.

The unit files moltir knows for an install (:meth:`Install.systemd_units`: ``openclaw-gateway[-<profile>]
.service``, as ``openclaw gateway install`` writes it) are read from the user unit folder
(``$XDG_CONFIG_HOME/systemd/user``) and the system one (``/etc/systemd/system``, OpenClaw's server
installer). Drop-ins (``<unit>.d/*.conf``) are read too. Only secret-named variables count.
"""

from __future__ import annotations

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
            for word in words:
                var, sep, secret = word.partition("=")
                if sep and secret and table.SECRET_KEY_RE.search(var):
                    register(secret)
                    out.append(Credential(f"unit.{unit.name}.{var}", table.kind_of(f"env.{var}", var),
                                          table.provider_of(f"env.{var}", var), str(unit), f"Environment={var}",
                                          "env", secret))
    return out
