"""What could override or leak the gateway token after a rotation: ``<state>/.env``, the service
environment, OpenClaw's secret store, ``hooks.token``, ``gateway.remote.token``."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moltir.actions.base import StepContext
from moltir.actions.token.names import ENV_TOKEN_VARS
from moltir.actions.token.reading import config_value, process_env, read_env_file
from moltir.fsutil import atomic_write
from moltir.redaction import fingerprint, register


def leak_warnings(ctx: StepContext, config: Mapping[str, Any], old: str | None, new: str,
                  gateways: list[Any]) -> list[str]:
    """Warnings, one a place, about what still carries another gateway token (``config`` is the config
    as it was before the rotation); with ``--clean-env`` the ``.env`` entries are removed instead."""
    return [*_env_file(ctx, new), *_running_env(gateways, new), *_service_env(ctx.install.state_dir),
            *_config_leaks(config, old, new)]


def _env_file(ctx: StepContext, new: str) -> list[str]:
    """``<state>/.env`` setting a gateway token other than the new one."""
    warnings: list[str] = []
    env_file = ctx.install.state_dir / ".env"
    file_env = read_env_file(env_file)
    for var in ENV_TOKEN_VARS:
        value = file_env.get(var)
        if value is None:
            continue
        register(value)
        if value == new:
            continue
        if ctx.options.clean_env:
            raw = env_file.read_bytes()
            ctx.case.write_file(f"preimage/{env_file.name}", raw)
            kept = [ln for ln in raw.decode("utf-8").splitlines(keepends=True)
                    if not re.match(rf"^\s*(?:export\s+)?{var}\s*=", ln)]
            st = env_file.stat()
            atomic_write(env_file, "".join(kept).encode("utf-8"), mode=st.st_mode & 0o777,
                         owner=(st.st_uid, st.st_gid))
            ctx.event("token.env_cleaned", file=str(env_file), var=var, token_fingerprint=fingerprint(value))
            warnings.append(f"removed {var} ({fingerprint(value)}) from {env_file} (--clean-env)")
        else:
            warnings.append(f"{env_file} sets {var} ({fingerprint(value)}), which differs from the new token: "
                            "it overrides the gateway token where the config has none and leaks the old one; "
                            "rerun with --clean-env to remove it")
    return warnings


def _running_env(gateways: list[Any], new: str) -> list[str]:
    """Running gateways whose environment sets another token."""
    warnings: list[str] = []
    for gw in gateways:
        env = process_env(gw)
        for var in ENV_TOKEN_VARS:
            if env.get(var) and env[var] != new:
                register(env[var])
                warnings.append(f"the running gateway (pid {gw.pid}) has {var}={fingerprint(env[var])} in its "
                                "environment (its service or shell sets it): remove it there")
    return warnings


def _service_env(state_dir: Path) -> list[str]:
    """Service environment files (``<state>/service-env/*``) that set a gateway token."""
    warnings: list[str] = []
    svc_dir = state_dir / "service-env"
    if svc_dir.is_dir():
        for f in sorted(svc_dir.iterdir()):
            with contextlib.suppress(OSError):
                if any(v in read_env_file(f) for v in ENV_TOKEN_VARS):
                    warnings.append(f"{f} sets a gateway token for the service: reinstall the service "
                                    "('openclaw gateway install --force') so it no longer carries one")
    return warnings


def _config_leaks(config: Mapping[str, Any], old: str | None, new: str) -> list[str]:
    """The previous token left in OpenClaw's secret store, ``hooks.token`` and ``gateway.remote.token``."""
    warnings: list[str] = []
    previous = config_value(config, "gateway", "auth", "token")
    if isinstance(previous, Mapping) and previous.get("source") == "store":
        warnings.append(f"OpenClaw's secret store still holds the previous token as {previous.get('id')} "
                        "(unencrypted, no longer used): remove it with 'openclaw secrets store rm "
                        f"{previous.get('id')} --yes'")
    hooks = config_value(config, "hooks", "token")
    if isinstance(hooks, str) and hooks and hooks in (old, new):
        register(hooks)
        warnings.append(f"hooks.token equals the {'old' if hooks == old else 'new'} gateway token "
                        f"({fingerprint(hooks)}): give hooks their own token")
    remote = config_value(config, "gateway", "remote", "token")
    if isinstance(remote, str) and remote and old and remote == old:
        warnings.append(f"gateway.remote.token still holds the old token ({fingerprint(old)}): update or "
                        "remove it")
    return warnings
