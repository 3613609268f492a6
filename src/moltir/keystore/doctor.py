"""``moltir doctor``'s keyring checks: the backend, the token entry, where the config takes the token
from, and whether the secret helper would serve it at gateway start."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltir.errors import MoltirError
from moltir.keystore.boot import boot_check
from moltir.keystore.config import configured_provider
from moltir.keystore.entries import SERVICE, entry_name, read
from moltir.keystore.launcher import PROVIDER_ALIAS, exec_path_problem, launcher_problem
from moltir.keystore.readiness import preflight
from moltir.openclaw.gateway_auth import token_setting
from moltir.redaction import fingerprint, register

if TYPE_CHECKING:
    from moltir.openclaw import Install


Check = tuple[str, bool, str]


def doctor_checks(install: Install, *, pid: int | None = None) -> list[Check]:
    """Checks for ``moltir doctor``: (name, ok, detail or fix). Never raises MoltirError."""
    checks, stored = _keyring_checks(install)
    try:
        config = install.read_config()
    except MoltirError as exc:
        checks.append(("gateway token source", False, exc.one_line()))
        return checks
    kind, value = token_setting(config)
    if kind == "ref":
        mine = value.get("source") == "exec" and value.get("provider") == PROVIDER_ALIAS
        checks.append(("gateway token source", True,
                       "keyring, through moltir's exec SecretRef" if mine else
                       f"SecretRef {value.get('source')}:{value.get('provider')} (not moltir's)"))
        if mine:
            checks += _helper_checks(install, configured_provider(config), stored, pid)
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


def _keyring_checks(install: Install) -> tuple[list[Check], str | None]:
    """The backend and the install's entry: (checks, the token stored there or None)."""
    checks: list[Check] = []
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
    return checks, stored


def _helper_checks(install: Install, provider: Mapping[str, Any] | None, stored: str | None,
                   pid: int | None) -> list[Check]:
    """moltir's provider entry, its launcher, and the helper run the way the gateway starts it."""
    if provider is None or not isinstance(provider.get("command"), str):
        return [("secret helper", False, f"secrets.providers.{PROVIDER_ALIAS} is missing: "
                                         "run 'moltir drill' to rewrite it")]
    checks: list[Check] = []
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
    return checks
